"""What the two reference engines share: the training loop, input checks, the gradient's sign.

An engine derives from :class:`ReferenceNetwork` and supplies the tutorial's own parts:
``_train_one(label, sample, rate)`` (forward, deltas and update for one checked sample),
``get_gradient(label, sample)`` (the tutorial's ``delta * x``, sign ``-dE/dw``) and, if it
computes on something other than float64 numpy arrays, ``_values(array)`` to convert checked input.
"""

import numpy as np


class ReferenceNetwork:
    """The base of the object and the vectorized ``Network``: what does not depend on the engine.

    Expects ``self.sizes`` (the layer sizes, input first), set by the engine's ``__init__``.
    """

    # --- training -------------------------------------------------------------------------------

    def train(self, labels, data_set, rate, iteration):
        """Train by per-sample SGD: ``iteration`` passes over the samples, in the given order.

        Parameters
        ----------
        labels : array_like, shape (N, n_out)
            The target vector of each sample.
        data_set : array_like, shape (N, n_in)
            The samples.
        rate : float
            The learning rate ``eta``.
        iteration : int
            The number of epochs.
        """
        samples = self._as_rows(data_set, self.sizes[0], "data_set")
        targets = self._as_rows(labels, self.sizes[-1], "labels")
        if len(samples) != len(targets):
            raise ValueError(f"{len(samples)} samples but {len(targets)} labels")
        rate = float(rate)
        for _ in range(int(iteration)):
            for label, sample in zip(targets, samples):
                self._train_one(label, sample, rate)

    def train_one_sample(self, label, sample, rate):
        """One SGD step on one sample: forward, every error term, then every weight update.

        Parameters
        ----------
        label : array_like, shape (n_out,)
            The target vector ``t``.
        sample : array_like, shape (n_in,)
            The input ``x``.
        rate : float
            The learning rate ``eta``.
        """
        self._train_one(self._label(label), self._sample(sample), float(rate))

    def gradient(self, x, t):
        """The gradient ``dE/dW, dE/db`` of ``E = 1/2 sum (t - y)^2`` for one sample.

        Parameters
        ----------
        x : array_like, shape (n_in,)
            The input.
        t : array_like, shape (n_out,)
            The target vector.

        Returns
        -------
        list of (ndarray, ndarray)
            Per layer ``(dW, db)``, shapes (n_out, n_in) and (n_out,); ``-get_gradient(t, x)``.
        """
        return [(-gW, -gb) for gW, gb in self.get_gradient(t, x)]

    # --- input checking -------------------------------------------------------------------------

    @staticmethod
    def _values(array):
        """The engine's form of a checked float64 array: the array itself (numpy engines)."""
        return array

    def _sample(self, sample):
        """One input ``x``, checked to have ``n_in`` values, in the engine's form."""
        return self._as_vector(sample, self.sizes[0], "sample")

    def _label(self, label):
        """One target ``t``, checked to have ``n_out`` values, in the engine's form."""
        return self._as_vector(label, self.sizes[-1], "label")

    def _as_vector(self, values, n, name):
        """Return ``values`` as ``n`` float64s in the engine's form, or raise ``ValueError``."""
        array = np.asarray(values, dtype=np.float64)
        if array.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {array.shape}")
        return self._values(array)

    def _as_rows(self, values, n, name):
        """Return ``values`` as (N, n) float64s in the engine's form, or raise ``ValueError``."""
        array = np.asarray(values, dtype=np.float64)
        if array.ndim != 2 or array.shape[1] != n:
            raise ValueError(f"{name} must have shape (N, {n}), got {array.shape}")
        return self._values(array)
