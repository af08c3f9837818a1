# %% [markdown]
# # Chapter 3 — Maximum likelihood from scratch
#
# *Probabilistic Deep Learning, part 3.* Training a probabilistic model means choosing the parameters under
# which the observed data are most probable: **maximum likelihood**. Here we do it for the simplest model,
# a Normal with unknown mean $\mu$ and standard deviation $\sigma$, three ways: by brute force on a grid, in
# closed form, and by gradient descent, the way a neural network is trained.

# %%
import os

import tfp_bnn  # first: imports TensorFlow without its start-up chatter

import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

tfd, tfb = tfp.distributions, tfp.bijectors
FAST = os.environ.get("TFP_BNN_TUTORIAL_FAST") == "1"
tf_keras.utils.set_random_seed(0)

# %% [markdown]
# ## The likelihood of a small sample
#
# For independent observations $x_1, \dots, x_n$ the likelihood is a product and the log-likelihood a sum:
#
# $$\ell(\mu, \sigma) = \sum_{i=1}^n \log \mathcal N(x_i \mid \mu, \sigma^2)
#   = -n \log \sigma - \frac{1}{2\sigma^2} \sum_i (x_i - \mu)^2 - \frac n2 \log 2\pi .$$
#
# Ten observations from $\mathcal N(2, 1.5^2)$:

# %%
true_mu, true_sigma = 2.0, 1.5
small = tfd.Normal(true_mu, true_sigma).sample(10, seed=3).numpy()
print(np.round(small, 3))

# %% [markdown]
# Batch shapes evaluate $\ell$ on a whole grid at once: a `Normal` with `loc` of shape `[M, 1, 1]` and `scale`
# of shape `[1, S, 1]` is a batch of $M \times S$ candidate models, and its `log_prob` of the `[10]` data
# broadcasts to `[M, S, 10]`; summing the last axis gives the log-likelihood of every $(\mu, \sigma)$ on the grid.

# %%
mus = np.linspace(-1.0, 5.0, 301, dtype="float32")
sigmas = np.linspace(0.4, 4.0, 361, dtype="float32")
candidates = tfd.Normal(loc=mus[:, None, None], scale=sigmas[None, :, None])
log_likelihood = tf.reduce_sum(candidates.log_prob(small), axis=-1).numpy()  # [M, S]
i, j = np.unravel_index(np.argmax(log_likelihood), log_likelihood.shape)
print("candidates:", candidates.batch_shape, "-> log-likelihood grid", log_likelihood.shape)
print(f"grid maximum: mu = {mus[i]:.3f}, sigma = {sigmas[j]:.3f}")

# %% [markdown]
# ## The closed form
#
# Setting the derivatives of $\ell$ to zero,
#
# $$\frac{\partial \ell}{\partial \mu} = \frac{1}{\sigma^2}\sum_i (x_i - \mu) = 0, \qquad
#   \frac{\partial \ell}{\partial \sigma} = -\frac n\sigma + \frac{1}{\sigma^3}\sum_i (x_i-\mu)^2 = 0,$$
#
# gives the sample mean $\hat\mu = \bar x$ and the sample standard deviation *with $1/n$*,
# $\hat\sigma = \sqrt{\frac1n \sum_i (x_i - \bar x)^2}$ (NumPy's `std` with the default `ddof=0`; it is biased low,
# which matters for 10 points and not for 1000). The grid maximum agrees up to the grid spacing.

# %%
mu_hat, sigma_hat = small.mean(), small.std()
print(f"closed form:  mu = {mu_hat:.3f}, sigma = {sigma_hat:.3f}")
assert abs(mus[i] - mu_hat) <= mus[1] - mus[0] and abs(sigmas[j] - sigma_hat) <= sigmas[1] - sigmas[0]

