# %% [markdown]
# # Chapter 10 — Bayesian deep learning
#
# *Probabilistic Deep Learning, part 10.* Chapters 4–5 gave networks a distribution over their *outputs*
# (aleatoric uncertainty). Chapter 6 showed the Bayesian answer to "how sure are we of the parameters": a
# posterior distribution over them. This chapter puts the two together: a network with a distribution over
# its **weights** and over its outputs, whose predictions separate
#
# * **aleatoric** uncertainty, the noise in the data (it stays however much data we collect), and
# * **epistemic** uncertainty, our ignorance of the weights (it shrinks with data, and grows away from it).
#
# We build up the pieces (the ELBO, the reparameterization trick, the KL divergence), train a Bayesian
# regressor and classifier with `model.fit`, and save and load one.

# %%
import os
import tempfile
from pathlib import Path

import tfp_bnn  # first: imports TensorFlow without its start-up chatter

import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras
from sklearn.datasets import make_moons
from tfp_bnn import data, plots

tfd = tfp.distributions
FAST = os.environ.get("TFP_BNN_TUTORIAL_FAST") == "1"
tf_keras.utils.set_random_seed(0)

# %% [markdown]
# ## The ELBO
#
# The posterior over the weights, $p(w \mid D) \propto p(D \mid w)\, p(w)$, has no closed form for a network,
# and the grid of chapter 6 is hopeless in thousands of dimensions. **Variational inference** picks a simple
# family $q_\theta(w)$, here independent Normals with means $\mu$ and standard deviations $\sigma$ (the
# variational parameters $\theta$), and fits it by maximising the *evidence lower bound*
#
# $$\mathrm{ELBO}(\theta) = \mathbb E_{w \sim q_\theta}\big[\log p(D \mid w)\big] - \mathrm{KL}\big(q_\theta(w)\,\|\,p(w)\big)
#   \;\le\; \log p(D),$$
#
# whose gap to $\log p(D)$ is $\mathrm{KL}(q_\theta \,\|\, p(w \mid D))$: maximising the ELBO pulls $q$ toward
# the true posterior. The first term wants weights that explain the data, the second keeps $q$ close to the
# prior. Divided by the number of examples $N$, its negative is a per-example loss,
#
# $$-\frac{\mathrm{ELBO}}{N} = \underbrace{-\frac1N \sum_n \mathbb E_q \log p(y_n \mid x_n, w)}_{\text{NLL, as in chapters 4–9}}
#   + \underbrace{\frac1N\, \mathrm{KL}(q \,\|\, p)}_{\text{added by the Bayesian layers}},$$
#
# which is exactly what a tfp_bnn model trains on: every Bayesian layer adds its KL times `kl_weight = 1/N`
# to `model.losses`, and `fit` logs the two parts as `nll` and `kl`. The expectation is estimated with weights
# sampled from $q$, which needs gradients *through* the sampling.
#
# ## The reparameterization trick
#
# A sample $w \sim \mathcal N(\mu, \sigma^2)$ is written $w = \mu + \sigma\varepsilon$ with $\varepsilon \sim \mathcal N(0, 1)$:
# the randomness moves into $\varepsilon$, which does not depend on $\mu$ or $\sigma$, and $w$ becomes a
# differentiable function of them. Then $\nabla_\theta \mathbb E_q[f(w)] = \mathbb E_\varepsilon[\nabla_\theta f(\mu + \sigma\varepsilon)]$,
# a plain average that `GradientTape` computes. For $f(w) = w^2$ the exact answer is known:
# $\mathbb E_q[w^2] = \mu^2 + \sigma^2$, so the gradients are $2\mu$ and $2\sigma$.

# %%
mu, sigma = tf.Variable(0.5), tf.Variable(0.8)
epsilon = tf.random.normal([100_000], seed=1)
with tf.GradientTape() as tape:
    w = mu + sigma * epsilon  # a differentiable sample of N(mu, sigma^2)
    objective = tf.reduce_mean(w**2)  # Monte Carlo estimate of E_q[w^2]
gradient_mu, gradient_sigma = tape.gradient(objective, [mu, sigma])
print(f"E[w^2]: Monte Carlo {objective.numpy():.4f}, exact {0.5**2 + 0.8**2:.4f}")
print(f"gradients: d/dmu {gradient_mu.numpy():.4f} (exact {2 * 0.5}), d/dsigma {gradient_sigma.numpy():.4f} (exact {2 * 0.8})")
np.testing.assert_allclose([gradient_mu.numpy(), gradient_sigma.numpy()], [1.0, 1.6], atol=0.03)
print("TFP's Normal samples this way too:", tfd.Normal(mu, sigma).reparameterization_type)

