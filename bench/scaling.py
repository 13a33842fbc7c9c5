"""How the JIT engine's cost per sample grows: ``python bench/scaling.py [--quick]``.

Two sweeps of one-thread per-sample SGD (rate 0.3) with :class:`jitnet.Network`, float32 and
float64, uint8 inputs scaled inside the kernel as in normal training:

- hidden size (784-H-10, H = 100, 300, 1000, 3000) on the real MNIST training images, whose
  ~150 of 784 pixels are non-zero;
- input density (784-300-10) on synthetic images in which each pixel is non-zero with the given
  probability (uniform positions, values 1-255).

Beside each median time: the multiply-adds per sample (forward + backward + update, counting only
the first-layer weights that the non-zero inputs touch), the achieved GFLOP/s against a one-thread
GEMM measured on the same machine, the weight bytes touched per sample and the weight traffic in
GB/s against a streaming probe in each cache level, and which cache level the first layer's
weights fit in. Writes ``bench/results/scaling-latest.{md,json}`` and a dated JSON.
"""

import datetime
import os
import shlex
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import click  # noqa: E402
import numpy as np  # noqa: E402

from jitnet._machine import machine_info  # noqa: E402
from jitnet.bench import (  # noqa: E402
    NOISY_SPREAD,
    RATE,
    ThreadLimits,
    aligned_table,
    default_out_dir,
    format_number,
    log,
    machine_line,
    markdown_table,
    out_dir_option,
    run_command,
    time_repeats,
    write_results,
)
from jitnet.cli import IntListType  # noqa: E402
from jitnet.datasets import one_hot_targets  # noqa: E402

HIDDEN = (100, 300, 1000, 3000)
DENSITIES = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)
QUICK_DENSITIES = (0.05, 0.2, 1.0)
DTYPES = ("float32", "float64")
SYNTHETIC_POOL = 10_000
# The task's machine (AMD EPYC, per core) when sysfs does not say.
FALLBACK_CACHES = {"L2": 1024**2, "L3": 32 * 1024**2}


# -- counting -------------------------------------------------------------------------------------


