# %% [markdown]
# # Chapter 2 — Independent distributions and trainable parameters
#
# *Probabilistic Deep Learning, part 2.* Two tools that every probabilistic layer is built from:
# `tfd.Independent`, which turns a batch of distributions into one distribution over vectors, and
# distribution parameters that are `tf.Variable`s, so that `tf.GradientTape` can differentiate a
# log-likelihood with respect to them and an optimizer can fit them to data.

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
# ## `tfd.Independent`: from batch shape to event shape
#
# A batch of two Normals gives two log-densities for a vector of two values. `tfd.Independent` with
# `reinterpreted_batch_ndims=1` declares the last batch dimension to be part of the event: the result is one
# distribution over 2-vectors whose `log_prob` is the sum over the reinterpreted dimension. For a diagonal
# Gaussian it is exactly the `MultivariateNormalDiag` of chapter 1, and both give $-2.582$ at $[0.2, 1.5]$.

# %%
batch = tfd.Normal(loc=[0.0, 1.0], scale=[1.0, 2.0])
independent = tfd.Independent(batch, reinterpreted_batch_ndims=1)
mvn = tfd.MultivariateNormalDiag(loc=[0.0, 1.0], scale_diag=[1.0, 2.0])
x = [0.2, 1.5]
print(batch, "\n", independent, "\n", mvn, sep="")
print("batch log_prob:      ", batch.log_prob(x).numpy())
print(f"Independent log_prob: {independent.log_prob(x).numpy():.3f}")
print(f"MVN-diag log_prob:    {mvn.log_prob(x).numpy():.3f}")
assert round(float(independent.log_prob(x)), 3) == -2.582
np.testing.assert_allclose(independent.log_prob(x), mvn.log_prob(x), rtol=1e-6)

# %% [markdown]
# The same works on larger batches. A `[3, 2]` batch of Normals reinterpreted with one dimension is a batch
# of three distributions over 2-vectors: this is the output of a regression network for 3 inputs and 2
# targets, and it is how tfp_bnn's Normal heads build their output (`tfd.Independent(tfd.Normal(...),
# reinterpreted_batch_ndims=1)`; the Student-t and Poisson heads wrap theirs the same way), so the loss
# gets one log-likelihood per *example*, summed over its targets.

# %%
per_output = tfd.Normal(loc=tf.zeros([3, 2]), scale=tf.ones([3, 2]))
per_example = tfd.Independent(per_output, reinterpreted_batch_ndims=1)
print(per_output.batch_shape, per_output.event_shape, "->", per_example.batch_shape, per_example.event_shape)
print("log_prob shape:", per_example.log_prob(tf.zeros([3, 2])).shape)
head_output = tfp_bnn.NormalHead(units=2)(tf.zeros([3, 4]))
print("NormalHead(units=2) for 3 inputs:", head_output.tensor_distribution)

# %% [markdown]
# ## Trainable parameters
#
# A distribution's parameters can be `tf.Variable`s. The scale must stay positive, so rather than a raw
# variable we use a `tfp.util.TransformedVariable`: it stores an unconstrained number $\rho$ and presents
# $\sigma = \mathrm{softplus}(\rho) = \log(1 + e^\rho) > 0$. (tfp_bnn uses the same softplus for every scale it
# learns: the noise of `HomoscedasticNormalHead`, the weight posteriors of `MeanFieldNormal`.)

# %%
loc = tf.Variable(0.0, name="loc")
scale = tfp.util.TransformedVariable(1.0, bijector=tfb.Softplus(), name="scale")
model = tfd.Normal(loc=loc, scale=scale)
print("trainable variables:", [(v.name, round(float(v.numpy()), 4)) for v in model.trainable_variables])
print(f"the scale variable holds rho = {scale.pretransformed_input.numpy():.4f}; the distribution sees sigma = {tf.convert_to_tensor(model.scale).numpy():.4f}")

