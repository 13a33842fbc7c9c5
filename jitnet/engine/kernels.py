"""The compiled (``@njit``) per-sample steps of jitnet, the tutorial's SGD; the epoch, momentum
and inference loops are in :mod:`jitnet.engine.epochs` and reachable here too.

Layout legend (``L`` layers of weights, ``sizes = [n_0, n_1, ..., n_L]``)::

    params            one flat array holding every weight and bias of every layer
    W[0]: (n_1, n_0)  stored TRANSPOSED, as rows Wt[0][i, :] of length n_1 at
                      w_off[0] + i * stride0 (one row per input pixel, so a sparse input
                      touches only its rows; stride0 >= n_1 pads rows to 64-byte boundaries)
    W[l]: (n_{l+1}, n_l) for l >= 1, row-major at w_off[l] (the tutorial's orientation)
    b[l]: (n_{l+1},)  at b_off[l]
    velocity          momentum's velocity, laid out exactly like params
    a[l]: (n_l,)      activations in the flat buffer ``act`` at a_off[l], l = 1..L
                      (the input layer a[0] is not copied: its non-zero entries are gathered
                      into ``nz_idx``/``nz_val``, scaled by ``scale``)
    delta[l]: (n_l,)  error terms in the flat buffer ``delta`` at a_off[l], l = 1..L
    nz_idx, nz_val: (n_0,)  indices and scaled values of a sample's non-zero inputs
    bits: (max n_l,)  int64 scratch of the vectorised exp
    log_y: (n_L,)     log of the softmax outputs (cross-entropy only)
    draws: (M, N_DRAW) per visited sample, the random numbers of its distortion
                      (:mod:`jitnet.engine.distort_kernels`); x: (n_0,) the distorted sample

The offsets travel together as a :class:`Layout`, the per-sample buffers as a :class:`Scratch`
(a few KB: every public call allocates its own, so inference on one network is safe from
several threads at once), momentum's state as a :class:`Momentum`.

The equations are the tutorial's: Eq. 1/2 forward ``a = f(W a_prev + b)`` with the bias as the
weight of a constant input 1; Eq. 3 output error term ``delta = f'(z)(t - y)`` (``t - y`` for a
softmax output with cross-entropy); Eq. 4 hidden error term ``delta = f'(z) * sum_k w_kj
delta_k``; Eq. 5 update ``w += eta * delta * x`` (with momentum: ``v = mu v + eta delta x;
w += v``). All error terms of a sample are computed from the weights before that sample's
update, as in the tutorial; ``delta`` is ``-dE/dz``.

The unit non-linearity ``f`` is an integer activation code (``SIGMOID``, ``TANH``,
``SCALED_TANH``, ``RELU``; ``SOFTMAX`` for the output only): ``hidden`` for layers 1..L-1 and
``output`` for layer L. Kernels take only arrays, scalars and the tuples, write into the buffers
they are given and allocate nothing per sample.
"""

import math
from collections import namedtuple

import numpy as np
from numba import njit


from jitnet.engine.codes import (  # noqa: F401 (the codes are part of the kernels' vocabulary)
    RELU,
    SCALED_TANH,
    SCALED_TANH_AMPLITUDE,
    SCALED_TANH_SLOPE,
    SIGMOID,
    SOFTMAX,
    TANH,
)

#: Where each layer lives in ``params`` and in the activation/error-term buffers (see above).
Layout = namedtuple("Layout", ["sizes", "w_off", "b_off", "a_off", "stride0"])
#: The per-sample working buffers of one caller (see above).
Scratch = namedtuple("Scratch", ["act", "delta", "bits", "nz_idx", "nz_val", "log_y"])
#: Momentum's state during an epoch (see the momentum section below).
Momentum = namedtuple("Momentum", ["mu", "velocity", "last", "clock", "decay", "gain"])
#: What an epoch on distorted samples needs: the image shape, one row of ``draws`` per visited
#: sample, the field ``bank``, the distortion's scratch ``work``/``index`` and the buffer ``x``.
Distorter = namedtuple("Distorter", ["rows", "cols", "draws", "bank", "work", "index", "x"])

# Reassociation lets LLVM vectorise the dot products; no "fast" NaN/Inf assumptions, so a
# saturated sigmoid still gives exactly 0 or 1. error_model="numpy": a float division never
# raises (and so never blocks vectorisation).
_FASTMATH = {"nsz", "arcp", "contract", "reassoc"}
_OPTIONS = dict(cache=True, nogil=True, error_model="numpy")

