"""The README's Python examples run as written, in order, in one namespace, and do what they say.

The one that asks a running TF Serving for an answer is left out (no server in
the test run); tests/test_serving.py checks the gRPC client on a loopback server.
"""

import os
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
import tf_keras

import tfp_bnn

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
NEEDS_SERVER = [block for block in BLOCKS if "localhost:8500" in block]
RUNNABLE = [block for block in BLOCKS if block not in NEEDS_SERVER]


@pytest.fixture(scope="module")
def after(tmp_path_factory):
    """The README's namespace after each runnable block, run once in order (a shallow copy per block)."""
    folder = tmp_path_factory.mktemp("readme")
    cwd = os.getcwd()
    os.chdir(folder)  # model.save("model.keras") writes here
    tf_keras.utils.set_random_seed(0)
    namespace, states = {"__name__": "readme"}, []
    try:
        for block in RUNNABLE:
            exec(compile(block, str(README), "exec"), namespace)
            states.append(dict(namespace))
    finally:
        os.chdir(cwd)
    return states


def test_the_readme_holds_the_examples_checked_here():
    assert len(BLOCKS) == 6 and len(NEEDS_SERVER) == 1 and len(RUNNABLE) == 5


def test_quickstart_trains_a_bayesian_regressor_more_uncertain_off_the_data(after):
    result, x_test = after[0]["result"], after[0]["x_test"][:, 0]
    assert isinstance(result, tfp_bnn.RegressionPrediction) and result.mean.shape == (121, 1)
    inside = np.abs(x_test) <= 3.0
    epistemic = result.epistemic_stddev[:, 0]
    assert epistemic[np.abs(x_test) >= 5.0].mean() > 3.0 * epistemic[inside].mean()  # 10.6x
    np.testing.assert_allclose(result.stddev ** 2, result.aleatoric_stddev ** 2 + result.epistemic_stddev ** 2,
                               rtol=1e-4)
    truth = tfp_bnn.data.gap_regression_mean(x_test[inside])
    assert np.sqrt(np.mean((result.mean[inside, 0] - truth) ** 2)) < 0.25  # 0.13

    # The held-out scores, beside those of the true distribution on the same points.
    scores, x_new, y_new = (after[0][name] for name in ("scores", "x_new", "y_new"))
    mean, noise = (f(x_new[:, 0]) for f in (tfp_bnn.data.gap_regression_mean, tfp_bnn.data.gap_regression_noise_std))
    oracle_nll = -np.mean(stats.norm.logpdf(y_new, mean, noise))  # 0.131
    assert scores["nll"] < oracle_nll + 0.1  # 0.178
    assert scores["rmse"] < 1.1 * np.sqrt(np.mean((y_new - mean) ** 2))  # 0.382 against 0.366
    oracle_coverage = np.mean(np.abs(y_new - mean) < stats.norm.ppf(0.975) * noise)  # 0.94
    assert abs(scores["coverage_95"] - oracle_coverage) <= 0.03  # 0.936


def test_classifier_and_its_save_and_load_predict_the_same(after):
    result, iris = after[1]["result"], after[1]["iris"]
    assert result.probabilities.shape == (5, 3)
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert (result.probabilities.argmax(axis=1) == iris.y[:5]).all()  # setosa, the easy class
    saved, loaded = after[1]["model"], after[2]["model"]
    assert loaded is not saved
    before, again = (tfp_bnn.predict(model, iris.x, num_samples=20, seed=3) for model in (saved, loaded))
    np.testing.assert_array_equal(again.probabilities, before.probabilities)


def test_ensemble_example_trains_five_members_that_disagree_off_the_data(after):
    result = tfp_bnn.predict(after[3]["model"], [[0.5], [6.0]], num_samples=5, seed=0)
    assert result.epistemic_stddev[1, 0] > 2.0 * result.epistemic_stddev[0, 0] > 0.0  # 2.84 vs 0.069


def test_custom_network_example_builds_a_bayesian_cnn(after):
    model = after[4]["model"]
    assert isinstance(model, tfp_bnn.BayesianModel) and model.output_shape == (None, 10)
    assert len(model.losses) == 2  # one KL term per Bayesian layer


def test_every_module_in_the_pieces_table_is_an_attribute_of_tfp_bnn():
    # The table names `tfp_bnn.data`, `tfp_bnn.models`, ...: each must work after `import tfp_bnn`
    # (tfp_bnn.data had raised AttributeError). plots needs matplotlib: its users import it.
    pieces = README.read_text().split("## The pieces", 1)[1].split("\n## ", 1)[0]
    modules = re.findall(r"^\| `tfp_bnn\.(\w+)` \|", pieces, flags=re.M)
    assert len(modules) >= 12, modules
    for module in modules:
        if module != "plots":
            assert getattr(tfp_bnn, module).__name__ == f"tfp_bnn.{module}"
            assert module in tfp_bnn.__all__, module


def test_classifier_example_is_more_uncertain_off_the_data(after):
    # The example's result.mutual_information must carry an epistemic signal: at 100 epochs of
    # Adam(1e-3) the posterior had not left its narrow start (KL/N 17.1 -> 15.9), the mutual
    # information was ~8e-5 nats everywhere, and lower far off the data than on it.
    model, iris = after[1]["model"], after[1]["iris"]
    far = iris.x.mean(0) + 9 * iris.x.std(0) * np.random.default_rng(0).standard_normal((300, 4))
    at_data, off_data = (
        tfp_bnn.predict(model, x.astype("float32"), num_samples=100, seed=0).mutual_information for x in (iris.x, far)
    )
    assert at_data.mean() > 1e-2
    assert off_data.mean() > 2 * at_data.mean()
