# %% [markdown]
# # Chapter 6 — Frequentist vs Bayesian statistics
#
# *Probabilistic Deep Learning, part 6.* Chapters 3–5 chose the *one* set of parameters that makes the data
# most probable. How sure should we be of it? The two schools answer differently:
#
# * **Frequentist:** the parameter is a fixed unknown number; the data are random. A 95 % *confidence
#   interval* is a procedure that, over many repetitions of the experiment, covers the true value 95 % of
#   the time.
# * **Bayesian:** the parameter is uncertain, so it gets a probability distribution. A *prior* $p(\mu)$
#   times the *likelihood* $p(x \mid \mu)$ gives the *posterior* $p(\mu \mid x) \propto p(x \mid \mu)\,p(\mu)$,
#   and a 95 % *credible interval* holds $\mu$ with probability 0.95 given these data.
#
# We estimate the mean $\mu$ of a Normal from a small sample both ways. The Bayesian view, applied to the
# weights of a network, is what gives a Bayesian neural network its epistemic uncertainty (chapter 10).

# %%
import os

import tfp_bnn  # first: imports TensorFlow without its start-up chatter

import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

tfd = tfp.distributions
FAST = os.environ.get("TFP_BNN_TUTORIAL_FAST") == "1"
tf_keras.utils.set_random_seed(0)

true_mu, sigma = 4.0, 2.0
rng = np.random.default_rng(4)
x = rng.normal(true_mu, sigma, size=8)
n, x_bar, s = len(x), x.mean(), x.std(ddof=1)
print(f"n = {n}, sample mean {x_bar:.3f}, sample std (n - 1) {s:.3f}")

# %% [markdown]
# ## The frequentist confidence interval
#
# With $\sigma$ unknown, $t = (\bar x - \mu) / (s / \sqrt n)$ follows a Student-t distribution with $n - 1$
# degrees of freedom, so $\bar x \pm t_{0.975,\,n-1}\, s/\sqrt n$ is a 95 % confidence interval. TFP's
# `tfd.StudentT` gives the quantile.

# %%
t_quantile = float(tfd.StudentT(df=n - 1, loc=0.0, scale=1.0).quantile(0.975))
half_width = t_quantile * s / np.sqrt(n)
confidence = (x_bar - half_width, x_bar + half_width)
print(f"t quantile {t_quantile:.3f}; 95 % confidence interval [{confidence[0]:.3f}, {confidence[1]:.3f}]")

# %% [markdown]
# What "95 %" means: repeat the experiment many times, each time with fresh data and a fresh interval; 95 %
# of the intervals cover the true $\mu$. Any single interval either covers it or not.

# %%
repetitions = 4_000 if FAST else 20_000
samples = rng.normal(true_mu, sigma, size=(repetitions, n))
means, stds = samples.mean(axis=1), samples.std(axis=1, ddof=1)
covered = np.abs(means - true_mu) <= t_quantile * stds / np.sqrt(n)
print(f"{covered.mean():.1%} of {repetitions} confidence intervals cover the true mean")
assert abs(covered.mean() - 0.95) < 0.015

# %% [markdown]
# ## The Bayesian posterior
#
# Take $\sigma = 2$ as known, so that the posterior has a closed form, and put a Normal prior on the mean,
# $\mu \sim \mathcal N(\mu_0, \tau_0^2)$. Prior and likelihood are both Gaussian in $\mu$, so the posterior is
# Gaussian too (the prior is *conjugate*), with precisions adding up:
#
# $$\frac{1}{\tau_n^2} = \frac{1}{\tau_0^2} + \frac{n}{\sigma^2}, \qquad
#   \mu_n = \tau_n^2 \left( \frac{\mu_0}{\tau_0^2} + \frac{n \bar x}{\sigma^2} \right).$$
#
# The posterior mean is a precision-weighted average of the prior mean and the sample mean. Our prior belief:
# $\mu$ is probably between $-2$ and $6$, $\mathcal N(2, 2^2)$.

