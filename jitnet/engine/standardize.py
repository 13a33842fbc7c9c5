"""Standardised inputs: each feature as its z-score, ``(x - mean) / std``, with the mean and the
standard deviation of the training samples (never of the data a model is tested on).

A network that carries a :class:`Standardization` (:attr:`jitnet.Network.standardization`)
takes raw inputs in every call and standardises them first, so that a saved model predicts on
raw rows as it was trained. A feature that is constant in the training samples (``std`` 0)
becomes 0 whatever its value. Shapes: ``mean, std: (n_in,)`` float64; ``X: (N, n_in)``.
"""

from typing import NamedTuple

import numpy as np

_ROWS = 1 << 16  # rows converted at a time: the float64 scratch stays a few MB per feature


class Standardization(NamedTuple):
    """The mean and standard deviation (population, ddof 0) of each input feature."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, X):
        """The standardisation of the samples ``X`` (N, n_in), N >= 1: float64 means and standard
        deviations, computed in two passes over bounded blocks of rows (exact for any N)."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"standardization needs samples of shape (N, n_in), N >= 1, got "
                             f"{X.shape}")
        total = np.zeros(X.shape[1])
        for block in _blocks(X):
            total += block.sum(axis=0, dtype=np.float64)
        mean = total / X.shape[0]
        squares = np.zeros(X.shape[1])
        for block in _blocks(X):
            deviation = block - mean
            squares += np.einsum("ij,ij->j", deviation, deviation)
        return cls(mean, np.sqrt(squares / X.shape[0]))

    def apply(self, X, dtype):
        """``(X - mean) / std`` as a new C-contiguous (N, n_in) array in ``dtype``; constant
        features (std 0) give 0."""
        inverse = np.divide(1.0, self.std, out=np.zeros_like(self.std), where=self.std > 0)
        out = np.empty(X.shape, dtype)
        for start in range(0, X.shape[0], _ROWS):
            block = np.subtract(X[start : start + _ROWS], self.mean, dtype=np.float64)
            block *= inverse
            out[start : start + _ROWS] = block
        return out


def _blocks(X):
    return (np.asarray(X[start : start + _ROWS], dtype=np.float64)
            for start in range(0, X.shape[0], _ROWS))


def check_standardization(value, n_inputs, name="standardization"):
    """None, or a :class:`Standardization` of ``n_inputs`` finite means and finite
    non-negative standard deviations (float64 copies); ValueError naming ``name`` otherwise."""
    if value is None:
        return None
    try:
        mean, std = value
        mean = np.array(mean, dtype=np.float64)
        std = np.array(std, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (mean, std) pair of arrays") from None
    if mean.shape != (n_inputs,) or std.shape != (n_inputs,):
        raise ValueError(f"{name} must hold {n_inputs} means and {n_inputs} standard "
                         f"deviations, got shapes {mean.shape} and {std.shape}")
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std >= 0).all()):
        raise ValueError(f"{name} must hold finite means and finite standard deviations >= 0")
    return Standardization(mean, std)