fig, ax = plt.subplots(figsize=(7, 5))
levels = log_likelihood.max() - np.array([20, 10, 6, 4, 3, 2, 1, 0.5, 0.1])  # increasing
contour = ax.contour(mus, sigmas, log_likelihood.T, levels=levels, cmap="viridis")
ax.clabel(contour, fmt="%.1f", fontsize=7)
ax.plot(mus[i], sigmas[j], "x", color="red", markersize=10, label="grid maximum")
ax.plot(mu_hat, sigma_hat, "o", mfc="none", color="black", markersize=12, label="closed form")
ax.plot(true_mu, true_sigma, "*", color="tab:orange", markersize=12, label="true parameters")
ax.set(xlabel=r"$\mu$", ylabel=r"$\sigma$", title="Log-likelihood of 10 observations")
ax.legend()
plt.show()

# %% [markdown]
# With ten points the maximum sits away from the true parameters and the likelihood is broad: many
# $(\mu, \sigma)$ explain the data almost as well. That breadth is what the Bayesian chapters (6 and 10) keep
# instead of throwing it away.
#
# ## Gradient descent on 1000 samples
#
# Neural networks have no closed form, so we find the maximum the way they are trained: minimise the mean
# negative log-likelihood by gradient descent. $\sigma$ is kept positive by a softplus (chapter 2). With 1000
# samples the estimates converge to the sample mean and standard deviation.

# %%
large = tfd.Normal(true_mu, true_sigma).sample(1000, seed=4)
mu = tf.Variable(0.0)
sigma = tfp.util.TransformedVariable(0.5, bijector=tfb.Softplus())
model = tfd.Normal(loc=mu, scale=sigma)
optimizer = tf_keras.optimizers.SGD(learning_rate=0.1)


@tf.function
def step():
    """One step; returns the parameters it started from and their mean NLL."""
    with tf.GradientTape() as tape:
        nll = -tf.reduce_mean(model.log_prob(large))
    start = (mu.read_value(), tf.convert_to_tensor(sigma))
    optimizer.apply_gradients(zip(tape.gradient(nll, model.trainable_variables), model.trainable_variables))
    return (*start, nll)


num_steps = 1000
path = np.array([[t.numpy() for t in step()] for _ in range(num_steps)])
fitted = np.array([mu.numpy(), tf.convert_to_tensor(sigma).numpy()])
print(f"gradient descent: mu = {fitted[0]:.4f}, sigma = {fitted[1]:.4f}")
print(f"closed form:      mu = {np.mean(large):.4f}, sigma = {np.std(large):.4f}")
np.testing.assert_allclose(fitted, [np.mean(large), np.std(large)], atol=1e-3)

# %%
mean_nll = -tf.reduce_mean(tfd.Normal(mus[:, None, None], sigmas[None, :, None]).log_prob(large), axis=-1).numpy()
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
axes[0].contour(mus, sigmas, mean_nll.T, levels=np.linspace(mean_nll.min(), mean_nll.min() + 2.0, 12), cmap="viridis")
axes[0].plot(path[:, 0], path[:, 1], ".-", color="red", markersize=2, linewidth=0.8, label="gradient descent")
axes[0].plot(np.mean(large), np.std(large), "o", mfc="none", color="black", markersize=12, label="closed form")
axes[0].set(xlabel=r"$\mu$", ylabel=r"$\sigma$", title="Path over the mean NLL of 1000 samples")
axes[0].legend()
axes[1].plot(np.arange(1, num_steps + 1), path[:, 2])
axes[1].set(xscale="log", yscale="log", xlabel="step", ylabel="mean NLL", title="Loss")
plt.tight_layout()
plt.show()

# %% [markdown]
# The first step is a big one: from $\mu = 0, \sigma = 0.5$ the data lie four standard deviations away and the
# gradient is steep, so the step widens $\sigma$ a lot (a wide Normal explains far-away data best); then $\mu$
# walks to the data and $\sigma$ shrinks back. The same loss, the mean negative
# log-likelihood, is what `model.fit` minimises for every tfp_bnn model (`tfp_bnn.NegativeLogLikelihood`).
