# %% [markdown]
# # Chapter 9 — Probabilistic logistic regression
#
# *Probabilistic Deep Learning, part 9.* Logistic regression is usually introduced as "a linear model
# followed by a sigmoid". Here it comes out of chapter 8's generative model: Gaussian classes that **share**
# their scales give a posterior $p(c \mid x)$ that is exactly a softmax of a linear function of $x$. We then
# fit that linear function directly with a categorical head and `model.fit`, and finally make its weights
# Bayesian, so that the decision boundary itself comes with uncertainty.
#
# Data: the wine set again, now with hue and flavanoids.

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
EPOCHS = 150 if FAST else 400
tf_keras.utils.set_random_seed(0)

wine = data.load_sklearn("wine")
features = [wine.feature_names.index("hue"), wine.feature_names.index("flavanoids")]
x = wine.x[:, features]
x_train, x_test, y_train, y_test = train_test_split(x, wine.y, test_size=0.3, random_state=0, stratify=wine.y)
num_classes = wine.num_classes

h, f = np.meshgrid(np.linspace(0.3, 1.9, 200), np.linspace(-0.2, 5.6, 200))
plane = np.stack([h.ravel(), f.ravel()], axis=1).astype("float32")
colors = ["tab:blue", "tab:orange", "tab:green"]


def scatter(ax, x, y, title):
    for c in range(num_classes):
        ax.scatter(*x[y == c].T, s=16, color=colors[c], edgecolors="black", linewidths=0.5, label=wine.class_names[c])
    ax.set(xlabel="hue", ylabel="flavanoids", title=title, xlim=(h.min(), h.max()), ylim=(f.min(), f.max()))


def regions(ax, probabilities):
    ax.contourf(h, f, probabilities.argmax(axis=1).reshape(h.shape), levels=[-0.5, 0.5, 1.5, 2.5], colors=colors, alpha=0.2)

# %% [markdown]
# ## Gaussian classes with shared scales
#
# As in chapter 8, $p(c) = \pi_c$ and $p(x \mid c) = \prod_j \mathcal N(x_j \mid \mu_{cj}, \sigma_j^2)$, but the
# standard deviation $\sigma_j$ of feature $j$ is now the same for all classes (the pooled within-class
# estimate). Then the quadratic terms $x_j^2 / 2\sigma_j^2$ of the log-densities are the same for every class
# and cancel in Bayes' rule, leaving
#
# $$\log p(c \mid x) = \sum_j w_{jc}\, x_j + b_c - \log\sum_{c'} e^{\sum_j w_{jc'} x_j + b_{c'}}, \qquad
#   w_{jc} = \frac{\mu_{cj}}{\sigma_j^2}, \quad b_c = \log \pi_c - \sum_j \frac{\mu_{cj}^2}{2 \sigma_j^2},$$
#
# that is $p(c \mid x) = \mathrm{softmax}(x W + b)_c$: multinomial logistic regression, the two-class case being
# the sigmoid of one linear function (a Bernoulli head).

# %%
priors = np.float32(np.bincount(y_train) / len(y_train))
means = np.stack([x_train[y_train == c].mean(axis=0) for c in range(num_classes)])  # [3, 2]
shared_std = np.sqrt(np.mean((x_train - means[y_train]) ** 2, axis=0))  # [2], pooled over classes
generative = tfd.MultivariateNormalDiag(loc=means, scale_diag=np.broadcast_to(shared_std, means.shape))


def generative_log_posterior(x):
    log_joint = np.log(priors) + generative.log_prob(x[:, np.newaxis, :])
    return log_joint - tf.math.reduce_logsumexp(log_joint, axis=-1, keepdims=True)


W = (means / shared_std**2).T  # [2 features, 3 classes]
b = np.log(priors) - np.sum(means**2 / (2 * shared_std**2), axis=1)
closed_form = tf.nn.softmax(x_test @ W + b).numpy()
np.testing.assert_allclose(closed_form, np.exp(generative_log_posterior(x_test)), atol=1e-5)
print("softmax(x W + b) equals the generative posterior; W =\n", np.round(W, 2), "\nb =", np.round(b, 2))
print(f"test accuracy {metrics.accuracy(y_test, closed_form):.3f}, NLL {metrics.categorical_nll(y_test, closed_form):.3f}")

# %% [markdown]
# ## Fitting the linear model directly
#
# Logistic regression skips the class-conditional densities and fits $W$ and $b$ to maximise
# $\sum_n \log p(y_n \mid x_n)$ directly. In tfp_bnn it is `make_classifier` with no hidden layers: a `Dense(3)`
# giving logits, then a `CategoricalHead`; `input_mean`/`input_std` standardise the inputs inside the model
# (so it takes raw hue and flavanoids and the optimizer sees features of unit scale).

# %%
standardise = {"input_mean": x_train.mean(axis=0), "input_std": x_train.std(axis=0)}
logistic = tfp_bnn.make_classifier((2,), num_classes, regime="probabilistic", hidden_units=(), **standardise)
logistic.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=0.05))
logistic.fit(x_train, y_train, epochs=EPOCHS, batch_size=len(x_train), verbose=0)
fitted = tfp_bnn.predict(logistic, x_test, num_samples=1).probabilities
print(f"test accuracy {metrics.accuracy(y_test, fitted):.3f}, NLL {metrics.categorical_nll(y_test, fitted):.3f}")

