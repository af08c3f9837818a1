# %% [markdown]
# # Chapter 7 — Deterministic vs probabilistic deep learning
#
# *Probabilistic Deep Learning, part 7.* The same small convolutional network for handwritten digits, built
# twice: once the usual way, ending in a softmax trained with cross-entropy, once ending in a
# `tfp_bnn.CategoricalHead`, whose output is a `tfd.Categorical` distribution trained by its negative
# log-likelihood. We compare them on clean test images and on images the package corrupts with blobs and
# noise, and look at what each says about single images.

# %%
import os

import tfp_bnn  # first: imports TensorFlow without its start-up chatter

import matplotlib.pyplot as plt
import numpy as np
import tf_keras
from tfp_bnn import data, metrics, plots

FAST = os.environ.get("TFP_BNN_TUTORIAL_FAST") == "1"
tf_keras.utils.set_random_seed(0)

# %% [markdown]
# ## Data
#
# MNIST (70 000 images of 28 × 28 pixels) comes through `tf_keras.datasets` and needs a download; without
# one (offline, or in the test suite's fast mode) we use scikit-learn's bundled digits (1797 images of 8 × 8
# pixels). `tfp_bnn.data.load_digit_images` returns either as `(N, H, W, 1)` images scaled to [0, 1]. The
# article fed the network raw pixel values up to 255; scaled inputs matter because Keras's initialisers
# assume inputs of order one, and pixels 255 times larger make the first layer's outputs so large that
# training starts with saturated, nearly one-hot softmax outputs and huge, erratic gradients.

# %%
source = "digits"
if not FAST:
    try:
        images = data.load_digit_images("mnist")
        source = "mnist"
    except Exception as error:  # no network: fall back to the bundled digits
        print(f"MNIST is not available ({type(error).__name__}); using scikit-learn's digits.")
if source == "digits":
    images = data.load_digit_images("digits")
x_train, y_train, x_test, y_test = images
print(f"{source}: train {x_train.shape}, test {x_test.shape}, pixels in [{x_train.min():g}, {x_train.max():g}]")

# %% [markdown]
# The corruption: `tfp_bnn.data.corrupt_images` splashes a few soft blobs of random shade on each image (in
# the spirit of the "spatter" corruption of ImageNet-C) and adds pixel noise. A person still reads most of
# these digits; a network trained on clean images has never seen anything like them.

# %%
x_corrupted = data.corrupt_images(x_test, seed=0)
fig, axes = plt.subplots(2, 8, figsize=(12, 3.4))
for k in range(8):
    axes[0, k].imshow(x_test[k, ..., 0], cmap="gray_r", vmin=0, vmax=1)
    axes[1, k].imshow(x_corrupted[k, ..., 0], cmap="gray_r", vmin=0, vmax=1)
    axes[0, k].set_title(f"label {y_test[k]}")
for ax in axes.ravel():
    ax.set(xticks=[], yticks=[])
axes[0, 0].set_ylabel("clean")
axes[1, 0].set_ylabel("corrupted")
plt.show()

# %% [markdown]
# ## Two networks
#
# The body: a 3 × 3 convolution with 16 filters, 2 × 2 max-pooling, a 32-unit dense layer. The deterministic
# network ends in `Dense(10, activation="softmax")` and is trained with sparse categorical cross-entropy. The
# probabilistic one ends in `Dense(10)` (logits) and a `CategoricalHead`; `tfp_bnn.BayesianModel` is the
# Functional model class of tfp_bnn (it works for any network ending in a head, Bayesian layers or not), and
# its default loss is the negative log-likelihood of the head's distribution.

# %%
def body(inputs):
    h = tf_keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    h = tf_keras.layers.MaxPooling2D(2)(h)
    h = tf_keras.layers.Flatten()(h)
    return tf_keras.layers.Dense(32, activation="relu")(h)


inputs = tf_keras.Input(x_train.shape[1:])
deterministic = tf_keras.Model(inputs, tf_keras.layers.Dense(10, activation="softmax")(body(inputs)))
deterministic.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

inputs = tf_keras.Input(x_train.shape[1:])
probabilistic = tfp_bnn.BayesianModel(inputs, tfp_bnn.CategoricalHead(10)(tf_keras.layers.Dense(10)(body(inputs))))
probabilistic.compile(optimizer="adam")

epochs = 10 if FAST else {"digits": 60, "mnist": 5}[source]
for model in (deterministic, probabilistic):
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)

# %% [markdown]
# ## The same function, a different output
#
# Softmax followed by cross-entropy *is* the negative log-likelihood of a categorical distribution:
# $-\log \mathrm{softmax}(z)_y = -\log \mathrm{Categorical}(y \mid \text{logits}=z)$. Give the probabilistic
# network the deterministic one's weights and it computes exactly the same class probabilities:

