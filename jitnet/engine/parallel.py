"""Every core on one model: deterministic model-parallel per-sample SGD (``threads > 1``).

The serial epoch (:func:`jitnet.engine.epochs._train_epoch`) is bound by streaming the first layer's
rows of the non-zero inputs through the cache, read and written once per sample. Here ``N``
threads share that work on one network, sample by sample, with exactly the serial algorithm
(every error term from the weights before the sample's update, one update per sample):

- rank ``r`` owns a contiguous block ``[lo, hi)`` of the first hidden layer's units (whole
  64-byte lines where the layer is wide enough): its columns of ``Wt[0]`` and its biases
  ``b[0][lo:hi]``, which it trains in its own ``first`` slab (copied from params when the
  :class:`Team` is made, written back at the end of every call), and its columns
  ``W[1][:, lo:hi]``. No other rank touches them, so each core's cache holds only its share;
- everything above (``b[1]``, and ``W[l]``, ``b[l]`` for ``l >= 2``) is small and replicated:
  every rank keeps its own copy (``upper``, laid out like ``params`` from ``W[1]`` on) and
  updates it with the same arithmetic from the same numbers, so the copies stay bitwise equal;
- per sample, each rank gathers the non-zero inputs, computes its hidden units and its partial
  sums ``z2_k = sum_{j in block} W[1][k, j] a1_j`` into its row of ``partial``, then waits at
  ONE barrier. After it every rank adds ``b[1]`` and the partial sums in rank order (so every
  rank gets bitwise the same ``z2``), runs the layers above, all error terms above the first
  hidden layer, the first hidden layer's error terms of its block, and updates what it owns.
  ``partial`` is double buffered by sample parity: rank ``r`` writes the row of sample ``p + 2``
  only after the barrier of sample ``p + 1``, which every rank reaches after reading sample
  ``p``'s row, so one barrier per sample is enough.

Reproducible: the same inputs and thread count give bitwise the same weights on every run (no
two threads write one weight, and every sum has a fixed order). Against the serial kernel only
the order of the sums into the second layer differs (float64: ~1e-15 per sample).

The barrier (:mod:`jitnet.engine.sync`) is a shared counter raised by an atomic add and read by an
acquire load (LLVM's ``atomicrmw`` and ``load atomic``, emitted by
:func:`numba.extending.intrinsic`). A waiting rank spins, then yields its core
(``sched_yield``), and gives up when another rank raised the abort flag or after
``max_yields`` yields, so a rank that never arrives cannot hang the others.

Each rank is one call of the serial, ``nogil`` kernel :func:`_train_rank` on its own Python
thread (rank 0 on the caller's), not an iteration of a ``prange``: a spin barrier needs every
rank running at once, which OS threads guarantee and Numba's threading layers do not (TBB may
run two iterations one after the other on one worker; any layer does when fewer Numba threads
are set than ranks). It also keeps ``cache=True``: the first call compiles for a few seconds,
later processes load it from Numba's cache in a few hundredths (``bench/threads.py``).

Measured (``bench/results/threads-latest.md``, 2-core Intel Xeon KVM guest, quiet): 2 threads
against 1, whole MNIST epoch, 784-300-10 float32 1.43x, float64 1.63x; 784-800-10 float32
1.66x, float64 2.03x; the barrier alone costs ~70 ns. It needs N otherwise idle cores: with
one other busy process on the machine a rank loses its core for whole time slices and the
epoch runs slower than the serial one.

Legend (as in :mod:`jitnet.engine.kernels`; ``R`` ranks, ``n_2`` the units of layer 2)::

    first:   ((n_0 + 1) * stride,)  a rank's slab: row i (stride apart) holds Wt[0][i, lo:hi],
                                    row n_0 holds b[0][lo:hi]
    partial: (2, R, stride)  rank r's partial sums of sample p in partial[p % 2, r, :n_2]
    sync:    (16,) int64     sync[COUNT] barrier arrivals, sync[ABORT] 1 when a rank gave up
    upper:   (P - w_off[1],) a rank's copy of params from W[1] on, offsets in ``upper_layout``
"""

import numbers
import os
import threading
from collections import namedtuple

import numpy as np
from numba import njit

