"""The compiled (``@njit``) per-sample step of jitnet, the tutorial's SGD, written once: every
epoch (:mod:`jitnet.engine.epochs`: plain, momentum, distorted; :mod:`jitnet.engine.parallel`:
one rank's block of a team) and inference call the functions here.

The buffers, their layout and the tuples that carry them are stated once, in
:mod:`jitnet.engine.buffers`.

The equations are the tutorial's: Eq. 1/2 forward ``a = f(W a_prev + b)`` with the bias as the
weight of a constant input 1 (:func:`_first_layer`, :func:`_later_layers`); Eq. 3 output error
term ``delta = f'(z)(t - y)`` (``t - y`` for a softmax output with cross-entropy;
:func:`_output_delta`); Eq. 4 hidden error term ``delta = f'(z) * sum_k w_kj delta_k``
(:func:`_hidden_delta`); Eq. 5 update ``w += eta * delta * x`` (with momentum: ``v = mu v + eta
delta x; w += v``; :func:`_update_row`). All error terms of a sample are
computed from the weights before that sample's update, as in the tutorial; ``delta`` is
``-dE/dz``. :func:`_step` is one sample's SGD step, made of them.

The unit non-linearity ``f`` is an integer activation code (``SIGMOID``, ``TANH``,
``SCALED_TANH``, ``RELU``; ``SOFTMAX`` for the output only): ``hidden`` for layers 1..L-1 and
``output`` for layer L (:mod:`jitnet.engine.activations`). Kernels take only arrays, scalars and
the tuples, write into the buffers they are given and allocate nothing per sample.
"""

import numpy as np

from jitnet.engine.activations import _activate, _derivative  # noqa: F401 (_activate: tests)
from jitnet.engine.codes import (  # noqa: F401 (the codes are part of the kernels' vocabulary)
    RELU,
    SCALED_TANH,
    SIGMOID,
    SOFTMAX,
    TANH,
)
from jitnet.engine.buffers import (  # noqa: F401 (the tuples and row_stride: re-exported)
    Block,
    Distorter,
    Layout,
    Momentum,
    Rank,
    Scratch,
    _bias,
    _layer,
    _row,
    _whole,
    _still,
    row_stride,
)
from jitnet.engine.jit import jit, jit_inline, jit_ordered
from jitnet.engine.sync import ABORT, _barrier


@jit
def _gather_input(x, scale, nz_idx, nz_val):
    """Collect the non-zero inputs of one sample (scaled); returns how many there are."""
    nnz = 0
    for i in range(x.shape[0]):
        # Branch-free: always write, advance only past non-zeros (pixels are unpredictable).
        v = x[i]
        nz_idx[nnz] = i
        nz_val[nnz] = v * scale
        nnz += v != 0
    return nnz


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
# w + gain[d] v, the update writes it back up to date, and the end of the epoch brings every
# row up to date (epochs._finish_momentum_epoch). ``last[i]``: the sample (counted by
# ``clock[0]`` from the start of the epoch) through which row i is up to date.


@jit_inline
def _lag(momentum, i):
    """(gain, decay) of first-layer row i's samples at zero input since its last update
    (momentum only: without it the tables are empty)."""
    d = min(momentum.clock[0] - 1 - momentum.last[i], momentum.decay.shape[0] - 1)
    return momentum.gain[d], momentum.decay[d]


# -- Eq. 1/2: forward -------------------------------------------------------------------------------


@jit_inline
def _add_row(z, w, v, x, gain):
    """z += x * w for a row w of Wt[0]; a row that lags (gain != 0, momentum) is read as its
    up-to-date weights w + gain v."""
    # One loop with the test inside: LLVM takes it out of the loop, and a helper with two
    # loops side by side kept Numba from pruning its reference counts (4x slower momentum).
    for j in range(z.shape[0]):
        if gain != 0.0:
            z[j] += x * (w[j] + gain * v[j])
        else:
            z[j] += x * w[j]


