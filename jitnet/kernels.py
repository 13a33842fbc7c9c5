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
    nz_idx, nz_val: (n_0,)  scratch: indices and scaled values of a sample's non-zero inputs
    bits: (max n_l,)  int64 scratch of the vectorised exp

The equations are the tutorial's: Eq. 1/2 forward ``a = f(W a_prev + b)`` with the bias as the
weight of a constant input 1; Eq. 3 output error term ``delta = y(1 - y)(t - y)``; Eq. 4 hidden
error term ``delta = a(1 - a) * sum_k w_kj delta_k``; Eq. 5 update ``w += eta * delta * x``. All
error terms of a sample are computed from the weights before that sample's update, as in the
tutorial. ``delta`` is therefore ``-dE/dz`` for ``E = 1/2 sum (t - y)^2``.

The activation is chosen by an integer code: ``SIGMOID`` or ``TANH``. Kernels take only arrays and
scalars, write into the buffers they are given and allocate nothing per sample.
"""

import math

import numpy as np
from numba import njit

SIGMOID = 0
TANH = 1

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


@_jit_ordered
def _activate(z, bits, kind):
    """a = f(z) in place for a whole layer: the sigmoid 1 / (1 + e^-z), or tanh.

    libm's exp is a scalar call that LLVM cannot vectorise, and it cost a fifth of the forward
    pass. Here e^-z = 2^k e^r with k = round(-z / ln 2), |r| <= ln(2)/2, e^r by its Taylor
    series to r^13 (relative error below 1e-16; results within a few ulp of libm) and 2^k from
    its bit pattern in the int64 scratch ``bits``: every step vectorises. Computed in float64
    for both dtypes.
    """
    n = z.shape[0]
    if kind == TANH:
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
def _derivative(a, kind):
    """f'(z) written in terms of the output a = f(z)."""
    if kind == TANH:
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
def _row0(params, w_off, stride0, n1, i):
    """Wt[0][i, :], the first-layer weights leaving input i: (n_1,)."""
    start = w_off[0] + i * stride0
    return params[start : start + n1]


@_jit
def _forward(
    params, sizes, w_off, b_off, a_off, stride0, act, bits, x, scale, nz_idx, nz_val, kind
):
    """Eq. 1/2 for every layer of one sample x: (n_0,); returns how many inputs are non-zero.

    The non-zero inputs are left in nz_idx/nz_val for the update.
    """
    nnz = _gather_input(x, scale, nz_idx, nz_val)
    # First layer: z = b + sum over non-zero inputs i of x_i * Wt[0][i, :], four rows per
    # pass over z so that z is loaded and stored a quarter as often.
    n1 = sizes[1]
    z = act[a_off[1] : a_off[1] + n1]
    z[:] = params[b_off[0] : b_off[0] + n1]
    p = 0
    while p + 4 <= nnz:
        r0 = _row0(params, w_off, stride0, n1, nz_idx[p])
        r1 = _row0(params, w_off, stride0, n1, nz_idx[p + 1])
        r2 = _row0(params, w_off, stride0, n1, nz_idx[p + 2])
        r3 = _row0(params, w_off, stride0, n1, nz_idx[p + 3])
        x0, x1, x2, x3 = nz_val[p], nz_val[p + 1], nz_val[p + 2], nz_val[p + 3]
        for j in range(n1):
            z[j] += x0 * r0[j] + x1 * r1[j] + x2 * r2[j] + x3 * r3[j]
        p += 4
    while p < nnz:
        r0 = _row0(params, w_off, stride0, n1, nz_idx[p])
        x0 = nz_val[p]
        for j in range(n1):
            z[j] += x0 * r0[j]
        p += 1
    _activate(z, bits, kind)
    # Later layers: a[l+1][j] = f(b[j] + W[l][j, :] . a[l]).
    for l in range(1, sizes.shape[0] - 1):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        a_prev = act[a_off[l] : a_off[l] + n_in]
        a = act[a_off[l + 1] : a_off[l + 1] + n_out]
        for j in range(n_out):
            row = params[w_off[l] + j * n_in : w_off[l] + (j + 1) * n_in]
            s = params[b_off[l] + j]
            for i in range(n_in):
                s += row[i] * a_prev[i]
            a[j] = s
        _activate(a, bits, kind)
    return nnz


@_jit
def _output(act, a_off, sizes):
    """The output layer's activations y = a[L] of the last forward pass: (n_L,)."""
    L = sizes.shape[0] - 1
    return act[a_off[L] : a_off[L] + sizes[L]]


@_jit
def _output_delta(y, t, delta_out, kind):
    """Eq. 3: delta = f'(y) (t - y) for each output; returns the sample's E = 1/2 sum (t - y)^2."""
    loss = 0.0
    for k in range(y.shape[0]):
        err = t[k] - y[k]
        delta_out[k] = _derivative(y[k], kind) * err
        loss += 0.5 * err * err
    return loss


