"""All compiled (``@njit``) code of jitnet: the tutorial's per-sample SGD, one epoch per call.

Layout legend (``L`` layers of weights, ``sizes = [n_0, n_1, ..., n_L]``)::

    params            one flat array holding every weight and bias of every layer
    W[0]: (n_1, n_0)  stored TRANSPOSED, as rows Wt[0][i, :] of length n_1 at
                      w_off[0] + i * stride0 (one row per input pixel, so a sparse input
                      touches only its rows; stride0 >= n_1 pads rows to 64-byte boundaries)
    W[l]: (n_{l+1}, n_l) for l >= 1, row-major at w_off[l] (the tutorial's orientation)
    b[l]: (n_{l+1},)  at b_off[l]
    a[l]: (n_l,)      activations in the flat buffer ``act`` at a_off[l], l = 1..L
                      (the input layer a[0] is not copied: its non-zero entries are gathered
                      into ``nz_idx``/``nz_val``, scaled by ``scale``)
    delta[l]: (n_l,)  error terms in the flat buffer ``delta`` at a_off[l], l = 1..L
    nz_idx, nz_val: (n_0,)  indices and scaled values of a sample's non-zero inputs
    bits: (max n_l,)  int64 scratch of the vectorised exp

The offsets travel together as a :class:`Layout`, the per-sample buffers as a :class:`Scratch`
(a few KB: every public call allocates its own, so inference on one network is safe from
several threads at once).

The equations are the tutorial's: Eq. 1/2 forward ``a = f(W a_prev + b)`` with the bias as the
weight of a constant input 1; Eq. 3 output error term ``delta = y(1 - y)(t - y)``; Eq. 4 hidden
error term ``delta = a(1 - a) * sum_k w_kj delta_k``; Eq. 5 update ``w += eta * delta * x``. All
error terms of a sample are computed from the weights before that sample's update, as in the
tutorial. ``delta`` is therefore ``-dE/dz`` for ``E = 1/2 sum (t - y)^2``.

The unit non-linearity ``f`` is chosen by an integer activation code (``SIGMOID``, ``TANH``):
``hidden`` for layers 1..L-1 and ``output`` for layer L. Kernels take only arrays, scalars and
the two tuples, write into the buffers they are given and allocate nothing per sample.
"""

import math
from collections import namedtuple

import numpy as np
from numba import njit

SIGMOID = 0
TANH = 1

#: Where each layer lives in ``params`` and in the activation/error-term buffers (see above).
Layout = namedtuple("Layout", ["sizes", "w_off", "b_off", "a_off", "stride0"])
#: The per-sample working buffers of one caller (see above).
Scratch = namedtuple("Scratch", ["act", "delta", "bits", "nz_idx", "nz_val"])

# Reassociation lets LLVM vectorise the dot products; no "fast" NaN/Inf assumptions, so a
# saturated sigmoid still gives exactly 0 or 1. error_model="numpy": a float division never
# raises (and so never blocks vectorisation).
_FASTMATH = {"nsz", "arcp", "contract", "reassoc"}
_OPTIONS = dict(cache=True, nogil=True, error_model="numpy")

_jit = njit(fastmath=_FASTMATH, **_OPTIONS)
# The exp below relies on the order of its operations (Cody-Waite reduction): no reassociation.
_jit_ordered = njit(fastmath=_FASTMATH - {"reassoc"}, **_OPTIONS)

LOG2E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01  # ln 2 split in two so that k * LN2_HI is exact
LN2_LO = 1.90821492927058770002e-10


