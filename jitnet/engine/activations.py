"""The units' non-linearities f and their derivatives f', each over a whole layer in place.

``f`` is an integer activation code (:mod:`jitnet.engine.codes`): ``SIGMOID``, ``TANH``,
``SCALED_TANH``, ``RELU``, and ``SOFTMAX`` for an output layer only. ``z``: (n,) a layer's
weighted inputs, replaced by its outputs; ``bits``: (n,) int64 scratch of the vectorised exp;
``log_y``: (n,) log of the softmax outputs (written for a softmax layer only).
"""

import math

import numpy as np

from jitnet.engine.codes import (
    EXP,
    LOGISTIC,
    RELU,
    SCALED_TANH,
    SCALED_TANH_AMPLITUDE,
    SCALED_TANH_SLOPE,
    SIGMOID,
    SOFTMAX,
    TANH,
)
from jitnet.engine.jit import jit, jit_inline, jit_ordered, jit_ordered_inline

LOG2E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01  # ln 2 split in two so that k * LN2_HI is exact
LN2_LO = 1.90821492927058770002e-10


@jit_ordered_inline
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


@jit_ordered_inline
def _reduce(x):
    """Cody-Waite: x = k ln 2 + r with k = round(x / ln 2), |r| <= ln(2)/2; returns (k, r)."""
    k = np.floor(x * LOG2E + 0.5)
    return k, (x - k * LN2_HI) - k * LN2_LO


@jit_ordered
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


@jit_ordered
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


@jit_ordered
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


@jit
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


@jit_inline
def _activate(z, bits, log_y, f):
    """a = f(z) in place for a whole layer, f one of the activation codes (log_y: softmax's)."""
    if f == SIGMOID or f == LOGISTIC:
        _sigmoid(z, bits)
    elif f == TANH:
        _tanh(z, bits, 1.0, 1.0)
    elif f == SCALED_TANH:
        _tanh(z, bits, SCALED_TANH_AMPLITUDE, SCALED_TANH_SLOPE)
    elif f == RELU:
        for j in range(z.shape[0]):
            z[j] = max(z[j], 0.0)
    elif f == SOFTMAX:
        _softmax(z, log_y, bits)
    elif f == EXP:
        for j in range(z.shape[0]):
            z[j] = min(z[j], 709.0)  # e^709 is the largest power of e below float64's top
        _exp(z, bits)
    # IDENTITY: a = z as it is


@jit
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
