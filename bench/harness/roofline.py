"""The two sides of a roofline comparison for one-thread per-sample SGD.

Counted (a model, from the layer sizes and the non-zero inputs, no hardware counter read): the
multiply-adds per sample, the weight bytes touched, and the weight traffic if every use of a
weight went through the cache once. Measured (on the machine the benchmark runs on): a
one-thread numpy GEMM rate and a one-thread streaming ``a += b`` rate per cache level.
"""

import statistics
import time

import numpy as np


def operation_counts(sizes, nnz, itemsize):
    """Per-sample work of one SGD step with a sparse first layer, counted from the sizes.

    Parameters
    ----------
    sizes : list of int
        Layer sizes, inputs first.
    nnz : float
        Mean number of non-zero inputs per sample.
    itemsize : int
        Bytes per weight.

    Returns
    -------
    dict
        ``macs``: multiply-adds of forward (Eq. 1/2), hidden error terms (Eq. 4, layers above
        the first) and update (Eq. 5), first layer counted only over the non-zero inputs, biases
        included; ``touched_bytes``: distinct weight and bias bytes read or written;
        ``traffic_bytes``: weight bytes moved if none stayed in registers (forward read,
        backward read of the upper layers, update read and write).
    """
    first = nnz * sizes[1]
    upper = sum(a * b for a, b in zip(sizes[1:-1], sizes[2:]))
    biases = sum(sizes[1:])
    forward = first + upper + biases
    backward = upper
    update = first + upper + biases
    touched = first + upper + biases
    traffic = forward + backward + 2 * update
    return {"macs": forward + backward + update, "touched_bytes": touched * itemsize,
            "traffic_bytes": traffic * itemsize}


def cache_level(nbytes, caches):
    """The smallest cache level that holds ``nbytes`` ('L1', 'L2', 'L3', or 'memory')."""
    for level in ("L1", "L2", "L3"):
        if level in caches and nbytes <= caches[level]:
            return level
    return "memory"


def first_layer_size(sizes, itemsize):
    """Bytes of the first layer's weights as the engine stores them: transposed, one row per
    input, each row padded to a whole number of 64-byte cache lines."""
    row = -(-sizes[1] * itemsize // 64) * 64
    return sizes[0] * row


# -- machine limits, measured ---------------------------------------------------------------------


def _median_rate(work, fn, min_seconds):
    """Median of 3 measurements of ``work / seconds`` for ``fn``, each >= ``min_seconds`` long."""
    rates = []
    for _ in range(3):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        rates.append(work * calls / elapsed)
    return statistics.median(rates)


def machine_limits(quick, caches, dtypes=("float32", "float64")):
    """One-thread GEMM GFLOP/s per dtype and streaming ``a += b`` GB/s per cache level.

    ``caches`` must hold the bytes of L2 and L3; the probes' arrays are sized from them.
    """
    n = 512 if quick else 1024
    min_seconds = 0.05 if quick else 0.2
    gemm = {}
    for dtype in dtypes:
        a = np.random.default_rng(0).random((n, n)).astype(dtype)
        out = np.empty_like(a)
        gemm[dtype] = _median_rate(2 * n**3 / 1e9, lambda: np.matmul(a, a, out=out),
                                   min_seconds)
    stream = {}
    sizes = {"L2": caches["L2"] // 4, "L3": caches["L3"] // 8,
             "memory": (64 if quick else 256) * 1024**2}
    for level, nbytes in sizes.items():
        a = np.ones(nbytes // 8)
        b = np.ones(nbytes // 8)
        # reads a and b, writes a
        stream[level] = _median_rate(3 * nbytes / 1e9, lambda: np.add(a, b, out=a), min_seconds)
    return {"gemm_gflops": gemm, "gemm_n": n, "stream_gbs": stream,
            "stream_array_bytes": sizes}