# %% [markdown]
# ## The KL divergence between Gaussians
#
# For two univariate Normals the KL divergence has a closed form,
#
# $$\mathrm{KL}\big(\mathcal N(\mu_1, \sigma_1^2)\,\|\,\mathcal N(\mu_2, \sigma_2^2)\big)
#   = \log\frac{\sigma_2}{\sigma_1} + \frac{\sigma_1^2 + (\mu_1 - \mu_2)^2}{2\sigma_2^2} - \frac12 ,$$
#
# and for independent weights it is the sum over weights. `tfd.kl_divergence` knows it (and a Monte Carlo
# average of $\log q(w) - \log p(w)$ over samples of $q$ estimates it for any pair):

# %%
def gaussian_kl(mu_1, sigma_1, mu_2, sigma_2):
    return np.log(sigma_2 / sigma_1) + (sigma_1**2 + (mu_1 - mu_2) ** 2) / (2 * sigma_2**2) - 0.5


q = tfd.Normal(loc=[0.0, 1.0, -0.5], scale=[1.0, 0.5, 0.1])
p = tfd.Normal(loc=[0.0, 0.0, 0.0], scale=[2.0, 1.0, 1.0])
closed = gaussian_kl(q.loc.numpy(), q.scale.numpy(), p.loc.numpy(), p.scale.numpy())
samples = q.sample(200_000, seed=2)
monte_carlo = tf.reduce_mean(q.log_prob(samples) - p.log_prob(samples), axis=0).numpy()
print("closed form:        ", np.round(closed, 4))
print("tfd.kl_divergence:  ", np.round(tfd.kl_divergence(q, p).numpy(), 4))
print("Monte Carlo (200k): ", np.round(monte_carlo, 4))
np.testing.assert_allclose(tfd.kl_divergence(q, p), closed, rtol=1e-5)
np.testing.assert_allclose(monte_carlo, closed, atol=0.02)

# %% [markdown]
# A tfp_bnn Bayesian layer uses this closed form for its weights (whenever TFP has one for the chosen prior
# and posterior). Its posterior and prior are distributions over the flat vector of its weights and biases:

# %%
layer = tfp_bnn.BayesianDense(3, kernel_prior=tfp_bnn.NormalPrior(scale=0.5), kl_weight=1.0)
layer(tf.ones([1, 2]))  # builds the layer: 2 x 3 kernel + 3 biases = 9 weights
posterior, prior = layer.posterior.distribution(), layer.prior.distribution()
by_hand = gaussian_kl(posterior.mean().numpy(), posterior.stddev().numpy(), 0.0, 0.5).sum()
print(posterior, prior, sep="\n")
print(f"KL of the layer: {layer.kl_divergence().numpy():.4f}; closed form summed over the 9 weights: {by_hand:.4f}")
np.testing.assert_allclose(layer.kl_divergence().numpy(), by_hand, rtol=1e-4)

# %% [markdown]
# ## Prior and posterior factories
#
# The article wrote its prior and posterior as functions for `tfp.layers.DenseVariational`: given the number
# of weights, each returns a small Keras model whose output is a distribution over them. A fixed
# standard-normal prior and a trainable mean-field posterior:

# %%
def article_prior(kernel_size, bias_size, dtype=None):
    n = kernel_size + bias_size
    return tf_keras.Sequential([tfp.layers.DistributionLambda(lambda t: tfd.MultivariateNormalDiag(loc=tf.zeros(n), scale_diag=tf.ones(n)))])


def article_posterior(kernel_size, bias_size, dtype=None):
    n = kernel_size + bias_size
    return tf_keras.Sequential([
        tfp.layers.VariableLayer(tfp.layers.IndependentNormal.params_size(n), dtype=dtype),
        tfp.layers.IndependentNormal(n),
    ])


variational = tfp.layers.DenseVariational(4, make_posterior_fn=article_posterior, make_prior_fn=article_prior, kl_weight=1 / 1000)
print("DenseVariational output:", variational(tf.ones([2, 3])).shape)

# %% [markdown]
# Such factories work, but a model built from lambdas cannot be saved to `.keras`, and their posterior starts
# with standard deviations around 0.7, so wide that a deep network's predictions drown in weight noise and
# the KL term pulls every weight back to the prior. tfp_bnn ships the same two factories as serializable
# objects: `tfp_bnn.NormalPrior(scale)` and `tfp_bnn.MeanFieldNormal(initial_scale)` (starting narrow, at
# $10^{-3}$); others are `ScaleMixturePrior` (Blundell et al. 2015), `TrainableNormalPrior` (empirical Bayes)
# and `FullCovarianceNormal`. They plug into TFP's layers as well as tfp_bnn's:

# %%
variational = tfp.layers.DenseVariational(4, make_posterior_fn=tfp_bnn.MeanFieldNormal(initial_scale=1e-3),
                                          make_prior_fn=tfp_bnn.NormalPrior(scale=1.0), kl_weight=1 / 1000)
print("DenseVariational with tfp_bnn factories:", variational(tf.ones([2, 3])).shape)

# %% [markdown]
# ## A Bayesian and probabilistic regressor
#
# The data (`tfp_bnn.data.gap_regression`): $y = \sin 2x + 0.3x$ plus noise that grows from left to right,
# with $x$ on $[-3, -1] \cup [1, 3]$, no data in the gap nor beyond $\pm 3$. The model: two hidden layers of
# 50 `BayesianDense` units and a `NormalHead`, built by `make_regressor` with our choice of prior and
# posterior; inputs and targets are standardised inside the model. The layers sample their weights with
# Flipout (the default `estimator`): the reparameterization trick, with the weight noise decorrelated
# between the examples of a batch by random sign flips, which gives lower-variance gradients than one
# shared weight sample per batch.

# %%
num_train, epochs = (1000, 300) if FAST else (2000, 500)
x, y = data.gap_regression(num_train, seed=0)


regressor = tfp_bnn.make_regressor(
    (1,), hidden_units=(50, 50), train_size=len(x), estimator="flipout",
    kernel_prior=tfp_bnn.NormalPrior(scale=1.0), kernel_posterior=tfp_bnn.MeanFieldNormal(initial_scale=1e-3),
    input_mean=x.mean(axis=0), input_std=x.std(axis=0), target_mean=float(y.mean()), target_std=float(y.std()),
)
regressor.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=3e-3))
history = regressor.fit(x, y, epochs=epochs, batch_size=100, verbose=0)

fig, ax = plt.subplots(figsize=(7, 3.5))
for key in ("loss", "nll", "kl"):
    ax.plot(history.history[key], label=key)
ax.set(xlabel="epoch", ylabel="per example", title="Negative ELBO / N = NLL + KL / N")
ax.legend()
plt.show()

# %% [markdown]
# ## Aleatoric and epistemic uncertainty
#
# `tfp_bnn.predict` runs $T$ independent weight draws in one graph. Each draw $t$ predicts a Normal with mean
# $m_t(x)$ and variance $s_t^2(x)$; the predictive distribution is their mixture, and its variance splits by
# the law of total variance:
#
# $$\mathrm{Var}[y \mid x] = \underbrace{\tfrac1T \textstyle\sum_t s_t^2(x)}_{\text{aleatoric}}
#   + \underbrace{\tfrac1T \textstyle\sum_t \big(m_t(x) - \bar m(x)\big)^2}_{\text{epistemic}} .$$

# %%
grid = np.linspace(-6, 6, 481, dtype="float32")[:, None]
num_samples = 100 if FAST else 300
# In `predict` every layer draws whole weights (Flipout's sign flips are for training gradients only), so
# draw t is one function of x: the sampled curves below are whole functions.
result = tfp_bnn.predict(regressor, grid, num_samples=num_samples, seed=0)

fig, axes = plt.subplots(1, 2, figsize=(15, 4.5))
plots.uncertainty_bands(grid, result, x_train=x, y_train=y, ax=axes[0])
plots.sampled_curves(grid, result, num_curves=30, x_train=x, y_train=y, ax=axes[1])
for ax in axes:
    ax.set_ylim(-5, 5)
plt.tight_layout()
plt.show()

# %%
at = np.array([-6.0, -4.5, -2.0, 0.0, 2.0, 4.5, 6.0], dtype="float32")[:, None]
table = tfp_bnn.predict(regressor, at, num_samples=num_samples, seed=0)
print(f"{'x':>5} {'region':>8} {'aleatoric':>10} {'true noise':>11} {'epistemic':>10}")
for xi, ale, epi in zip(at[:, 0], table.aleatoric_stddev[:, 0], table.epistemic_stddev[:, 0]):
    region = "data" if abs(xi) == 2.0 else "gap" if xi == 0.0 else "outside"
    noise = f"{data.gap_regression_noise_std(xi):11.3f}" if region == "data" else f"{'-':>11}"
    print(f"{xi:5.1f} {region:>8} {ale:10.3f} {noise} {epi:10.3f}")
epistemic, aleatoric = table.epistemic_stddev[:, 0], table.aleatoric_stddev[:, 0]
ratio = epistemic[[0, 1, 5, 6]].mean() / epistemic[[2, 4]].mean()
print(f"epistemic std outside the data is {ratio:.0f} times its value inside")
assert ratio > 3 and aleatoric[4] > 1.5 * aleatoric[2]

