"""The compiled (``@njit``) per-sample step of jitnet, the tutorial's SGD, written once: every
epoch (:mod:`jitnet.engine.epochs`: plain, momentum, distorted; :mod:`jitnet.engine.parallel`:
one rank's block of a team) and inference call the functions here.

The buffers, their layout and the tuples that carry them are stated once, in
:mod:`jitnet.engine.buffers`.

The equations are the tutorial's: Eq. 1/2 forward ``a = f(W a_prev + b)`` with the bias as the
weight of a constant input 1 (:func:`_first_layer`, :func:`_later_layers`); Eq. 3 output error
term ``delta = f'(z)(t - y)`` (``t - y`` for a softmax output with cross-entropy;
:func:`_output_delta`); Eq. 4 hidden error term ``delta = f'(z) * sum_k w_kj delta_k``
(:func:`_hidden_delta`; both in :mod:`jitnet.engine.deltas`); Eq. 5 update ``w += eta * delta
* x`` (with momentum: ``v = mu v + eta delta x; w += v``; :func:`_update_row`, walked by
:func:`_update_first_layer` and :func:`_update_later_layers`). All error terms of a sample are
computed from the weights before that sample's update, as in the tutorial; ``delta`` is
``-dE/dz``. :func:`_train_samples` runs the SGD step made of them, sample after sample.

The unit non-linearity ``f`` is an integer activation code (``SIGMOID``, ``TANH``,
``SCALED_TANH``, ``RELU``, ``IDENTITY``; ``SOFTMAX``, ``LOGISTIC``, ``EXP`` for the output
only): ``hidden`` for layers 1..L-1 and ``output`` for layer L
(:mod:`jitnet.engine.activations`). Kernels take only arrays, scalars and
the tuples, write into the buffers they are given and allocate nothing per sample.
"""

import numpy as np

from jitnet.engine.activations import _activate, _derivative  # noqa: F401 (_activate: tests)
from jitnet.engine.codes import (  # noqa: F401 (the codes are part of the kernels' vocabulary)
    EXP, IDENTITY, LOGISTIC, RELU, SCALED_TANH, SIGMOID, SOFTMAX, TANH,
)
from jitnet.engine.buffers import (  # noqa: F401 (the tuples and row_stride: re-exported)
    Block,
    Distorter,
    Layout,
    Momentum,
    Rank,
    Scratch,
    _layer,
    _whole,
    row_stride,
)
from jitnet.engine.jit import jit, jit_inline
from jitnet.engine.gather import _distorted_input, _gather_input  # noqa: F401 (re-exported)
from jitnet.engine.deltas import _deltas, _hidden_delta, _output_delta  # noqa: F401 (re-exported)
from jitnet.engine.extras import (
    _book_squares, _decays, _gap, _move_on, _nesterov, _next_sample, _up_to_date,
)
from jitnet.engine.sync import _barrier


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
    """(gain, decay) of first-layer row i's samples at zero input since its last update."""
    d = _gap(momentum, i)
    return momentum.gain[d], momentum.decay[d]


# -- Eq. 1/2: forward ------------------------------------------------------------------------------


@jit_inline
def _first_layer(block, layout, scratch, nnz, f, momentum, extras):
    """Eq. 1/2 for the first layer's units [lo, hi): z = b + the sum over the non-zero inputs i
    of x_i * Wt[0][i, lo:hi], then a = f(z). Without momentum (None) four rows per pass over
    z, so that z is loaded and stored a quarter as often; with momentum one by one, each row
    that lags read as its up-to-date weights w + gain v (with ``extras``, not None, shrink w +
    gain v: :mod:`jitnet.engine.extras`)."""
    nz_idx, nz_val = scratch.nz_idx, scratch.nz_val
    w, w_off, stride, n = block.w, block.w_off, block.stride, block.hi - block.lo
    z = _layer(scratch.act, layout, 1)[block.lo : block.hi]
    z[:] = w[block.b_off : block.b_off + n]
    p = 0
    if momentum is None:
        while p + 4 <= nnz:
            s0 = w_off + nz_idx[p] * stride
            s1 = w_off + nz_idx[p + 1] * stride
            s2 = w_off + nz_idx[p + 2] * stride
            s3 = w_off + nz_idx[p + 3] * stride
            r0, r1, r2, r3 = w[s0 : s0 + n], w[s1 : s1 + n], w[s2 : s2 + n], w[s3 : s3 + n]
            x0, x1, x2, x3 = nz_val[p], nz_val[p + 1], nz_val[p + 2], nz_val[p + 3]
            for j in range(n):
                z[j] += x0 * r0[j] + x1 * r1[j] + x2 * r2[j] + x3 * r3[j]
            p += 4
    while p < nnz:
        i, x = nz_idx[p], nz_val[p]
        start = w_off + i * stride
        r = w[start : start + n]
        if extras is not None and _gap(momentum, i) > 0:
            shrink, gain = extras.shrink[_gap(momentum, i)], momentum.gain[_gap(momentum, i)]
            v = momentum.velocity[start : start + n]
            for j in range(n):
                z[j] += x * (shrink * r[j] + gain * v[j])
        elif momentum is not None and _lag(momentum, i)[0] != 0.0:
            gain = _lag(momentum, i)[0]
            v = momentum.velocity[start : start + n]
            for j in range(n):
                z[j] += x * (r[j] + gain * v[j])
        else:
            for j in range(n):
                z[j] += x * r[j]
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


