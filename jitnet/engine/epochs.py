"""The epoch and inference kernels: the per-sample step of :mod:`jitnet.engine.kernels` run over a
whole epoch or a batch of rows, one compiled call each (layout legend in
:mod:`jitnet.engine.buffers`). ``_train_epoch`` and ``_train_epoch_distorted`` are the entry
points of the training methods; both call the one compiled :func:`_epoch`.
"""

from jitnet.engine.buffers import _layer, _row, _whole
from jitnet.engine.jit import jit
from jitnet.engine.extras import _gap, _lag_of
from jitnet.engine.kernels import _forward, _gather_input, _lag, _train_samples


@jit
def _finish_momentum_epoch(params, layout, momentum, extras):
    """Bring every lagging first-layer row up to date (see the kernels' momentum section; with
    ``extras`` through A^d, :mod:`jitnet.engine.extras`) and restart the clock."""
    block = _whole(params, layout)
    for i in range(layout.sizes[0]):
        if extras is not None:
            d = _gap(momentum, i)
            if d > 0:
                shrink, gain, pull, decay = _lag_of(momentum, extras, d)
                w = _row(params, block, i)
                v = _row(momentum.velocity, block, i)
                for j in range(w.shape[0]):
                    w[j], v[j] = shrink * w[j] + gain * v[j], pull * w[j] + decay * v[j]
        else:
            gain, decay = _lag(momentum, i)
            if gain != 0.0:
                w = _row(params, block, i)
                v = _row(momentum.velocity, block, i)
                for j in range(w.shape[0]):
                    w[j] += gain * v[j]
                    v[j] *= decay
        momentum.last[i] = -1
    momentum.clock[0] = 0


# -- epochs and inference -------------------------------------------------------------------------


@jit
def _epoch(params, layout, scratch, X, T, order, scale, eta, hidden, output, momentum, distorter,
           extras):
    """The compiled serial epoch, :func:`jitnet.engine.kernels._train_samples` over the whole
    first layer; ``momentum``, ``distorter`` and ``extras`` None when off. Numba compiles each
    combination of None and not on its first use, so a plain run never waits for the momentum
    code."""
    return _train_samples(params, layout, _whole(params, layout), None, scratch, X, T, order,
                          scale, eta, hidden, output, momentum, distorter, extras)


def _train_epoch(params, layout, scratch, X, T, order, scale, eta, hidden, output, momentum,
                 extras=None):
    """One SGD update per sample, samples in ``order``; returns the summed loss (before updates).

    X: (N, n_0) uint8 or float, T: (N, n_L), order: (M,) sample indices. With momentum.mu > 0
    or ``extras`` call :func:`_finish_momentum_epoch` after the epoch's last chunk. Serial and
    deterministic: the same inputs give bitwise the same weights.
    """
    return _epoch(params, layout, scratch, X, T, order, scale, eta, hidden, output,
                  _lagging(momentum, extras), None, extras)


def _train_epoch_distorted(params, layout, scratch, X, T, order, scale, eta, hidden, output,
                           momentum, distorter, extras=None):
    """:func:`_train_epoch` on freshly distorted samples; returns the summed loss.

    The k-th sample visited, X[order[k]], is distorted with ``distorter.draws[k]`` into the one
    buffer ``distorter.x`` (times ``scale``; ``distort_kernels._distort_sample``), and the SGD
    step runs on that buffer with scale 1. The data set is never copied and nothing is
    allocated per sample. With the identity draw (every parameter 0) the buffer holds exactly
    the values :func:`_gather_input` would compute, so the weights equal :func:`_train_epoch`'s
    bitwise. Serial and deterministic.
    """
    return _epoch(params, layout, scratch, X, T, order, scale, eta, hidden, output,
                  _lagging(momentum, extras), distorter, extras)


def _lagging(momentum, extras):
    """The momentum state the kernels take: None for plain SGD (mu = 0 and no extras)."""
    return momentum if momentum.mu > 0.0 or extras is not None else None


@jit
def _argmax(y):
    """Index of the largest entry (the first one on ties), the tutorial's get_result."""
    best = 0
    for k in range(1, y.shape[0]):
        if y[k] > y[best]:
            best = k
    return best


@jit
def _forward_rows(params, layout, scratch, X, scale, hidden, output, y_out, class_out):
    """Forward pass of every row s of X: the index of its largest output (the tutorial's
    get_result) into class_out[s], and its outputs into y_out[s] when y_out has rows."""
    L = layout.sizes.shape[0] - 1
    keep_outputs = y_out.shape[0] > 0
    block = _whole(params, layout)
    for s in range(X.shape[0]):
        nnz = _gather_input(X[s], scale, scratch.nz_idx, scratch.nz_val)
        _forward(params, layout, scratch, nnz, hidden, output, block)
        y = _layer(scratch.act, layout, L)
        if keep_outputs:
            y_out[s, :] = y
        class_out[s] = _argmax(y)