@_jit
def _hidden_delta(params, sizes, w_off, a_off, act, delta, l, kind):
    """Eq. 4: error terms of the units feeding layer l (l >= 1) from those of layer l + 1."""
    n_in = sizes[l]
    n_out = sizes[l + 1]
    a_prev = act[a_off[l] : a_off[l] + n_in]
    d_prev = delta[a_off[l] : a_off[l] + n_in]
    d = delta[a_off[l + 1] : a_off[l + 1] + n_out]
    d_prev[:] = 0.0
    for j in range(n_out):
        dj = d[j]
        row = params[w_off[l] + j * n_in : w_off[l] + (j + 1) * n_in]
        for i in range(n_in):
            d_prev[i] += row[i] * dj
    for i in range(n_in):
        d_prev[i] *= _derivative(a_prev[i], kind)


@_jit
def _update(params, sizes, w_off, b_off, a_off, stride0, act, delta, nnz, nz_idx, nz_val, eta):
    """Eq. 5: w += eta * delta * x and b += eta * delta, for every layer of one sample."""
    # First layer: only the rows of the non-zero inputs change; two rows per pass over d.
    n1 = sizes[1]
    d = delta[a_off[1] : a_off[1] + n1]
    p = 0
    while p + 2 <= nnz:
        r0 = _row0(params, w_off, stride0, n1, nz_idx[p])
        r1 = _row0(params, w_off, stride0, n1, nz_idx[p + 1])
        g0 = eta * nz_val[p]
        g1 = eta * nz_val[p + 1]
        for j in range(n1):
            r0[j] += g0 * d[j]
            r1[j] += g1 * d[j]
        p += 2
    if p < nnz:
        r0 = _row0(params, w_off, stride0, n1, nz_idx[p])
        g0 = eta * nz_val[p]
        for j in range(n1):
            r0[j] += g0 * d[j]
    b = params[b_off[0] : b_off[0] + n1]
    for j in range(n1):
        b[j] += eta * d[j]
    for l in range(1, sizes.shape[0] - 1):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        a_prev = act[a_off[l] : a_off[l] + n_in]
        d = delta[a_off[l + 1] : a_off[l + 1] + n_out]
        for j in range(n_out):
            g = eta * d[j]
            row = params[w_off[l] + j * n_in : w_off[l] + (j + 1) * n_in]
            for i in range(n_in):
                row[i] += g * a_prev[i]
            params[b_off[l] + j] += g


@_jit
def _backprop(
    params, sizes, w_off, b_off, a_off, stride0, act, bits, delta, x, t, scale, nz_idx, nz_val, kind
):
    """Forward pass and all error terms of one sample, no update; returns (E, nnz)."""
    L = sizes.shape[0] - 1
    nnz = _forward(
        params, sizes, w_off, b_off, a_off, stride0, act, bits, x, scale, nz_idx, nz_val, kind
    )
    loss = _output_delta(_output(act, a_off, sizes), t, delta[a_off[L] : a_off[L] + sizes[L]], kind)
    for l in range(L - 1, 0, -1):
        _hidden_delta(params, sizes, w_off, a_off, act, delta, l, kind)
    return loss, nnz


@_jit
def _train_epoch(
    params, sizes, w_off, b_off, a_off, stride0, act, bits, delta, nz_idx, nz_val,
    X, T, order, scale, eta, kind,
):
    """One SGD update per sample, samples in ``order``; returns the summed loss (before updates).

    X: (N, n_0) uint8 or float, T: (N, n_L), order: (M,) sample indices. Serial and
    deterministic: the same inputs give bitwise the same weights.
    """
    total = 0.0
    for s in order:
        loss, nnz = _backprop(
            params, sizes, w_off, b_off, a_off, stride0, act, bits, delta,
            X[s], T[s], scale, nz_idx, nz_val, kind,
        )
        total += loss
        _update(params, sizes, w_off, b_off, a_off, stride0, act, delta, nnz, nz_idx, nz_val, eta)
    return total


@_jit
def _predict(
    params, sizes, w_off, b_off, a_off, stride0, act, bits, nz_idx, nz_val, X, scale, kind, out
):
    """Forward pass of every row of X into out: (N, n_L)."""
    for s in range(X.shape[0]):
        _forward(
            params, sizes, w_off, b_off, a_off, stride0, act, bits,
            X[s], scale, nz_idx, nz_val, kind,
        )
        out[s, :] = _output(act, a_off, sizes)


@_jit
def _argmax(y):
    """Index of the largest entry (the first one on ties), the tutorial's get_result."""
    best = 0
    for k in range(1, y.shape[0]):
        if y[k] > y[best]:
            best = k
    return best


@_jit
def _classify(
    params, sizes, w_off, b_off, a_off, stride0, act, bits, nz_idx, nz_val, X, scale, kind, out
):
    """Index of the largest output (the tutorial's get_result) of every row of X into out: (N,)."""
    for s in range(X.shape[0]):
        _forward(
            params, sizes, w_off, b_off, a_off, stride0, act, bits,
            X[s], scale, nz_idx, nz_val, kind,
        )
        out[s] = _argmax(_output(act, a_off, sizes))


@_jit
def _evaluate(
    params, sizes, w_off, b_off, a_off, stride0, act, bits, nz_idx, nz_val, X, labels, scale, kind
):
    """Number of rows of X whose largest output is not at ``labels[s]``."""
    errors = 0
    for s in range(X.shape[0]):
        _forward(
            params, sizes, w_off, b_off, a_off, stride0, act, bits,
            X[s], scale, nz_idx, nz_val, kind,
        )
        errors += _argmax(_output(act, a_off, sizes)) != labels[s]
    return errors
