"""What a network is made of, by name: unit activations, losses, initial weights, targets.

Each name is checked here, once, when a network is built or a model file is read.
"""

import math

import numpy as np

from jitnet.engine import codes

#: The tutorial's targets for the squared error: 0.9 for the true class, 0.1 elsewhere.
TARGET_ON = 0.9
TARGET_OFF = 0.1

#: The tutorial's hidden-unit activations (the recipes' and the command line's) and their kernel
#: codes.
ACTIVATIONS = {
    "sigmoid": codes.SIGMOID,
    "tanh": codes.TANH,
    "scaled_tanh": codes.SCALED_TANH,
    "relu": codes.RELU,
}
#: Every hidden unit a network takes: the tutorial's and the identity (scikit-learn's).
UNITS = {**ACTIVATIONS, "identity": codes.IDENTITY}
#: Output activations: those of the squared error (sigmoid, tanh, scaled_tanh), and one per
#: loss that names its own output (see :data:`LOSS_OUTPUTS`).
OUTPUTS = {"sigmoid": codes.SIGMOID, "tanh": codes.TANH,
           "scaled_tanh": codes.SCALED_TANH, "softmax": codes.SOFTMAX,
           "logistic": codes.LOGISTIC, "identity": codes.IDENTITY, "exp": codes.EXP}
#: The losses that come with their own output units (scikit-learn's canonical pairs, each
#: with the output error term delta = t - y):
#: ``cross_entropy`` softmax, E = -sum t log y;
#: ``binary_cross_entropy`` logistic (sigmoid) units, E = -sum t log y + (1 - t) log(1 - y),
#: y clipped to [eps, 1 - eps] as scikit-learn clips it (binary and multilabel problems);
#: ``squared_error`` identity units, E = 1/2 mean over outputs of (t - y)^2, scikit-learn's
#: reported loss (its gradient, and so delta, is that of the sum: regression);
#: ``poisson`` exp units, E = sum t log(t / y) - t + y (counts).
LOSS_OUTPUTS = {"cross_entropy": "softmax", "binary_cross_entropy": "logistic",
                "squared_error": "identity", "poisson": "exp"}
#: The tutorial's losses (the recipes' and the command line's).
LOSSES = ("squared", "cross_entropy")
#: Every loss a network takes: the tutorial's and scikit-learn's.
ALL_LOSSES = ("squared",) + tuple(LOSS_OUTPUTS)
INITS = ("tutorial", "glorot", "lecun", "he", "uniform:A")


def check_activation(activation):
    if activation not in UNITS:
        raise ValueError(f"activation must be one of {', '.join(UNITS)}; got {activation!r}")
    return activation


def check_loss(loss, n_outputs):
    if loss not in ALL_LOSSES:
        raise ValueError(f"loss must be one of {', '.join(ALL_LOSSES)}; got {loss!r}")
    if loss == "cross_entropy" and n_outputs < 2:
        raise ValueError("loss 'cross_entropy' needs at least 2 outputs (a softmax over one "
                         "output is always 1)")
    return loss


def output_activation(activation, loss):
    """The output layer's activation: the one a loss names (:data:`LOSS_OUTPUTS`); with the
    squared error the hidden activation, except a sigmoid for relu (a relu output aiming at a
    0.1 target can die) and identity (the 0.9/0.1 targets are a squashing unit's)."""
    if loss in LOSS_OUTPUTS:
        return LOSS_OUTPUTS[loss]
    return "sigmoid" if activation in ("relu", "identity") else activation


def check_init(init):
    """The canonical name of an initialisation: one of :data:`INITS`, ``uniform:A`` with A > 0."""
    if isinstance(init, str) and init.startswith("uniform:"):
        try:
            limit = float(init.split(":", 1)[1])
        except ValueError:
            limit = math.nan
        if not (math.isfinite(limit) and limit > 0):
            raise ValueError(f"init 'uniform:A' needs a positive number A, got {init!r}")
        return f"uniform:{limit!r}"
    if init not in INITS[:-1]:
        raise ValueError(f"init must be one of {', '.join(INITS)}; got {init!r}")
    return init


def draw_initial_weights(weights, biases, init, rng):
    """Fill the (n_out, n_in) ``weights`` and (n_out,) ``biases`` views, layer by layer.

    ``tutorial``: W and b uniform(-0.1, 0.1), drawn W then b per layer (the tutorial's).
    ``uniform:A``: the same with uniform(-A, A). The others draw W uniform(-s, s), b = 0:
    ``glorot`` s = sqrt(6 / (n_in + n_out)) (variance 2 / (n_in + n_out)), ``lecun``
    s = sqrt(3 / n_in) (variance 1 / n_in), ``he`` s = sqrt(6 / n_in) (variance 2 / n_in).
    """
    for W, b in zip(weights, biases):
        n_out, n_in = W.shape
        if init == "tutorial" or init.startswith("uniform:"):
            limit = 0.1 if init == "tutorial" else float(init.split(":", 1)[1])
            W[...] = rng.uniform(-limit, limit, size=W.shape)
            b[...] = rng.uniform(-limit, limit, size=b.shape)
            continue
        spread = {"glorot": 6.0 / (n_in + n_out), "lecun": 3.0 / n_in, "he": 6.0 / n_in}[init]
        W[...] = rng.uniform(-math.sqrt(spread), math.sqrt(spread), size=W.shape)
        b[...] = 0.0


def one_hot_targets(labels, n_classes, dtype=np.float64):
    """Target vectors for integer labels: TARGET_ON (0.9) at the label, TARGET_OFF (0.1) elsewhere.

    Parameters
    ----------
    labels : array_like of int, shape (N,)
        Class indices in ``[0, n_classes)`` (not checked here).
    n_classes : int
    dtype : floating dtype

    Returns
    -------
    numpy.ndarray, shape (N, n_classes)
    """
    labels = np.asarray(labels)
    targets = np.full((labels.shape[0], n_classes), TARGET_OFF, dtype=dtype)
    targets[np.arange(labels.shape[0]), labels] = TARGET_ON
    return targets


def label_targets(labels, n_outputs, loss, dtype):
    """(N, n_outputs) targets for integer labels: 0.9 at the label and 0.1 elsewhere for the
    squared error (the tutorial's), one-hot 1/0 for the other losses."""
    if loss == "squared":
        return one_hot_targets(labels, n_outputs, dtype)
    targets = np.zeros((labels.shape[0], n_outputs), dtype)
    targets[np.arange(labels.shape[0]), labels] = 1.0
    return targets


def check_distributions(T):
    """Cross-entropy targets must be distributions: rows of non-negative values summing to 1."""
    if T.size == 0:
        return T
    tolerance = max(1e-6, 4 * T.shape[1] * np.finfo(T.dtype).eps)
    sums = T.sum(axis=1, dtype=np.float64)
    if T.min() < 0 or np.abs(sums - 1.0).max() > tolerance:
        worst = int(np.argmax(np.abs(sums - 1.0) + (T.min(axis=1) < 0)))
        raise ValueError(
            "targets for the cross-entropy loss must be distributions (non-negative, each row "
            f"summing to 1); row {worst} sums to {sums[worst]:.6g} with smallest value "
            f"{T[worst].min():.3g}"
        )
    return T