# %%
twin = tf_keras.models.clone_model(probabilistic)
twin.set_weights(deterministic.get_weights())
np.testing.assert_allclose(twin.predict(x_test, verbose=0), deterministic.predict(x_test, verbose=0), atol=1e-5)
print("same weights, same probabilities: the two models differ only in what they return")

# %% [markdown]
# What they return differs. The deterministic network returns an array; the probabilistic one a distribution
# object with everything chapter 1 showed: `sample`, `log_prob` of the labels (the loss), `entropy` (how
# spread the prediction is, in nats; $\log 10 = 2.30$ for a uniform guess).

# %%
output = probabilistic(x_test[:4])
print(output.tensor_distribution)
print("samples of the label:", output.sample().numpy().astype(int), " true labels:", y_test[:4])  # floats (see CategoricalHead)
print("log p(label):", np.round(output.log_prob(y_test[:4]).numpy(), 3))
print("entropy (nats):", np.round(output.entropy().numpy(), 3))

# %% [markdown]
# ## Accuracy on clean and corrupted images
#
# `tfp_bnn.predict` gives the class probabilities (one weight draw is exact without Bayesian layers);
# `tfp_bnn.metrics` scores them.

# %%
clean = tfp_bnn.predict(probabilistic, x_test, num_samples=1)
corrupted = tfp_bnn.predict(probabilistic, x_corrupted, num_samples=1)
rows = []
for name, x_eval in (("clean", x_test), ("corrupted", x_corrupted)):
    p_det = deterministic.predict(x_eval, verbose=0)
    p_prob = tfp_bnn.predict(probabilistic, x_eval, num_samples=1).probabilities
    rows.append((name, metrics.accuracy(y_test, p_det), metrics.accuracy(y_test, p_prob), metrics.categorical_nll(y_test, p_prob)))
    print(f"{name:>9}: accuracy deterministic {rows[-1][1]:.3f}, probabilistic {rows[-1][2]:.3f} (NLL {rows[-1][3]:.3f})")
assert rows[0][1] > 0.9 and rows[0][2] > 0.9 and rows[1][2] < rows[0][2] - 0.1

# %% [markdown]
# Both networks lose a large share of their accuracy on corrupted images. Worse, they do not *know* it: on
# the corrupted images they get wrong, they are still confident.

# %%
wrong = corrupted.predicted_class != y_test
confidence = corrupted.probabilities.max(axis=1)
print(f"corrupted and wrong: {wrong.sum()} images, mean top-class probability {confidence[wrong].mean():.2f}")
print(f"mean predictive entropy: clean {clean.predictive_entropy.mean():.2f} nats, corrupted {corrupted.predictive_entropy.mean():.2f}, wrong corrupted {corrupted.predictive_entropy[wrong].mean():.2f} (uniform: {np.log(10):.2f})")

# %% [markdown]
# ## Single images
#
# The class probabilities of a few test images, clean and corrupted, from both networks. For the
# probabilistic network we use `tfp_bnn.plots.class_probability_bars`, which also reports the entropy; its
# error bars (spread over weight draws) are empty here, since the weights are fixed numbers.

# %%
examples = [int(np.flatnonzero(~wrong)[0]), int(np.flatnonzero(wrong)[0])]  # corrupted: still right, wrong
panels = [
    (index, name, x_eval, result)
    for index in examples
    for name, x_eval, result in (("clean", x_test, clean), ("corrupted", x_corrupted, corrupted))
]
fig, axes = plt.subplots(len(panels), 3, figsize=(13, 2.9 * len(panels)), gridspec_kw={"width_ratios": [1, 2.2, 2.2]})
for row, (index, name, x_eval, result) in enumerate(panels):
    axes[row, 0].imshow(x_eval[index, ..., 0], cmap="gray_r", vmin=0, vmax=1)
    axes[row, 0].set(xticks=[], yticks=[], title=f"{name}, label {y_test[index]}")
    axes[row, 1].bar(range(10), deterministic.predict(x_eval[index : index + 1], verbose=0)[0], color="tab:gray")
    axes[row, 1].set(ylim=(0, 1), xticks=range(10), ylabel="probability", title="deterministic softmax")
    plots.class_probability_bars(result, index, ax=axes[row, 2])
    axes[row, 2].get_legend().remove()
plt.tight_layout()
plt.show()

# %% [markdown]
# A probabilistic output captures **aleatoric** uncertainty: ambiguity the model has learnt from its training
# data (a 4 that looks like a 9). Corrupted images are not ambiguous in that sense; they are *unlike* the
# training data, and a network whose weights are single numbers has no way to say "I have not seen this".
# That needs uncertainty about the weights, **epistemic** uncertainty: the Bayesian CNN of chapter 11.
