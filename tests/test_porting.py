"""Code ported from the "Probabilistic Deep Learning" series: its losses, TFP arguments and tfp.layers heads."""

import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

import tfp_bnn

tfd, tfpl = tfp.distributions, tfp.layers


def _article_nll(y, rv):
    return -rv.log_prob(y)


def _four_class_data():
    """64 examples of 3 features, labels 0..3 of shape (N,), and the model's input."""
    rng = np.random.default_rng(0)
    return rng.normal(size=(64, 3)).astype("float32"), rng.integers(0, 4, size=64), tf_keras.Input((3,))


@pytest.mark.parametrize("head", [tfp_bnn.CategoricalHead(4), tfp_bnn.PointClassHead(4)], ids=["categorical", "point"])
def test_the_series_loss_function_sees_labels_in_the_heads_shape(head):
    # Keras expanded (N,) labels to (N, 1) before the loss (the head's tensor is (N, K)): the series'
    # lambda y, rv: -rv.log_prob(y) scored every label under every example's Categorical, (N, N),
    # and trained towards the label frequencies.
    x, y, inputs = _four_class_data()
    model = tfp_bnn.BayesianModel(inputs, head(tf_keras.layers.Dense(4)(inputs)))
    model.compile(loss=lambda y, rv: -rv.log_prob(y))
    article = model.evaluate(x, y, batch_size=64, verbose=0)
    model.compile()
    default = model.evaluate(x, y, batch_size=64, verbose=0)
    np.testing.assert_allclose(article, default, rtol=1e-6)


@pytest.mark.parametrize("head", [tfp_bnn.CategoricalHead(4), tfp_bnn.PointClassHead(4)], ids=["categorical", "point"])
def test_the_series_loss_in_a_plain_keras_model_scores_each_label_once(head):
    # A plain tf_keras.Model gets no aligned targets from compile: Keras's (N, 1) labels reach the
    # head's Categorical, which scores them per example ((N,)), not under every example ((N, N)).
    x, y, inputs = _four_class_data()
    model = tf_keras.Model(inputs, head(tf_keras.layers.Dense(4)(inputs)))
    model.compile(loss=_article_nll)
    article = model.evaluate(x, y, batch_size=64, verbose=0)
    expected = -np.mean(model(x).log_prob(y).numpy())
    assert model(x).log_prob(y[:, None]).shape == (64,)
    np.testing.assert_allclose(article, expected, rtol=1e-5)


def test_the_series_loss_scores_each_label_once_when_the_labels_shape_is_known_only_at_run_time():
    # A generator's (N, 1) labels reach the loss as (None, None), tf.py_function's with no rank:
    # the column is taken as (N,) there too, not scored under every example ((N, N)).
    x, y, inputs = _four_class_data()
    model = tf_keras.Model(inputs, tfp_bnn.CategoricalHead(4)(tf_keras.layers.Dense(4)(inputs)))
    model.compile(loss=_article_nll)
    expected = -np.mean(model(x).log_prob(y).numpy())

    def batches():
        while True:
            yield x, y[:, None]

    np.testing.assert_allclose(model.evaluate(batches(), steps=1, verbose=0), expected, rtol=1e-5)
    log_prob = tf.function(lambda x, y: model(x).log_prob(y),
                           input_signature=[tf.TensorSpec([None, 3]), tf.TensorSpec(None)])
    np.testing.assert_allclose(log_prob(x, y[:, None].astype("float32")), model(x).log_prob(y), rtol=1e-6)
    grid = np.arange(4, dtype="float32")[:, None]  # every class for every example: (K, N), as TFP broadcasts
    assert log_prob(x, grid).shape == model(x).log_prob(grid).shape == (4, 64)


def test_a_loss_function_is_saved_as_given(tmp_path):
    inputs = tf_keras.Input((3,))
    model = tfp_bnn.BayesianModel(inputs, tfp_bnn.CategoricalHead(4)(tf_keras.layers.Dense(4)(inputs)))
    model.compile(loss=_article_nll)
    assert model.loss is _article_nll and model.compiled_loss._user_losses is _article_nll
    model.fit(np.zeros((8, 3)), np.zeros(8), verbose=0)
    model.save(tmp_path / "m.h5")
    loaded = tf_keras.models.load_model(tmp_path / "m.h5", custom_objects={"_article_nll": _article_nll})
    assert loaded.loss is _article_nll


@pytest.mark.parametrize("argument, advice", [
    ("kernel_divergence_fn", "kl_weight=1 / N"),
    ("kl_use_exact", "kl_weight=1 / N"),
    ("make_prior_fn", "kernel_prior="),
    ("kernel_prior_fn", "kernel_prior="),
    ("make_posterior_fn", "kernel_posterior="),
    ("bias_posterior_fn", "kernel_posterior="),
    ("seed", "set_random_seed"),
])
@pytest.mark.parametrize("layer", [lambda **kw: tfp_bnn.BayesianDense(4, **kw),
                                   lambda **kw: tfp_bnn.BayesianConv2D(4, 3, **kw)], ids=["dense", "conv"])
