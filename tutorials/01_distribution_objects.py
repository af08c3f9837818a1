# %% [markdown]
# # Chapter 1 — Distribution objects
#
# *Probabilistic Deep Learning, part 1.* A probabilistic model does not predict a number, it predicts a
# **distribution**. TensorFlow Probability (TFP) represents one as an object you can sample from, evaluate
# (`prob`, `log_prob`, `cdf`) and summarise (`mean`, `stddev`, `entropy`), and every tfp_bnn model ends in
# such an object. This chapter is about those objects and, above all, their **shapes**: getting the shapes
# right is most of the work in probabilistic deep learning.
#
# The first cell imports what every chapter uses. `FAST` is set when the test suite runs the chapter
# (`TFP_BNN_TUTORIAL_FAST=1`): fewer samples and epochs, same code.

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

# %% [markdown]
# ## A univariate Normal
#
# `tfd.Normal(loc, scale)` is the Gaussian $\mathcal N(\mu, \sigma^2)$ with mean `loc` $=\mu$ and standard
# deviation `scale` $=\sigma$ (not the variance). Printing it shows its **batch shape** and **event shape**,
# both empty here: one distribution over scalars.

# %%
normal = tfd.Normal(loc=0.0, scale=1.0)
print(normal)
print("three samples:", normal.sample(3).numpy())

# %% [markdown]
# The density at $x = 0.2$ is $\frac{1}{\sqrt{2\pi}} e^{-0.2^2/2} = 0.391$ and its logarithm $-0.939$.
# Models are trained on `log_prob`, not `prob`: the log-likelihood of a data set is a *sum* of per-example
# log-densities, while the product of thousands of densities underflows to 0 in floating point.

# %%
density, log_density = normal.prob(0.2).numpy(), normal.log_prob(0.2).numpy()
print(f"N(0, 1).prob(0.2) = {density:.3f}, log_prob(0.2) = {log_density:.3f}")
assert round(float(density), 3) == 0.391 and round(float(log_density), 3) == -0.939
print(f"cdf(0) = {normal.cdf(0.0).numpy():.3f}, mean = {normal.mean().numpy()}, stddev = {normal.stddev().numpy()}")

# %% [markdown]
# A histogram of many samples approaches the density:

# %%
num_samples = 2_000 if FAST else 20_000
samples = normal.sample(num_samples).numpy()
grid = np.linspace(-4, 4, 200, dtype="float32")
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.hist(samples, bins=60, density=True, alpha=0.5, label=f"{num_samples} samples")
ax.plot(grid, normal.prob(grid), color="black", label="density N(0, 1)")
ax.set(xlabel="x", ylabel="density", title="Samples of a Normal and its density")
ax.legend()
plt.show()
print(f"sample mean {samples.mean():.3f}, sample std {samples.std():.3f}")

# %% [markdown]
# ## Batch shape: many distributions at once
#
# Give `loc` and `scale` as arrays and you get a **batch** of independent distributions, one per entry.
# Sampling draws from each of them; `log_prob` evaluates each at its own value.
#
# The shape rule is always: a sample has shape `sample_shape + batch_shape + event_shape`, and `log_prob`
# returns one number per distribution in the batch, shape `sample_shape + batch_shape`.

# %%
batch = tfd.Normal(loc=[0.0, 1.0], scale=[1.0, 2.0])
print(batch)
print("sample(5).shape =", batch.sample(5).shape)
print("log_prob([0.2, 1.5]) =", batch.log_prob([0.2, 1.5]).numpy(), "(one log-density per distribution)")

# %% [markdown]
# Values broadcast against the batch like NumPy arrays. That is convenient and also the classic bug of
# probabilistic regression: a batch of `N` Normals with shape `(N, 1)` evaluated at targets of shape `(N,)`
# broadcasts to an `(N, N)` matrix of every prediction against every target, and its mean is a meaningless
# loss that still trains.

# %%
predictions = tfd.Normal(loc=tf.zeros([4, 1]), scale=1.0)  # batch shape (4, 1), as a Dense(1) output
targets = tf.constant([0.1, -0.3, 0.5, 2.0])  # shape (4,)
print("log_prob shape with targets (4,):", predictions.log_prob(targets).shape, "<- 16 numbers, not 4")
print("log_prob shape with targets (4, 1):", predictions.log_prob(targets[:, None]).shape)