def row_stride(n1, itemsize):
    """Length of a stored first-layer row: ``n1`` rounded up to a whole number of 64-byte lines."""
    per_line = 64 // itemsize
    return -(-n1 // per_line) * per_line


@_jit_ordered
def _activate(z, bits, f):
    """a = f(z) in place for a whole layer: the sigmoid 1 / (1 + e^-z), or tanh.

    libm's exp is a scalar call that LLVM cannot vectorise, and it cost a fifth of the forward
    pass. Here e^-z = 2^k e^r with k = round(-z / ln 2), |r| <= ln(2)/2, e^r by its Taylor
    series to r^13 (relative error below 1e-16; results within a few ulp of libm) and 2^k from
    its bit pattern in the int64 scratch ``bits``: every step vectorises. Computed in float64
    for both dtypes.
    """
    n = z.shape[0]
    if f == TANH:
        for j in range(n):
            z[j] = math.tanh(z[j])
        return
    two_k = bits[:n].view(np.float64)
    for j in range(n):
        x = min(max(-z[j], -708.0), 709.0)  # e^x stays a normal float64
        k = np.floor(x * LOG2E + 0.5)
        r = (x - k * LN2_HI) - k * LN2_LO
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
        e = 1.0 + r * e
        e = 1.0 + r * e
        bits[j] = (np.int64(k) + 1023) << 52
        z[j] = e
    for j in range(n):
        z[j] = 1.0 / (1.0 + z[j] * two_k[j])


@_jit
def _derivative(a, f):
    """f'(z) written in terms of the output a = f(z)."""
    if f == TANH:
        return 1.0 - a * a
    return a * (1.0 - a)


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


@_jit
def _forward(params, layout, scratch, x, scale, hidden, output):
    """Eq. 1/2 for every layer of one sample x: (n_0,); returns how many inputs are non-zero.

    The non-zero inputs are left in ``scratch.nz_idx``/``nz_val`` for the update.
    """
    sizes, act, bits = layout.sizes, scratch.act, scratch.bits
    nnz = _gather_input(x, scale, scratch.nz_idx, scratch.nz_val)
    nz_idx, nz_val = scratch.nz_idx, scratch.nz_val
    L = sizes.shape[0] - 1
    # First layer: z = b + sum over non-zero inputs i of x_i * Wt[0][i, :], four rows per
    # pass over z so that z is loaded and stored a quarter as often.
    n1 = sizes[1]
    z = _layer(act, layout, 1)
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
    _activate(z, bits, output if L == 1 else hidden)
    # Later layers: a[l+1][j] = f(b[j] + W[l][j, :] . a[l]).
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
        _activate(a, bits, output if l + 1 == L else hidden)
    return nnz


@_jit
def _output_delta(y, t, delta_out, output):
    """Eq. 3: delta = f'(y) (t - y) for each output; returns the sample's E = 1/2 sum (t - y)^2."""
    loss = 0.0
    for k in range(y.shape[0]):
        err = t[k] - y[k]
        delta_out[k] = _derivative(y[k], output) * err
        loss += 0.5 * err * err
    return loss


@_jit
def _hidden_delta(params, layout, scratch, l, hidden):
    """Eq. 4: error terms of the units feeding layer l (l >= 1) from those of layer l + 1."""
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


@_jit
def _backprop(params, layout, scratch, x, t, scale, hidden, output):
    """Forward pass and all error terms of one sample, no update; returns (E, nnz)."""
    L = layout.sizes.shape[0] - 1
    nnz = _forward(params, layout, scratch, x, scale, hidden, output)
    y = _layer(scratch.act, layout, L)
    loss = _output_delta(y, t, _layer(scratch.delta, layout, L), output)
    for l in range(L - 1, 0, -1):
        _hidden_delta(params, layout, scratch, l, hidden)
    return loss, nnz


@_jit
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


@_jit
def _train_epoch(params, layout, scratch, X, T, order, scale, eta, hidden, output):
    """One SGD update per sample, samples in ``order``; returns the summed loss (before updates).

    X: (N, n_0) uint8 or float, T: (N, n_L), order: (M,) sample indices. Serial and
    deterministic: the same inputs give bitwise the same weights.
    """
    total = 0.0
    for s in order:
        loss, nnz = _backprop(params, layout, scratch, X[s], T[s], scale, hidden, output)
        total += loss
        _update(params, layout, scratch, nnz, eta)
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
        _forward(params, layout, scratch, X[s], scale, hidden, output)
        y = _layer(scratch.act, layout, L)
        if keep_outputs:
            y_out[s, :] = y
        class_out[s] = _argmax(y)
