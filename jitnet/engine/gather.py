"""The first thing of every per-sample step (:mod:`jitnet.engine.kernels`): a sample's non-zero
inputs, gathered from the data set's row or from the sample distorted afresh (layout legend in
:mod:`jitnet.engine.buffers`)."""

from jitnet.engine.distort_kernels import _distort_rows
from jitnet.engine.jit import jit, jit_inline
from jitnet.engine.sync import _barrier


@jit
def _gather_input(x, scale, nz_idx, nz_val, every=False):
    """Collect the non-zero inputs of one sample (scaled), or with ``every`` all of them (so
    that every first-layer row is updated); returns how many there are."""
    nnz = 0
    for i in range(x.shape[0]):
        # Branch-free: always write, advance only past non-zeros (pixels are unpredictable).
        v = x[i]
        nz_idx[nnz] = i
        nz_val[nnz] = v * scale
        nnz += (v != 0) | every
    return nnz


@jit_inline
def _distorted_input(x, k, scale, distorter, rank, scratch, every):
    """The k-th sample visited, x, distorted with ``distorter.draws[k]`` into ``distorter.x``
    (times ``scale``), then gathered; returns how many inputs were gathered.

    In a team (``rank`` not None) the ranks share one ``distorter.x``: each distorts its share
    of the image's rows (the first ``rows * rank // size`` to the next rank's) and all meet at
    the barrier 2k + 1, the first of the sample's two, before any reads it; returns -1 when the
    rank gave up waiting there. Every rank has gathered sample k before it reaches the
    sample's second barrier, so none overwrites ``distorter.x`` while another still reads it.
    """
    r0, r1 = 0, distorter.rows
    if rank is not None:
        r0 = distorter.rows * rank.rank // rank.size
        r1 = distorter.rows * (rank.rank + 1) // rank.size
    _distort_rows(x, distorter.rows, distorter.cols, scale, distorter.draws[k], distorter.bank,
                  distorter.work, distorter.index, distorter.x, r0, r1)
    if rank is not None:
        if not _barrier(rank.sync, rank.rank, rank.size, 2 * k + 1, rank.timeout_ns):
            return -1
    return _gather_input(distorter.x, 1.0, scratch.nz_idx, scratch.nz_val, every)