def test_tfp_layer_arguments_name_the_tfp_bnn_ones(layer, argument, advice):
    # Were Keras's "('Keyword argument not understood:', 'kernel_divergence_fn')".
    with pytest.raises(TypeError, match=f"takes no {argument} .tfp.layers' argument.: .*{advice}"):
        layer(**{argument: lambda q, p, _: tfd.kl_divergence(q, p) / 100})


@pytest.mark.parametrize("argument, value, advice", [
    ("kernel_initializer", "ones", r"kernel_posterior=MeanFieldNormal\(loc_initializer=...\)"),
    ("bias_initializer", "zeros", r"MeanFieldNormal\(loc_initializer=...\) \(the biases' at zero\)"),
    ("kernel_regularizer", "l2", r"kernel_prior=NormalPrior\(scale\)"),
    ("kernel_constraint", "non_neg", "constrain the outputs"),
])
@pytest.mark.parametrize("layer", [tfp_bnn.BayesianDense, lambda units, **kw: tfp_bnn.BayesianConv2D(units, 3, **kw)],
                         ids=["dense", "conv"])
def test_keras_layer_arguments_name_the_tfp_bnn_ones(layer, argument, value, advice):
    # Were tf_keras's bare "('Keyword argument not understood:', 'kernel_initializer')".
    with pytest.raises(TypeError, match=f"takes no {argument} .Keras's Dense/Conv arguments.: .*{advice}"):
        layer(4, **{argument: value})


def test_the_initializer_advice_starts_the_posterior_means_where_asked():
    dense = tfp_bnn.BayesianDense(4, kernel_posterior=tfp_bnn.MeanFieldNormal(loc_initializer="ones"))
    dense.build((None, 3))
    np.testing.assert_array_equal(dense.posterior.loc.numpy(), np.r_[np.ones(12), np.zeros(4)])


@pytest.mark.parametrize("tfp_head, size, advice", [
    (lambda: tfpl.IndependentNormal(1), 2, r"tfp_bnn.NormalHead\(1\)"),
    (lambda: tfpl.OneHotCategorical(10), 10, r"tfp_bnn.CategoricalHead\(10\) .*y.argmax\(axis=1\)"),
    (lambda: tfpl.IndependentBernoulli(1), 1, r"tfp_bnn.BernoulliHead\(\)"),
    (lambda: tfpl.DistributionLambda(lambda t: tfd.Normal(t[..., :1], tf.nn.softplus(t[..., 1:]))), 2,
     r"NormalHead\(units\) for tfd.Normal"),
], ids=["IndependentNormal", "OneHotCategorical", "IndependentBernoulli", "DistributionLambda"])
def test_tfp_heads_name_the_tfp_bnn_head(tfp_head, size, advice):
    inputs = tf_keras.Input((3,))
    outputs = tfp_head()(tfp_bnn.BayesianDense(size, kl_weight=0.01)(inputs))
    model = tf_keras.Model(inputs, outputs)
    with pytest.raises(TypeError, match="predict needs .* Replace it with .*" + advice):
        tfp_bnn.predict(model, np.zeros((2, 3)), num_samples=5)
    with pytest.raises(TypeError, match="^log_likelihoods needs .* Replace it with .*" + advice):
        tfp_bnn.log_likelihoods(model, np.zeros((2, 3)), np.zeros(2), num_samples=5)
    with pytest.raises(TypeError, match="must end in a tfp_bnn head .* Replace it with .*" + advice):
        tfp_bnn.BayesianModel(inputs, outputs)


def test_a_factory_passed_positionally_is_refused_by_name():
    # tfp.layers.DenseVariational(units, make_posterior_fn, make_prior_fn) ported as it was: the prior became
    # the estimator ("Unknown estimator NormalPrior(...)"); the posterior alone became the activation (a
    # warning of "a flat kernel of [[...]] weights", then a TypeError at the first call).
    with pytest.raises(TypeError, match="as its activation .a positional argument.*kernel_posterior="):
        tfp_bnn.BayesianDense(4, tfp_bnn.MeanFieldNormal())
    with pytest.raises(TypeError, match="as its activation .a positional argument"):
        tfp_bnn.BayesianDense(4, tfp_bnn.MeanFieldNormal(), tfp_bnn.NormalPrior())