from jitnet.engine import kernels
from jitnet.engine.sync import ABORT, MAX_YIELDS, _barrier
from jitnet.engine.kernels import Layout, _gather_input, _hidden_delta, _layer

#: A rank's share of the work and the buffers it shares with the other ranks (see above).
Rank = namedtuple("Rank", ["rank", "size", "lo", "hi", "stride", "partial", "sync", "max_yields"])

_jit = njit(fastmath=kernels._FASTMATH, **kernels._OPTIONS)
# Sums over several rows without reassociation: with it, LLVM fused the passes over the rows
# differently when compiling afresh and when building the cached copy, and the weights after an
# epoch depended on whether Numba's cache was warm (as kernels._hidden_delta on main).
_jit_ordered = njit(fastmath=kernels._FASTMATH - {"reassoc"}, **kernels._OPTIONS)


# -- one rank's share of a sample ---------------------------------------------------------------


@_jit
def _activate(z, scratch, f):
    """The layer's non-linearity in place (one place to follow kernels._activate's signature;
    ``log_y`` is only written for a softmax output, which is never a first-layer block)."""
    kernels._activate(z, scratch.bits, scratch.log_y, f)


@_jit
def _output_delta(scratch, layout, t, output):
    """Eq. 3 into the output error terms; returns the sample's loss (squared error, or
    cross-entropy for a softmax output)."""
    L = layout.sizes.shape[0] - 1
    y = _layer(scratch.act, layout, L)
    return kernels._output_delta(y, t, _layer(scratch.delta, layout, L), scratch.log_y, output)


@_jit
def _slab_row(first, rank, i):
    """Row i of the rank's first-layer block (i = n_0: its biases): (hi - lo,)."""
    return first[i * rank.stride : i * rank.stride + rank.hi - rank.lo]


@_jit
def _copy_block(params, layout, first, rank, to_params):
    """The rank's block of Wt[0] and b[0] from params into its slab, or back."""
    n0, lo, hi = layout.sizes[0], rank.lo, rank.hi
    for i in range(n0 + 1):
        start = layout.w_off[0] + i * layout.stride0 if i < n0 else layout.b_off[0]
        if to_params:
            params[start + lo : start + hi] = _slab_row(first, rank, i)
        else:
            _slab_row(first, rank, i)[:] = params[start + lo : start + hi]


@_jit
def _first_layer_block(first, rank, layout, scratch, nnz, f):
    """Eq. 1/2 for the first hidden layer's units [lo, hi) (four input rows per pass)."""
    nz_idx, nz_val = scratch.nz_idx, scratch.nz_val
    z = _layer(scratch.act, layout, 1)[rank.lo : rank.hi]
    z[:] = _slab_row(first, rank, layout.sizes[0])
    n = z.shape[0]
    p = 0
    while p + 4 <= nnz:
        r0 = _slab_row(first, rank, nz_idx[p])
        r1 = _slab_row(first, rank, nz_idx[p + 1])
        r2 = _slab_row(first, rank, nz_idx[p + 2])
        r3 = _slab_row(first, rank, nz_idx[p + 3])
        x0, x1, x2, x3 = nz_val[p], nz_val[p + 1], nz_val[p + 2], nz_val[p + 3]
        for j in range(n):
            z[j] += x0 * r0[j] + x1 * r1[j] + x2 * r2[j] + x3 * r3[j]
        p += 4
    while p < nnz:
        r0 = _slab_row(first, rank, nz_idx[p])
        x0 = nz_val[p]
        for j in range(n):
            z[j] += x0 * r0[j]
        p += 1
    _activate(z, scratch, f)


@_jit
def _partial_sums(upper, layout, scratch, lo, hi, out):
    """out[k] = sum_{j in [lo, hi)} W[1][k, j] a1_j for every unit k of layer 2."""
    n_in = layout.sizes[1]
    a = _layer(scratch.act, layout, 1)[lo:hi]
    for k in range(layout.sizes[2]):
        row = upper[layout.w_off[1] + k * n_in + lo : layout.w_off[1] + k * n_in + hi]
        s = row[0] * a[0]  # in the layer's dtype, as the serial sums
        for j in range(1, hi - lo):
            s += row[j] * a[j]
        out[k] = s


