"""fit stopped as Keras's training begins: for tests of what fit checks and warns before its first step.

fit's own checks and warnings (:meth:`tfp_bnn.models.BayesianModel.fit`) all come before Keras trains, so
stopping there runs every one of them, and Keras's data set-up, without tracing a train step (~6 s a model).
"""

import warnings

import pytest
import tf_keras


class TrainingBegins(Exception):
    """What the callback raises as training begins."""


class _StopAtTrainBegin(tf_keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        assert int(self.model.optimizer.iterations) == 0 and self.model.train_function is not None
        raise TrainingBegins


def warnings_before_training(model, x, y=None, **fit_kwargs):
    """Compiles ``model`` and returns the messages of the warnings ``fit(x, y, **fit_kwargs)`` gives before its first step."""
    model.compile(optimizer="adam")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(TrainingBegins):
            model.fit(x, y, epochs=1, verbose=0, callbacks=[_StopAtTrainBegin()], **fit_kwargs)
    return [str(w.message) for w in caught]
