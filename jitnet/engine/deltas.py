"""Eq. 3/4, the error terms delta = -dE/dz of one sample run forward, and its loss E
(:mod:`jitnet.engine.kernels` has the rest of the step; layout legend in
:mod:`jitnet.engine.buffers`)."""

import math

from jitnet.engine.activations import _derivative
from jitnet.engine.buffers import _layer
from jitnet.engine.codes import EXP, IDENTITY, LOGISTIC, SOFTMAX
from jitnet.engine.jit import jit, jit_inline, jit_ordered


# -- Eq. 3/4: error terms --------------------------------------------------------------------------


@jit
def _output_delta(y, t, delta_out, log_y, output):
    """Eq. 3, the output error terms delta = -dE/dz; returns the sample's loss E.

    Squared error E = 1/2 sum (t - y)^2: delta = f'(y) (t - y). Softmax with cross-entropy
    E = -sum t log y (t a distribution): delta = t - y, and E from log y = z - logsumexp(z),
    finite even when an output has saturated to 0. The outputs that come with their own loss:
    :func:`_paired_output_delta`.
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


@jit
def _paired_output_delta(y, t, delta_out, output):
    """Eq. 3 for the outputs that come with their own loss (scikit-learn's canonical pairs,
    :data:`jitnet.engine.components.LOSS_OUTPUTS`), each with delta = t - y; returns E:
    LOGISTIC the binary log-loss, y clipped to [eps, 1 - eps] in E as scikit-learn clips it;
    IDENTITY scikit-learn's squared error, E averaged over the outputs (delta = -dE/dz of
    their sum, as scikit-learn trains it); EXP the Poisson deviance t log(t / y) - t + y."""
    eps = 2.220446049250313e-16 if y.itemsize == 8 else 1.1920928955078125e-07
    loss = 0.0
    for k in range(y.shape[0]):
        delta_out[k] = t[k] - y[k]
        if output == LOGISTIC:
            p = min(max(y[k], eps), 1.0 - eps)
            loss -= t[k] * math.log(p) + (1.0 - t[k]) * math.log(1.0 - p)
        elif output == IDENTITY:
            loss += 0.5 * delta_out[k] * delta_out[k]
        elif t[k] > 0.0:  # EXP, with 0 log 0 = 0
            loss += t[k] * math.log(t[k] / y[k]) - t[k] + y[k]
        else:
            loss += y[k]
    return loss / y.shape[0] if output == IDENTITY else loss


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
    if hidden != IDENTITY:  # f' = 1
        for i in range(hi - lo):
            d_prev[i] *= _derivative(a_prev[i], hidden)


@jit_inline
def _deltas(params, layout, scratch, t, lo, hi, hidden, output):
    """Every error term of the sample last run forward (of layer 1 only the units [lo, hi)),
    no update; returns its loss E."""
    L = layout.sizes.shape[0] - 1
    y = _layer(scratch.act, layout, L)
    if output == LOGISTIC or output == IDENTITY or output == EXP:
        loss = _paired_output_delta(y, t, _layer(scratch.delta, layout, L), output)
    else:
        loss = _output_delta(y, t, _layer(scratch.delta, layout, L), scratch.log_y, output)
    for l in range(L - 1, 1, -1):
        _hidden_delta(params, layout, scratch, l, 0, layout.sizes[l], hidden)
    if L > 1:
        _hidden_delta(params, layout, scratch, 1, lo, hi, hidden)
    return loss