# %% [markdown]
# In raw units its weights are $W = W' / s$ and $b = b' - (m / s) W'$ for the standardising mean $m$ and
# std $s$. A softmax does not change if the same vector is added to every class's weights, so we compare
# the weights *relative to class 0*. They are close to the generative ones but not equal: logistic
# regression does not assume Gaussian classes, it only fits the boundaries.

# %%
kernel, bias = logistic.layers[-2].get_weights()
raw_W = kernel / standardise["input_std"][:, None]
raw_b = bias - (standardise["input_mean"] / standardise["input_std"]) @ kernel
print("generative W - W[:, 0]:\n", np.round(W - W[:, :1], 2))
print("fitted     W - W[:, 0]:\n", np.round(raw_W - raw_W[:, :1], 2))
np.testing.assert_allclose(tf.nn.softmax(x_test @ raw_W + raw_b), fitted, atol=1e-4)

fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
regions(axes[0], np.exp(generative_log_posterior(plane)))
scatter(axes[0], x_test, y_test, "Gaussian classes, shared scales (generative)")
regions(axes[1], tfp_bnn.predict(logistic, plane, num_samples=1).probabilities)
scatter(axes[1], x_test, y_test, "Logistic regression fitted with model.fit")
axes[1].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# Both have straight boundaries. Both are also certain of them: far from any wine, where no data ever
# constrained the weights, they extrapolate the boundaries and the softmax with full confidence.
#
# ## A Bayesian logistic regression
#
# Give the weights a posterior instead of a value: `regime="bayesian_probabilistic"` replaces the `Dense`
# layer by a `tfp_bnn.BayesianDense` with a Normal prior and a mean-field Normal posterior, trained by
# minimising the negative ELBO (the negative log-likelihood plus the KL divergence from the prior, scaled by
# `1 / train_size`; chapter 10). `tfp_bnn.predict` samples one weight matrix per draw for all inputs (with
# any estimator), so each draw is one coherent linear model with one boundary.

# %%
bayesian = tfp_bnn.make_classifier(
    (2,), num_classes, regime="bayesian_probabilistic", hidden_units=(), train_size=len(x_train),
    estimator="reparameterization", **standardise,
)
bayesian.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=0.05))
history = bayesian.fit(x_train, y_train, epochs=EPOCHS, batch_size=len(x_train), verbose=0)
print(f"final loss {history.history['loss'][-1]:.3f} = NLL {history.history['nll'][-1]:.3f} + KL/N {history.history['kl'][-1]:.3f}")
posterior = bayesian.layers[-2].posterior.distribution()
print("posterior std of the 9 weights (standardised units):", np.round(posterior.stddev().numpy(), 2))

num_samples = 30 if FAST else 100
test_result = tfp_bnn.predict(bayesian, x_test, num_samples=num_samples, seed=0)
plane_result = tfp_bnn.predict(bayesian, plane, num_samples=num_samples, seed=0)
print(f"test accuracy {metrics.accuracy(y_test, test_result.probabilities):.3f}, NLL {metrics.categorical_nll(y_test, test_result.probabilities):.3f}")

# %% [markdown]
# Left: the boundaries of 20 weight draws, each one a plausible logistic regression. They agree where the
# data pin them down and fan out where they do not. Right: the **mutual information** between the label and
# the weights, $\mathrm{MI} = H[\bar p] - \overline{H[p_t]}$ (entropy of the mean prediction minus the mean
# entropy of the draws): zero where all draws agree, large where they disagree. It is the epistemic part of
# the uncertainty.

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
regions(axes[0], plane_result.probabilities)
for draw in plane_result.draw_probabilities[:20]:
    axes[0].contour(h, f, draw.argmax(axis=1).reshape(h.shape), levels=[0.5, 1.5], colors="black", linewidths=0.6, alpha=0.5)
scatter(axes[0], x_test, y_test, "Boundaries of 20 weight draws")
image = axes[1].pcolormesh(h, f, plane_result.mutual_information.reshape(h.shape), cmap="viridis", shading="auto")
fig.colorbar(image, ax=axes[1], label="mutual information (nats)")
scatter(axes[1], x_train, y_train, "Epistemic uncertainty (training data)")
axes[1].legend(loc="upper left")
plt.tight_layout()
plt.show()

near = tfp_bnn.predict(bayesian, x_train, num_samples=num_samples, seed=0).mutual_information.mean()
far = plane_result.mutual_information[plane[:, 0] < x_train[:, 0].min()].max()  # left of every training wine
print(f"mutual information: mean at the training wines {near:.3f} nats, largest left of all wines {far:.3f} nats")
assert far > 3 * near

# %% [markdown]
# The mutual information is largest where the boundaries fan out: along their extensions, away from the
# data. Deep inside one class's half-plane every draw agrees, data or not; a linear model can only be unsure
# about *where its boundaries are*. A deep network can be uncertain far more flexibly (chapters 10 and 11).
#
# On the 54 test wines the Bayesian model is a little worse than the point estimate here (3 wines go the other
# way: accuracy 0.778 against 0.833, NLL 0.448 against 0.416), and it adds what the point estimate cannot
# say: *which* of its decisions rest on evidence. Chapter 10 explains how the posterior over
# the weights is learnt and applies it to deep networks.
