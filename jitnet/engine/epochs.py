"""The momentum, epoch and inference kernels: the per-sample steps of :mod:`jitnet.engine.kernels`
run over a whole epoch or a batch of rows, one compiled call each (same layout legend).

Every name here is also reachable as ``jitnet.engine.kernels.<name>``.
"""

from jitnet.engine.distort_kernels import _distort_sample
from jitnet.engine.kernels import (
    _deltas,
    _first_layer,
    _forward,
    _gather_input,
    _jit,
    _jit_inline,
    _later_layers,
    _layer,
    _row0,
    _update,
)

# -- momentum ------------------------------------------------------------------------------------
#
# Classical momentum: v = mu v + eta delta x; w += v, with a velocity buffer laid out like params.
# A first-layer row whose input is zero still moves (v = mu v; w += v) every sample; doing that
# eagerly would touch all n_0 rows per sample instead of the ~150 non-zero ones. Instead row i
# lags: after d samples at zero input its true weights are w + (mu + ... + mu^d) v and its
# velocity mu^d v -- the same sums, at once, from the tables ``gain[d]`` and ``decay[d]``
# (they end where mu^d has underflowed to 0, so that longer gaps read their last entries).
# The tables have the network's dtype: a float64 factor in these loops halves the float32
# SIMD width (measured: 1.6x slower momentum). The forward pass reads a lagging row as
# w + gain[d] v, the update
# writes it back up to date, and the end of the epoch brings every row up to date.
# ``last[i]``: the sample (counted by ``clock[0]`` from the start of the epoch) through which
# row i is up to date.


@_jit_inline
def _lag(momentum, i):
    """(gain, decay) of first-layer row i's samples at zero input since its last update."""
    d = min(momentum.clock[0] - 1 - momentum.last[i], momentum.decay.shape[0] - 1)
    return momentum.gain[d], momentum.decay[d]


@_jit_inline
def _first_layer_lagging(params, layout, scratch, nnz, momentum):
    """:func:`_first_layer` with each row read as its up-to-date weights w + gain v."""
    n1 = layout.sizes[1]
    z = _layer(scratch.act, layout, 1)
    z[:] = params[layout.b_off[0] : layout.b_off[0] + n1]
    for p in range(nnz):
        i = scratch.nz_idx[p]
        x = scratch.nz_val[p]
        w = _row0(params, layout, i)
        gain, _ = _lag(momentum, i)
        if gain == 0.0:
            for j in range(n1):
                z[j] += x * w[j]
        else:
            v = _row0(momentum.velocity, layout, i)
            for j in range(n1):
                z[j] += x * (w[j] + gain * v[j])


@_jit_inline
def _update_momentum(params, layout, scratch, nnz, eta, momentum):
    """Eq. 5 with momentum, for every layer of one sample; lagging first-layer rows catch up."""
    sizes, act, delta = layout.sizes, scratch.act, scratch.delta
    mu, velocity = momentum.mu, momentum.velocity
    n1 = sizes[1]
    d = _layer(delta, layout, 1)
    for p in range(nnz):
        i = scratch.nz_idx[p]
        w = _row0(params, layout, i)
        v = _row0(velocity, layout, i)
        gain, decay = _lag(momentum, i)
        g = eta * scratch.nz_val[p]
        for j in range(n1):
            v_now = mu * (decay * v[j]) + g * d[j]
            w[j] = (w[j] + gain * v[j]) + v_now
            v[j] = v_now
        momentum.last[i] = momentum.clock[0]
    start = layout.b_off[0]
    for j in range(n1):
        velocity[start + j] = mu * velocity[start + j] + eta * d[j]
        params[start + j] += velocity[start + j]
    for l in range(1, sizes.shape[0] - 1):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        a_prev = _layer(act, layout, l)
        d = _layer(delta, layout, l + 1)
        for j in range(n_out):
            g = eta * d[j]
            start = layout.w_off[l] + j * n_in
            w = params[start : start + n_in]
            v = velocity[start : start + n_in]
            for i in range(n_in):
                v[i] = mu * v[i] + g * a_prev[i]
                w[i] += v[i]
            k = layout.b_off[l] + j
            velocity[k] = mu * velocity[k] + g
            params[k] += velocity[k]
    momentum.clock[0] += 1


