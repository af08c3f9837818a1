# %% [markdown]
# # Chapter 4 — Probabilistic linear regression
#
# *Probabilistic Deep Learning, part 4.* A deterministic regression predicts one number per input. A
# probabilistic one predicts a distribution $p(y \mid x)$, and so also says how far from its prediction the
# data will fall: the **aleatoric** uncertainty, the noise in the data that no amount of training removes.
#
# The data: $y = x + \tfrac38\,\varepsilon$ with $\varepsilon \sim \mathcal N(0, 1)$ and $x$ uniform on
# $[-1, 1]$, from `tfp_bnn.data.linear_regression`. A good probabilistic model should recover both the line
# and the noise standard deviation $\sigma = 3/8 = 0.375$.

# %%
import os

import tfp_bnn  # first: imports TensorFlow without its start-up chatter

import matplotlib.pyplot as plt
import numpy as np
import tf_keras
from tfp_bnn import data, metrics

FAST = os.environ.get("TFP_BNN_TUTORIAL_FAST") == "1"
EPOCHS = 200 if FAST else 400
tf_keras.utils.set_random_seed(0)

x, y = data.linear_regression(2000, seed=0)
grid = np.linspace(-1, 1, 101, dtype="float32")[:, None]
print(x.shape, y.shape, f"true noise std {data.linear_regression_noise_std(0.0):.3f}")

# %% [markdown]
# ## A deterministic line
#
# `tfp_bnn.make_regressor` builds the models of this series; `regime="deterministic"` with no hidden layers
# is a single `Dense(1)`, and its loss is the squared error (written as the log-likelihood of a Normal with
# unit scale, see `tfp_bnn.PointHead`). It finds the least-squares line and nothing else.

# %%
def train(model, epochs=EPOCHS):
    """Full-batch Adam on the negative log-likelihood (the default loss of a tfp_bnn model)."""
    model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=0.05))
    model.fit(x, y, epochs=epochs, batch_size=len(x), verbose=0)
    return model


deterministic = train(tfp_bnn.make_regressor((1,), regime="deterministic", hidden_units=()))
kernel, bias = deterministic.layers[1].get_weights()
slope, intercept = np.polyfit(x[:, 0], y, 1)
print(f"Dense(1): y = {kernel[0, 0]:.4f} x + {bias[0]:.4f};  least squares: y = {slope:.4f} x + {intercept:.4f}")
np.testing.assert_allclose([kernel[0, 0], bias[0]], [slope, intercept], atol=2e-3)

# %% [markdown]
# ## A Normal head with a fixed scale
#
# The probabilistic model replaces the number by a distribution: $y \sim \mathcal N(w x + b, \sigma^2)$. The
# network's output goes into a **head**, a `DistributionLambda` layer whose output is a distribution object
# (chapter 1). `HomoscedasticNormalHead` has one scale $\sigma$ for all inputs; freezing the head
# (`trainable = False`) keeps $\sigma$ at its initial value 1, as in the article's first model. The loss is
# the negative log-likelihood $-\log \mathcal N(y \mid wx + b, 1)$, so the line is the same as before.
#
# Calling the model returns the distribution itself: we can `sample` it, ask for its `mean` and `stddev`.

# %%
fixed_head = tfp_bnn.HomoscedasticNormalHead(1, initial_scale=1.0)
fixed_head.trainable = False
fixed = train(tfp_bnn.make_regressor((1,), regime="probabilistic", hidden_units=(), head=fixed_head))
output = fixed(grid)
print(output.tensor_distribution)  # the distribution inside the Keras-friendly wrapper
print(f"stddev = {float(output.stddev()[0, 0]):.3f} everywhere (fixed)")

# %% [markdown]
# A scale of 1 is far too wide for noise of 0.375: samples of the model scatter well beyond the data, and the
# band mean $\pm 2\sigma$ holds every training point instead of about 95 %.
#
# `tfp_bnn.predict` summarises a model's predictive distribution at many inputs: its mean, its standard
# deviation split into aleatoric and epistemic parts, and quantile intervals. This model has no Bayesian
# layers, so every "weight draw" is the same network and one draw (`num_samples=1`) is exact; the epistemic
# part is zero. We use it for all models below.