_jit = njit(fastmath=_FASTMATH, **_OPTIONS)
# Inlined into the caller by Numba itself: the per-sample steps take the Layout and Scratch
# tuples, and a real call passes each of their arrays field by field (measured: 5% of an epoch).
_jit_inline = njit(inline="always", fastmath=_FASTMATH, **_OPTIONS)
# The exp below relies on the order of its operations (Cody-Waite reduction): no reassociation.
_jit_ordered = njit(fastmath=_FASTMATH - {"reassoc"}, **_OPTIONS)

LOG2E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01  # ln 2 split in two so that k * LN2_HI is exact
LN2_LO = 1.90821492927058770002e-10


def row_stride(n1, itemsize):
    """Length of a stored first-layer row: ``n1`` rounded up to a whole number of 64-byte lines."""
    per_line = 64 // itemsize
    return -(-n1 // per_line) * per_line


@njit(inline="always", fastmath=_FASTMATH - {"reassoc"}, **_OPTIONS)
def _taylor_tail(r):
    """(e^r - 1) / r by its Taylor series to r^13, for |r| <= ln(2)/2 (the first term left out,
    r^13 / 14!, is below 2e-17)."""
    e = 1.0 / 6227020800.0
    e = 1.0 / 479001600.0 + r * e
    e = 1.0 / 39916800.0 + r * e
    e = 1.0 / 3628800.0 + r * e
    e = 1.0 / 362880.0 + r * e
    e = 1.0 / 40320.0 + r * e
    e = 1.0 / 5040.0 + r * e
    e = 1.0 / 720.0 + r * e
    e = 1.0 / 120.0 + r * e
    e = 1.0 / 24.0 + r * e
    e = 1.0 / 6.0 + r * e
    e = 0.5 + r * e
    return 1.0 + r * e


@njit(inline="always", fastmath=_FASTMATH - {"reassoc"}, **_OPTIONS)
def _reduce(x):
    """Cody-Waite: x = k ln 2 + r with k = round(x / ln 2), |r| <= ln(2)/2; returns (k, r)."""
    k = np.floor(x * LOG2E + 0.5)
    return k, (x - k * LN2_HI) - k * LN2_LO


@_jit_ordered
def _sigmoid(z, bits):
    """z <- 1 / (1 + e^-z) for a whole layer.

    libm's exp is a scalar call that LLVM cannot vectorise, and it cost a fifth of the forward
    pass. Here e^-z = 2^k e^r (:func:`_reduce`, :func:`_taylor_tail`; results within a few ulp
    of libm) and 2^k is built from its bit pattern in the int64 scratch ``bits``: every step
    vectorises. Computed in float64 for both dtypes.
    """
    n = z.shape[0]
    two_k = bits[:n].view(np.float64)
    for j in range(n):
        x = min(max(-z[j], -708.0), 709.0)  # e^x stays a normal float64
        k, r = _reduce(x)
        bits[j] = (np.int64(k) + 1023) << 52
        z[j] = 1.0 + r * _taylor_tail(r)
    for j in range(n):
        z[j] = 1.0 / (1.0 + z[j] * two_k[j])


@_jit_ordered
def _tanh(z, bits, amplitude, slope):
    """z <- amplitude * tanh(slope * z) for a whole layer, vectorised like :func:`_sigmoid`.

    tanh|u| = -m / (m + 2) with m = e^(-2|u|) - 1 in (-1, 0]: no overflow for large |u| and, as
    m = 2^k (e^r - 1) + (2^k - 1) keeps e^r - 1 = r * tail(r) whole, no cancellation near 0
    (relative error a few ulp everywhere). The sign of u rides in the sign bit of 2^k.
    """
    n = z.shape[0]
    two_k = bits[:n].view(np.float64)
    for j in range(n):
        u = slope * z[j]
        x = max(-2.0 * abs(u), -708.0)
        k, r = _reduce(x)
        bits[j] = ((np.int64(k) + 1023) << 52) | (np.int64(u < 0.0) << 63)
        z[j] = r * _taylor_tail(r)
    for j in range(n):
        p = abs(two_k[j])
        m = p * z[j] + (p - 1.0)
        z[j] = np.copysign(amplitude * (-m / (m + 2.0)), two_k[j])


@_jit_ordered
def _exp(z, bits):
    """z <- e^z for a whole layer (z <= 709), vectorised like :func:`_sigmoid`."""
    n = z.shape[0]
    two_k = bits[:n].view(np.float64)
    for j in range(n):
        k, r = _reduce(max(z[j], -708.0))
        bits[j] = (np.int64(k) + 1023) << 52
        z[j] = 1.0 + r * _taylor_tail(r)
    for j in range(n):
        z[j] *= two_k[j]


@_jit
def _softmax(z, log_y, bits):
    """z <- softmax(z), and log_y <- log softmax(z) = z - logsumexp(z), finite for every z."""
    m = z[0]
    for k in range(1, z.shape[0]):
        m = max(m, z[k])
    for k in range(z.shape[0]):
        z[k] -= m
        log_y[k] = z[k]
    _exp(z, bits)
    total = 0.0
    for k in range(z.shape[0]):
        total += z[k]
    for k in range(z.shape[0]):
        z[k] /= total
    log_total = math.log(total)
    for k in range(z.shape[0]):
        log_y[k] -= log_total


@_jit_inline
def _activate(z, bits, log_y, f):
    """a = f(z) in place for a whole layer, f one of the activation codes (log_y: softmax's)."""
    if f == SIGMOID:
        _sigmoid(z, bits)
    elif f == TANH:
        _tanh(z, bits, 1.0, 1.0)
    elif f == SCALED_TANH:
        _tanh(z, bits, SCALED_TANH_AMPLITUDE, SCALED_TANH_SLOPE)
    elif f == RELU:
        for j in range(z.shape[0]):
            z[j] = max(z[j], 0.0)
    else:
        _softmax(z, log_y, bits)


@_jit
def _derivative(a, f):
    """f'(z) of one unit, written in terms of its output a = f(z) (f not softmax)."""
    if f == SIGMOID:
        return a * (1.0 - a)
    if f == TANH:
        return 1.0 - a * a
    if f == SCALED_TANH:
        return SCALED_TANH_SLOPE * SCALED_TANH_AMPLITUDE - (
            SCALED_TANH_SLOPE / SCALED_TANH_AMPLITUDE) * a * a
    return 1.0 if a > 0.0 else 0.0


@_jit
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


@_jit
def _row0(params, layout, i):
    """Wt[0][i, :], the first-layer weights leaving input i: (n_1,)."""
    start = layout.w_off[0] + i * layout.stride0
    return params[start : start + layout.sizes[1]]


@_jit
def _layer(buffer, layout, l):
    """Layer l's slice (n_l,) of the activation or error-term buffer, l = 1..L."""
    return buffer[layout.a_off[l] : layout.a_off[l] + layout.sizes[l]]


@_jit_inline
def _first_layer(params, layout, scratch, nnz):
    """z = b + sum over the non-zero inputs i of x_i * Wt[0][i, :] into layer 1's activations,
    four rows per pass over z so that z is loaded and stored a quarter as often."""
    n1 = layout.sizes[1]
    nz_idx, nz_val = scratch.nz_idx, scratch.nz_val
    z = _layer(scratch.act, layout, 1)
    z[:] = params[layout.b_off[0] : layout.b_off[0] + n1]
    p = 0
    while p + 4 <= nnz:
        r0 = _row0(params, layout, nz_idx[p])
        r1 = _row0(params, layout, nz_idx[p + 1])
        r2 = _row0(params, layout, nz_idx[p + 2])
        r3 = _row0(params, layout, nz_idx[p + 3])
        x0, x1, x2, x3 = nz_val[p], nz_val[p + 1], nz_val[p + 2], nz_val[p + 3]
        for j in range(n1):
            z[j] += x0 * r0[j] + x1 * r1[j] + x2 * r2[j] + x3 * r3[j]
        p += 4
    while p < nnz:
        r0 = _row0(params, layout, nz_idx[p])
        x0 = nz_val[p]
        for j in range(n1):
            z[j] += x0 * r0[j]
        p += 1


@_jit_inline
def _later_layers(params, layout, scratch, hidden, output):
    """Eq. 1/2 from layer 1's pre-activations on: a[l+1][j] = f(b[j] + W[l][j, :] . a[l])."""
    sizes, act = layout.sizes, scratch.act
    L = sizes.shape[0] - 1
    _activate(_layer(act, layout, 1), scratch.bits, scratch.log_y, output if L == 1 else hidden)
    for l in range(1, L):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        w0 = layout.w_off[l]
        a_prev = _layer(act, layout, l)
        a = _layer(act, layout, l + 1)
        for j in range(n_out):
            row = params[w0 + j * n_in : w0 + (j + 1) * n_in]
            s = params[layout.b_off[l] + j]
            for i in range(n_in):
                s += row[i] * a_prev[i]
            a[j] = s
        _activate(a, scratch.bits, scratch.log_y, output if l + 1 == L else hidden)


@_jit_inline
def _forward(params, layout, scratch, nnz, hidden, output):
    """Eq. 1/2 for every layer of one sample whose nnz non-zero inputs are gathered in
    ``scratch.nz_idx``/``nz_val`` (by :func:`_gather_input`, and left there for the update)."""
    _first_layer(params, layout, scratch, nnz)
    _later_layers(params, layout, scratch, hidden, output)


@_jit
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


@_jit_ordered
def _hidden_delta(params, layout, scratch, l, hidden):
    """Eq. 4: error terms of the units feeding layer l (l >= 1) from those of layer l + 1.

    Without reassociation: the loop over i vectorises as it stands, and with it LLVM reordered
    the sum over j differently when compiling afresh and when building the cached copy, so the
    weights after an epoch depended on whether Numba's cache was warm.
    """
    n_in = layout.sizes[l]
    n_out = layout.sizes[l + 1]
    w0 = layout.w_off[l]
    a_prev = _layer(scratch.act, layout, l)
    d_prev = _layer(scratch.delta, layout, l)
    d = _layer(scratch.delta, layout, l + 1)
    d_prev[:] = 0.0
    for j in range(n_out):
        dj = d[j]
        row = params[w0 + j * n_in : w0 + (j + 1) * n_in]
        for i in range(n_in):
            d_prev[i] += row[i] * dj
    for i in range(n_in):
        d_prev[i] *= _derivative(a_prev[i], hidden)


@_jit_inline
def _deltas(params, layout, scratch, t, hidden, output):
    """Every error term of the sample last run forward, no update; returns its loss E."""
    L = layout.sizes.shape[0] - 1
    y = _layer(scratch.act, layout, L)
    loss = _output_delta(y, t, _layer(scratch.delta, layout, L), scratch.log_y, output)
    for l in range(L - 1, 0, -1):
        _hidden_delta(params, layout, scratch, l, hidden)
    return loss


@_jit_inline
def _backprop(params, layout, scratch, x, t, scale, hidden, output):
    """Forward pass and all error terms of one sample x: (n_0,), no update; returns E."""
    nnz = _gather_input(x, scale, scratch.nz_idx, scratch.nz_val)
    _forward(params, layout, scratch, nnz, hidden, output)
    return _deltas(params, layout, scratch, t, hidden, output)


@_jit_inline
def _update(params, layout, scratch, nnz, eta):
    """Eq. 5: w += eta * delta * x and b += eta * delta, for every layer of one sample."""
    sizes, act, delta = layout.sizes, scratch.act, scratch.delta
    nz_idx, nz_val = scratch.nz_idx, scratch.nz_val
    # First layer: only the rows of the non-zero inputs change; two rows per pass over d.
    n1 = sizes[1]
    d = _layer(delta, layout, 1)
    p = 0
    while p + 2 <= nnz:
        r0 = _row0(params, layout, nz_idx[p])
        r1 = _row0(params, layout, nz_idx[p + 1])
        g0 = eta * nz_val[p]
        g1 = eta * nz_val[p + 1]
        for j in range(n1):
            r0[j] += g0 * d[j]
            r1[j] += g1 * d[j]
        p += 2
    if p < nnz:
        r0 = _row0(params, layout, nz_idx[p])
        g0 = eta * nz_val[p]
        for j in range(n1):
            r0[j] += g0 * d[j]
    b = params[layout.b_off[0] : layout.b_off[0] + n1]
    for j in range(n1):
        b[j] += eta * d[j]
    for l in range(1, sizes.shape[0] - 1):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        w0 = layout.w_off[l]
        a_prev = _layer(act, layout, l)
        d = _layer(delta, layout, l + 1)
        for j in range(n_out):
            g = eta * d[j]
            row = params[w0 + j * n_in : w0 + (j + 1) * n_in]
            for i in range(n_in):
                row[i] += g * a_prev[i]
            params[layout.b_off[l] + j] += g
