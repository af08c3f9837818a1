"""tfp_bnn: Bayesian neural networks on TensorFlow Probability and tf-keras.

Build a model for one of the four regimes, train it with ``fit``, predict
with the aleatoric/epistemic split, score the predictive distribution:

>>> import tf_keras, tfp_bnn
>>> from tfp_bnn import data
>>> x, y = data.gap_regression(500, seed=0)  # 1-D toy data, a gap in the middle
>>> model = tfp_bnn.make_regressor((1,), hidden_units=(50,), train_size=len(x))
>>> model.compile(optimizer=tf_keras.optimizers.Adam(1e-2))
>>> history = model.fit(x, y, epochs=200, verbose=0)
>>> result = tfp_bnn.predict(model, [[0.0], [6.0]], num_samples=100, seed=0)
>>> result.mean.shape, result.aleatoric_stddev.shape, result.epistemic_stddev.shape
((2, 1), (2, 1), (2, 1))
>>> sorted(tfp_bnn.score(model, x, y, num_samples=100, seed=0))  # rmse, mixture NLL, 95 % interval
['coverage_95', 'nll', 'rmse', 'width_95']

Import ``tf_keras``, never ``tf.keras``: Keras 3 does not work with ``tfp.layers``.
"""

from tfp_bnn._quiet import import_tensorflow_quietly

import_tensorflow_quietly()

from tfp_bnn import (
    baselines, data, heads, layers, metrics, models, posteriors, prediction, priors, sampling, serving, validation,
)
from tfp_bnn.baselines import EnsembleDense, MCDropout
from tfp_bnn.heads import (
    BernoulliHead,
    BetaNegativeLogLikelihood,
    CategoricalHead,
    HomoscedasticNormalHead,
    NegativeLogLikelihood,
    NormalHead,
    PointClassHead,
    PointHead,
    PoissonHead,
    StudentTHead,
)
from tfp_bnn.layers import BayesianConv1D, BayesianConv2D, BayesianConv3D, BayesianDense
from tfp_bnn.models import (
    INFERENCE_METHODS, REGIMES, BayesianModel, make_classifier, make_regressor, posterior_as_prior,
)
from tfp_bnn.posteriors import FullCovarianceNormal, MeanFieldNormal
from tfp_bnn.prediction import ClassificationPrediction, RegressionPrediction, log_likelihoods, predict, score
from tfp_bnn.priors import GaussianPrior, NormalPrior, ScaleMixturePrior, TrainableNormalPrior

__version__ = "0.1.0"

__all__ = [
    "BayesianConv1D",
    "BayesianConv2D",
    "BayesianConv3D",
    "BayesianDense",
    "BayesianModel",
    "BernoulliHead",
    "BetaNegativeLogLikelihood",
    "CategoricalHead",
    "ClassificationPrediction",
    "EnsembleDense",
    "FullCovarianceNormal",
    "GaussianPrior",
    "HomoscedasticNormalHead",
    "INFERENCE_METHODS",
    "MCDropout",
    "MeanFieldNormal",
    "NegativeLogLikelihood",
    "NormalHead",
    "NormalPrior",
    "PointClassHead",
    "PointHead",
    "PoissonHead",
    "REGIMES",
    "RegressionPrediction",
    "ScaleMixturePrior",
    "StudentTHead",
    "TrainableNormalPrior",
    "baselines",
    "data",
    "heads",
    "layers",
    "log_likelihoods",
    "make_classifier",
    "make_regressor",
    "metrics",
    "models",
    "posterior_as_prior",
    "posteriors",
    "predict",
    "prediction",
    "priors",
    "sampling",
    "score",
    "serving",
    "validation",
]
