"""How the JIT engine's cost per sample grows: ``python bench/scaling.py [--quick] [--help]``.

Two sweeps of one-thread per-sample SGD (rate 0.3) with ``jitnet.Network``, float32 and float64,
uint8 inputs scaled inside the kernel as in normal training:

- hidden size (784-H-10, H = 100, 300, 1000, 3000) on the real MNIST training images, whose
  ~150 of 784 pixels are non-zero;
- input density (784-300-10) on synthetic images in which each pixel is non-zero with the given
  probability (uniform positions, values 1-255).

Measured: the median seconds per sample, a one-thread numpy GEMM rate and a one-thread streaming
``a += b`` rate per cache level, on the machine the script runs on. Counted from the layer sizes
and the non-zero inputs (a model, not a measurement): the multiply-adds per sample, the weight
bytes touched per sample, and the weight traffic if every use of a weight went through the cache
once. Dividing the counts by the measured time gives GFLOP/s and a modelled "weight GB/s"; no
hardware counter is read, so how close that comes to the streaming probe is evidence about what
limits the engine, not a measurement of its cache traffic. Writes
``bench/results/scaling-latest.{md,json}`` and a dated JSON.
"""

import dataclasses
import datetime
import os
import shlex
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# From a source checkout, installed or not: jitnet from the tree above, the harness beside this.
for _path in (os.path.dirname(HERE), HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import click  # noqa: E402
import numpy as np  # noqa: E402

from harness.engines import RATE  # noqa: E402
from harness.options import IntList, log, out_dir_option, run_command  # noqa: E402
from harness.roofline import (  # noqa: E402
    cache_level,
    first_layer_size,
    machine_limits,
    operation_counts,
)
from harness.results import (  # noqa: E402
    DEFAULT_OUT_DIR,
    aligned_table,
    format_number,
    machine_line,
    markdown_table,
    write_results,
)
from harness.timing import compile_in_process, noisy_note, one_thread, time_repeats  # noqa: E402
from jitnet.training.machine import machine_info  # noqa: E402

HIDDEN = (100, 300, 1000, 3000)
DENSITIES = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)
QUICK_DENSITIES = (0.05, 0.2, 1.0)
DTYPES = ("float32", "float64")
SYNTHETIC_POOL = 10_000
# Assumed when sysfs reports no cache sizes (then said so in the output): a per-core L2 of 1 MB
# and a shared L3 of 32 MB, the AMD EPYC the committed results were measured on.
ASSUMED_CACHES = {"L2": 1024**2, "L3": 32 * 1024**2}


@dataclasses.dataclass(frozen=True)
class Options:
    """What one scaling run measures; the defaults are the full run's."""

    hidden: tuple = HIDDEN
    densities: tuple = DENSITIES
    density_hidden: int = 300
    dtypes: tuple = DTYPES
    repeats: int = 5
    seconds: float = 0.5  # target length of one timed repeat
    quick: bool = False
    out_dir: str = DEFAULT_OUT_DIR


QUICK = {"densities": QUICK_DENSITIES, "repeats": 3, "seconds": 0.05}


# -- timing ---------------------------------------------------------------------------------------


def time_network(sizes, dtype, X, T, target_s, repeats):
    """Median seconds per sample of ``train_epoch`` on X, cycled if more samples are needed.

    Returns a dict with ``samples`` timed per repeat, ``times_s``, ``seconds`` per sample,
    ``spread`` and ``order`` (the sample indices visited).
    """
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
            "order": order}