@pytest.mark.parametrize("make, fix", [
    (lambda n: tfpl.DenseFlipout(2, kernel_posterior_fn=tfp_bnn.MeanFieldNormal()),
     r"kernel_divergence_fn=lambda q, p, _: tfd.kl_divergence\(q, p\) / 500"),
    (lambda n: tfpl.DenseVariational(2, tfp_bnn.MeanFieldNormal(), tfp_bnn.NormalPrior()), r"kl_weight=1 / 500"),
    (lambda n: tfpl.DenseFlipout(2, kernel_posterior_fn=tfp_bnn.MeanFieldNormal(),
                                 bias_prior_fn=tfpl.default_multivariate_normal_fn),
     r"kernel_divergence_fn=lambda q, p, _: tfd.kl_divergence\(q, p\) / 500 and "
     r"bias_divergence_fn=lambda q, p, _: tfd.kl_divergence\(q, p\) / 500"),
    (lambda n: tfpl.DenseFlipout(2, kernel_divergence_fn=lambda q, p, _: tfd.kl_divergence(q, p) / n), None),
    (lambda n: tfpl.DenseFlipout(2, bias_prior_fn=tfpl.default_multivariate_normal_fn,
                                 kernel_divergence_fn=lambda q, p, _: tfd.kl_divergence(q, p) / n,
                                 bias_divergence_fn=lambda q, p, _: tfd.kl_divergence(q, p) / n), None),
    (lambda n: tfpl.DenseVariational(2, tfp_bnn.MeanFieldNormal(), tfp_bnn.NormalPrior(), kl_weight=1 / n), None),
], ids=["flipout-default", "variational-default", "flipout-bias-prior", "flipout-scaled", "flipout-bias-scaled",
        "variational-scaled"])
def test_fit_warns_of_a_tfp_layer_whose_kl_is_unscaled(make, fix):
    # TFP's default divergence is the whole KL: beside the NLL per example it weighed the KL N times too
    # strongly, and fit's kl_weight check looked at tfp_bnn's own layers only.
    import warnings

    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 1)).astype("float32")
    inputs = tf_keras.Input((1,))
    model = tfp_bnn.BayesianModel(inputs, tfp_bnn.NormalHead(1)(make(500)(inputs)))
    model.compile()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, 2 * x, epochs=1, batch_size=500, verbose=0)
    messages = [str(w.message) for w in caught if "unscaled" in str(w.message)]
    if fix is None:
        assert not messages
    else:
        assert len(messages) == 1 and "500x too strongly" in messages[0]
        assert re.search(fix, messages[0])


class _ArticleNLL(tf_keras.losses.Loss):
    """The series' loss as a Keras Loss object: a named, serializable loss."""

    def call(self, y_true, rv):
        return -rv.log_prob(y_true)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum"])
def test_a_loss_object_of_the_users_sees_labels_in_the_heads_shape_and_keeps_its_reduction(reduction):
    # As for a function: Keras's (N, 1) labels made -rv.log_prob(y) an (N, N) matrix (1.650 here against 1.766).
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = rng.integers(0, 4, size=64)
    weights = rng.uniform(0, 2, size=64).astype("float32")
    inputs = tf_keras.Input((3,))
    dense = tf_keras.layers.Dense(4, kernel_initializer=tf_keras.initializers.GlorotUniform(1))
    model = tfp_bnn.BayesianModel(inputs, tfp_bnn.CategoricalHead(4)(dense(inputs)))
    loss = _ArticleNLL(reduction=reduction)
    model.compile(loss=loss, weighted_metrics=[])
    assert model.loss is loss
    article = model.evaluate(x, y, sample_weight=weights, batch_size=64, verbose=0)[0]
    model.compile(weighted_metrics=[])
    default = model.evaluate(x, y, sample_weight=weights, batch_size=64, verbose=0)[0]
    np.testing.assert_allclose(article, default * (64 if reduction == "sum" else 1), rtol=1e-6)


@pytest.mark.parametrize("tfp_head, size, advice", [
    (lambda: tfpl.IndependentNormal(), 2, r"tfp_bnn.NormalHead\(1\) "),  # event shape (): one location, one scale
    (lambda: tfpl.IndependentNormal((2, 3)), 12, r"tfp_bnn.NormalHead\(6\) "),
])
def test_the_advised_head_size_is_the_event_size_not_the_parameter_count(tfp_head, size, advice):
    inputs = tf_keras.Input((3,))
    outputs = tfp_head()(tf_keras.layers.Dense(size)(inputs))
    with pytest.raises(TypeError, match="must end in a tfp_bnn head .* Replace it with " + advice):
        tfp_bnn.BayesianModel(inputs, outputs)


def test_over_a_sequence_the_loss_function_is_the_per_step_mean_of_the_nll():
    # What the README says: Keras averages a function's (N, L) values; the head's NLL sums the steps.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 5, 3)).astype("float32")
    y = rng.integers(0, 4, size=(30, 5))
    inputs = tf_keras.Input((5, 3))
    model = tfp_bnn.BayesianModel(inputs, tfp_bnn.CategoricalHead(4)(tf_keras.layers.Dense(4)(inputs)))
    model.compile(loss=_article_nll)
    article = model.evaluate(x, y, batch_size=30, verbose=0)
    model.compile()
    default = model.evaluate(x, y, batch_size=30, verbose=0)
    np.testing.assert_allclose(article[:2], np.array(default[:2]) / 5, rtol=1e-6)  # loss, nll (no KL here)