@_jit
def _upper_forward(upper, layout, scratch, sums, hidden, output):
    """Layer 2 from b[1] and the ranks' partial sums (rank order), then Eq. 1/2 above it."""
    L = layout.sizes.shape[0] - 1
    z = _layer(scratch.act, layout, 2)
    z[:] = upper[layout.b_off[1] : layout.b_off[1] + layout.sizes[2]]
    for r in range(sums.shape[0]):
        for k in range(z.shape[0]):
            z[k] += sums[r, k]
    _activate(z, scratch, output if L == 2 else hidden)
    for l in range(2, L):
        n_in = layout.sizes[l]
        a_prev = _layer(scratch.act, layout, l)
        a = _layer(scratch.act, layout, l + 1)
        for j in range(layout.sizes[l + 1]):
            row = upper[layout.w_off[l] + j * n_in : layout.w_off[l] + (j + 1) * n_in]
            s = upper[layout.b_off[l] + j]
            for i in range(n_in):
                s += row[i] * a_prev[i]
            a[j] = s
        _activate(a, scratch, output if l + 1 == L else hidden)


@_jit_ordered
def _hidden_delta_block(upper, layout, scratch, lo, hi, f):
    """Eq. 4 for the first hidden layer's units [lo, hi) from layer 2's error terms."""
    n_in = layout.sizes[1]
    a = _layer(scratch.act, layout, 1)[lo:hi]
    d = _layer(scratch.delta, layout, 1)[lo:hi]
    d2 = _layer(scratch.delta, layout, 2)
    d[:] = 0.0
    for k in range(layout.sizes[2]):
        row = upper[layout.w_off[1] + k * n_in + lo : layout.w_off[1] + k * n_in + hi]
        dk = d2[k]
        for j in range(hi - lo):
            d[j] += row[j] * dk
    for j in range(hi - lo):
        d[j] *= kernels._derivative(a[j], f)


@_jit
def _update_block(first, upper, rank, layout, upper_layout, scratch, nnz, eta):
    """Eq. 5 for what this rank owns: its slab (Wt[0][:, lo:hi] two rows per pass, b[0][lo:hi]),
    W[1][:, lo:hi], and its own copy of b[1] and of every layer above."""
    nz_idx, nz_val = scratch.nz_idx, scratch.nz_val
    lo, hi = rank.lo, rank.hi
    n = hi - lo
    d = _layer(scratch.delta, layout, 1)[lo:hi]
    p = 0
    while p + 2 <= nnz:
        r0 = _slab_row(first, rank, nz_idx[p])
        r1 = _slab_row(first, rank, nz_idx[p + 1])
        g0 = eta * nz_val[p]
        g1 = eta * nz_val[p + 1]
        for j in range(n):
            r0[j] += g0 * d[j]
            r1[j] += g1 * d[j]
        p += 2
    if p < nnz:
        r0 = _slab_row(first, rank, nz_idx[p])
        g0 = eta * nz_val[p]
        for j in range(n):
            r0[j] += g0 * d[j]
    b = _slab_row(first, rank, layout.sizes[0])
    for j in range(n):
        b[j] += eta * d[j]
    sizes, w_off, b_off = upper_layout.sizes, upper_layout.w_off, upper_layout.b_off
    for l in range(1, sizes.shape[0] - 1):
        n_in = sizes[l]
        start, stop = (lo, hi) if l == 1 else (0, n_in)
        a_prev = _layer(scratch.act, layout, l)[start:stop]
        d = _layer(scratch.delta, layout, l + 1)
        for k in range(sizes[l + 1]):
            g = eta * d[k]
            row = upper[w_off[l] + k * n_in + start : w_off[l] + k * n_in + stop]
            for i in range(stop - start):
                row[i] += g * a_prev[i]
            upper[b_off[l] + k] += g