def operation_counts(sizes, nnz, itemsize):
    """Per-sample work of one SGD step with a sparse first layer.

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


def machine_limits(quick, caches):
    """One-thread GEMM GFLOP/s per dtype and streaming ``a += b`` GB/s per cache level."""
    n = 512 if quick else 1024
    min_seconds = 0.05 if quick else 0.2
    gemm = {}
    for dtype in DTYPES:
        a = np.random.default_rng(0).random((n, n)).astype(dtype)
        out = np.empty_like(a)
        gemm[dtype] = _median_rate(2 * n**3 / 1e9, lambda: np.matmul(a, a, out=out),
                                   min_seconds)
    stream = {}
    l2 = caches.get("L2", FALLBACK_CACHES["L2"])
    l3 = caches.get("L3", FALLBACK_CACHES["L3"])
    sizes = {"L2": l2 // 4, "L3": l3 // 8, "memory": (64 if quick else 256) * 1024**2}
    for level, nbytes in sizes.items():
        a = np.ones(nbytes // 8)
        b = np.ones(nbytes // 8)
        # reads a and b, writes a
        stream[level] = _median_rate(3 * nbytes / 1e9, lambda: np.add(a, b, out=a), min_seconds)
    return {"gemm_gflops": gemm, "gemm_n": n, "stream_gbs": stream,
            "stream_array_bytes": sizes}


# -- timing ---------------------------------------------------------------------------------------


def time_network(sizes, dtype, X, T, nnz, target_s, repeats):
    """Median seconds per sample of ``train_epoch`` on X (cycled if more samples are needed)."""
    from jitnet import Network

    net = Network(sizes, dtype=dtype, seed=0)
    probe = np.arange(min(len(X), 64), dtype=np.int64)
    net.train_epoch(X, T, RATE, order=probe)  # compiled kernels loaded, caches warm
    start = time.perf_counter()
    net.train_epoch(X, T, RATE, order=probe)
    estimate = (time.perf_counter() - start) / probe.size
    n = int(np.clip(target_s / max(estimate, 1e-9), 200, 20 * len(X)))
    order = np.arange(n, dtype=np.int64) % len(X)
    times, median, spread = time_repeats(lambda: net.train_epoch(X, T, RATE, order=order),
                                         repeats)
    return {"samples": n, "times_s": times, "seconds": median / n, "spread": spread,
            "nnz": float(nnz[order].mean())}


def measure(sizes, dtype, X, T, nnz, target_s, repeats, caches, limits):
    itemsize = np.dtype(dtype).itemsize
    timing = time_network(sizes, dtype, X, T, nnz, target_s, repeats)
    counts = operation_counts(sizes, timing["nnz"], itemsize)
    seconds = timing["seconds"]
    first_layer_bytes = first_layer_size(sizes, itemsize)
    gflops = 2 * counts["macs"] / seconds / 1e9
    return {
        "sizes": sizes, "dtype": dtype, **timing, **counts,
        "us_per_sample": seconds * 1e6,
        "gflops": gflops,
        "gemm_fraction": gflops / limits["gemm_gflops"][dtype],
        "traffic_gbs": counts["traffic_bytes"] / seconds / 1e9,
        "first_layer_bytes": first_layer_bytes,
        "first_layer_fits": cache_level(first_layer_bytes, caches),
    }


def synthetic_images(n, n_inputs, density, rng):
    """uint8 images whose pixels are non-zero with probability ``density`` (values 1-255)."""
    mask = rng.random((n, n_inputs)) < density
    X = np.zeros((n, n_inputs), np.uint8)
    X[mask] = rng.integers(1, 256, size=int(mask.sum()), dtype=np.uint8)
    return X


# -- output ---------------------------------------------------------------------------------------

HEADER = ["sizes", "dtype", "non-zero in", "MACs/sample", "µs/sample", "GFLOP/s", "of GEMM",
          "W1 size", "W1 fits", "weights touched", "weight GB/s"]
RIGHT = [False, False, True, True, True, True, True, True, False, True, True]


def _bytes(n):
    if n >= 1024**2:
        return f"{n / 1024**2:.2f} MB"
    return f"{n / 1024:.0f} KB"


def cells(row, density_label=None):
    return [
        "-".join(map(str, row["sizes"])), row["dtype"],
        density_label or f"{row['nnz']:.0f}",
        f"{row['macs'] / 1000:,.0f}k", format_number(row["us_per_sample"]),
        format_number(row["gflops"]), f"{100 * row['gemm_fraction']:.0f}%",
        _bytes(row["first_layer_bytes"]), row["first_layer_fits"],
        _bytes(row["touched_bytes"]), format_number(row["traffic_gbs"]),
    ]


def _limits_line(limits):
    gemm = ", ".join(f"{d} {format_number(v)} GFLOP/s" for d, v in limits["gemm_gflops"].items())
    stream = ", ".join(f"{format_number(v)} GB/s in {level}" if level != "memory"
                       else f"{format_number(v)} GB/s from memory"
                       for level, v in limits["stream_gbs"].items())
    return (f"machine limits, one thread, measured in this run: numpy GEMM ({limits['gemm_n']}²) "
            f"{gemm}; streaming a += b {stream}")


NOTES = [
    "MACs/sample: multiply-adds of the forward pass, the hidden error terms and the weight "
    "update (biases included, sigmoids not counted); the first layer counts only the rows of "
    "the non-zero inputs. GFLOP/s = 2 × MACs / time; 'of GEMM' compares it with the one-thread "
    "GEMM above, the best this core does on dense work.",
    "weights touched: distinct weight and bias bytes read or written per sample. weight GB/s: "
    "the traffic if every weight went through memory once per use (forward read, upper layers' "
    "backward read, update read + write) — compare with the streaming probe of the level the "
    "weights fit in.",
    "W1 size: the first layer's weights as stored, one row per input padded to whole 64-byte "
    "cache lines. W1 fits: the smallest cache level (per core L2, shared L3) holding all of it; "
    "over many samples every row of it is visited, so that is its working set.",
]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--hidden", type=IntListType(what="hidden sizes"), default=",".join(map(str, HIDDEN)),
              show_default=True, help="Hidden sizes of the 784-H-10 sweep on MNIST.")
@click.option("--densities", default=None,
              help="Fractions of non-zero inputs for the 784-300-10 synthetic sweep "
                   f"[default: {','.join(map(str, DENSITIES))}; --quick "
                   f"{','.join(map(str, QUICK_DENSITIES))}].")
@click.option("--density-hidden", type=click.IntRange(1, None), default=300, show_default=True,
              help="Hidden size of the density sweep.")
@click.option("--dtypes", default=",".join(DTYPES), show_default=True,
              help="Precisions to measure, comma-separated.")
@click.option("--repeats", type=click.IntRange(3, None), default=None,
              help="Timed repeats per point; the median is reported [default: 5; --quick 3].")
@click.option("--seconds", type=click.FloatRange(0, None, min_open=True), default=None,
              help="Target seconds per timed repeat; sets the samples per point "
                   "[default: 0.5; --quick 0.05].")
@click.option("--quick", is_flag=True,
              help="Short repeats and fewer densities (under a minute); results named "
                   "scaling-quick-*.")
@out_dir_option
@click.pass_context
def scaling(ctx, hidden, densities, density_hidden, dtypes, repeats, seconds, quick, out_dir):
    """Time the JIT engine per sample against hidden size and input density."""
    hidden = list(hidden)
    try:
        densities = ([float(d) for d in densities.split(",")] if densities
                     else list(QUICK_DENSITIES if quick else DENSITIES))
    except ValueError as error:
        raise click.BadParameter(f"expected comma-separated numbers ({error})",
                                 param_hint="--densities") from None
    if not all(0 < d <= 1 for d in densities):
        raise click.BadParameter("densities must lie in (0, 1]", param_hint="--densities")
    dtypes = [d.strip() for d in dtypes.split(",")]
    if not set(dtypes) <= set(DTYPES):
        raise click.BadParameter(f"dtypes must be among {', '.join(DTYPES)}",
                                 param_hint="--dtypes")
    repeats = repeats or (3 if quick else 5)
    seconds = seconds or (0.05 if quick else 0.5)
    out_dir = out_dir or default_out_dir()

    import jitnet
    from jitnet.network import compile_kernels

    train, _ = jitnet.load_mnist()
    n_in, n_out = train.images.shape[1], train.n_classes
    info = machine_info()
    caches = {**FALLBACK_CACHES, **info["caches"]}
    limits_obj = ThreadLimits()
    try:
        log("compiling (or loading) the kernels ...")
        compile_s = {d: compile_kernels(d) for d in dtypes}
        log("measuring one-thread GEMM and streaming bandwidth ...")
        limits = machine_limits(quick, caches)

        hidden_rows = []
        X = train.images
        nnz = np.count_nonzero(X, axis=1)
        targets = {dtype: one_hot_targets(train.labels, n_out, dtype) for dtype in dtypes}
        for h in hidden:
            for dtype in dtypes:
                log(f"  {n_in}-{h}-{n_out} {dtype} on MNIST ...")
                hidden_rows.append(measure([n_in, h, n_out], dtype, X, targets[dtype], nnz,
                                           seconds, repeats, caches, limits))

        density_rows = []
        rng = np.random.default_rng(0)
        labels = rng.integers(0, n_out, SYNTHETIC_POOL)
        targets = {dtype: one_hot_targets(labels, n_out, dtype) for dtype in dtypes}
        for density in densities:
            Xs = synthetic_images(SYNTHETIC_POOL, n_in, density, rng)
            nnz_s = np.count_nonzero(Xs, axis=1)
            for dtype in dtypes:
                log(f"  {n_in}-{density_hidden}-{n_out} {dtype} at density {density:g} ...")
                row = measure([n_in, density_hidden, n_out], dtype, Xs, targets[dtype], nnz_s,
                              seconds, repeats, caches, limits)
                row["density"] = density
                density_rows.append(row)
    finally:
        limits_obj.restore()

    now = datetime.datetime.now().astimezone()
    argv = (ctx.obj or {}).get("argv", [])
    command = shlex.join(["python", "bench/scaling.py", *argv])
    head = (f"jitnet scaling: one-thread per-sample SGD (rate {RATE}), uint8 inputs, median of "
            f"{repeats} repeats of ~{seconds:g} s" + ("  [quick run]" if quick else ""))
    machine = f"machine: {machine_line(info)}; {now:%Y-%m-%d %H:%M}"
    compile_line = "compile/load of the kernels: " + ", ".join(
        f"{d} {s:.2f} s" for d, s in compile_s.items())
    limits_line = _limits_line(limits)
    hidden_title = (f"cost against hidden size, MNIST training images "
                    f"(mean {nnz.mean():.0f} of {n_in} inputs non-zero)")
    density_title = (f"cost against input density, {n_in}-{density_hidden}-{n_out}, synthetic "
                     f"images (each pixel non-zero with the given probability)")
    noisy = [r for r in hidden_rows + density_rows if r["spread"] > NOISY_SPREAD]
    notes = list(NOTES)
    if noisy:
        notes.append(f"noisy: in {len(noisy)} of {len(hidden_rows) + len(density_rows)} points "
                     f"the repeats differ by more than {NOISY_SPREAD:.0%} of the median (up to "
                     f"{100 * max(r['spread'] for r in noisy):.0f}%); another process may have "
                     f"shared the core, rerun on a quiet machine before quoting.")
    hidden_cells = [cells(r) for r in hidden_rows]
    density_cells = [cells(r, f"{r['density']:.0%} ({r['nnz']:.0f})") for r in density_rows]
    density_header = ["density (nnz)" if h == "non-zero in" else h for h in HEADER]
    click.echo("\n".join([
        head, machine, compile_line, limits_line, "",
        hidden_title, aligned_table(HEADER, hidden_cells, RIGHT), "",
        density_title, aligned_table(density_header, density_cells, RIGHT), "",
        *notes,
    ]))

    record = {
        "benchmark": "scaling",
        "date": now.isoformat(timespec="seconds"),
        "command": command,
        "config": {"hidden": hidden, "densities": densities, "density_hidden": density_hidden,
                   "dtypes": dtypes, "repeats": repeats, "seconds": seconds, "quick": quick,
                   "rate": RATE},
        "machine": info,
        "compile_s": compile_s,
        "limits": limits,
        "hidden": hidden_rows,
        "density": density_rows,
        "notes": notes,
    }
    markdown = "\n".join([
        "# How the JIT engine's cost per sample grows",
        "",
        head.replace("jitnet scaling: ", "").replace("  [quick run]", "")
        + (". **Quick run: short repeats, not a measurement to quote.**" if quick else "."),
        "",
        f"Measured {now:%Y-%m-%d %H:%M} on {machine_line(info)}.",
        "",
        f"- {limits_line}",
        f"- {compile_line}",
        "",
        f"## {hidden_title[0].upper()}{hidden_title[1:]}",
        "",
        markdown_table(HEADER, hidden_cells, RIGHT),
        "",
        f"## {density_title[0].upper()}{density_title[1:]}",
        "",
        markdown_table(density_header, density_cells, RIGHT),
        "",
        *[f"- {note}" for note in notes],
        "",
        f"Reproduce: `{command}`",
        "",
    ])
    paths = write_results(out_dir, "scaling-quick" if quick else "scaling", record, markdown)
    log("wrote " + ", ".join(os.path.relpath(p) for p in paths))
    return 0


def main(argv=None):
    """Run the scaling benchmark with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    return run_command(scaling, list(sys.argv[1:] if argv is None else argv), "scaling.py")


if __name__ == "__main__":
    sys.exit(main())