# %% [markdown]
# Inside the data the aleatoric part follows the true noise (left to right it grows) and the epistemic part is
# small: the weight draws agree. In the gap and beyond the data the draws disagree and the epistemic part
# grows, while the aleatoric part, an extrapolation of the noise model, is not to be trusted there. Only the
# epistemic part tells the two situations apart.
#
# ## Entropy and mutual information for a classifier
#
# For classes the same split works with entropies. With per-draw class probabilities $p_t(x)$ and their mean
# $\bar p(x)$:
#
# $$\underbrace{H[\bar p]}_{\text{predictive entropy}} = \underbrace{\tfrac1T \textstyle\sum_t H[p_t]}_{\text{expected entropy (aleatoric)}}
#   + \underbrace{\mathrm{MI}}_{\text{mutual information (epistemic)}} .$$
#
# Two interleaved half moons (`sklearn.datasets.make_moons`, generated), and a Bayesian classifier with two
# hidden layers of 32 units built by `make_classifier`:

# %%
tf_keras.utils.set_random_seed(0)  # this section's numbers do not depend on how many draws the cells above made
x_moons, y_moons = make_moons(500, noise=0.2, random_state=0)
x_moons = x_moons.astype("float32")

classifier = tfp_bnn.make_classifier((2,), 2, hidden_units=(32, 32), train_size=len(x_moons), estimator="flipout")
classifier.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=0.01))
classifier.fit(x_moons, y_moons, epochs=200 if FAST else 300, batch_size=50, verbose=0)

a, b = np.meshgrid(np.linspace(-4, 5, 60 if FAST else 150), np.linspace(-4, 4.5, 60 if FAST else 150))
plane = np.stack([a.ravel(), b.ravel()], axis=1).astype("float32")
moons = tfp_bnn.predict(classifier, plane, num_samples=200, seed=0)
np.testing.assert_allclose(moons.predictive_entropy, moons.expected_entropy + moons.mutual_information, atol=1e-5)

fig, axes = plt.subplots(1, 3, figsize=(17, 4.5), sharey=True)
panels = (
    (moons.predictive_entropy, "predictive entropy (total)"),
    (moons.expected_entropy, "expected entropy (aleatoric)"),
    (moons.mutual_information, "mutual information (epistemic)"),
)
for ax, (values, title) in zip(axes, panels):
    image = ax.pcolormesh(a, b, values.reshape(a.shape), cmap="viridis", shading="auto", vmin=0, vmax=np.log(2))
    ax.scatter(*x_moons.T, c=y_moons, cmap="coolwarm", s=5, edgecolors="none")
    ax.set(title=title, xlabel="$x_1$")
axes[0].set_ylabel("$x_2$")
fig.colorbar(image, ax=axes, label="nats")
plt.show()

distance = np.min(np.linalg.norm(plane[:, None, :] - x_moons[None, :, :], axis=-1), axis=1)
at_data = tfp_bnn.predict(classifier, x_moons, num_samples=200, seed=0)
print(f"mean mutual information: at the training points {at_data.mutual_information.mean():.3f} nats, "
      f"farther than 1 from every training point {moons.mutual_information[distance > 1].mean():.3f} nats")
print(f"mean expected entropy: at the training points {at_data.expected_entropy.mean():.3f} nats, far {moons.expected_entropy[distance > 1].mean():.3f} nats")
assert moons.mutual_information[distance > 1].mean() > 2 * at_data.mutual_information.mean()

# %% [markdown]
# The expected entropy (aleatoric) is high only where the two moons overlap: each draw is unsure there. Far
# from the data each draw is confident, so the aleatoric part vanishes, but in wide wedges along the
# extensions of the boundary the draws disagree about *which* class, and the mutual information is high. A
# classifier without a weight posterior would show only the middle panel, confident in regions it has never
# seen. The posterior is no oracle either: in the corners where every draw extrapolates the same way, the
# mutual information stays low, data or not.
#
# ## Save and load
#
# tfp_bnn's layers, priors, posteriors and heads are registered Keras objects, so the model saves to a
# `.keras` file like any Keras model and loads back (after `import tfp_bnn`) without any custom code. The
# loaded model predicts the same distribution: same seed, same numbers.

# %%
with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "regressor.keras"
    regressor.save(path)
    loaded = tf_keras.models.load_model(path)
before = tfp_bnn.predict(regressor, grid, num_samples=50, seed=1)
after = tfp_bnn.predict(loaded, grid, num_samples=50, seed=1)
for field in ("mean", "aleatoric_variance", "epistemic_variance", "lower", "upper"):
    np.testing.assert_allclose(getattr(after, field), getattr(before, field), rtol=1e-5, atol=1e-6)
print(type(loaded).__name__, [type(layer).__name__ for layer in loaded.layers])
print("the loaded model predicts the same mean, aleatoric and epistemic variance and intervals")