@_jit
def _train_rank(params, first, upper, layout, upper_layout, scratch, rank, X, T, order, scale,
                eta, hidden, output):
    """One rank's share of a model-parallel epoch over the samples in ``order``.

    The rank trains its block of the first layer in its own ``first`` slab (filled by
    :class:`Team`) and copies it back into params at the end: interleaved in params' rows, two
    ranks' blocks share pages, and the cores' prefetchers kept pulling each other's freshly
    written lines (measured: 4x slower than the ranks apart, with gaps of up to 4 lines between
    the blocks).
    Returns the summed loss (every rank computes the same), or NaN when the rank abandoned a
    barrier (``rank.sync[ABORT]`` is then raised and params are partly updated).
    """
    L = layout.sizes.shape[0] - 1
    lo, hi = rank.lo, rank.hi
    total = 0.0
    for p in range(order.shape[0]):
        s = order[p]
        nnz = _gather_input(X[s], scale, scratch.nz_idx, scratch.nz_val)
        _first_layer_block(first, rank, layout, scratch, nnz, hidden)
        sums = rank.partial[p % 2]
        _partial_sums(upper, upper_layout, scratch, lo, hi, sums[rank.rank])
        if not _barrier(rank.sync, rank.size * (p + 1), rank.max_yields):
            total = np.nan
            break
        _upper_forward(upper, upper_layout, scratch, sums, hidden, output)
        total += _output_delta(scratch, layout, T[s], output)
        for l in range(L - 1, 1, -1):
            _hidden_delta(upper, upper_layout, scratch, l, hidden)
        _hidden_delta_block(upper, upper_layout, scratch, lo, hi, hidden)
        _update_block(first, upper, rank, layout, upper_layout, scratch, nnz, eta)
    _copy_block(params, layout, first, rank, True)
    return total


# -- the team, in Python --------------------------------------------------------------------


def usable_cores():
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def check_threads(threads, sizes):
    """``threads`` as an int the network ``sizes`` can use, or a ValueError saying why not.

    More threads than first-layer units leave a thread without work; more than the usable
    cores make each barrier cost a scheduler time slice. Both are refused, not capped: the
    thread count is part of what makes a run reproducible.
    """
    if isinstance(threads, (bool, np.bool_)) or not isinstance(threads, numbers.Integral):
        raise ValueError(f"threads must be a whole number >= 1, got {threads!r}")
    threads = int(threads)
    if threads < 1:
        raise ValueError(f"threads must be a whole number >= 1, got {threads}")
    if threads == 1:
        return 1
    if len(sizes) < 3:
        raise ValueError(f"threads={threads} needs a hidden layer to divide, sizes are {sizes}")
    if threads > sizes[1]:
        raise ValueError(
            f"threads={threads} is more than the {sizes[1]} units of the first hidden layer"
        )
    cores = usable_cores()
    if threads > cores:
        raise ValueError(
            f"threads={threads} is more than the {cores} cores this process may use"
        )
    return threads


