"""The loss E of one sample for every loss a network can train, in float64 from its outputs y
and target t: what :func:`jitnet.gradient_check` differentiates numerically, each the loss the
engine back-propagates (``delta = -dE/dz = t - y`` for every loss but the tutorial's squared
error, whose output error term is ``f'(z) (t - y)``)."""

import numpy as np


def squared_error(y, t):
    """The tutorial's error of one sample, ``E = 1/2 sum (t - y)^2`` (float64); also the loss
    the ``squared_error`` (identity) outputs train, whose reported loss is its mean over the
    outputs, as scikit-learn reports it."""
    d = np.asarray(t, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    return 0.5 * float(np.dot(d, d))


def cross_entropy(y, t):
    """The cross-entropy of one sample's softmax outputs ``y``, ``E = -sum t log y`` (float64;
    terms with ``t = 0`` count 0)."""
    y = np.asarray(y, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(t != 0, t * np.log(y), 0.0)
    return -float(np.sum(terms))


def binary_cross_entropy(y, t):
    """The binary log-loss of logistic outputs, ``E = -sum t log y + (1 - t) log(1 - y)``."""
    y = np.asarray(y, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    return cross_entropy(y, t) + cross_entropy(1.0 - y, 1.0 - t)


def poisson(y, t):
    """The Poisson deviance of exp outputs, ``E = sum t log(t / y) - t + y`` (0 log 0 = 0)."""
    y = np.asarray(y, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    return cross_entropy(y, t) - cross_entropy(t, t) + float(np.sum(y - t))


#: E by the name of a network's loss.
BY_NAME = {"squared": squared_error, "squared_error": squared_error,
           "cross_entropy": cross_entropy, "binary_cross_entropy": binary_cross_entropy,
           "poisson": poisson}
