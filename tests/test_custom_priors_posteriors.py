"""A prior and a posterior of the user's own, through the public protocol only.

``tfp_bnn.priors.Prior``, ``tfp_bnn.posteriors.Posterior`` and ``DistributionLayer``
(exported by both modules) are the documented way to extend tfp_bnn: a Laplace prior
whose KL against a Normal posterior has no closed form in TFP (the layer takes a
one-draw Monte Carlo estimate), and a low-rank plus diagonal Gaussian posterior that
trains, predicts and survives ``.keras`` saving.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras
from scipy import stats

import tfp_bnn
from tfp_bnn.posteriors import DistributionLayer, MeanFieldNormal, Posterior
from tfp_bnn.priors import Prior

tfd = tfp.distributions


@tf_keras.saving.register_keras_serializable(package="test_custom")
class LaplacePrior(Prior):
    def __init__(self, scale=1.0):
        self.scale = float(scale)

    def distribution(self, size, dtype=tf.float32):
        laplace = tfd.Laplace(tf.zeros([size], dtype), tf.constant(self.scale, dtype))
        return tfd.Independent(laplace, reinterpreted_batch_ndims=1)

    def get_config(self):
        return {"scale": self.scale}


class LowRankLayer(DistributionLayer):
    """``MultivariateNormalDiagPlusLowRankCovariance(loc, d, U)``: covariance ``diag(d) + U U^T``."""

    def __init__(self, size, rank, **kwargs):
        super().__init__(size, **kwargs)
        self.rank = int(rank)
        self.loc = self.add_weight(name="loc", shape=[self.size], initializer="glorot_uniform")
        self.raw_diag = self.add_weight(
            name="raw_diag", shape=[self.size], initializer=tf_keras.initializers.Constant(-10.0))
        self.factor = self.add_weight(
            name="factor", shape=[self.size, self.rank], initializer=tf_keras.initializers.RandomNormal(stddev=1e-3))

    def distribution(self):
        return tfd.MultivariateNormalDiagPlusLowRankCovariance(self.loc, tf.nn.softplus(self.raw_diag), self.factor)

    def get_config(self):
        return {**super().get_config(), "rank": self.rank}


@tf_keras.saving.register_keras_serializable(package="test_custom")
class LowRankNormal(Posterior):
    def __init__(self, rank=2):
        self.rank = int(rank)

    def make_layer(self, kernel_size, bias_size=0, dtype=None, kernel_shape=None):
        return LowRankLayer(kernel_size + bias_size, self.rank, dtype=dtype)

    def get_config(self):
        return {"rank": self.rank}


def _normal_laplace_kl(mu, sigma, b):
    """Closed-form ``KL(N(mu, sigma^2) || Laplace(0, b))`` per weight: -entropy + log(2b) + E|w| / b."""
    folded_mean = (sigma * np.sqrt(2 / np.pi) * np.exp(-mu**2 / (2 * sigma**2))
                   + mu * (1 - 2 * stats.norm.cdf(-mu / sigma)))
    return -0.5 * np.log(2 * np.pi * np.e * sigma**2) + np.log(2 * b) + folded_mean / b


def test_laplace_prior_kl_term_matches_an_independent_monte_carlo_estimate():
    kl_weight, b, draws = 0.25, 0.5, 20_000
    layer = tfp_bnn.BayesianDense(3, estimator="variational", kernel_prior=LaplacePrior(b),
                                  kernel_posterior=MeanFieldNormal(initial_scale=0.3), kl_weight=kl_weight)
    layer(tf.zeros([1, 4]))  # builds: 4 x 3 kernel + 3 biases = 15 weights
    assert layer.exact_kl is False  # TFP has no KL(Normal || Laplace): the layer's term is Monte Carlo
    rng = np.random.default_rng(0)
    mu = rng.normal(0.0, 0.6, size=15).astype("float32")
    sigma = rng.uniform(0.1, 0.6, size=15).astype("float32")
    layer.posterior.loc.assign(mu)
    layer.posterior.untransformed_scale.assign(np.log(np.expm1(sigma)))  # softplus^-1

    # The layer's loss term, kl_weight * one-draw estimate, averaged over `draws` fresh draws.
    terms = tf.function(lambda: tf.map_fn(lambda _: layer.losses[0], tf.range(draws), fn_output_signature=tf.float32))
    layer_kl = float(np.mean(terms().numpy())) / kl_weight

    # Independently: 200 000 draws of q in NumPy, log-densities from SciPy.
    q = layer.posterior.distribution()
    mu, sigma = q.mean().numpy().astype(np.float64), q.stddev().numpy().astype(np.float64)
    w = rng.normal(mu, sigma, size=(200_000, 15))
    per_draw = (stats.norm.logpdf(w, mu, sigma) - stats.laplace.logpdf(w, 0.0, b)).sum(axis=1)
    reference, spread = per_draw.mean(), per_draw.std()
    exact = _normal_laplace_kl(mu, sigma, b).sum()
    np.testing.assert_allclose(reference, exact, atol=4 * spread / np.sqrt(len(per_draw)))  # the reference is right

    # 4 standard errors of the layer's mean of `draws` one-draw estimates: 0.083 nats (10.851 against 10.863;
    # the closed form 10.861).
    tolerance = 4 * spread / np.sqrt(draws)
    assert abs(layer_kl - reference) < tolerance, (layer_kl, reference, tolerance)
    # The tolerance tells priors apart: against Normal(0, b) the KL is 12.52, 20 tolerances away.
    normal_kl = (np.log(b / sigma) + (sigma**2 + mu**2) / (2 * b**2) - 0.5).sum()
    assert abs(normal_kl - reference) > 10 * tolerance, (normal_kl, reference, tolerance)


@tf_keras.saving.register_keras_serializable(package="test_custom")
class BareLaplacePrior(LaplacePrior):  # forgot tfd.Independent: batch shape [size], event shape []
    def distribution(self, size, dtype=tf.float32):
        return tfd.Laplace(tf.zeros([size], dtype), tf.constant(self.scale, dtype))


@tf_keras.saving.register_keras_serializable(package="test_custom")
class Float64LaplacePrior(LaplacePrior):  # ignores the dtype it is given
    def distribution(self, size, dtype=tf.float32):
        return super().distribution(size, tf.float64)


@pytest.mark.parametrize("prior, message", [
    (BareLaplacePrior(), r"batch shape \(15,\) and event shape \(\); it must be one distribution over the flat "
                         r"\[kernel, bias\] vector of 12 \+ 3 weights: batch shape \[\], event shape \[15\]\. "
                         r"Wrap an elementwise distribution in tfd\.Independent"),
    (Float64LaplacePrior(), r"made a float64 distribution for a float32 layer; make it in the dtype make_layer"),
])
def test_a_prior_of_the_wrong_shape_or_dtype_is_refused_when_the_layer_is_built(prior, message):
    layer = tfp_bnn.BayesianDense(3, estimator="variational", kernel_prior=prior, kl_weight=0.1)
    with pytest.raises(ValueError, match=message):
        layer(tf.zeros([2, 4]))


def test_custom_prior_and_posterior_swapped_are_refused():
    with pytest.raises(ValueError, match="which is a posterior: were kernel_prior and kernel_posterior swapped"):
        tfp_bnn.BayesianDense(2, kernel_prior=LowRankNormal())
    with pytest.raises(ValueError, match="which is a prior: were kernel_prior and kernel_posterior swapped"):
        tfp_bnn.BayesianDense(2, kernel_posterior=LaplacePrior())


def _gap_data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, size=(n, 1)).astype("float32")
    y = (np.sin(x) + 0.1 * rng.normal(size=x.shape)).astype("float32")
    return x, y


def test_low_rank_posterior_trains_predicts_epistemic_spread_and_round_trips_through_keras(tmp_path):
    tf_keras.utils.set_random_seed(0)
    x, y = _gap_data(128, seed=0)
    model = tfp_bnn.make_regressor((1,), hidden_units=(16,), train_size=len(x), estimator="variational",
                                   kernel_posterior=LowRankNormal(rank=2))
    dense = [layer for layer in model.layers if isinstance(layer, tfp_bnn.BayesianDense)]
    assert len(dense) == 2 and all(isinstance(layer.posterior, LowRankLayer) for layer in dense)
    assert all(layer.exact_kl is False for layer in dense)  # low rank against NormalPrior: Monte Carlo
    factor_before = dense[0].posterior.factor.numpy()
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-2))
    history = model.fit(x, y, epochs=60, batch_size=32, verbose=0)
    first, last = ({k: np.mean(v[s]) for k, v in history.history.items()} for s in (slice(0, 3), slice(-3, None)))
    assert last["loss"] < first["loss"] - 0.8, (first, last)  # 3.21 -> 2.02
    assert last["nll"] < 0.5 * first["nll"], (first, last)  # 0.96 -> 0.32
    assert np.abs(dense[0].posterior.factor.numpy() - factor_before).max() > 1e-2  # U gets gradients: 0.20

    x_test = np.linspace(-6, 6, 25, dtype="float32")[:, None]
    before = tfp_bnn.predict(model, x_test, num_samples=50, seed=3)
    assert before.epistemic_stddev.min() > 0.01, before.epistemic_stddev.min()  # 0.055
    inside = np.abs(x_test[:, 0]) <= 3
    epistemic = before.epistemic_stddev[:, 0]
    assert epistemic[~inside].mean() > 2 * epistemic[inside].mean(), epistemic  # 0.20 against 0.08

    model.save(tmp_path / "low_rank.keras")
    loaded = tf_keras.models.load_model(tmp_path / "low_rank.keras")  # safe_mode: by the registered names
    loaded_dense = [layer for layer in loaded.layers if isinstance(layer, tfp_bnn.BayesianDense)]
    assert [type(layer.kernel_posterior) for layer in loaded_dense] == [LowRankNormal, LowRankNormal]
    assert [layer.posterior.rank for layer in loaded_dense] == [2, 2]
    again = tfp_bnn.predict(loaded, x_test, num_samples=50, seed=3)
    for field in ("mean", "aleatoric_stddev", "epistemic_stddev"):
        np.testing.assert_array_equal(getattr(again, field), getattr(before, field), err_msg=field)


class _IndependentNormalPrior(Prior):
    def distribution(self, size, dtype=tf.float32):
        return tfd.Independent(tfd.Normal(tf.zeros([size], dtype), tf.constant(1.0, dtype)), reinterpreted_batch_ndims=1)

    def get_config(self):
        return {}


def test_which_normal_priors_have_an_exact_kl_against_mean_field_normal():
    # Prior's docstring: MultivariateNormalDiag (NormalPrior) is exact against MeanFieldNormal's
    # MultivariateNormalDiag q; TFP has no KL(MultivariateNormalDiag || Independent(Normal)), so
    # the same prior written as Independent(Normal) gets the Monte Carlo estimate.
    exact = {}
    for prior in (tfp_bnn.NormalPrior(1.0), _IndependentNormalPrior()):
        layer = tfp_bnn.BayesianDense(2, kernel_prior=prior, kl_weight=0.1)
        layer(tf.zeros([1, 3]))
        exact[type(prior).__name__] = layer.exact_kl
    assert exact == {"NormalPrior": True, "_IndependentNormalPrior": False}