def blocks(n_hidden, threads, itemsize):
    """Each rank's units [lo, hi) of the first hidden layer: whole 64-byte lines (full SIMD
    vectors) where every rank gets at least one, else an even split."""
    per_line = 64 // itemsize
    lines = -(-n_hidden // per_line)
    if lines >= threads:
        bounds = [min(n_hidden, (r * lines // threads) * per_line) for r in range(threads + 1)]
    else:
        bounds = [r * n_hidden // threads for r in range(threads + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _aligned(n, dtype):
    """A zeroed (n,) array starting on a 64-byte boundary."""
    dtype = np.dtype(dtype)
    raw = np.zeros(n * dtype.itemsize + 64, np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start : start + n * dtype.itemsize].view(dtype)


def upper_layout(layout):
    """The Layout of a rank's copy of params from W[1] on (offsets shifted by w_off[1]),
    read-only like the network's."""
    shifted = []
    for offsets in (layout.w_off, layout.b_off):
        array = np.array([0] + [int(o) - int(layout.w_off[1]) for o in offsets[1:]], np.int64)
        array.flags.writeable = False
        shifted.append(array)
    return Layout(layout.sizes, *shifted, layout.a_off, layout.stride0)


class Team:
    """``threads`` ranks training one network: each rank's Rank tuple, first-layer slab, copy of
    the upper layers and Scratch, allocated once and reused by every :meth:`train` call of an
    epoch.

    Parameters
    ----------
    params, layout
        The network's flat parameters and their :class:`~jitnet.engine.kernels.Layout`.
    make_scratch : callable
        ``make_scratch()`` gives one rank's :class:`~jitnet.engine.kernels.Scratch`.
    threads : int
        Ranks, checked by :func:`check_threads`.
    max_yields : int
        How long a rank waits at a barrier before it gives up (see :mod:`jitnet.engine.sync`).
    """

    def __init__(self, params, layout, make_scratch, threads, max_yields=MAX_YIELDS):
        self.params, self.layout, self.threads = params, layout, threads
        self.upper_layout = upper_layout(layout)
        self.base = int(layout.w_off[1])
        self.n1, self.n2 = int(layout.sizes[1]), int(layout.sizes[2])
        self.blocks = blocks(self.n1, threads, params.itemsize)
        stride = kernels.row_stride(self.n2, params.itemsize)
        partial = _aligned(2 * threads * stride, params.dtype).reshape(2, threads, stride)
        self.sync = _aligned(16, np.int64)
        self.ranks, self.firsts = [], []
        for r, (lo, hi) in enumerate(self.blocks):
            stride = kernels.row_stride(hi - lo, params.itemsize)
            self.ranks.append(Rank(r, threads, lo, hi, stride, partial, self.sync, max_yields))
            self.firsts.append(_aligned((int(layout.sizes[0]) + 1) * stride, params.dtype))
        self.uppers = [_aligned(params.size - self.base, params.dtype) for _ in range(threads)]
        self.scratches = [make_scratch() for _ in range(threads)]
        for rank, first, upper in zip(self.ranks, self.firsts, self.uppers):
            _copy_block(params, layout, first, rank, False)
            upper[:] = params[self.base :]

    def _store(self):
        """Each rank's columns W[1][:, lo:hi] and rank 0's copy of the rest back into params
        (the first layer went back inside the kernel, each rank its own block)."""
        self.params[self.base :] = self.uppers[0]
        shape = (self.n2, self.n1)
        w1 = self.params[self.base : self.base + self.n2 * self.n1].reshape(shape)
        for (lo, hi), upper in zip(self.blocks[1:], self.uppers[1:]):
            w1[:, lo:hi] = upper[: self.n2 * self.n1].reshape(shape)[:, lo:hi]

    def train(self, X, T, order, scale, eta, hidden, output):
        """The samples in ``order``, one SGD update each; returns their summed loss.

        Takes what :func:`jitnet.engine.epochs._train_epoch` takes after its first three arguments
        (inputs checked and converted). Rank 0 runs on the calling thread. Reproducible for a
        given thread count; params hold every update when it returns. The ranks keep their own
        copies between calls (the chunks of one epoch): nothing else may change params
        meanwhile.

        Raises
        ------
        RuntimeError
            When a rank stopped before the end (a thread could not start or a rank gave up
            waiting); the parameters are then partly updated.
        """
        self.sync[:] = 0
        losses = [np.nan] * self.threads
        errors = []

        def run(rank):
            try:
                losses[rank] = _train_rank(
                    self.params, self.firsts[rank], self.uppers[rank], self.layout,
                    self.upper_layout, self.scratches[rank], self.ranks[rank], X, T, order,
                    scale, eta, hidden, output,
                )
            except BaseException as error:  # noqa: BLE001 -- release the other ranks, report
                self.sync[ABORT] = 1
                errors.append(error)

        workers = []
        try:
            for rank in range(1, self.threads):
                worker = threading.Thread(target=run, args=(rank,), name=f"jitnet-rank-{rank}")
                worker.start()
                workers.append(worker)
        except BaseException:
            self.sync[ABORT] = 1
            _join_all(workers)
            raise
        run(0)
        _join_all(workers)
        if errors:
            raise errors[0]
        if self.sync[ABORT]:
            raise RuntimeError("a training thread stopped waiting for the others; the "
                               "parameters are partly updated")
        self._store()
        return losses[0]


def _join_all(workers):
    """Join every worker even through a Ctrl-C (they finish within a sample of rank 0), then
    re-raise it: nobody may see params while a worker still writes them."""
    interrupted = None
    for worker in workers:
        while worker.is_alive():
            try:
                worker.join()
            except KeyboardInterrupt as error:
                interrupted = error
    if interrupted is not None:
        raise interrupted