# -- Eq. 5: update ---------------------------------------------------------------------------------


@jit_inline
def _update_row(w, u, g, momentum, v, lag, mu_n, h):
    """Eq. 5 on one row of weights w: (n,): w += g u (g = eta x_i and u = delta[1] for a row of
    Wt[0]; g = eta delta[l+1][j] and u = a[l] for row j of W[l]; g = eta and u = delta for
    biases). With momentum (not None), velocity v: v = mu v + g u; w += v, and a first-layer
    row that lagged catches up in the same pass through ``lag`` = (shrink, gain, pull, decay)
    = A^d: w = (w + gain v) + (mu decay v + g u); lag = A^0 for a row that is up to date.

    With ``mu_n`` (not None: :mod:`jitnet.engine.extras`) also decay, v = mu v + g u - h w,
    the catch-up through all of A^d and Nesterov's w += v + mu_n (v - v_before). Returns the
    row's (|w|^2, w.v, |v|^2) before and after the update when h > 0 (else zeros), in the
    weights' dtype (a float64 sum would halve float32's SIMD width)."""
    ww = wv = vv = new_ww = new_wv = new_vv = g - g  # 0 in g's dtype (g * 0 is a float64)
    if momentum is None:
        for k in range(w.shape[0]):
            w[k] += g * u[k]
        return ww, wv, vv, new_ww, new_wv, new_vv
    mu = momentum.mu
    shrink, gain, pull, decay = lag
    for k in range(w.shape[0]):
        w_then = w[k] + gain * v[k]
        v_then = decay * v[k]
        if mu_n is not None:
            w_then = shrink * w[k] + gain * v[k]
            v_then = pull * w[k] + decay * v[k]
        v_now = mu * v_then + g * u[k]
        if mu_n is not None:
            v_now -= h * w_then
        w_now = w_then + v_now
        if mu_n is not None:
            w_now += mu_n * (v_now - v_then)
        if mu_n is not None and h > 0.0:
            ww += w_then * w_then
            wv += w_then * v_then
            vv += v_then * v_then
            new_ww += w_now * w_now
            new_wv += w_now * v_now
            new_vv += v_now * v_now
        w[k] = w_now
        v[k] = v_now
    return ww, wv, vv, new_ww, new_wv, new_vv