def measure(sizes, dtype, data, options, caches, limits):
    """Time one configuration on the Dataset ``data``; the time beside the counted work."""
    itemsize = np.dtype(dtype).itemsize
    timing = time_network(sizes, dtype, data.images, data.targets(dtype), options.seconds,
                          options.repeats)
    # Mean non-zero inputs over the samples visited (the timed order cycles through the set).
    nnz = float(np.count_nonzero(data.images, axis=1)[timing.pop("order")].mean())
    counts = operation_counts(sizes, nnz, itemsize)
    seconds = timing["seconds"]
    first_layer_bytes = first_layer_size(sizes, itemsize)
    gflops = 2 * counts["macs"] / seconds / 1e9
    return {
        "sizes": sizes, "dtype": dtype, "nnz": nnz, **timing, **counts,
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


def sweep(train, options, caches, limits):
    """The hidden-size rows on MNIST, then the density rows on synthetic images."""
    import jitnet

    n_in, n_out = train.images.shape[1], train.n_classes
    hidden_rows = []
    for h in options.hidden:
        for dtype in options.dtypes:
            log(f"  {n_in}-{h}-{n_out} {dtype} on MNIST ...")
            hidden_rows.append(measure([n_in, h, n_out], dtype, train, options, caches, limits))
    density_rows = []
    rng = np.random.default_rng(0)
    labels = rng.integers(0, n_out, SYNTHETIC_POOL)
    for density in options.densities:
        images = synthetic_images(SYNTHETIC_POOL, n_in, density, rng)
        data = jitnet.Dataset(images, labels, train.image_shape, n_out, name="synthetic")
        for dtype in options.dtypes:
            log(f"  {n_in}-{options.density_hidden}-{n_out} {dtype} at density {density:g} ...")
            row = measure([n_in, options.density_hidden, n_out], dtype, data, options, caches,
                          limits)
            density_rows.append({**row, "density": density})
    return hidden_rows, density_rows


def run(options, argv=()):
    """Measure both sweeps, print the tables and write the results files; returns 0."""
    import jitnet

    train, _ = jitnet.load_mnist()
    info = machine_info()
    caches = {**ASSUMED_CACHES, **info["caches"]}
    with one_thread():
        log("compiling (or loading) the kernels ...")
        compile_s = compile_in_process(options.dtypes)
        log("measuring one-thread GEMM and streaming bandwidth ...")
        limits = machine_limits(options.quick, caches, options.dtypes)
        hidden_rows, density_rows = sweep(train, options, caches, limits)
    config = dataclasses.asdict(options)
    del config["out_dir"]
    config = {key: list(v) if isinstance(v, tuple) else v for key, v in config.items()}
    notes = list(NOTES)
    assumed = sorted(set(ASSUMED_CACHES) - set(info["caches"]))
    if assumed:
        notes.append(f"sysfs reported no size for {', '.join(assumed)}: assumed "
                     + ", ".join(f"{level} {ASSUMED_CACHES[level] // 1024**2} MB"
                                 for level in assumed) + " for the probes and 'W1 fits'.")
    rows = hidden_rows + density_rows
    note = noisy_note([(f"{'-'.join(map(str, r['sizes']))} {r['dtype']}", r) for r in rows],
                      total=len(rows))
    record = {
        "benchmark": "scaling",
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": shlex.join(["python", "bench/scaling.py", *argv]),
        "config": {**config, "rate": RATE},
        "machine": info,
        "compile_s": compile_s,
        "limits": limits,
        "mnist_nnz": float(np.count_nonzero(train.images, axis=1).mean()),
        "hidden": hidden_rows,
        "density": density_rows,
        "notes": notes + ([note] if note else []),
    }
    click.echo(text_report(record))
    stem = "scaling-quick" if options.quick else "scaling"
    paths = write_results(options.out_dir, stem, record, markdown_report(record))
    log("wrote " + ", ".join(os.path.relpath(p) for p in paths))
    return 0


# -- the reports ----------------------------------------------------------------------------------

HEADER = ["sizes", "dtype", "non-zero in", "MACs/sample", "µs/sample", "GFLOP/s", "of GEMM",
          "W1 size", "W1 fits", "weights touched", "weight GB/s (model)"]
DENSITY_HEADER = ["density (nnz)" if h == "non-zero in" else h for h in HEADER]
RIGHT = [False, False, True, True, True, True, True, True, False, True, True]

NOTES = [
    "MACs/sample: multiply-adds of the forward pass, the hidden error terms and the weight "
    "update (biases included, sigmoids not counted), counted from the sizes; the first layer "
    "counts only the rows of the non-zero inputs. GFLOP/s = 2 × MACs / measured time; 'of GEMM' "
    "compares it with the one-thread GEMM above, the best this core does on dense work.",
    "weights touched: distinct weight and bias bytes read or written per sample, counted. "
    "weight GB/s (model): the bytes that would move if every use of a weight went through the "
    "cache once (forward read, upper layers' backward read, update read + write), divided by "
    "the measured time. No hardware counter is read: it is a model of the traffic, to hold "
    "against the measured streaming probe of the level the weights fit in.",
    "W1 size: the first layer's weights as stored, one row per input padded to whole 64-byte "
    "cache lines. W1 fits: the smallest cache level (per core L2, shared L3) holding all of it; "
    "over many samples every row of it is visited, so that is its working set.",
]


def _bytes(n):
    if n >= 1024**2:
        return f"{n / 1024**2:.2f} MB"
    return f"{n / 1024:.0f} KB"


def cells(row):
    """One table row; density rows show the density beside the non-zero inputs."""
    nonzero = f"{row['nnz']:.0f}"
    if "density" in row:
        nonzero = f"{row['density']:.0%} ({nonzero})"
    return [
        "-".join(map(str, row["sizes"])), row["dtype"], nonzero,
        f"{row['macs'] / 1000:,.0f}k", format_number(row["us_per_sample"]),
        format_number(row["gflops"]), f"{100 * row['gemm_fraction']:.0f}%",
        _bytes(row["first_layer_bytes"]), row["first_layer_fits"],
        _bytes(row["touched_bytes"]), format_number(row["traffic_gbs"]),
    ]


def _report_parts(record):
    """The heading, the limit and compile lines, and the two tables' titles."""
    cfg = record["config"]
    head = (f"one-thread per-sample SGD (rate {RATE}), uint8 inputs, median of {cfg['repeats']} "
            f"repeats of ~{cfg['seconds']:g} s")
    limits = record["limits"]
    gemm = ", ".join(f"{d} {format_number(v)} GFLOP/s" for d, v in limits["gemm_gflops"].items())
    stream = ", ".join(f"{format_number(v)} GB/s " + ("from memory" if level == "memory"
                                                      else f"in {level}")
                       for level, v in limits["stream_gbs"].items())
    limits_line = (f"machine limits, one thread, measured in this run: numpy GEMM "
                   f"({limits['gemm_n']}²) {gemm}; streaming a += b {stream}")
    compile_line = "compile/load of the kernels: " + ", ".join(
        f"{d} {s:.2f} s" for d, s in record["compile_s"].items())
    sizes = f"784-{cfg['density_hidden']}-10"
    titles = (f"cost against hidden size, MNIST training images (mean {record['mnist_nnz']:.0f} "
              f"of 784 inputs non-zero)",
              f"cost against input density, {sizes}, synthetic images (each pixel non-zero with "
              f"the given probability)")
    return head, limits_line, compile_line, titles


def text_report(record):
    """What the run prints: setting, machine, limits, the two tables and the notes."""
    head, limits_line, compile_line, titles = _report_parts(record)
    quick = "  [quick run]" if record["config"]["quick"] else ""
    return "\n".join([
        f"jitnet scaling: {head}{quick}",
        f"machine: {machine_line(record['machine'])}; {record['date'][:16].replace('T', ' ')}",
        compile_line, limits_line, "",
        titles[0], aligned_table(HEADER, [cells(r) for r in record["hidden"]], RIGHT), "",
        titles[1], aligned_table(DENSITY_HEADER, [cells(r) for r in record["density"]], RIGHT),
        "",
        *record["notes"],
    ])


def markdown_report(record):
    """The same results as a markdown page."""
    head, limits_line, compile_line, titles = _report_parts(record)
    quick = record["config"]["quick"]
    return "\n".join([
        "# How the JIT engine's cost per sample grows",
        "",
        head + (". **Quick run: short repeats, not a measurement to quote.**" if quick else "."),
        "",
        f"Measured {record['date'][:16].replace('T', ' ')} on {machine_line(record['machine'])}.",
        "",
        f"- {limits_line}",
        f"- {compile_line}",
        "",
        f"## {titles[0][0].upper()}{titles[0][1:]}",
        "",
        markdown_table(HEADER, [cells(r) for r in record["hidden"]], RIGHT),
        "",
        f"## {titles[1][0].upper()}{titles[1][1:]}",
        "",
        markdown_table(DENSITY_HEADER, [cells(r) for r in record["density"]], RIGHT),
        "",
        *[f"- {note}" for note in record["notes"]],
        "",
        f"Reproduce: `{record['command']}`",
        "",
    ])


# -- the command ----------------------------------------------------------------------------------


def _densities(ctx, param, value):
    if value is None:
        return None
    try:
        densities = tuple(float(d) for d in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {value!r}") from None
    if not all(0 < d <= 1 for d in densities):
        raise click.BadParameter(f"densities must lie in (0, 1], got {value!r}")
    return densities


def _dtypes(ctx, param, value):
    dtypes = tuple(d.strip() for d in value.split(","))
    if not set(dtypes) <= set(DTYPES):
        raise click.BadParameter(f"dtypes must be among {', '.join(DTYPES)}, got {value!r}")
    return dtypes


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--hidden", type=IntList(what="hidden sizes"), default=",".join(map(str, HIDDEN)),
              show_default=True, help="Hidden sizes of the 784-H-10 sweep on MNIST.")
@click.option("--densities", callback=_densities, default=None,
              help="Fractions of non-zero inputs for the 784-300-10 synthetic sweep "
                   f"[default: {','.join(map(str, DENSITIES))}; --quick "
                   f"{','.join(map(str, QUICK_DENSITIES))}].")
@click.option("--density-hidden", type=click.IntRange(1, None), default=300, show_default=True,
              help="Hidden size of the density sweep.")
@click.option("--dtypes", callback=_dtypes, default=",".join(DTYPES), show_default=True,
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
def scaling(ctx, quick, **given):
    """Time the JIT engine per sample against hidden size and input density."""
    chosen = {name: value for name, value in given.items() if value is not None}
    options = Options(quick=quick, **{**(QUICK if quick else {}), **chosen})
    return run(options, (ctx.obj or {}).get("argv", []))


def main(argv=None, prog_name="scaling.py"):
    """Run the scaling benchmark with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    return run_command(scaling, list(sys.argv[1:] if argv is None else argv), prog_name)


if __name__ == "__main__":
    sys.exit(main())
