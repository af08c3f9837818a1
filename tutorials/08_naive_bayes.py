# %% [markdown]
# # Chapter 8 — Naive Bayes from scratch
#
# *Probabilistic Deep Learning, part 8.* A classifier built only from distribution objects: model how each
# class generates its data, then invert with Bayes' rule,
#
# $$p(c \mid x) = \frac{p(c)\, p(x \mid c)}{\sum_{c'} p(c')\, p(x \mid c')} .$$
#
# *Naive* Bayes assumes the features are independent given the class, so $p(x \mid c)$ is a product of
# one-dimensional densities: a `MultivariateNormalDiag` per class. The data: the wine recognition set
# bundled with scikit-learn (three cultivars), with two features, alcohol and hue.

# %%
import os

import tfp_bnn  # first: imports TensorFlow without its start-up chatter

import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras
from sklearn.model_selection import train_test_split
from tfp_bnn import data, metrics

tfd = tfp.distributions
FAST = os.environ.get("TFP_BNN_TUTORIAL_FAST") == "1"
tf_keras.utils.set_random_seed(0)

wine = data.load_sklearn("wine")
features = [wine.feature_names.index("alcohol"), wine.feature_names.index("hue")]
x = wine.x[:, features]
x_train, x_test, y_train, y_test = train_test_split(x, wine.y, test_size=0.3, random_state=0, stratify=wine.y)
print(f"{wine.num_examples} wines, classes {wine.class_names}; train {len(x_train)}, test {len(x_test)}")

# %% [markdown]
# ## The model, fitted by maximum likelihood
#
# * The **prior** $p(c)$ is a `tfd.Categorical` over the three classes, with the class frequencies of the
#   training set as probabilities (their maximum-likelihood estimate).
# * The **class-conditional** $p(x \mid c)$: for each class a Normal per feature with that class's sample
#   mean and standard deviation (chapter 3). One `MultivariateNormalDiag` with `loc` and `scale_diag` of shape
#   `[3, 2]` holds all three: batch shape `[3]` (one per class), event shape `[2]` (alcohol, hue).

# %%
num_classes = wine.num_classes
prior = tfd.Categorical(probs=np.float32(np.bincount(y_train, minlength=num_classes) / len(y_train)))
means = np.stack([x_train[y_train == c].mean(axis=0) for c in range(num_classes)])
stds = np.stack([x_train[y_train == c].std(axis=0) for c in range(num_classes)])
class_conditionals = tfd.MultivariateNormalDiag(loc=means, scale_diag=stds)
print("prior:", np.round(prior.probs_parameter().numpy(), 3))
print(class_conditionals)

# %% [markdown]
# ## Prediction with log-sum-exp
#
# Evaluating the `[3]`-batch of class-conditionals at inputs of shape `[N, 1, 2]` broadcasts to
# `log p(x_n | c)` of shape `[N, 3]`. Adding the log-prior gives the log-joint $\log p(c) + \log p(x \mid c)$,
# and the log-posterior subtracts its log-normaliser, computed with `tf.math.reduce_logsumexp`:
#
# $$\log p(c \mid x) = \log p(c) + \log p(x \mid c) - \log \sum_{c'} \exp\big(\log p(c') + \log p(x \mid c')\big).$$
#
# The article's code *added probabilities* ($p(c) + p(x \mid c)$) instead of combining them by Bayes' rule;
# Bayes' rule multiplies prior and likelihood, which in log space means adding log-probabilities, and
# log-sum-exp does the normalising sum without ever forming the tiny densities that underflow to 0.

# %%
def log_posterior(x):
    log_joint = prior.log_prob(tf.range(num_classes)) + class_conditionals.log_prob(x[:, np.newaxis, :])
    return log_joint - tf.math.reduce_logsumexp(log_joint, axis=-1, keepdims=True)


probabilities = np.exp(log_posterior(x_test).numpy())
accuracy = metrics.accuracy(y_test, probabilities)
print(f"test accuracy {accuracy:.3f}; probabilities sum to 1: {np.allclose(probabilities.sum(axis=1), 1)}")

# %% [markdown]
# scikit-learn's `GaussianNB` fits the same model; it agrees with ours to rounding (it adds a variance of
# $10^{-9}$ times the largest feature variance for stability):

# %%
from sklearn.naive_bayes import GaussianNB

reference = GaussianNB().fit(x_train, y_train)
np.testing.assert_allclose(probabilities, reference.predict_proba(x_test), atol=1e-4)
np.testing.assert_array_equal(probabilities.argmax(axis=1), reference.predict(x_test))
assert accuracy > 0.8
print("same probabilities and predictions as sklearn.naive_bayes.GaussianNB")