@jit_inline
def _update_first_layer(block, layout, scratch, nnz, eta, momentum, extras, h):
    """Eq. 5 for the first layer's units [lo, hi): the rows of the non-zero inputs only (two
    rows per pass over delta without momentum, so that it is loaded half as often), then the
    biases, the weights of a constant input 1 (which do not decay)."""
    nz_idx, nz_val = scratch.nz_idx, scratch.nz_val
    w, w_off, stride, n = block.w, block.w_off, block.stride, block.hi - block.lo
    d = _layer(scratch.delta, layout, 1)[block.lo : block.hi]
    mu_n = _nesterov(momentum, extras)
    ww = wv = vv = new_ww = new_wv = new_vv = 0.0
    p = 0
    if momentum is None:
        while p + 2 <= nnz:
            s0 = w_off + nz_idx[p] * stride
            s1 = w_off + nz_idx[p + 1] * stride
            r0, r1 = w[s0 : s0 + n], w[s1 : s1 + n]
            g0, g1 = eta * nz_val[p], eta * nz_val[p + 1]
            for j in range(n):
                r0[j] += g0 * d[j]
                r1[j] += g1 * d[j]
            p += 2
    while p < nnz:
        i = nz_idx[p]
        start = w_off + i * stride
        if momentum is None:
            _update_row(w[start : start + n], d, eta * nz_val[p], None, None, None, None, h)
        else:
            gap = _gap(momentum, i)
            lag = (momentum.decay[0], momentum.gain[gap], momentum.gain[0], momentum.decay[gap])
            if extras is not None:  # read from the tuple: a local array costs reference counts
                lag = (extras.shrink[gap], lag[1], extras.pull[gap], lag[3])
            sums = _update_row(w[start : start + n], d, eta * nz_val[p], momentum,
                               momentum.velocity[start : start + n], lag, mu_n, h)
            if extras is not None:
                ww, wv, vv = ww + sums[0], wv + sums[1], vv + sums[2]
                new_ww, new_wv, new_vv = new_ww + sums[3], new_wv + sums[4], new_vv + sums[5]
            momentum.last[i] = momentum.clock[0]
        p += 1
    if extras is not None and _decays(extras):
        _book_squares(extras.stats, True, ww, wv, vv, new_ww, new_wv, new_vv)
        _move_on(momentum, extras)
    b0, b1 = block.b_off, block.b_off + n
    if momentum is None:
        _update_row(w[b0:b1], d, eta, None, None, None, None, h)
    else:
        _update_row(w[b0:b1], d, eta, momentum, momentum.velocity[b0:b1], _up_to_date(momentum),
                    mu_n, h - h)


@jit_inline
def _update_later_layers(params, layout, scratch, lo, hi, eta, momentum, extras, h):
    """Eq. 5 for every layer above the first (of W[1] the columns [lo, hi) only): row j of W[l]
    with g = eta delta[l+1][j], and b[l][j], the weight of a constant input 1: b += g, or with
    momentum v = mu v + g; b += v (Nesterov: and mu (v - v_before); biases do not decay)."""
    sizes = layout.sizes
    mu_n = _nesterov(momentum, extras)
    squares = 0.0
    for l in range(1, sizes.shape[0] - 1):
        n_in = sizes[l]
        start = lo if l == 1 else 0  # a rank's block of layer 1; every unit above it
        stop = hi if l == 1 else n_in
        a_prev = _layer(scratch.act, layout, l)[start:stop]
        d = _layer(scratch.delta, layout, l + 1)
        for j in range(sizes[l + 1]):
            g = eta * d[j]
            w0, k = layout.w_off[l] + j * n_in, layout.b_off[l] + j
            if momentum is None:
                _update_row(params[w0 + start : w0 + stop], a_prev, g, None, None, None, None,
                            h)
                params[k] += g
            else:
                mu, velocity = momentum.mu, momentum.velocity
                new_ww = _update_row(params[w0 + start : w0 + stop], a_prev, g, momentum,
                                     velocity[w0 + start : w0 + stop], _up_to_date(momentum),
                                     mu_n, h)[3]
                if l == 1 or lo == 0:  # in a team only rank 0 counts the layers every rank has
                    squares += new_ww
                v_then = velocity[k]
                velocity[k] = mu * velocity[k] + g
                params[k] += velocity[k]
                if mu_n is not None:
                    params[k] += mu_n * (velocity[k] - v_then)
    if extras is not None and _decays(extras):
        _book_squares(extras.stats, False, 0.0, 0.0, 0.0, squares, 0.0, 0.0)


@jit_inline
def _team_forward(params, layout, block, rank, scratch, p, hidden, output):
    """A rank's way on from its block of layer 1 to the output: its share of layer 2's sums
    (:func:`_partial_sums`), the barrier of sample p, then layer 2 from every rank's share and
    Eq. 1/2 above it. False when the rank gave up waiting at the barrier."""
    sums = rank.partial[p % 2]
    _partial_sums(params, layout, scratch, block.lo, block.hi, sums[rank.rank])
    if not _barrier(rank.sync, rank.rank, rank.size, p + 1, rank.timeout_ns):
        return False
    L = layout.sizes.shape[0] - 1
    _sum_partials(params, layout, scratch, sums, output if L == 2 else hidden)
    _later_layers(params, layout, scratch, 2, hidden, output)
    return True


