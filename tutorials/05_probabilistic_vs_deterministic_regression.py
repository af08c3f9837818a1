# %% [markdown]
# # Chapter 5 — Probabilistic vs deterministic regression
#
# *Probabilistic Deep Learning, part 5.* When the noise is the same everywhere (chapter 4) one $\sigma$ is
# enough. Real data are rarely so kind: measurement error grows with the signal, some regions are harder to
# predict than others. Here the noise triples from left to right,
#
# $$y = x^3 + 0.1\,(2 + x)\,\varepsilon, \qquad \varepsilon \sim \mathcal N(0, 1),\ x \sim U[-1, 1],$$
#
# (`tfp_bnn.data.cubic_regression`), and we compare a network that predicts a number with one that predicts
# a Normal whose mean **and** standard deviation depend on $x$.

# %%
import os

import tfp_bnn  # first: imports TensorFlow without its start-up chatter

import matplotlib.pyplot as plt
import numpy as np
import tf_keras
from tfp_bnn import data, metrics, plots

FAST = os.environ.get("TFP_BNN_TUTORIAL_FAST") == "1"
EPOCHS = 30 if FAST else 150
tf_keras.utils.set_random_seed(0)

x, y = data.cubic_regression(2000, seed=0)
grid = np.linspace(-1, 1, 201, dtype="float32")[:, None]
true_std = data.cubic_regression_noise_std(grid[:, 0])

# %% [markdown]
# ## Two networks, one body
#
# Both are MLPs with two hidden layers of 32 ReLU units (`tfp_bnn.make_regressor`). The deterministic one ends
# in one output trained with squared error. The probabilistic one ends in two outputs, fed to a
# `tfp_bnn.NormalHead`: the first is the mean $\mu(x)$, the second becomes the standard deviation
# $\sigma(x) = 10^{-3} + \mathrm{softplus}(\cdot)$, and the loss is $-\log \mathcal N(y \mid \mu(x), \sigma(x)^2)$.

# %%
def train(regime):
    model = tfp_bnn.make_regressor((1,), regime=regime, hidden_units=(32, 32))
    model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=0.01))
    model.fit(x, y, epochs=EPOCHS, batch_size=100, verbose=0)
    return model


deterministic = train("deterministic")
probabilistic = train("probabilistic")
probabilistic.summary()

# %% [markdown]
# ## Batch shape and event shape of the output
#
# For `N` inputs the head returns `tfd.Independent(tfd.Normal(loc, scale), reinterpreted_batch_ndims=1)`
# with `loc` and `scale` of shape `[N, 1]`: batch shape `[N]` (one distribution per example) and event shape
# `[1]` (each predicts a vector of one target), what the article's `tfpl.IndependentNormal(1)` layer gives.
# So `log_prob` returns one number per example and the loss is their mean. A bare `tfd.Normal` with batch
# shape `[N, 1]` would compare every prediction with every target of shape `(N,)` (an `(N, N)` matrix,
# chapter 1); the head aligns `(N,)` targets to `(N, 1)` and refuses anything else with a clear message.

# %%
output = probabilistic(x[:5])
print(output.tensor_distribution)
print("log_prob of 5 targets:", output.log_prob(tfp_bnn.heads.align_target(y[:5], output)).numpy())
try:
    tfp_bnn.heads.align_target(np.zeros((5, 2)), output)
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# ## What each model knows
#
# Both find the cubic mean. Only the probabilistic one also knows how far the data scatter around it, and
# where. `tfp_bnn.predict` returns its standard deviation at every input (the aleatoric part; without
# Bayesian layers there is no epistemic part, so one draw is exact), and `tfp_bnn.plots.uncertainty_bands`
# draws the mean with a $\pm 2\sigma$ band.

# %%
result = tfp_bnn.predict(probabilistic, grid, num_samples=1)
fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
axes[0].scatter(x[:, 0], y, s=3, alpha=0.25, color="black", label="data")
axes[0].plot(grid[:, 0], deterministic.predict(grid, verbose=0)[:, 0], color="tab:red", label="deterministic prediction")
axes[0].plot(grid[:, 0], grid[:, 0] ** 3, color="gray", linestyle="--", label="true mean $x^3$")
axes[0].set(title="Deterministic: the mean only", xlabel="x", ylabel="y")
axes[0].legend(loc="upper left")
plots.uncertainty_bands(grid, result, x_train=x, y_train=y, ax=axes[1])
axes[1].set_title("Probabilistic: mean and a band that follows the noise")
plt.tight_layout()
plt.show()

# %%
learned_std = result.aleatoric_stddev[:, 0]
fig, ax = plt.subplots(figsize=(6.5, 3.5))
ax.plot(grid[:, 0], true_std, color="black", linestyle="--", label="true noise std 0.1 (2 + x)")
ax.plot(grid[:, 0], learned_std, color="tab:orange", label="predicted std (aleatoric)")
ax.set(xlabel="x", ylabel="standard deviation", ylim=(0, 0.4), title="The predicted noise follows the true noise")
ax.legend()
plt.show()
left, right = learned_std[np.searchsorted(grid[:, 0], -0.9)], learned_std[np.searchsorted(grid[:, 0], 0.9)]
print(f"predicted std at x = -0.9: {left:.3f} (true 0.110), at x = 0.9: {right:.3f} (true 0.290)")
print(f"RMS error of the predicted std over [-1, 1]: {np.sqrt(np.mean((learned_std - true_std) ** 2)):.3f}")
assert right / left > 2.0 and np.sqrt(np.mean((learned_std - true_std) ** 2)) < 0.04

# %% [markdown]
# ## Why it matters: intervals that hold where they should
#
# A deterministic model can be given an error bar after the fact, the standard deviation of its residuals,
# but it is one width for all inputs: too wide on the left, too narrow on the right. The probabilistic
# model's 95 % intervals hold about 95 % of fresh data on both sides.

# %%
x_test, y_test = data.cubic_regression(4000, seed=1)
residual_std = np.std(y - deterministic.predict(x, verbose=0)[:, 0])
point = deterministic.predict(x_test, verbose=0)
band = tfp_bnn.predict(probabilistic, x_test, num_samples=1, level=0.95)
for name, side in (("left  (x < 0)", x_test[:, 0] < 0), ("right (x > 0)", x_test[:, 0] > 0)):
    fixed = metrics.interval_coverage(y_test[side], point[side] - 1.96 * residual_std, point[side] + 1.96 * residual_std)
    learned = metrics.interval_coverage(y_test[side], band.lower[side], band.upper[side])
    print(f"{name}: deterministic ± 1.96 residual std covers {fixed:.1%}, probabilistic 95 % interval {learned:.1%}")
    assert abs(learned - 0.95) < 0.03 and abs(fixed - 0.95) > 0.02

# %% [markdown]
# The probabilistic model captures **aleatoric** uncertainty: noise in the data. It still trusts its weights
# completely, so outside $[-1, 1]$ it would extrapolate with the same confidence. Uncertainty about the
# weights (**epistemic**) needs a distribution over them: chapters 6 and 10.
