"""The first thing of every per-sample step (:mod:`jitnet.engine.kernels`): a sample's non-zero
inputs, gathered from the data set's row or from the sample distorted afresh (layout legend in
:mod:`jitnet.engine.buffers`)."""

from jitnet.engine.distort_kernels import _distort_sample
from jitnet.engine.jit import jit, jit_inline


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
def _distorted_input(x, k, scale, distorter, scratch, every):
    """The k-th sample visited, x, distorted with ``distorter.draws[k]`` into ``distorter.x``
    (times ``scale``), then gathered; returns how many inputs were gathered.

    In a team every rank distorts the whole sample into an ``x`` of its own, from the same row
    of draws, so all train on bitwise the same sample without a barrier. The other way, the
    ranks distorting a share of the rows each into one shared ``x`` behind a second barrier per
    sample, was slower in 5 of 6 runs of ``bench/threads_recipes.py --other-rev`` on the shared
    2-core AMD EPYC (simard2003, 20,000 samples, 2 threads against 1 in the same run): on the
    otherwise idle machine 1.39x here against 1.23x split; at real-time priority beside nice-19
    jobs 1.41x and 1.48x against 1.28x and 1.33x, one shorter run 1.06x against 1.36x; at a load
    average of 3.5-7, 0.66-0.68x against 0.58-0.61x. A distortion costs about 2 us of a ~21 us
    sample, and the second barrier cost more than the microsecond the split saves.
    """
    _distort_sample(x, distorter.rows, distorter.cols, scale, distorter.draws[k], distorter.bank,
                    distorter.work, distorter.index, distorter.x)
    return _gather_input(distorter.x, 1.0, scratch.nz_idx, scratch.nz_val, every)
