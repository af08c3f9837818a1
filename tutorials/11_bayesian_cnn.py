# %% [markdown]
# # Chapter 11 — A Bayesian convolutional network
#
# *Probabilistic Deep Learning, part 11.* Chapter 7 ended with a convolutional network that was confidently
# wrong on corrupted digits: its weights were single numbers, so it could express ambiguity it had learnt
# (aleatoric) but not unfamiliarity (epistemic). Here the convolution and dense layers get a posterior over
# their weights (`tfp_bnn.BayesianConv2D`, `tfp_bnn.BayesianDense`), and we measure both kinds of uncertainty
# on clean test digits, on corrupted ones and on images that are not digits at all.

# %%
import os

import tfp_bnn  # first: imports TensorFlow without its start-up chatter

import matplotlib.pyplot as plt
import numpy as np
import tf_keras
from tfp_bnn import data, metrics, plots

FAST = os.environ.get("TFP_BNN_TUTORIAL_FAST") == "1"
EPOCHS = 40 if FAST else 150
NUM_SAMPLES = 30 if FAST else 200
tf_keras.utils.set_random_seed(0)

# %% [markdown]
# ## Three kinds of test images
#
# scikit-learn's 8 × 8 digits, scaled to [0, 1] by `tfp_bnn.data.load_digit_images` (the article's code fed
# unscaled pixels; inputs of order one are what the weight initialisers and the prior scale of 1 assume).
# Besides the clean test set: the same images corrupted by `tfp_bnn.data.corrupt_images` (blobs and noise),
# and two out-of-distribution sets that contain no digit: blobs alone on an empty canvas, and uniform noise.

# %%
x_train, y_train, x_test, y_test = data.load_digit_images("digits")
blank = np.zeros((len(x_test), 8, 8, 1), dtype="float32")
test_sets = {
    "clean": x_test,
    "corrupted": data.corrupt_images(x_test, seed=0),
    "blobs (OOD)": data.corrupt_images(blank, num_blobs=4, noise_std=0.05, seed=1),
    "noise (OOD)": np.random.default_rng(2).uniform(0, 1, blank.shape).astype("float32"),
}
fig, axes = plt.subplots(len(test_sets), 8, figsize=(11, 6))
for row, (name, images) in enumerate(test_sets.items()):
    for k in range(8):
        axes[row, k].imshow(images[k, ..., 0], cmap="gray_r", vmin=0, vmax=1)
        axes[row, k].set(xticks=[], yticks=[])
    axes[row, 0].set_ylabel(name)
plt.show()

# %% [markdown]
# ## The network
#
# The body of chapter 7 with every weight Bayesian: a 3 × 3 `BayesianConv2D` with 16 filters, max-pooling, a
# 32-unit `BayesianDense`, a 10-unit `BayesianDense` for the logits, and a `CategoricalHead`. Each Bayesian
# layer has the default `NormalPrior(1.0)` and a `MeanFieldNormal` posterior, samples with Flipout, and adds
# its KL divergence times `kl_weight = 1/N` to the loss (the negative ELBO per example, chapter 10).

# %%
kl_weight = 1 / len(x_train)
inputs = tf_keras.Input(x_train.shape[1:])
h = tfp_bnn.BayesianConv2D(16, 3, padding="same", activation="relu", kl_weight=kl_weight)(inputs)
h = tf_keras.layers.MaxPooling2D(2)(h)
h = tf_keras.layers.Flatten()(h)
h = tfp_bnn.BayesianDense(32, activation="relu", kl_weight=kl_weight)(h)
logits = tfp_bnn.BayesianDense(10, kl_weight=kl_weight)(h)
model = tfp_bnn.BayesianModel(inputs, tfp_bnn.CategoricalHead(10)(logits))
model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=0.005))
history = model.fit(x_train, y_train, epochs=EPOCHS, batch_size=64, verbose=0)
print(f"final loss {history.history['loss'][-1]:.3f} = NLL {history.history['nll'][-1]:.3f} + KL/N {history.history['kl'][-1]:.3f}")

# %% [markdown]
# ## Entropy and mutual information on each set
#
# `tfp_bnn.predict` draws `T` networks from the posterior (`BayesianConv2D` applies the `T` kernel draws with
# one `tf.map_fn` in the same graph) and splits the predictive entropy into the expected entropy of the draws
# (aleatoric) and the mutual information between label and weights (epistemic).

