"""Every core on one model: deterministic model-parallel per-sample SGD (``threads > 1``).

The serial epoch (:func:`jitnet.engine.epochs._train_epoch`) is bound by streaming the first
layer's rows of the non-zero inputs through the cache, read and written once per sample. Here ``N``
threads share that work on one network, sample by sample, with exactly the serial algorithm
(every error term from the weights before the sample's update, one update per sample):

- rank ``r`` owns a contiguous block ``[lo, hi)`` of the first hidden layer's units (whole
  64-byte lines where the layer is wide enough): its columns of ``Wt[0]`` and its biases
  ``b[0][lo:hi]``, which it trains in its own slab (copied from params when the
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

Every rank runs the serial epoch's per-sample step (:func:`jitnet.engine.kernels._train_samples`)
over its block, given its :class:`~jitnet.engine.buffers.Rank`: the only arithmetic of its own
is the split of layer 2's sums around the barrier (:func:`jitnet.engine.kernels._team_forward`).
Every recipe trains so:

- momentum (classical or Nesterov's): each rank keeps its own velocity, laid out like its own
  buffer (its block's slab and its copy of the layers above), and its own bookkeeping of the
  first-layer rows that lag (every rank's is the same: all see the same inputs). The team
  reads the network's velocity and lag at the start of every :meth:`Team.train` call and
  writes them back at its end, as it does params, so the epoch's end
  (:func:`jitnet.engine.epochs._finish_momentum_epoch`) and a checkpoint see the serial state;
- weight decay (``l2``): each rank's running squares cover what it owns (rank 0 also the
  layers every rank has), and rank 0 alone counts the samples' losses; the team adds the ranks'
  totals in rank order;
- distortions: every rank must train on the same distorted sample, drawn from the same row of
  draws as the serial run. Each rank distorts the whole sample into a buffer of its own: the
  work is done twice, but no second barrier is needed; splitting the rows between the ranks
  behind one measured slower (:func:`jitnet.engine.gather._distorted_input` has the numbers).

The barrier (:mod:`jitnet.engine.sync`) is a shared counter raised by an atomic add and read by
an acquire load. A waiting rank spins, then yields its core (``sched_yield``), and gives up when
another rank raised the abort flag or after ``timeout`` seconds of wall time, so a rank that
never arrives cannot hang the others; :meth:`Team.train` then says which rank it was.

Each rank is one call of the serial, ``nogil`` kernel :func:`_train_rank` on its own Python
thread (rank 0 on the caller's), not an iteration of a ``prange``: a spin barrier needs every
rank running at once, which OS threads guarantee and Numba's threading layers do not (TBB may
run two iterations one after the other on one worker; any layer does when fewer Numba threads
are set than ranks). It also keeps ``cache=True``: later processes load it from Numba's cache.

Speed-ups, the barrier's cost and compile times: ``bench/threads.py``, last measured in
``bench/results/threads-latest.md``. It needs N otherwise idle cores: with one other busy
process on the machine a rank loses its core for whole time slices and the epoch runs slower
than the serial one.

Legend (as in :mod:`jitnet.engine.buffers`; ``R`` ranks, ``n_2`` the units of layer 2)::

    upper:   (P - w_off[1],) a rank's copy of params from W[1] on, offsets in ``upper_layout``
    slab:    ((n_0 + 1) * stride,)  a rank's first-layer Block, after its upper in one buffer
                                    (from the next 64-byte line): row i (stride apart) holds
                                    Wt[0][i, lo:hi], row n_0 holds b[0][lo:hi]
    velocity                a rank's velocity, laid out like its buffer (upper, then slab)
    partial: (2, R, stride)  rank r's partial sums of sample p in partial[p % 2, r, :n_2]
    sync:    (16 + 8 R,) int64  the barrier's counters (:mod:`jitnet.engine.sync`)
"""

import numbers
import os
import threading

import numpy as np

from jitnet.engine.buffers import Block, Layout, Rank, _bias, _row, aligned_zeros, row_stride
from jitnet.engine.jit import jit
from jitnet.engine.kernels import _train_samples
from jitnet.engine.sync import ABORT, DEFAULT_TIMEOUT, LATE, sync_size


# -- one rank's share of an epoch --------------------------------------------------------------


@jit
def _copy_block(params, layout, block, to_params):
    """The rank's block of Wt[0] and b[0] from params into its slab, or back."""
    n0, lo, hi = layout.sizes[0], block.lo, block.hi
    for i in range(n0 + 1):
        start = layout.w_off[0] + i * layout.stride0 if i < n0 else layout.b_off[0]
        slab = _row(block.w, block, i) if i < n0 else _bias(block.w, block)
        if to_params:
            params[start + lo : start + hi] = slab
        else:
            slab[:] = params[start + lo : start + hi]