# %%
def show(model, title, ax):
    result = tfp_bnn.predict(model, grid, num_samples=1)
    mean, std = result.mean[:, 0], result.stddev[:, 0]
    ax.scatter(x[:, 0], y, s=3, alpha=0.25, color="black", label="data")
    ax.scatter(x[:500, 0], model(x[:500]).sample().numpy()[:, 0], s=3, alpha=0.5, color="tab:red", label="model samples")
    ax.plot(grid[:, 0], mean, color="tab:blue", label="mean")
    ax.fill_between(grid[:, 0], mean - 2 * std, mean + 2 * std, color="tab:blue", alpha=0.2, label=r"mean $\pm 2\sigma$")
    ax.set(title=title, xlabel="x", ylabel="y", ylim=(-3.5, 3.5))
    ax.legend(loc="upper left", fontsize=8)


def coverage_of_two_sigma(model):
    result = tfp_bnn.predict(model, x, num_samples=1)
    return metrics.interval_coverage(y, result.mean - 2 * result.stddev, result.mean + 2 * result.stddev)


fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
axes[0].scatter(x[:, 0], y, s=3, alpha=0.25, color="black", label="data")
axes[0].plot(grid[:, 0], deterministic.predict(grid, verbose=0)[:, 0], color="tab:blue", label="Dense(1)")
axes[0].set(title="Deterministic: a line", xlabel="x", ylabel="y")
axes[0].legend(loc="upper left", fontsize=8)
show(fixed, "Normal head, fixed scale 1: too wide", axes[1])
plt.tight_layout()
plt.show()
print(f"fixed scale: {coverage_of_two_sigma(fixed):.1%} of the data inside mean ± 2 sigma")

# %% [markdown]
# ## Learning the scale
#
# Let the head train: $\sigma = \mathrm{softplus}(\rho)$ with $\rho$ a weight like the others. Maximum
# likelihood now also fits the noise: its estimate is the root-mean-square residual of the line, and it
# recovers the true $\sigma = 0.375$ up to the sampling error of 2000 points (about $0.375/\sqrt{2 \cdot 2000}
# \approx 0.006$).

# %%
learned = train(tfp_bnn.make_regressor((1,), regime="probabilistic", hidden_units=(), head=tfp_bnn.HomoscedasticNormalHead(1)))
sigma = float(learned.head.noise_scale().numpy()[0])
residual_rms = np.sqrt(np.mean((y - np.polyval([slope, intercept], x[:, 0])) ** 2))
print(f"learned sigma = {sigma:.4f}; RMS residual of the least-squares line = {residual_rms:.4f}; true 0.375")
assert abs(sigma - residual_rms) < 3e-3 and abs(sigma - 0.375) < 0.02

fig, ax = plt.subplots(figsize=(6.5, 4))
show(learned, f"Normal head, learned scale: sigma = {sigma:.3f}", ax)
plt.show()
print(f"learned scale: {coverage_of_two_sigma(learned):.1%} of the data inside mean ± 2 sigma (95.4 % expected)")

# %% [markdown]
# The fit is also better by the measure it was trained on. `tfp_bnn.log_likelihoods` gives the
# log-likelihood of each target and `tfp_bnn.metrics.mixture_nll` averages it (it also handles many weight
# draws, chapter 10); lower is better:

# %%
for name, model in (("fixed scale 1", fixed), ("learned scale", learned)):
    nll = metrics.mixture_nll(tfp_bnn.log_likelihoods(model, x, y, num_samples=1))
    print(f"{name:>14}: mean NLL {nll:.3f}")

# %% [markdown]
# One $\sigma$ for every $x$ is right for this data. When the noise changes with $x$ the head must predict
# the scale from the input as well: `tfp_bnn.NormalHead`, next chapter.
