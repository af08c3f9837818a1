"""The API reference as ``help()`` shows it: arguments described, shapes stated and true.

test_docstrings.py runs the examples; this checks what the prose around them says:
every argument of a public callable is described (or delegated, "arguments as in"),
a method a subclass overrides does not show its base's docstring in ``help()`` (a
classifier's ``draw_statistics`` showed the regression heads' ``{"mean", "variance"}``),
the shapes the docstrings state for a label per time step are the shapes returned,
and an example runs pasted on its own.
"""

import doctest
import importlib
import inspect

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tfp_bnn
from tfp_bnn import heads

MODULES = ["tfp_bnn", "tfp_bnn.heads", "tfp_bnn.layers", "tfp_bnn.prediction", "tfp_bnn.priors",
           "tfp_bnn.posteriors", "tfp_bnn.baselines", "tfp_bnn.sampling"]


def _public(names=MODULES):
    seen = {}
    for name in names:
        module = importlib.import_module(name)
        for attribute in module.__all__:
            obj = getattr(module, attribute)
            if (inspect.isclass(obj) or inspect.isroutine(obj)) and obj not in seen.values():
                seen[f"{name}.{attribute}"] = obj
    return seen


@pytest.mark.parametrize("name, obj", sorted(_public().items()))
def test_every_argument_is_described(name, obj):
    doc = obj.__doc__ or ""
    if inspect.isclass(obj) and "__init__" in vars(obj) and obj.__init__.__doc__:
        doc += obj.__init__.__doc__
    if "rguments as in" in doc or "rguments are Keras" in doc:  # delegated: "Other arguments as in X"
        return
    signature = inspect.signature(obj)
    skipped = {"self", "name", "trainable"}  # Keras's own Layer/Model/Loss arguments
    undescribed = [p for p, parameter in signature.parameters.items() if p not in skipped
                   and parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
                   and f"``{p}``" not in doc and f"{p}:" not in doc and f"{p}," not in doc]
    assert undescribed == [], f"{name}: {undescribed} not described in its docstring"


@pytest.mark.parametrize("name, cls", sorted((n, o) for n, o in _public().items() if inspect.isclass(o)))
def test_overridden_methods_have_their_own_docstrings(name, cls):
    # help(CategoricalHead.draw_statistics) showed Head's: '{"mean", "variance"}, each [N, units]'.
    inherited = []
    for attribute, value in vars(cls).items():
        function = value.fget if isinstance(value, property) else value
        if attribute.startswith("_") or not callable(function) or function.__doc__:
            continue
        for base in cls.__mro__[1:]:
            base_value = vars(base).get(attribute)
            base_function = base_value.fget if isinstance(base_value, property) else base_value
            if getattr(base_function, "__doc__", None) and base.__module__.startswith("tfp_bnn"):
                inherited.append(f"{attribute} (shows {base.__name__}'s)")
                break
    assert inherited == []


def test_classification_draw_statistics_say_what_they_return():
    for head, logits in ((heads.CategoricalHead(3), [2, 3]), (heads.PointClassHead(3), [2, 3]),
                         (heads.BernoulliHead(), [2, 1])):
        stats = head.draw_statistics(head(tf.zeros(logits)))
        assert sorted(stats) == ["probs"]
        assert '"probs"' in inspect.getdoc(type(head).draw_statistics)


def _per_step_classifier(steps=5, classes=3, features=2):
    inputs = tf_keras.Input((steps, features))
    logits = tfp_bnn.BayesianDense(classes, kl_weight=0.1)(inputs)
    return tfp_bnn.BayesianModel(inputs, tfp_bnn.CategoricalHead(classes)(logits))


def test_stated_per_step_shapes_are_true():
    assert "``[N, *steps]``" in heads.__doc__ and "``[N, *steps]``" in heads.CategoricalHead.__doc__
    assert "``[N, *steps]``" in heads.BernoulliHead.__doc__
    for doc in (tfp_bnn.ClassificationPrediction.__doc__, tfp_bnn.prediction.predictive_summary.__doc__):
        assert "*steps, K]" in doc.replace("(", "[").replace(")", "]")
    model = _per_step_classifier()
    dist = model(np.zeros((4, 5, 2), "float32"))
    assert (dist.batch_shape, dist.event_shape) == (tf.TensorShape([4, 5]), tf.TensorShape([]))
    result = tfp_bnn.predict(model, np.zeros((4, 5, 2)), num_samples=6, seed=0)
    assert result.probabilities.shape == (4, 5, 3) and result.draw_probabilities.shape == (6, 4, 5, 3)
    assert result.predictive_entropy.shape == result.mutual_information.shape == result.predicted_class.shape == (4, 5)
    bernoulli = heads.BernoulliHead()(tf.zeros([4, 7, 1]))
    assert (bernoulli.batch_shape, bernoulli.event_shape) == (tf.TensorShape([4, 7]), tf.TensorShape([1]))


@pytest.mark.parametrize("name", ["tfp_bnn.priors", "tfp_bnn.posteriors", "tfp_bnn.heads", "tfp_bnn.layers"])
def test_each_example_runs_pasted_on_its_own(name):
    # test_docstrings.py runs a module's examples in one namespace, in order: an example that
    # used a name only an earlier one imported (NormalPrior, MeanFieldNormal) passed there.
    failures = []
    for test in doctest.DocTestFinder().find(importlib.import_module(name)):
        if not test.examples or test.name == name:
            continue
        test.globs = {"__name__": "__main__"}
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        report = []
        runner.run(test, out=report.append)
        if runner.failures:
            failures.append("".join(report))
    assert failures == []
