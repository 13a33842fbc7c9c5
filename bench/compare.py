"""Training speed of every engine side by side: ``python bench/compare.py [--quick] [--help]``.

The same network (784-300-10 by default), the same MNIST training samples in file order, the same
initial weights and rate 0.3, one weight update per sample, for

- the tutorial's object version (``jitnet.reference.objects``): a few dozen samples, its
  60,000-sample epoch extrapolated and marked as such;
- the tutorial's vectorized numpy version (``jitnet.reference.vectorized``);
- the JIT engine (``jitnet.Network``) in float64 and float32, fed the uint8 images;
- when importable, PyTorch with batch size 1 (the idiomatic eager loop) and JAX (a jitted
  ``lax.scan`` over the samples), both float32.

Before anything is timed, the engines of this project are trained from the same start on the same
first samples and their weights compared; a mismatch is printed and the run exits with status 1
without timing anything. The frameworks are checked the same way, but only reported.

Every engine runs on one thread. Each configuration is timed ``repeats`` times (at least 3) and the
median reported. Results go to stdout as one aligned table, progress to stderr, and to
``bench/results/`` as JSON and as a markdown table. :func:`main` is what ``jitnet bench`` calls.
"""

import dataclasses
import datetime
import os
import shlex
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# From a source checkout, installed or not: jitnet from the tree above, the harness beside this.
for _path in (os.path.dirname(HERE), HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import click  # noqa: E402

from harness import BenchError  # noqa: E402
from harness.engines import RATE, Samples, engine_builders  # noqa: E402
from harness.options import IntList, log, out_dir_option, run_command  # noqa: E402
from harness.results import (  # noqa: E402
    DEFAULT_OUT_DIR,
    aligned_table,
    format_number,
    machine_line,
    markdown_table,
    write_results,
)
from harness.timing import (  # noqa: E402
    EPOCH_SAMPLES,
    add_speedups,
    compile_cold,
    compile_in_process,
    jax_single_thread,
    noisy_note,
    one_thread,
    time_engine,
)
from harness.validation import failures, validate, validation_lines  # noqa: E402
from jitnet.training.machine import machine_info  # noqa: E402

SEED = 0
DTYPES = ("float64", "float32")


@dataclasses.dataclass(frozen=True)
class Options:
    """What one comparison measures; the defaults are the full run's."""

    sizes: tuple = (784, 300, 10)
    samples: int = EPOCH_SAMPLES  # per repeat, compiled engines (jitnet, JAX)
    eager_samples: int = 5_000  # per repeat, engines that run Python per sample
    object_samples: int = 20  # per repeat, the object version; 0 skips it
    repeats: int = 5
    validate_samples: int = 20
    frameworks: bool = True
    cold_compile: bool = True
    quick: bool = False
    out_dir: str = DEFAULT_OUT_DIR


FULL = Options()
QUICK = {"samples": 6_000, "eager_samples": 300, "object_samples": 3, "repeats": 3,
         "cold_compile": False}


def run(options, argv=()):
    """Validate, then time every engine; print the table and write the results files.

    Parameters
    ----------
    options : Options
    argv : sequence of str
        The command-line arguments, recorded in the results as the command that reproduces them.

    Returns
    -------
    int
        0, or 1 when one of this project's engines failed validation (nothing is timed then).
    """
    import jitnet

    train, _ = jitnet.load_mnist()
    sizes = list(options.sizes)
    n_in, n_out = train.images.shape[1], train.n_classes
    if sizes[0] != n_in or sizes[-1] != n_out:
        raise BenchError(f"--sizes {','.join(map(str, sizes))}: MNIST has {n_in} inputs and "
                         f"{n_out} classes, so sizes must start with {n_in} and end with {n_out}")
    init = jitnet.Network(sizes, seed=SEED).get_weights()
    jax_one_thread = jax_single_thread() if options.frameworks else False
    with one_thread() as blas:
        builders, notes = engine_builders(init, Samples(train), blas, options.frameworks,
                                          jax_one_thread)
        log("compiling (or loading) the JIT kernels ...")
        compiled = compile_in_process(DTYPES)
        log(f"validating on the first {options.validate_samples} samples ...")
        checks = validate(builders, options.validate_samples, init)
        failed = failures(checks)
        if failed:
            click.echo("\n".join(validation_lines(checks, options.validate_samples)))
            names = ", ".join(f"{c['engine']} {c['dtype']}" for c in failed)
            click.echo(f"validation FAILED for {names}: not timing anything")
            return 1
        cold = None
        if options.cold_compile:
            log("timing a cold compile in a fresh process with an empty Numba cache ...")
            cold = compile_cold(DTYPES)
        rows, jax_s = time_engines(builders, checks, options, notes)
    compile_s = {"in_process": compiled, "cold": cold, "jax_s": jax_s}
    record = make_record(options, argv, blas, checks, rows, compile_s, notes)
    click.echo(text_report(record))
    stem = "compare-quick" if options.quick else "compare"
    paths = write_results(options.out_dir, stem, record, markdown_report(record))
    log("wrote " + ", ".join(os.path.relpath(p) for p in paths))
    return 0


def time_engines(builders, checks, options, notes):
    """Time each engine on its number of samples; the rows and JAX's compile seconds (or None).

    Adds to ``notes`` JAX's compile time and a line for each framework timed although it failed
    validation.
    """
    plan = [("object", options.object_samples)] if options.object_samples else []
    plan += [("vectorized", options.eager_samples), ("jit64", options.samples),
             ("jit32", options.samples), ("torch", options.eager_samples),
             ("jax", options.samples)]
    checked = {c["key"]: c for c in checks}
    rows, jax_s = [], None
    for key, n in plan:
        if key not in builders:
            continue
        engine = builders[key][0]()
        log(f"timing {engine.name} {engine.dtype}: {n:,} samples x {options.repeats} repeats ...")
        row = {"key": key, **time_engine(engine, n, options.repeats)}
        row["validated"] = checked[key]["ok"]
        if not row["validated"]:
            row["engine"] += " (!)"
            notes.append(f"{engine.name}: its weights did not match the object version's "
                         f"(max |dw| {checked[key]['max_diff']:.1e}); timed anyway.")
        if key == "jax":
            jax_s = engine.compile_s
            notes.insert(0, f"JAX compile for the timed shape ({n:,} samples): {jax_s:.2f} s, "
                            f"not in its row.")
        rows.append(row)
    add_speedups(rows)
    return rows, jax_s


def make_record(options, argv, blas, checks, rows, compile_s, notes):
    """Everything the run measured, as the JSON-ready dict the reports are made from."""
    engines = {row["key"] for row in rows}
    config = dataclasses.asdict(options)
    del config["out_dir"]
    config.update(sizes=list(options.sizes), rate=RATE, epoch_samples=EPOCH_SAMPLES)
    threads = ("threads: every engine on 1 (numba.set_num_threads(1)"
               + (f", numpy BLAS {blas}" if blas is not None else ", numpy BLAS not found")
               + (", torch.set_num_threads(1)" if "torch" in engines else "")
               + (", XLA --xla_cpu_multi_thread_eigen=false" if "jax" in engines else "") + ")")
    jax, torch = " and JAX" * ("jax" in engines), " and PyTorch" * ("torch" in engines)
    counts = (f"timed per repeat: jitnet{jax} {options.samples:,} samples, vectorized{torch} "
              f"{options.eager_samples:,}, object {options.object_samples:,}; epochs not "
              f"measured whole are extrapolated to {EPOCH_SAMPLES:,} samples")
    note = noisy_note([(f"{r['engine']} {r['dtype']}", r) for r in rows])
    return {
        "benchmark": "compare",
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": shlex.join(["python", "bench/compare.py", *argv]),
        "config": config,
        "machine": machine_info(),
        "threads": threads,
        "compile": compile_s,
        "validation": checks,
        "rows": rows,
        "notes": [counts, *notes] + ([note] if note else []),
    }


# -- the reports ----------------------------------------------------------------------------------

HEADER = ["engine", "dtype", "threads", "µs/sample", "samples/s", "s/epoch (60k)",
          "× object", "× vectorized"]
RIGHT = [False, False, True, True, True, True, True, True]


def _cells(row):
    if row["epoch"] == "measured":
        epoch = f"{format_number(row['epoch_s'])} measured"
    else:
        epoch = f"{format_number(row['epoch_s'])} extrap. from {row['samples']:,}"
    speedups = [format_number(row[k]) + ("×" if row[k] else "")
                for k in ("x_vs_object", "x_vs_vectorized")]
    return [row["engine"], row["dtype"], str(row["threads"]), format_number(row["us_per_sample"]),
            format_number(row["samples_per_s"]), epoch, *speedups]


def compile_line(compile_s):
    """The kernels' compile (or cache-load) seconds in this process, and the cold ones."""
    line = "jit kernels ready (compiled or loaded from Numba's cache): " + ", ".join(
        f"{d} {s:.2f} s" for d, s in compile_s["in_process"].items())
    if compile_s["cold"]:
        line += ("; cold compile, in a fresh process with an empty cache: "
                 + ", ".join(f"{d} {s:.2f} s" for d, s in compile_s["cold"].items()))
    return line


def text_report(record):
    """What the run prints: setting, machine, threads, validation, compile times, the table."""
    cfg = record["config"]
    return "\n".join([
        f"jitnet bench: {'-'.join(map(str, cfg['sizes']))} sigmoid, per-sample SGD, rate {RATE}, "
        f"MNIST training set in file order, same initial weights; median of {cfg['repeats']} "
        f"repeats" + ("  [quick run]" if cfg["quick"] else ""),
        f"machine: {machine_line(record['machine'])}; {record['date'][:16].replace('T', ' ')}",
        record["threads"],
        "",
        *validation_lines(record["validation"], cfg["validate_samples"]),
        "",
        compile_line(record["compile"]),
        "",
        aligned_table(HEADER, [_cells(r) for r in record["rows"]], RIGHT),
        "",
        *record["notes"],
    ])


def markdown_report(record):
    """The same results as a markdown page."""
    cfg = record["config"]
    return "\n".join([
        "# Training speed: every engine side by side",
        "",
        f"{'-'.join(map(str, cfg['sizes']))} sigmoid network, per-sample SGD (rate {RATE}, "
        f"E = ½Σ(t−y)², one update per sample), MNIST training set in file order, same initial "
        f"weights everywhere; one thread per engine; median of {cfg['repeats']} repeats."
        + (" **Quick run: few samples, not a measurement to quote.**" if cfg["quick"] else ""),
        "",
        f"Measured {record['date'][:16].replace('T', ' ')} on {machine_line(record['machine'])}.",
        "",
        markdown_table(HEADER, [_cells(r) for r in record["rows"]], RIGHT),
        "",
        *[f"- {line}" for line in [compile_line(record["compile"]), record["threads"],
                                   *record["notes"]]],
        "",
        "Validation, before anything was timed:",
        "",
        "```",
        *validation_lines(record["validation"], cfg["validate_samples"]),
        "```",
        "",
        f"Reproduce: `{record['command']}`",
        "",
    ])


# -- the command ----------------------------------------------------------------------------------


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--sizes", type=IntList(min_items=2, what="layer sizes"), default="784,300,10",
              show_default=True,
              help="Layer sizes, inputs first; must start with 784 and end with 10 for MNIST.")
