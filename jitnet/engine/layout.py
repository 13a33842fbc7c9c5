"""A network's memory: one flat parameter buffer, the per-layer views into it, and the kernels'
per-call scratch buffers (the layout legend is in :mod:`jitnet.engine.buffers`).

Every buffer starts on a 64-byte cache line, and the first layer, stored transposed with one row
per input, pads its rows to whole cache lines (SIMD loads and stores then never straddle two
lines); the padding stays zero.
"""

import numpy as np

from jitnet.engine import kernels
from jitnet.engine.buffers import aligned_zeros as _aligned_zeros


def _frozen(values):
    """A read-only int64 array (the layout the kernels index with: nobody may change it)."""
    array = np.array(values, np.int64)
    array.flags.writeable = False
    return array


def build(sizes, dtype):
    """The zeroed parameters of a network of ``sizes`` in ``dtype``.

    Returns
    -------
    params : ndarray, (P,)
    weights : tuple of ndarray
        ``weights[l]``: (n_out, n_in) views into ``params``.
    biases : tuple of ndarray
        ``biases[l]``: (n_out,) views into ``params``.
    layout : kernels.Layout
        The offsets the kernels index ``params`` and the scratch buffers with.
    """
    n_layers = len(sizes) - 1
    stride0 = kernels.row_stride(sizes[1], dtype.itemsize)
    w_off, b_off, offset = [], [], 0
    for l in range(n_layers):
        w_off.append(offset)
        offset += sizes[l] * (stride0 if l == 0 else sizes[l + 1])
        b_off.append(offset)
        offset += sizes[l + 1]
    a_off = [0] + list(np.cumsum(sizes[1:]) - np.asarray(sizes[1:]))
    params = _aligned_zeros(offset, dtype)
    weights, biases = [], []
    for l in range(n_layers):
        n_in, n_out = sizes[l], sizes[l + 1]
        if l == 0:
            W = params[: n_in * stride0].reshape(n_in, stride0)[:, :n_out].T
        else:
            W = params[w_off[l] : w_off[l] + n_in * n_out].reshape(n_out, n_in)
        weights.append(W)
        biases.append(params[b_off[l] : b_off[l] + n_out])
    layout = kernels.Layout(
        _frozen(sizes), _frozen(w_off), _frozen(b_off), _frozen(a_off), int(stride0)
    )
    return params, tuple(weights), tuple(biases), layout


def scratch(sizes, dtype):
    """Fresh per-call kernel buffers (a few KB), so that concurrent calls never share any."""
    n_units = sum(sizes[1:])
    return kernels.Scratch(
        act=_aligned_zeros(n_units, dtype),
        delta=_aligned_zeros(n_units, dtype),
        bits=np.zeros(max(sizes[1:]), np.int64),
        nz_idx=np.zeros(sizes[0], np.int64),
        nz_val=np.zeros(sizes[0], dtype),
        log_y=np.zeros(sizes[-1], dtype),
    )