@jit_inline
def _first_layer(block, layout, scratch, nnz, f, momentum):
    """Eq. 1/2 for the first layer's units [lo, hi): z = b + the sum over the non-zero inputs i
    of x_i * Wt[0][i, lo:hi], then a = f(z). Without momentum four rows per pass over z, so
    that z is loaded and stored a quarter as often; with momentum one by one, as it lagged."""
    nz_idx, nz_val = scratch.nz_idx, scratch.nz_val
    w, velocity = block.w, momentum.velocity
    z = _layer(scratch.act, layout, 1)[block.lo : block.hi]
    z[:] = _bias(w, block)
    p = 0
    if momentum.mu == 0.0:
        while p + 4 <= nnz:
            r0 = _row(w, block, nz_idx[p])
            r1 = _row(w, block, nz_idx[p + 1])
            r2 = _row(w, block, nz_idx[p + 2])
            r3 = _row(w, block, nz_idx[p + 3])
            x0, x1, x2, x3 = nz_val[p], nz_val[p + 1], nz_val[p + 2], nz_val[p + 3]
            for j in range(z.shape[0]):
                z[j] += x0 * r0[j] + x1 * r1[j] + x2 * r2[j] + x3 * r3[j]
            p += 4
    gain = momentum.mu  # 0 without momentum, in the network's dtype
    while p < nnz:
        i = nz_idx[p]
        if momentum.mu > 0.0:
            gain, _ = _lag(momentum, i)
        _add_row(z, _row(w, block, i), _row(velocity, block, i), nz_val[p], gain)
        p += 1
    _activate(z, scratch.bits, scratch.log_y, f)


@jit_inline
def _later_layers(params, layout, scratch, first, hidden, output):
    """Eq. 1/2 for layers first + 1 .. L from layer ``first``'s outputs:
    a[l+1][j] = f(b[l][j] + W[l][j, :] . a[l])."""
    sizes, act = layout.sizes, scratch.act
    L = sizes.shape[0] - 1
    for l in range(first, L):
        n_in = sizes[l]
        w0 = layout.w_off[l]
        a_prev = _layer(act, layout, l)
        a = _layer(act, layout, l + 1)
        for j in range(sizes[l + 1]):
            row = params[w0 + j * n_in : w0 + (j + 1) * n_in]
            s = params[layout.b_off[l] + j]
            for i in range(n_in):
                s += row[i] * a_prev[i]
            a[j] = s
        _activate(a, scratch.bits, scratch.log_y, output if l + 1 == L else hidden)


@jit
def _partial_sums(params, layout, scratch, lo, hi, out):
    """A rank's share of Eq. 1/2 into layer 2: out[k] = sum_{j in [lo, hi)} W[1][k, j] a1_j."""
    n_in = layout.sizes[1]
    a = _layer(scratch.act, layout, 1)[lo:hi]
    for k in range(layout.sizes[2]):
        row = params[layout.w_off[1] + k * n_in + lo : layout.w_off[1] + k * n_in + hi]
        s = row[0] * a[0]  # in the layer's dtype, as the serial sums
        for j in range(1, hi - lo):
            s += row[j] * a[j]
        out[k] = s


@jit_inline
def _sum_partials(params, layout, scratch, sums, f):
    """Eq. 1/2 into layer 2 from every rank's partial sums: z = b[1] + sums[0] + sums[1] + ...
    in rank order (so every rank gets bitwise the same z), a = f(z)."""
    z = _layer(scratch.act, layout, 2)
    z[:] = params[layout.b_off[1] : layout.b_off[1] + layout.sizes[2]]
    for r in range(sums.shape[0]):
        for k in range(z.shape[0]):
            z[k] += sums[r, k]
    _activate(z, scratch.bits, scratch.log_y, f)


# -- Eq. 3/4: error terms ---------------------------------------------------------------------------


@jit
def _output_delta(y, t, delta_out, log_y, output):
    """Eq. 3, the output error terms delta = -dE/dz; returns the sample's loss E.

    Squared error E = 1/2 sum (t - y)^2: delta = f'(y) (t - y). Softmax with cross-entropy
    E = -sum t log y (t a distribution): delta = t - y, and E from log y = z - logsumexp(z),
    finite even when an output has saturated to 0.
    """
    loss = 0.0
    if output == SOFTMAX:
        for k in range(y.shape[0]):
            delta_out[k] = t[k] - y[k]
            loss -= t[k] * log_y[k]
        return loss
    for k in range(y.shape[0]):
        err = t[k] - y[k]
        delta_out[k] = _derivative(y[k], output) * err
        loss += 0.5 * err * err
    return loss