# %% [markdown]
# ## Gradients with `tf.GradientTape`
#
# The negative log-likelihood of data $x_{1..n}$ is $\mathrm{NLL} = -\frac1n \sum_i \log \mathcal N(x_i \mid \mu, \sigma^2)$.
# `GradientTape` records the computation and returns its gradient; for the mean it should equal the closed
# form $\partial\,\mathrm{NLL} / \partial\mu = -(\bar x - \mu)/\sigma^2$.

# %%
true = tfd.Normal(loc=2.0, scale=0.5)
data = true.sample(1000, seed=1)

with tf.GradientTape() as tape:
    nll = -tf.reduce_mean(model.log_prob(data))
gradient_loc, _ = tape.gradient(nll, model.trainable_variables)
closed_form = -(tf.reduce_mean(data) - loc) / scale**2
print(f"NLL = {nll.numpy():.4f}; dNLL/dmu: tape {gradient_loc.numpy():.5f}, closed form {closed_form.numpy():.5f}")
np.testing.assert_allclose(gradient_loc, closed_form, rtol=1e-5)

# %% [markdown]
# ## Fitting the parameters by gradient descent
#
# A training loop: compute the NLL under the tape, take its gradient, let an optimizer step. `tf.function`
# compiles the step into a graph. The fitted parameters approach the maximum-likelihood estimates, which for
# a Normal are the sample mean and the sample standard deviation (chapter 3 derives this).

# %%
optimizer = tf_keras.optimizers.Adam(learning_rate=0.05)


@tf.function
def train_step():
    with tf.GradientTape() as tape:
        nll = -tf.reduce_mean(model.log_prob(data))
    optimizer.apply_gradients(zip(tape.gradient(nll, model.trainable_variables), model.trainable_variables))
    return nll, loc.read_value(), tf.convert_to_tensor(scale)


num_steps = 300 if FAST else 600
history = np.array([[t.numpy() for t in train_step()] for _ in range(num_steps)])
print(f"fitted mu = {loc.numpy():.4f} (sample mean {np.mean(data):.4f}), "
      f"sigma = {tf.convert_to_tensor(scale).numpy():.4f} (sample std {np.std(data):.4f})")
np.testing.assert_allclose([loc.numpy(), tf.convert_to_tensor(scale).numpy()], [np.mean(data), np.std(data)], atol=2e-3)

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
axes[0].plot(history[:, 0])
axes[0].set(xlabel="step", ylabel="NLL", title="Negative log-likelihood")
axes[1].plot(history[:, 1], label="mu")
axes[1].plot(history[:, 2], label="sigma")
axes[1].axhline(np.mean(data), color="C0", linestyle=":")
axes[1].axhline(np.std(data), color="C1", linestyle=":")
axes[1].set(xlabel="step", title="Parameters (dotted: sample mean and std)")
axes[1].legend()
grid = np.linspace(0, 4, 200, dtype="float32")
axes[2].hist(data.numpy(), bins=40, density=True, alpha=0.5, label="data")
axes[2].plot(grid, model.prob(grid), color="black", label="fitted Normal")
axes[2].set(xlabel="x", title="Data and the fitted density")
axes[2].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# `tfp.math.minimize` runs the same loop in one call; Keras's `model.fit` runs it for a whole network, and from
# chapter 4 on that is what we use: a tfp_bnn model's loss is the negative log-likelihood of its output
# distribution, exactly the quantity minimised here.

# %%
loc2 = tf.Variable(0.0)
scale2 = tfp.util.TransformedVariable(1.0, bijector=tfb.Softplus())
model2 = tfd.Normal(loc2, scale2)
losses = tfp.math.minimize(lambda: -tf.reduce_mean(model2.log_prob(data)), num_steps=num_steps,
                           optimizer=tf_keras.optimizers.Adam(0.05))
print(f"tfp.math.minimize: mu = {loc2.numpy():.4f}, sigma = {tf.convert_to_tensor(scale2).numpy():.4f}, final NLL {losses[-1]:.4f}")
