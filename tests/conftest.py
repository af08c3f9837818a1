"""Shared test set-up: quiet TensorFlow, fixed seeds, small helpers."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest
import tf_keras


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same Python, NumPy and TensorFlow seeds."""
    tf_keras.utils.set_random_seed(1234)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)