@jit_ordered
def _hidden_delta(params, layout, scratch, l, lo, hi, hidden):
    """Eq. 4: error terms of layer l's units [lo, hi) (l >= 1) from those of layer l + 1.

    Without reassociation: the loop over i vectorises as it stands, and with it LLVM reordered
    the sum over j differently when compiling afresh and when building the cached copy, so the
    weights after an epoch depended on whether Numba's cache was warm.
    """
    n_in = layout.sizes[l]
    w0 = layout.w_off[l]
    a_prev = _layer(scratch.act, layout, l)[lo:hi]
    d_prev = _layer(scratch.delta, layout, l)[lo:hi]
    d = _layer(scratch.delta, layout, l + 1)
    d_prev[:] = 0.0
    for j in range(layout.sizes[l + 1]):
        dj = d[j]
        row = params[w0 + j * n_in + lo : w0 + j * n_in + hi]
        for i in range(hi - lo):
            d_prev[i] += row[i] * dj
    for i in range(hi - lo):
        d_prev[i] *= _derivative(a_prev[i], hidden)


@jit_inline
def _deltas(params, layout, scratch, t, lo, hi, hidden, output):
    """Every error term of the sample last run forward (of layer 1 only the units [lo, hi)),
    no update; returns its loss E."""
    L = layout.sizes.shape[0] - 1
    y = _layer(scratch.act, layout, L)
    loss = _output_delta(y, t, _layer(scratch.delta, layout, L), scratch.log_y, output)
    for l in range(L - 1, 1, -1):
        _hidden_delta(params, layout, scratch, l, 0, layout.sizes[l], hidden)
    if L > 1:
        _hidden_delta(params, layout, scratch, 1, lo, hi, hidden)
    return loss


# -- Eq. 5: update ----------------------------------------------------------------------------------


@jit_inline
def _update_row(w, v, u, g, mu, gain, decay):
    """Eq. 5 on a row of weights w: (n,) with velocity v: w += g u, or with momentum (mu > 0)
    v = mu v + g u; w += v (g = eta delta_j for a row of W[l] and u = a[l], g = eta x_i for a
    row of Wt[0] and u = delta[1]). A first-layer row that lagged (gain, decay) catches up in
    the same pass: w = (w + gain v) + (mu decay v + g u); (0, 1) for a row that did not."""
    for k in range(w.shape[0]):  # one loop, the test inside: see _add_row
        if mu > 0.0:
            v_now = mu * (decay * v[k]) + g * u[k]
            w[k] = (w[k] + gain * v[k]) + v_now
            v[k] = v_now
        else:
            w[k] += g * u[k]


@jit_inline
def _update_first_layer(block, layout, scratch, nnz, eta, momentum):
    """Eq. 5 for the first layer's units [lo, hi): only the rows of the non-zero inputs
    change, and the biases (the weights of a constant input 1). Without momentum two rows per
    pass over delta, so that it is loaded half as often."""
    nz_idx, nz_val = scratch.nz_idx, scratch.nz_val
    w, velocity, mu = block.w, momentum.velocity, momentum.mu
    d = _layer(scratch.delta, layout, 1)[block.lo : block.hi]
    p = 0
    if mu == 0.0:
        while p + 2 <= nnz:
            r0 = _row(w, block, nz_idx[p])
            r1 = _row(w, block, nz_idx[p + 1])
            g0 = eta * nz_val[p]
            g1 = eta * nz_val[p + 1]
            for j in range(d.shape[0]):
                r0[j] += g0 * d[j]
                r1[j] += g1 * d[j]
            p += 2
    gain, decay = mu, mu  # unused without momentum
    while p < nnz:
        i = nz_idx[p]
        if mu > 0.0:
            gain, decay = _lag(momentum, i)
            momentum.last[i] = momentum.clock[0]
        _update_row(_row(w, block, i), _row(velocity, block, i), d, eta * nz_val[p], mu, gain,
                    decay)
        p += 1
    if mu > 0.0:
        gain, decay = momentum.gain[0], momentum.decay[0]  # (0, 1): up to date
    _update_row(_bias(w, block), _bias(velocity, block), d, eta, mu, gain, decay)