# %%
results = {name: tfp_bnn.predict(model, images, num_samples=NUM_SAMPLES, seed=0) for name, images in test_sets.items()}
print(f"{'set':>12} {'accuracy':>9} {'entropy':>8} {'expected':>9} {'mutual inf.':>12}")
for name, result in results.items():
    accuracy = f"{metrics.accuracy(y_test, result.probabilities):9.3f}" if "OOD" not in name else f"{'-':>9}"
    print(f"{name:>12} {accuracy} {result.predictive_entropy.mean():8.3f} {result.expected_entropy.mean():9.3f} {result.mutual_information.mean():12.3f}")

mutual_information = {name: result.mutual_information.mean() for name, result in results.items()}
assert metrics.accuracy(y_test, results["clean"].probabilities) > 0.9
assert min(mutual_information["corrupted"], mutual_information["blobs (OOD)"], mutual_information["noise (OOD)"]) > 2 * mutual_information["clean"]

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
names = list(results)
for ax, field, title in zip(axes, ("predictive_entropy", "mutual_information"), ("predictive entropy (total)", "mutual information (epistemic)")):
    ax.boxplot([getattr(results[name], field) for name in names], showfliers=False)
    ax.set_xticks(range(1, len(names) + 1), labels=names)
    ax.set(ylabel="nats", title=title)
plt.tight_layout()
plt.show()

# %% [markdown]
# On clean digits both the entropy and the mutual information are low. Corrupted digits raise both. On the
# images that hold no digit the mutual information is several times its value on clean digits: the sampled
# networks disagree, and the model says *"I have not seen inputs like these"*, the signal chapter 7's network
# could not give.
#
# ## Single images
#
# `tfp_bnn.plots.class_probability_bars` now has something to show in its error bars: the spread of each class
# probability over the weight draws. Long bars mean the draws disagree (epistemic); flat but tight bars mean
# they agree that the image is ambiguous (aleatoric). Shown: test image 1, clean and corrupted, and from each
# out-of-distribution set the image with the largest mutual information.

# %%
fig, axes = plt.subplots(2, 4, figsize=(16, 6.5), gridspec_kw={"height_ratios": [1, 2.2]})
for column, name in enumerate(names):
    index = int(np.argmax(results[name].mutual_information)) if "OOD" in name else 1
    axes[0, column].imshow(test_sets[name][index, ..., 0], cmap="gray_r", vmin=0, vmax=1)
    axes[0, column].set(xticks=[], yticks=[], title=f"{name}" + ("" if "OOD" in name else f", label {y_test[index]}"))
    plots.class_probability_bars(results[name], index, ax=axes[1, column])
    axes[1, column].get_legend().remove()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Are the wrong predictions the uncertain ones?
#
# Uncertainty is useful if it flags the mistakes. `tfp_bnn.plots.uncertainty_histograms` overlays the
# predictive entropy and the mutual information of correctly and wrongly classified images, here all clean
# and corrupted test images together.

# %%
labels = np.concatenate([y_test, y_test])
both = tfp_bnn.predict(model, np.concatenate([test_sets["clean"], test_sets["corrupted"]]), num_samples=NUM_SAMPLES, seed=0)
fig = plots.uncertainty_histograms(labels, both)
plt.show()
correct = both.predicted_class == labels
print(f"mean predictive entropy: correct {both.predictive_entropy[correct].mean():.3f} nats, wrong {both.predictive_entropy[~correct].mean():.3f}")
print(f"mean mutual information: correct {both.mutual_information[correct].mean():.3f} nats, wrong {both.mutual_information[~correct].mean():.3f}")
assert both.predictive_entropy[~correct].mean() > 2 * both.predictive_entropy[correct].mean()

# %% [markdown]
# The wrong predictions sit at high entropy and high mutual information; the right ones pile up near zero
# (the mode of their histogram), with a long tail towards the wrong ones. So the model can abstain: keep
# only its most certain predictions and their accuracy rises.

# %%
order = np.argsort(both.predictive_entropy)
kept = np.linspace(0.1, 1.0, 10)
accuracy_kept = [correct[order[: int(round(f * len(order)))]].mean() for f in kept]
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(kept, accuracy_kept, marker="o")
ax.set(xlabel="fraction of images kept (lowest entropy first)", ylabel="accuracy", title="Abstaining on the most uncertain images")
plt.show()
print(", ".join(f"{f:.0%}: {a:.3f}" for f, a in zip(kept, accuracy_kept)))
assert accuracy_kept[4] > accuracy_kept[-1] + 0.05
