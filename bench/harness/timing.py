"""Timing: every engine on one thread, repeats and their median, and the kernels' compile times."""

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time

from harness import BenchError

EPOCH_SAMPLES = 60_000
# Repeats whose (max - min) / median exceeds this get a note: the core was probably shared.
NOISY_SPREAD = 0.10


def blas_threads():
    """Threads of numpy's BLAS now (None if threadpoolctl finds no BLAS library)."""
    from threadpoolctl import threadpool_info

    counts = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    return max(counts, default=None)


@contextlib.contextmanager
def one_thread():
    """Numba and the BLAS/OpenMP pools that threadpoolctl knows on one thread, restored on exit.

    Set at run time, not through environment variables, so that it works although numpy and
    Numba are already loaded. Yields the threads of numpy's BLAS under the limit.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise BenchError("the benchmarks need threadpoolctl: pip install threadpoolctl "
                         "(or pip install -e '.[bench]')") from None
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield blas_threads()
    finally:
        numba.set_num_threads(before)


def jax_single_thread():
    """Ask XLA for one thread; it reads XLA_FLAGS when its CPU backend starts (first use).

    Returns False when JAX was imported before, so that its backend may already run with its
    default threads.
    """
    flag = "--xla_cpu_multi_thread_eigen=false"
    flags = os.environ.get("XLA_FLAGS", "")
    if flag in flags:
        return True
    if "jax" in sys.modules:
        return False
    os.environ["XLA_FLAGS"] = (flags + " " + flag).strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    return True


def time_repeats(fn, repeats):
    """Call ``fn()`` ``repeats`` times: the seconds of each call, their median, and their spread
    ``(max - min) / median``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return times, median, (max(times) - min(times)) / median


def time_engine(engine, n, repeats):
    """Stage n samples, warm up, then time ``repeats`` passes; a result row without speed-ups."""
    engine.stage(n)
    engine.warm_up()
    times, median, spread = time_repeats(engine.run, repeats)
    per_sample = median / n
    return {
        "engine": engine.name,
        "dtype": engine.dtype,
        "threads": engine.threads,
        "samples": n,
        "repeats": repeats,
        "times_s": times,
        "spread": spread,
        "us_per_sample": per_sample * 1e6,
        "samples_per_s": 1.0 / per_sample,
        "epoch_s": per_sample * EPOCH_SAMPLES,
        "epoch": "measured" if n == EPOCH_SAMPLES else "extrapolated",
    }


def add_speedups(rows):
    """Add ``x_vs_object`` and ``x_vs_vectorized`` to each row (None without that row)."""
    base = {}
    for row in rows:
        if row["engine"].startswith(("object", "vectorized")):
            base[row["engine"].split()[0]] = row["us_per_sample"]
    for row in rows:
        for key in ("object", "vectorized"):
            row[f"x_vs_{key}"] = base[key] / row["us_per_sample"] if key in base else None


def noisy_note(labelled_rows, total=None):
    """A note naming the rows whose repeats spread more than NOISY_SPREAD, or None.

    ``labelled_rows`` holds ``(label, row)`` pairs; ``total`` the number of rows measured.
    """
    noisy = [(label, row["spread"]) for label, row in labelled_rows
             if row["spread"] > NOISY_SPREAD]
    if not noisy:
        return None
    which = ", ".join(f"{label} {100 * spread:.0f}%" for label, spread in noisy)
    if total is not None and len(noisy) > 4:
        which = (f"{len(noisy)} of {total} points (up to "
                 f"{100 * max(spread for _, spread in noisy):.0f}%)")
    return (f"noisy: repeats differ by more than {NOISY_SPREAD:.0%} of the median for {which}; "
            f"another process may have shared the core, rerun on a quiet machine before quoting.")


def compile_in_process(dtypes):
    """Seconds to compile, or load from Numba's cache, each dtype's kernels in this process."""
    from jitnet.engine.compile import compile_kernels

    return {dtype: compile_kernels(dtype) for dtype in dtypes}


_COLD_COMPILE = ("import sys; from jitnet.engine.compile import compile_kernels; "
                 "print(compile_kernels(sys.argv[1]))")


def compile_cold(dtypes):
    """Seconds to compile each dtype's kernels in a fresh process with an empty Numba cache."""
    import jitnet

    package_root = os.path.dirname(os.path.dirname(os.path.abspath(jitnet.__file__)))
    path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    result = {}
    for dtype in dtypes:
        with tempfile.TemporaryDirectory(prefix="jitnet-numba-cache-") as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=path)
            done = subprocess.run([sys.executable, "-c", _COLD_COMPILE, dtype], env=env,
                                  capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise BenchError(f"the cold compile of the {dtype} kernels failed: {last}")
        result[dtype] = float(done.stdout.strip().splitlines()[-1])
    return result