# %% [markdown]
# ## Why not add probabilities
#
# The sum $p(c) + p(x \mid c)$ is not a posterior: the two terms do not even have the same units (a
# probability plus a density), and wherever the densities are small the prior outvotes the data. Near the
# training data the densities of this set are large, so most decisions survive, but the "probabilities" are
# far off, as their negative log-likelihood on the test set shows, and away from the data the decisions go
# wrong too (the decision regions below).

# %%
wrong_scores = prior.probs_parameter()[tf.newaxis, :] + class_conditionals.prob(x_test[:, np.newaxis, :])
wrong_accuracy = metrics.accuracy(y_test, wrong_scores.numpy() / wrong_scores.numpy().sum(axis=1, keepdims=True))
changed = np.sum(wrong_scores.numpy().argmax(axis=1) != probabilities.argmax(axis=1))
wrong_nll = metrics.categorical_nll(y_test, wrong_scores.numpy() / wrong_scores.numpy().sum(axis=1, keepdims=True))
print(f"Bayes' rule:          accuracy {accuracy:.3f}, test NLL {metrics.categorical_nll(y_test, probabilities):.3f}")
print(f"adding probabilities: accuracy {wrong_accuracy:.3f}, test NLL {wrong_nll:.3f}; {changed} of {len(y_test)} decisions differ")
assert wrong_nll > 1.5 * metrics.categorical_nll(y_test, probabilities)

# %% [markdown]
# And why logarithms: far from the data every density underflows. With probabilities the normalisation
# becomes $0/0$; in log space it is exact.

# %%
far = np.array([[20.0, 4.0]], dtype="float32")  # an implausible wine
densities = prior.probs_parameter() * class_conditionals.prob(far[:, np.newaxis, :])
print("p(c) p(x|c):", densities.numpy(), "-> normalised:", (densities / tf.reduce_sum(densities)).numpy())
print("log-sum-exp posterior:", np.round(np.exp(log_posterior(far).numpy()), 4))
assert np.all(np.isfinite(log_posterior(far).numpy()))

# %% [markdown]
# ## Pictures
#
# Left: the training data and the contours of each class-conditional density (axis-aligned ellipses, the
# naive assumption). Middle: the decision regions, the class of largest posterior at every point, with the
# test data. Right: the regions of the added probabilities; away from the data the class with the largest
# prior wins everywhere.

# %%
a, h = np.meshgrid(np.linspace(10.5, 15.2, 300), np.linspace(0.4, 1.8, 300))
plane = np.stack([a.ravel(), h.ravel()], axis=1).astype("float32")
densities = class_conditionals.prob(plane[:, np.newaxis, :]).numpy().reshape(*a.shape, num_classes)
regions = log_posterior(plane).numpy().argmax(axis=1).reshape(a.shape)
added = prior.probs_parameter()[tf.newaxis, :] + class_conditionals.prob(plane[:, np.newaxis, :])
wrong_regions = added.numpy().argmax(axis=1).reshape(a.shape)
colors = ["tab:blue", "tab:orange", "tab:green"]

fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), sharey=True)
for c in range(num_classes):
    axes[0].contour(a, h, densities[..., c], levels=4, colors=colors[c], linewidths=1)
    axes[0].scatter(*x_train[y_train == c].T, s=12, color=colors[c], label=wine.class_names[c])
    for ax in axes[1:]:
        ax.scatter(*x_test[y_test == c].T, s=16, color=colors[c], edgecolors="black", linewidths=0.5, label=wine.class_names[c])
axes[1].contourf(a, h, regions, levels=[-0.5, 0.5, 1.5, 2.5], colors=colors, alpha=0.2)
axes[2].contourf(a, h, wrong_regions, levels=[-0.5, 0.5, 1.5, 2.5], colors=colors, alpha=0.2)
axes[0].set(xlabel="alcohol", ylabel="hue", title="Class-conditional densities (training data)")
axes[1].set(xlabel="alcohol", title=f"Bayes' rule (test data, accuracy {accuracy:.2f})")
axes[2].set(xlabel="alcohol", title=f"Adding probabilities (accuracy {wrong_accuracy:.2f})")
for ax in axes:
    ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# The decision boundaries are curves: each class has its own variances, so $\log p(c \mid x)$ is quadratic in
# $x$. Chapter 9 shares the variances between classes, which makes the boundaries straight lines and turns
# naive Bayes into logistic regression.