# %%
mu_0, tau_0 = 2.0, 2.0
tau_n = (1 / tau_0**2 + n / sigma**2) ** -0.5
mu_n = tau_n**2 * (mu_0 / tau_0**2 + n * x_bar / sigma**2)
prior = tfd.Normal(mu_0, tau_0)
posterior = tfd.Normal(mu_n, tau_n)
credible = tuple(float(q) for q in posterior.quantile([0.025, 0.975]))
print(f"posterior N({mu_n:.3f}, {tau_n:.3f}^2); 95 % credible interval [{credible[0]:.3f}, {credible[1]:.3f}]")

# %% [markdown]
# The closed form is only a shortcut: Bayes' rule on a grid of $\mu$ (prior density times likelihood,
# normalised) gives the same posterior. This brute force works for any prior, but not in the millions of
# dimensions of a network's weights, which is why chapter 10 approximates the posterior instead.

# %%
mu_grid = np.linspace(-4, 10, 2001, dtype="float32")
log_likelihood = tf.reduce_sum(tfd.Normal(mu_grid[:, None], sigma).log_prob(x), axis=1)
unnormalised = np.exp((log_likelihood + prior.log_prob(mu_grid)).numpy().astype("float64") - float(tf.reduce_max(log_likelihood + prior.log_prob(mu_grid))))
grid_posterior = unnormalised / np.trapezoid(unnormalised, mu_grid)
print(f"largest difference grid vs closed form: {np.max(np.abs(grid_posterior - posterior.prob(mu_grid))):.2e}")
np.testing.assert_allclose(grid_posterior, posterior.prob(mu_grid), atol=1e-4)

likelihood = np.exp((log_likelihood - tf.reduce_max(log_likelihood)).numpy())
likelihood /= np.trapezoid(likelihood, mu_grid)  # as a density in mu, to share the axes

fig, ax = plt.subplots(figsize=(8, 4.5))
ax.plot(mu_grid, prior.prob(mu_grid), label=f"prior N({mu_0:g}, {tau_0:g}²)", color="tab:green")
ax.plot(mu_grid, likelihood, label="likelihood (normalised)", color="tab:orange")
ax.plot(mu_grid, posterior.prob(mu_grid), label=f"posterior N({mu_n:.2f}, {tau_n:.2f}²)", color="tab:blue", linewidth=2)
ax.axvspan(*credible, color="tab:blue", alpha=0.15, label="95 % credible interval")
ax.errorbar(x_bar, -0.02, xerr=half_width, fmt="o", color="black", capsize=4, label="95 % confidence interval (t)")
ax.axvline(true_mu, color="gray", linestyle="--", label="true mean")
ax.set(xlabel=r"$\mu$", ylabel="density", title=f"Estimating a mean from n = {n} observations")
ax.legend(fontsize=8)
plt.show()
assert half_width > (credible[1] - credible[0]) / 2 and tau_n < min(tau_0, sigma / np.sqrt(n))

# %% [markdown]
# The posterior lies between prior and likelihood and is narrower than either: the data pulled the prior
# toward $\bar x$, the prior pulled the estimate toward $\mu_0$. The confidence interval is wider still: it
# does not know $\sigma$ (hence the t quantile, 2.36 instead of 1.96, and the sample's own $s$) and uses no
# prior.
#
# ## More data, less prior
#
# As $n$ grows the likelihood dominates: the posterior concentrates around the sample mean with standard
# deviation $\approx \sigma/\sqrt n$, and the credible interval approaches the frequentist one. With little
# data the prior matters; with much data both schools agree. Epistemic uncertainty, the width of the
# posterior, is exactly what shrinks with data.

# %%
more = rng.normal(true_mu, sigma, size=1000)
fig, ax = plt.subplots(figsize=(8, 4))
for size in (1, 8, 50, 1000):
    tau = (1 / tau_0**2 + size / sigma**2) ** -0.5
    mu = tau**2 * (mu_0 / tau_0**2 + more[:size].sum() / sigma**2)
    ax.plot(mu_grid, tfd.Normal(mu, tau).prob(mu_grid), label=f"n = {size}: N({mu:.2f}, {tau:.3f}²)")