@_jit
def _finish_momentum_epoch(params, layout, momentum):
    """Bring every lagging first-layer row up to date and restart the clock."""
    for i in range(layout.sizes[0]):
        gain, decay = _lag(momentum, i)
        if gain != 0.0:
            w = _row0(params, layout, i)
            v = _row0(momentum.velocity, layout, i)
            for j in range(w.shape[0]):
                w[j] += gain * v[j]
                v[j] *= decay
        momentum.last[i] = -1
    momentum.clock[0] = 0


# -- epochs and inference -------------------------------------------------------------------------


@_jit_inline
def _step(params, layout, scratch, nnz, t, eta, hidden, output, momentum):
    """One sample's SGD step on its gathered non-zero inputs: forward, error terms, update
    (with momentum when momentum.mu > 0); returns its loss, measured before the update."""
    if momentum.mu > 0.0:
        _first_layer_lagging(params, layout, scratch, nnz, momentum)
    else:
        _first_layer(params, layout, scratch, nnz)
    _later_layers(params, layout, scratch, hidden, output)
    loss = _deltas(params, layout, scratch, t, hidden, output)
    if momentum.mu > 0.0:
        _update_momentum(params, layout, scratch, nnz, eta, momentum)
    else:
        _update(params, layout, scratch, nnz, eta)
    return loss


@_jit
def _train_epoch(params, layout, scratch, X, T, order, scale, eta, hidden, output, momentum):
    """One SGD update per sample, samples in ``order``; returns the summed loss (before updates).

    X: (N, n_0) uint8 or float, T: (N, n_L), order: (M,) sample indices. With momentum.mu > 0
    call :func:`_finish_momentum_epoch` after the epoch's last chunk. Serial and deterministic:
    the same inputs give bitwise the same weights.
    """
    total = 0.0
    for s in order:
        nnz = _gather_input(X[s], scale, scratch.nz_idx, scratch.nz_val)
        total += _step(params, layout, scratch, nnz, T[s], eta, hidden, output, momentum)
    return total


@_jit
def _train_epoch_distorted(params, layout, scratch, X, T, order, scale, eta, hidden, output,
                           momentum, distorter):
    """:func:`_train_epoch` on freshly distorted samples; returns the summed loss.

    The k-th sample visited, X[order[k]], is distorted with ``distorter.draws[k]`` into the one
    buffer ``distorter.x`` (times ``scale``; :func:`jitnet.engine.distort_kernels._distort_sample`),
    and the SGD step runs on that buffer with scale 1. The data set is never copied and nothing
    is allocated per sample. With the identity draw (every parameter 0) the buffer holds exactly
    the values :func:`_gather_input` would compute, so the weights equal :func:`_train_epoch`'s
    bitwise. Serial and deterministic.
    """
    total = 0.0
    x = distorter.x
    for k in range(order.shape[0]):
        s = order[k]
        _distort_sample(X[s], distorter.rows, distorter.cols, scale, distorter.draws[k],
                        distorter.bank, distorter.work, distorter.index, x)
        nnz = _gather_input(x, 1.0, scratch.nz_idx, scratch.nz_val)
        total += _step(params, layout, scratch, nnz, T[s], eta, hidden, output, momentum)
    return total


@_jit
def _argmax(y):
    """Index of the largest entry (the first one on ties), the tutorial's get_result."""
    best = 0
    for k in range(1, y.shape[0]):
        if y[k] > y[best]:
            best = k
    return best


@_jit
def _forward_rows(params, layout, scratch, X, scale, hidden, output, y_out, class_out):
    """Forward pass of every row s of X: the index of its largest output (the tutorial's
    get_result) into class_out[s], and its outputs into y_out[s] when y_out has rows."""
    L = layout.sizes.shape[0] - 1
    keep_outputs = y_out.shape[0] > 0
    for s in range(X.shape[0]):
        nnz = _gather_input(X[s], scale, scratch.nz_idx, scratch.nz_val)
        _forward(params, layout, scratch, nnz, hidden, output)
        y = _layer(scratch.act, layout, L)
        if keep_outputs:
            y_out[s, :] = y
        class_out[s] = _argmax(y)