@jit_inline
def _update_later_layers(params, layout, scratch, lo, hi, eta, momentum):
    """Eq. 5 for every layer above the first (of W[1] the columns [lo, hi) only); a bias is
    the weight of a constant input 1: b += g, or with momentum v = mu v + g; b += v."""
    sizes, velocity, mu = layout.sizes, momentum.velocity, momentum.mu
    gain, decay = mu, mu  # unused without momentum
    if mu > 0.0:
        gain, decay = momentum.gain[0], momentum.decay[0]  # (0, 1): up to date
    for l in range(1, sizes.shape[0] - 1):
        n_in = sizes[l]
        start = lo if l == 1 else 0  # a rank's block of layer 1, every unit above
        stop = hi if l == 1 else n_in
        a_prev = _layer(scratch.act, layout, l)[start:stop]
        d = _layer(scratch.delta, layout, l + 1)
        for j in range(sizes[l + 1]):
            g = eta * d[j]
            w0 = layout.w_off[l] + j * n_in
            _update_row(params[w0 + start : w0 + stop], velocity[w0 + start : w0 + stop],
                        a_prev, g, mu, gain, decay)
            k = layout.b_off[l] + j
            if mu > 0.0:
                velocity[k] = mu * velocity[k] + g
                params[k] += velocity[k]
            else:
                params[k] += g


# -- the step --------------------------------------------------------------------------------------


@jit_inline
def _step(params, layout, block, rank, scratch, nnz, t, eta, hidden, output, momentum, p):
    """One sample's SGD step on its gathered non-zero inputs: forward, error terms, update
    (with momentum when momentum.mu > 0); returns its loss, measured before the update.

    ``block`` is the part of the first layer this step trains, ``params``/``layout`` the rest
    (of W[1] the block's columns). Alone (rank.size == 1) the block is the whole layer. In a team
    (:mod:`jitnet.engine.parallel`) each rank computes its block's share of layer 2
    (:func:`_partial_sums`), and after the barrier of sample p (the rank's p-th in this call,
    from 0) all layers above from every share; it returns NaN with ``rank.sync[ABORT]`` raised
    when it gave up waiting there.
    """
    L = layout.sizes.shape[0] - 1
    _first_layer(block, layout, scratch, nnz, output if L == 1 else hidden, momentum)
    if rank.size == 1:
        _later_layers(params, layout, scratch, 1, hidden, output)
    else:
        sums = rank.partial[p % 2]
        _partial_sums(params, layout, scratch, block.lo, block.hi, sums[rank.rank])
        if not _barrier(rank.sync, rank.rank, rank.size, p + 1, rank.timeout_ns):
            return np.nan
        _sum_partials(params, layout, scratch, sums, output if L == 2 else hidden)
        _later_layers(params, layout, scratch, 2, hidden, output)
    loss = _deltas(params, layout, scratch, t, block.lo, block.hi, hidden, output)
    _update_first_layer(block, layout, scratch, nnz, eta, momentum)
    _update_later_layers(params, layout, scratch, block.lo, block.hi, eta, momentum)
    if momentum.mu > 0.0:
        momentum.clock[0] += 1
    return loss


@jit_inline
def _abandoned(loss, rank):
    """Whether a step's NaN loss means its rank gave up waiting at the barrier."""
    return np.isnan(loss) and rank.sync[ABORT] != 0


@jit_inline
def _forward(params, layout, scratch, nnz, hidden, output, block, still):
    """Eq. 1/2 for every layer of one sample whose nnz non-zero inputs are gathered in
    ``scratch.nz_idx``/``nz_val`` (by :func:`_gather_input`); block = ``_whole(params,
    layout)``, still = ``_still(params)``, made once per call."""
    L = layout.sizes.shape[0] - 1
    _first_layer(block, layout, scratch, nnz, output if L == 1 else hidden, still)
    _later_layers(params, layout, scratch, 1, hidden, output)


@jit
def _backprop(params, layout, scratch, x, t, scale, hidden, output):
    """Forward pass and all error terms of one sample x: (n_0,), no update; returns E."""
    nnz = _gather_input(x, scale, scratch.nz_idx, scratch.nz_val)
    _forward(params, layout, scratch, nnz, hidden, output, _whole(params, layout),
             _still(params))
    return _deltas(params, layout, scratch, t, 0, layout.sizes[1], hidden, output)