ax.axvline(true_mu, color="gray", linestyle="--")
ax.set(xlim=(0, 7), xlabel=r"$\mu$", ylabel="posterior density", title="The posterior concentrates as data accumulate")
ax.legend(fontsize=8)
plt.show()
assert abs(tau - sigma / np.sqrt(1000)) < 1e-3 and abs(mu - more.mean()) < 0.01

# %% [markdown]
# ## Today's posterior is tomorrow's prior
#
# Data may come in batches. The posterior after the first batch, used as the prior of the second, gives the
# posterior of both, $p(\mu \mid x_{1:8}) \propto p(x_{5:8} \mid \mu)\, p(\mu \mid x_{1:4})$: in closed form
# the precisions add up batch by batch, and the old observations are no longer needed.

# %%
def update(mu_prior, tau_prior, batch):
    """The conjugate posterior of the mean after ``batch``, from the prior N(mu_prior, tau_prior²)."""
    tau = (1 / tau_prior**2 + len(batch) / sigma**2) ** -0.5
    return tau**2 * (mu_prior / tau_prior**2 + batch.sum() / sigma**2), tau


mu_half, tau_half = update(mu_0, tau_0, x[:4])
mu_both, tau_both = update(mu_half, tau_half, x[4:])
print(f"after 4: N({mu_half:.3f}, {tau_half:.3f}²); after 4 more: N({mu_both:.3f}, {tau_both:.3f}²); "
      f"all 8 at once: N({mu_n:.3f}, {tau_n:.3f}²)")
assert np.isclose(mu_both, mu_n) and np.isclose(tau_both, tau_n)

# %% [markdown]
# A network's weights have no closed form, but the step is the same: fit the model on the first data, then
# `tfp_bnn.posterior_as_prior(model, train_size=...)` copies it with its posterior as the prior, and `fit` on
# the new data goes on from there. Here the "network" is one Bayesian weight $w = \mu / \sigma$ fed a
# constant input (the head predicts in units of the known $\sigma$), with our $\mathcal N(2, 2^2)$ prior set
# through `priors.GaussianPrior`. For one weight the variational posterior can be exact, so the two fits in
# turn should find the closed-form posterior of all eight observations.

# %%
from tfp_bnn import heads, layers, priors


def fit_full_batch(model, batch, steps=300 if FAST else 3000):
    """Variational inference on ``batch``: every step sees all of it, the only noise is the weight draws'."""
    schedule = tf_keras.optimizers.schedules.CosineDecay(0.05, steps)
    model.compile(optimizer=tf_keras.optimizers.Adam(schedule), steps_per_execution=100)
    ones = np.ones((len(batch), 1), "float32")
    model.fit(tf.data.Dataset.from_tensors((ones, batch.astype("float32"))).repeat(),
              steps_per_epoch=steps, epochs=1, verbose=0)
    return model


inputs = tf_keras.Input((1,))
weight = layers.BayesianDense(1, use_bias=False, kernel_prior=priors.GaussianPrior(), kl_weight=1 / 4)
first = tfp_bnn.BayesianModel(inputs, heads.PointHead(1, target_scale=sigma)(weight(inputs)))
weight.prior.assign(tfd.MultivariateNormalDiag([mu_0 / sigma], [tau_0 / sigma]))  # N(2, 2²) for mu
fit_full_batch(first, x[:4])
second = fit_full_batch(tfp_bnn.posterior_as_prior(first, train_size=4), x[4:])
q = second.layers[1].posterior.distribution()
vi_mu, vi_tau = sigma * float(q.mean()[0]), sigma * float(q.stddev()[0])
print(f"two variational fits in turn: N({vi_mu:.3f}, {vi_tau:.3f}²); closed form N({mu_n:.3f}, {tau_n:.3f}²)")
if not FAST:
    assert abs(vi_mu - mu_n) < 0.1 * tau_n and abs(vi_tau / tau_n - 1) < 0.05