@click.option("--samples", type=click.IntRange(1, EPOCH_SAMPLES), default=None,
              help="Samples timed per repeat for the compiled engines (jitnet, JAX) "
                   f"[default: {FULL.samples:,}; --quick {QUICK['samples']:,}].")
@click.option("--eager-samples", type=click.IntRange(1, EPOCH_SAMPLES), default=None,
              help="Samples timed per repeat for the engines that run Python per sample "
                   f"(vectorized, PyTorch) [default: {FULL.eager_samples:,}; "
                   f"--quick {QUICK['eager_samples']}].")
@click.option("--object-samples", type=click.IntRange(0, EPOCH_SAMPLES), default=None,
              help="Samples timed per repeat for the object version, 0 to skip it "
                   f"[default: {FULL.object_samples}; --quick {QUICK['object_samples']}].")
@click.option("--repeats", type=click.IntRange(3, None), default=None,
              help="Timed repeats per engine; the median is reported "
                   f"[default: {FULL.repeats}; --quick {QUICK['repeats']}].")
@click.option("--validate-samples", type=click.IntRange(1, EPOCH_SAMPLES),
              default=FULL.validate_samples, show_default=True,
              help="Samples trained by every engine before timing, to compare their weights.")
@click.option("--quick", is_flag=True,
              help="Few samples and repeats (under a minute), results named compare-quick-*.")
@click.option("--frameworks/--no-frameworks", default=True, show_default=True,
              help="Include PyTorch and JAX when they are importable.")
@click.option("--cold-compile/--no-cold-compile", default=None,
              help="Also time a compile with an empty Numba cache in a fresh process "
                   "[default: on; off with --quick].")
@out_dir_option
@click.pass_context
def compare(ctx, quick, **given):
    """Validate, then time per-sample SGD training in every engine, side by side.

    All engines run on one thread (Numba, numpy's BLAS, torch.set_num_threads(1), XLA without
    its thread pool). Exit status 1 if this project's engines disagree; nothing is timed then.
    """
    chosen = {name: value for name, value in given.items() if value is not None}
    options = Options(quick=quick, **{**(QUICK if quick else {}), **chosen})
    return run(options, (ctx.obj or {}).get("argv", []))


def main(argv=None, prog_name="compare.py"):
    """Run the comparison with command-line arguments ``argv`` (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 if validation failed, 2 for a usage error, 130 after Ctrl-C.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_command(compare, argv, prog_name)


if __name__ == "__main__":
    sys.exit(main())
