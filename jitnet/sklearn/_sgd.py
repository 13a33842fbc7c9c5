"""Per-sample SGD as scikit-learn's ``SGDOptimizer`` runs it with ``batch_size=1``, each epoch one
compiled call of jitnet's engine.

Two pieces: :class:`SGDOptimizer`, the state scikit-learn keeps between epochs and between
``partial_fit`` calls (the learning rate of its schedule and the velocities), and
:class:`EngineEpochs`, which loads an estimator's ``coefs_``/``intercepts_`` into a
:class:`jitnet.Network` once per ``fit`` and trains it an epoch at a time.

Layouts: scikit-learn's ``coefs_[l]`` is (n_in, n_out); the engine's ``W[l]`` is (n_out, n_in).
Velocities are kept in scikit-learn's layout (the list ``coefs_ + intercepts_``), as its
optimizer keeps them, so that a fitted estimator's state does not depend on the engine's.
"""

import numpy as np

from jitnet.engine import training
from jitnet.engine.checks import check_positive
from jitnet.engine.network import Network

#: scikit-learn's hidden activations by the engine's names.
ENGINE_ACTIVATIONS = {"logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
                      "identity": "identity"}
#: scikit-learn's output activations and the engine's loss that trains them.
ENGINE_LOSSES = {"softmax": "cross_entropy", "logistic": "binary_cross_entropy",
                 "identity": "squared_error", "exp": "poisson"}


class SGDOptimizer:
    """The learning rate and momentum velocities of scikit-learn's SGD, between epochs.

    Attributes
    ----------
    learning_rate : float
        The rate of the next epoch: ``learning_rate_init``, then as the schedule sets it at
        the end of each epoch (``invscaling``) or when training stalls (``adaptive``).
    velocities : list of ndarray or None
        Momentum's velocities, shaped like ``coefs_ + intercepts_``; None until an epoch has
        trained with momentum.
    """

    def __init__(self, learning_rate_init, lr_schedule, momentum, nesterov, power_t):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.lr_schedule = lr_schedule
        self.momentum = momentum
        self.nesterov = nesterov
        self.power_t = power_t
        self.velocities = None

    def iteration_ends(self, time_step):
        """At the end of an epoch, after ``time_step`` samples in all: invscaling's new rate."""
        if self.lr_schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        """Whether training stalled for good; 'adaptive' first divides the rate by 5 instead."""
        if self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


def _pairs(coefs, intercepts):
    """The engine's (W (n_out, n_in), b) pairs of scikit-learn's (n_in, n_out) coefs."""
    return [(c.T, b) for c, b in zip(coefs, intercepts)]


class EngineEpochs:
    """One :class:`jitnet.Network` holding an estimator's weights during one ``fit`` call.

    Parameters
    ----------
    coefs, intercepts : list of ndarray
        The starting weights in scikit-learn's layout (``coefs_``, ``intercepts_``).
    activation, out_activation : str
        scikit-learn's names of the hidden and the output units.
    dtype : {'float64', 'float32'}
    X : ndarray, (N, n_in), float32 or float64
        The training inputs (validated by the estimator: finite, dense).
    Y : ndarray, (N, n_out)
        The targets as scikit-learn's loss sees them (one-hot rows for softmax).
    sample_weight : ndarray, (N,), or None
        Non-negative weights. With one sample per update scikit-learn divides each sample's
        gradient by its weight, so that a weight cancels out of the data term and divides the
        L2 penalty; a sample of weight 0 (NaN weights in scikit-learn) is skipped here.
    alpha : float
        scikit-learn's L2 penalty strength.
    optimizer : SGDOptimizer
    threads : int
        The engine's threads per sample (1: serial and deterministic).
    """

    def __init__(self, coefs, intercepts, activation, out_activation, dtype, X, Y, sample_weight,
                 alpha, optimizer, threads=1):
        sizes = [coefs[0].shape[0]] + [c.shape[1] for c in coefs]
        self.net = Network(sizes, activation=ENGINE_ACTIVATIONS[activation], dtype=dtype,
                           loss=ENGINE_LOSSES[out_activation], seed=0)
        self.net.set_weights(_pairs(coefs, intercepts))
        self.optimizer = optimizer
        self.mu = float(optimizer.momentum)
        if self.mu > 0.0 and optimizer.velocities is not None:
            n = len(coefs)
            self.net.velocity = self._flat(optimizer.velocities[:n], optimizer.velocities[n:])
        # The estimator has validated X (finite float32/float64) and built Y (one row per
        # sample, as the loss wants it): converted once here, trusted by every epoch. Read-only
        # arrays (a memmap) are copied: Numba would compile every kernel again for them.
        self.X = np.require(X, requirements=("C", "W"))
        self.T = np.require(Y, dtype=self.net.dtype, requirements=("C", "W"))
        self.threads = threads
        self.kept = None if sample_weight is None or sample_weight.all() else sample_weight != 0
        self.l2 = None
        if alpha > 0:  # alpha / weight per sample (skipped samples never read theirs)
            weight = np.ones(len(X)) if sample_weight is None else sample_weight
            self.l2 = np.divide(float(alpha), weight, out=np.zeros(len(X)), where=weight != 0)
            if self.kept is not None:
                self.l2[~self.kept] = self.l2[self.kept][0]  # one value when the rest agree

    def _flat(self, coefs, intercepts):
        """A flat buffer laid out like the network's params, from (n_in, n_out) arrays."""
        holder = self.net.copy()
        holder.set_weights(_pairs(coefs, intercepts))
        return holder.params.copy()

    def _unflat(self, flat):
        """(coefs, intercepts) in scikit-learn's layout, from a buffer laid out like params."""
        holder = self.net.copy()
        holder.params[...] = flat
        pairs = holder.get_weights()
        return [np.ascontiguousarray(W.T) for W, _ in pairs], [b for _, b in pairs]

    def epoch(self, order):
        """One pass over the samples in ``order`` at the optimizer's rate; the mean loss."""
        eta = check_positive("learning rate", self.optimizer.learning_rate, self.net.dtype)
        if self.kept is not None:
            order = order[self.kept[order]]
        order = np.ascontiguousarray(order, dtype=np.int64)
        return training.run_epoch(self.net, self.X, self.T, eta, 1.0, order, mu=self.mu,
                                  threads=self.threads, nesterov=self.optimizer.nesterov,
                                  l2=self.l2)

    def weights(self):
        """(coefs, intercepts): copies of the network's weights in scikit-learn's layout."""
        return self._unflat(self.net.params)

    def save_velocities(self):
        """Store the network's velocities in the optimizer (scikit-learn's layout)."""
        if self.net.velocity is not None:
            coefs, intercepts = self._unflat(self.net.velocity)
            self.optimizer.velocities = coefs + intercepts