# %% [markdown]
# tfp_bnn's heads (the last layer of every tfp_bnn model) produce exactly these objects and own the target
# shape: `tfp_bnn.heads.align_target` turns targets `(N,)` into `(N, 1)` and refuses anything else, so the
# `(N, N)` loss cannot happen. A `NormalHead` fed the outputs of a layer returns a distribution with batch
# shape `[N]` and event shape `[1]` (chapter 2 explains the event shape):

# %%
head = tfp_bnn.NormalHead(units=1)
head_output = head(tf.zeros([4, head.params_size]))  # mean and unconstrained scale for 4 inputs
print(head_output.batch_shape, head_output.event_shape)
print("aligned targets:", tfp_bnn.heads.align_target(targets, head_output).shape)

# %% [markdown]
# ## Event shape: a multivariate distribution
#
# `tfd.MultivariateNormalDiag(loc, scale_diag)` is **one** distribution over vectors: batch shape `[]`,
# event shape `[2]`. `log_prob` of a vector is a single number, the joint log-density. With a diagonal scale
# the two coordinates are independent, so the joint log-density is the sum of the two univariate ones above:
# $-0.939 + (-1.643) = -2.582$.

# %%
mvn = tfd.MultivariateNormalDiag(loc=[0.0, 1.0], scale_diag=[1.0, 2.0])
print(mvn)
joint = mvn.log_prob([0.2, 1.5]).numpy()
print(f"log_prob([0.2, 1.5]) = {joint:.3f}; sum of the batch's log-probs = {batch.log_prob([0.2, 1.5]).numpy().sum():.3f}")
assert round(float(joint), 3) == -2.582
np.testing.assert_allclose(joint, batch.log_prob([0.2, 1.5]).numpy().sum(), rtol=1e-6)

# %%
points = mvn.sample(num_samples // 4).numpy()
fig, ax = plt.subplots(figsize=(5, 5))
ax.scatter(points[:, 0], points[:, 1], s=4, alpha=0.4)
ax.set(xlabel="$x_1$ (scale 1)", ylabel="$x_2$ (scale 2)", title="MultivariateNormalDiag([0, 1], [1, 2])", aspect="equal")
plt.show()

# %% [markdown]
# ## Batches of multivariate distributions
#
# Both kinds of shape combine. Two bivariate Normals side by side have batch shape `[2]` and event shape `[2]`;
# 500 samples have shape `[500, 2, 2]` and their log-probs shape `[500, 2]`.

# %%
two_mvns = tfd.MultivariateNormalDiag(loc=[[-2.0, 0.0], [2.0, 1.0]], scale_diag=[[0.5, 1.0], [1.0, 0.3]])
draws = two_mvns.sample(500)
print(two_mvns)
print("samples:", draws.shape, " log_prob of the samples:", two_mvns.log_prob(draws).shape)
assert draws.shape == (500, 2, 2) and two_mvns.log_prob(draws).shape == (500, 2)

fig, ax = plt.subplots(figsize=(6, 4))
for k in range(2):
    ax.scatter(draws[:, k, 0], draws[:, k, 1], s=4, alpha=0.5, label=f"batch member {k}")
ax.set(xlabel="$x_1$", ylabel="$x_2$", title="A batch of two bivariate Normals")
ax.legend()
plt.show()

# %% [markdown]
# | object | batch shape | event shape | `sample(S)` | `log_prob` of one sample |
# |---|---|---|---|---|
# | `Normal(0, 1)` | `[]` | `[]` | `[S]` | `[]` |
# | `Normal([0, 1], [1, 2])` | `[2]` | `[]` | `[S, 2]` | `[2]` |
# | `MultivariateNormalDiag([0, 1], [1, 2])` | `[]` | `[2]` | `[S, 2]` | `[]` |
# | two `MultivariateNormalDiag`s | `[2]` | `[2]` | `[S, 2, 2]` | `[2]` |
# | `NormalHead` output for `N` inputs | `[N]` | `[1]` | `[S, N, 1]` | `[N]` |
#
# **Next:** chapter 2 turns a batch into an event with `tfd.Independent` and makes the parameters trainable.