@jit
def _train_rank(params, block, upper, layout, upper_layout, scratch, rank, X, T, order, scale,
                eta, hidden, output, momentum, distorter, extras):
    """One rank's share of a model-parallel epoch over the samples in ``order``.

    The rank trains its block of the first layer in its own slab (in ``block.w``, filled by
    :class:`Team`, after the rank's copy ``upper`` of the layers above: the same array) and
    copies it back into params at the end: interleaved in params' rows, two ranks' blocks
    share pages, and the cores' prefetchers kept pulling each other's freshly written lines
    (measured: 4x slower than the ranks apart, with gaps of up to 4 lines between the blocks).
    ``momentum`` (its velocity laid out like ``upper``/``block.w``), ``distorter`` and
    ``extras`` are the rank's own, or None when off.
    Returns the rank's share of the summed loss (rank 0: the samples' losses; every rank: the
    weight decay's penalty of what it owns), or NaN when the rank abandoned a barrier
    (``rank.sync[ABORT]`` is then raised and params are partly updated).
    """
    total = _train_samples(upper, upper_layout, block, rank, scratch, X, T, order, scale, eta,
                           hidden, output, momentum, distorter, extras)
    _copy_block(params, layout, block, True)
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
    """``threads`` ranks training one network: each rank's Rank tuple, its own buffer (a copy
    of the upper layers, then its first-layer slab, the Block), Scratch and, once used, the
    same for momentum's velocity and a distortion, allocated once and reused by every
    :meth:`train` call of an epoch.

    Parameters
    ----------
    params, layout
        The network's flat parameters and their :class:`~jitnet.engine.kernels.Layout`.
    make_scratch : callable
        ``make_scratch()`` gives one rank's :class:`~jitnet.engine.kernels.Scratch`.
    threads : int
        Ranks, checked by :func:`check_threads`.
    timeout : float
        Seconds a rank waits at a barrier for the others before it gives up
        (:mod:`jitnet.engine.sync`).
    """

    def __init__(self, params, layout, make_scratch, threads, timeout=DEFAULT_TIMEOUT):
        self.params, self.layout, self.threads = params, layout, threads
        self.timeout = timeout
        self.upper_layout = upper_layout(layout)
        self.base = int(layout.w_off[1])
        self.n0, self.n1, self.n2 = (int(n) for n in layout.sizes[:3])
        self.bounds = blocks(self.n1, threads, params.itemsize)
        stride = row_stride(self.n2, params.itemsize)
        partial = aligned_zeros(2 * threads * stride, params.dtype).reshape(2, threads, stride)
        self.sync = aligned_zeros(sync_size(threads), np.int64)
        timeout_ns = max(1, int(timeout * 1e9))
        self.ranks = [Rank(r, threads, partial, self.sync, timeout_ns) for r in range(threads)]
        self.upper = params.size - self.base
        start = row_stride(self.upper, params.itemsize)  # the slab starts on a line of its own
        self.slabs = []
        for lo, hi in self.bounds:
            stride = row_stride(hi - lo, params.itemsize)
            local = aligned_zeros(start + (self.n0 + 1) * stride, params.dtype)
            self.slabs.append(Block(local, start, stride, start + self.n0 * stride, lo, hi))
        self.scratches = [make_scratch() for _ in range(threads)]
        self.velocities = self.distorters = self.stats = None  # made when first needed

    def _load(self, momentum, distorter, extras):
        """Each rank's copies of params (and velocity) as they are now; the rank's own
        momentum, distorter and extras tuples (None when off)."""
        for block in self.slabs:
            _copy_block(self.params, self.layout, block, False)
            block.w[: self.upper] = self.params[self.base :]
        moms = dists = [None] * self.threads
        if momentum is not None:
            if self.velocities is None:
                # last and clock on lines of their own: the rank writes them every sample
                self.velocities = [(block._replace(w=aligned_zeros(block.w.size, block.w.dtype)),
                                    _own_lines(momentum.last), _own_lines(momentum.clock))
                                   for block in self.slabs]
            moms = []
            for block, last, clock in self.velocities:
                _copy_block(momentum.velocity, self.layout, block, False)
                block.w[: self.upper] = momentum.velocity[self.base :]
                last[:], clock[:] = momentum.last, momentum.clock
                moms.append(momentum._replace(velocity=block.w, last=last, clock=clock))
        if distorter is not None:  # each rank distorts every sample into its own x
            if self.distorters is None:
                self.distorters = [tuple(aligned_zeros(a.size, a.dtype) for a in distorter[4:])
                                   for _ in range(self.threads)]
            dists = [distorter._replace(work=work, index=index, x=x)
                     for work, index, x in self.distorters]
        if extras is None or extras.l2.size == 0:
            return moms, dists, [extras] * self.threads
        if self.stats is None:  # the first call of the epoch: every row is up to date
            self.stats = [self._squares(momentum.velocity, r) for r in range(self.threads)]
        return moms, dists, [extras._replace(stats=stats) for stats in self.stats]

    def _squares(self, velocity, rank):
        """Weight decay's running sums of rank ``rank`` (:mod:`jitnet.engine.extras`): of its
        block of the first layer, of its columns of W[1], and for rank 0 of the layers above."""
        lo, hi = self.bounds[rank]
        w0_off, stride0 = int(self.layout.w_off[0]), int(self.layout.stride0)
        block = slice(w0_off, w0_off + self.n0 * stride0)
        w0 = self.params[block].reshape(self.n0, stride0)[:, lo:hi].astype(np.float64)
        v0 = velocity[block].reshape(self.n0, stride0)[:, lo:hi].astype(np.float64)
        stats = np.zeros(8)
        stats[:3] = np.sum(w0 * w0), np.sum(w0 * v0), np.sum(v0 * v0)
        sizes, w_off = self.layout.sizes, self.layout.w_off
        for l in range(1, len(sizes) - 1) if rank == 0 else [1]:
            w = self.params[w_off[l] : w_off[l] + sizes[l + 1] * sizes[l]].reshape(
                sizes[l + 1], sizes[l]).astype(np.float64)
            w = w[:, lo:hi] if l == 1 else w
            stats[3] += np.sum(w * w)
        return stats

    def _store(self, target, buffers):
        """Each rank's columns W[1][:, lo:hi] and rank 0's copy of the rest from ``buffers``
        (the ranks' buffers of params or of velocity) back into ``target``."""
        target[self.base :] = buffers[0][: self.upper]
        shape = (self.n2, self.n1)
        w1 = target[self.base : self.base + self.n2 * self.n1].reshape(shape)
        for (lo, hi), local in zip(self.bounds[1:], buffers[1:]):
            w1[:, lo:hi] = local[: self.n2 * self.n1].reshape(shape)[:, lo:hi]

    def _store_all(self, momentum):
        """Params (the first layer went back inside the kernel, each rank its own block) and,
        with momentum, the velocity, and rank 0's lag bookkeeping (every rank's is the same)."""
        self._store(self.params, [block.w for block in self.slabs])
        if momentum is not None:
            for block, _, _ in self.velocities:
                _copy_block(momentum.velocity, self.layout, block, True)
            self._store(momentum.velocity, [block.w for block, _, _ in self.velocities])
            momentum.last[:], momentum.clock[:] = self.velocities[0][1:]

    def train(self, X, T, order, scale, eta, hidden, output, momentum=None, distorter=None,
              extras=None):
        """The samples in ``order``, one SGD update each; returns their summed loss (with weight
        decay the sum of the ranks' shares, in rank order).

        Takes what :func:`jitnet.engine.epochs._epoch` takes after its first three arguments
        (inputs checked and converted; ``momentum``, ``distorter`` and ``extras`` None when
        off). Rank 0 runs on the calling thread. Reproducible for a given thread count. The
        ranks copy params, and momentum's velocity and lag bookkeeping, at the start of the
        call, and params and momentum hold every update when it returns.

        Raises
        ------
        RuntimeError
            When a rank stopped before the end (a thread could not start, or a rank did not
            reach a barrier within ``timeout`` seconds); the parameters are then partly updated.
        """
        self.sync[:] = 0
        losses = [np.nan] * self.threads
        errors = []
        moms, dists, extra = self._load(momentum, distorter, extras)

        def run(rank):
            try:
                block = self.slabs[rank]
                losses[rank] = _train_rank(
                    self.params, block, block.w, self.layout, self.upper_layout,
                    self.scratches[rank], self.ranks[rank], X, T, order, scale, eta, hidden,
                    output, moms[rank], dists[rank], extra[rank],
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
        try:
            _join_all(workers)
        finally:  # also after a Ctrl-C: every rank has finished its samples
            if not errors and not self.sync[ABORT]:
                self._store_all(momentum)
        if errors:
            raise errors[0]
        if self.sync[ABORT]:
            late = int(self.sync[LATE]) - 1
            if late >= 0:
                raise RuntimeError(f"rank {late} of {self.threads} did not reach the barrier "
                                   f"within {self.timeout:g} s; the parameters are partly "
                                   "updated")
            raise RuntimeError("a training thread stopped waiting for the others; the "
                               "parameters are partly updated")
        return sum(losses)  # in rank order


def _own_lines(array):
    """A zeroed copy of the 1-D ``array``'s shape and type on whole 64-byte lines of its own."""
    per_line = 64 // array.itemsize
    return aligned_zeros(-(-array.size // per_line) * per_line, array.dtype)[: array.size]


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