# -- the step, sample after sample -----------------------------------------------------------------


@jit_inline
def _train_samples(params, layout, block, rank, scratch, X, T, order, scale, eta, hidden, output,
                   momentum, distorter, extras):
    """The per-sample SGD step, for the samples in ``order`` one after the other: forward,
    error terms, update (with momentum unless ``momentum`` is None), each error term from the
    weights before the sample's update; returns the summed loss, each measured before its
    update.

    ``block`` is the part of the first layer trained here, ``params``/``layout`` the rest (of
    W[1] the block's columns). Alone (``rank`` None) the block is the whole layer. In a team
    (:mod:`jitnet.engine.parallel`) each rank computes its block's share of layer 2 and, after
    the barrier of the sample, all layers above from every share (:func:`_team_forward`); it
    returns NaN, ``rank.sync[ABORT]`` raised, when it gave up waiting there. With a
    ``distorter`` (else None) the k-th sample visited is distorted with ``distorter.draws[k]``
    into ``distorter.x`` (times ``scale``; in a team each rank into its own:
    :func:`jitnet.engine.gather._distorted_input`) and the step runs on that buffer.

    With ``extras`` (else None; :mod:`jitnet.engine.extras`) the step is scikit-learn's: weight
    decay eta l2[s], the penalty 1/2 l2[s] |W|^2 in the loss, Nesterov's momentum if asked.

    One loop for every epoch, the step written out in it: Numba compiles only the branches of
    the arguments given (None or not: ``rank``, ``momentum``, ``distorter``, ``extras``), and an
    inlined per-sample function would pay reference counts on every array of its tuples at each
    sample (measured: 4% of a plain epoch).
    """
    L = layout.sizes.shape[0] - 1
    first = output if L == 1 else hidden
    total = 0.0
    for k in range(order.shape[0]):
        s = order[k]
        h, every = eta - eta, False  # h in the weights' dtype, as eta
        if extras is not None:
            every = extras.every
            if _decays(extras):
                h = eta * extras.l2[s]
                total += 0.5 * extras.l2[s] * (extras.stats[0] + extras.stats[3])
        if distorter is None:
            nnz = _gather_input(X[s], scale, scratch.nz_idx, scratch.nz_val, every)
        else:
            nnz = _distorted_input(X[s], k, scale, distorter, scratch, every)
        _first_layer(block, layout, scratch, nnz, first, momentum, extras)
        if rank is None:
            _later_layers(params, layout, scratch, 1, hidden, output)
        elif not _team_forward(params, layout, block, rank, scratch, k, hidden, output):
            return np.nan
        loss = _deltas(params, layout, scratch, T[s], block.lo, block.hi, hidden, output)
        if rank is not None:
            if rank.rank > 0:  # its share of the penalty only: the team adds the ranks' totals
                loss = 0.0
        total += loss
        _update_first_layer(block, layout, scratch, nnz, eta, momentum, extras, h)
        _update_later_layers(params, layout, scratch, block.lo, block.hi, eta, momentum, extras,
                             h)
        if extras is not None and _decays(extras):
            _next_sample(extras)
        if momentum is not None:
            momentum.clock[0] += 1
    return total


@jit_inline
def _forward(params, layout, scratch, nnz, hidden, output, block):
    """Eq. 1/2 for every layer of one sample whose nnz non-zero inputs are gathered in
    ``scratch.nz_idx``/``nz_val`` (by :func:`_gather_input`); block = ``_whole(params,
    layout)``."""
    L = layout.sizes.shape[0] - 1
    _first_layer(block, layout, scratch, nnz, output if L == 1 else hidden, None, None)
    _later_layers(params, layout, scratch, 1, hidden, output)


@jit
def _backprop(params, layout, scratch, x, t, scale, hidden, output):
    """Forward pass and all error terms of one sample x: (n_0,), no update; returns E."""
    nnz = _gather_input(x, scale, scratch.nz_idx, scratch.nz_val)
    _forward(params, layout, scratch, nnz, hidden, output, _whole(params, layout))
    return _deltas(params, layout, scratch, t, 0, layout.sizes[1], hidden, output)
