"""Where every number of a network lives: the flat buffers the kernels work in, and the tuples
that carry their offsets into a compiled call (the one statement of the shapes).

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
    block             the first layer's units [lo, hi): row i of Wt[0][:, lo:hi] at
                      w[w_off + i * stride], length hi - lo, and b[0][lo:hi] at w[b_off] --
                      in params (the whole layer) or in a rank's own slab (parallel)
    draws: (M, N_DRAW) per visited sample, the random numbers of its distortion
                      (:mod:`jitnet.engine.distort_kernels`); x: (n_0,) the distorted sample

The offsets travel together as a :class:`Layout`, the per-sample buffers as a :class:`Scratch`
(a few KB: every public call allocates its own, so inference on one network is safe from
several threads at once), momentum's state as a :class:`Momentum`, the first layer's block as a
:class:`Block` and a rank's place in a team as a :class:`Rank` (None on one thread).
"""

from collections import namedtuple

import numpy as np

from jitnet.engine.jit import jit, jit_inline

#: Where each layer lives in ``params`` and in the activation/error-term buffers (see above).
Layout = namedtuple("Layout", ["sizes", "w_off", "b_off", "a_off", "stride0"])
#: The per-sample working buffers of one caller (see above).
Scratch = namedtuple("Scratch", ["act", "delta", "bits", "nz_idx", "nz_val", "log_y"])
#: Momentum's state during an epoch (see :mod:`jitnet.engine.kernels`); mu = 0 (plain SGD): the
#: epochs pass None instead, and the kernels are compiled without it.
Momentum = namedtuple("Momentum", ["mu", "velocity", "last", "clock", "decay", "gain"])
#: Nesterov's momentum and weight decay (scikit-learn's SGD; :mod:`jitnet.engine.extras`), None
#: when neither: l2 (N,) per sample (empty: no decay), whether ``every`` first-layer row is
#: updated at every sample, the tables shrink and pull of A^d, and the running ``stats``.
Extras = namedtuple("Extras", ["nesterov", "l2", "every", "shrink", "pull", "stats"])
#: What an epoch on distorted samples needs: the image shape, one row of ``draws`` per visited
#: sample, the field ``bank``, the distortion's scratch ``work``/``index`` and the buffer ``x``.
Distorter = namedtuple("Distorter", ["rows", "cols", "draws", "bank", "work", "index", "x"])
#: The first layer's units [lo, hi) and where their weights live (see ``block`` above).
Block = namedtuple("Block", ["w", "w_off", "stride", "b_off", "lo", "hi"])
#: Rank ``rank`` of a team of ``size`` (:mod:`jitnet.engine.parallel`): the partial sums it
#: shares, the barrier's ``sync`` (:mod:`jitnet.engine.sync`) and how long it waits there.
Rank = namedtuple("Rank", ["rank", "size", "partial", "sync", "timeout_ns"])


def row_stride(n1, itemsize):
    """Length of a stored first-layer row: ``n1`` rounded up to a whole number of 64-byte lines."""
    per_line = 64 // itemsize
    return -(-n1 // per_line) * per_line


def aligned_zeros(n, dtype, alignment=64):
    """A zeroed (n,) array whose first element sits on an ``alignment``-byte boundary."""
    dtype = np.dtype(dtype)
    raw = np.zeros(n * dtype.itemsize + alignment, np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start : start + n * dtype.itemsize].view(dtype)


# -- inside the kernels ----------------------------------------------------------------------------


@jit
def _layer(buffer, layout, l):
    """Layer l's slice (n_l,) of the activation or error-term buffer, l = 1..L."""
    return buffer[layout.a_off[l] : layout.a_off[l] + layout.sizes[l]]


@jit_inline
def _row(array, block, i):
    """Row i of the block in ``array`` (the block's weights or their velocity): Wt[0][i, lo:hi]."""
    start = block.w_off + i * block.stride
    return array[start : start + block.hi - block.lo]


@jit_inline
def _bias(array, block):
    """b[0][lo:hi] of the block in ``array`` (the block's weights or their velocity)."""
    return array[block.b_off : block.b_off + block.hi - block.lo]


@jit_inline
def _whole(params, layout):
    """The whole first layer, in params."""
    return Block(params, layout.w_off[0], layout.stride0, layout.b_off[0], 0, layout.sizes[1])
