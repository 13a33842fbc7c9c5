"""Every core for every recipe: ``python bench/threads_recipes.py [--samples N] [--repeats R]
[--other-rev REV | --other-tree DIR]``.

Times ``Network.train_epoch(..., threads=2)`` against ``threads=1`` in the same run for the
recipes that train with momentum or on distorted images (the plain recipes: ``bench/threads.py``):

- simard2003: 784-800-10 float32 relu (He's weights), softmax with cross-entropy, rate 0.02,
  elastic distortion sigma 4, alpha 34 drawn afresh for every sample (one epoch's draws, made
  once, the same in every repeat); bar 1.5x;
- simard2003-plain, the same without distortions (the context of the row above);
- simard2003-plain with momentum 0.9; bar 1.4x;
- the tutorial (784-300-10 sigmoid, squared error, rate 0.3) with momentum 0.9, float32 and
  float64 (``bench/recipes.py``'s momentum recipe).

MNIST's first ``--samples`` training images in file order, every epoch from the same seeded
start in a worker process of its own (``bench/harness/trees.py``), the rows and thread counts
interleaved round by round; the speed-up of a row is the median over rounds of the ratio to
its 1-thread epoch of the same round. ``--other-rev``/``--other-tree`` times every epoch through
a second tree as well (e.g. another way of splitting the work), against this tree's 1-thread
epoch of the same round.

Validates before it times: float64 784-300-10 with momentum 0.9 on elastically distorted
samples, 2 threads against 1 within 1e-9 after 200 samples and bitwise repeatable; with a
second tree, both trees must train bitwise the same weights. Exits 1 without timing otherwise.
Writes ``bench/results/threads-recipes-latest.{md,json}`` and a dated JSON.
"""

import datetime
import os
import shlex
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
for _path in (os.path.dirname(HERE), HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import click  # noqa: E402
import numpy as np  # noqa: E402

from harness.options import log, out_dir_option, run_command  # noqa: E402
from harness.results import (  # noqa: E402
    DEFAULT_OUT_DIR, aligned_table, machine_line, markdown_table, write_results,
)
from harness.trees import ROOT, Worker, source_tree  # noqa: E402
from jitnet.training.machine import machine_info  # noqa: E402

SIMARD = {"activation": "relu", "init": "he", "loss": "cross_entropy"}
ELASTIC = {"elastic_sigma": 4.0, "elastic_alpha": 34.0}
#: name -> (sizes, dtype, Network keywords, distortion fields or None, rate, momentum, bar)
ROWS = {
    "simard2003": ((784, 800, 10), "float32", SIMARD, ELASTIC, 0.02, 0.0, 1.5),
    "simard2003-plain": ((784, 800, 10), "float32", SIMARD, None, 0.02, 0.0, None),
    "simard2003-plain momentum 0.9": ((784, 800, 10), "float32", SIMARD, None, 0.02, 0.9, 1.4),
    "tutorial momentum 0.9 f32": ((784, 300, 10), "float32", {}, None, 0.3, 0.9, None),
    "tutorial momentum 0.9 f64": ((784, 300, 10), "float64", {}, None, 0.3, 0.9, None),
}
VALIDATE_SAMPLES = 200


def loadavg():
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _priority():
    """The scheduling this process runs under, e.g. 'SCHED_FIFO 1' or 'nice 0' (a run at
    real-time priority keeps other processes off the cores the threads spin on)."""
    try:
        policy = os.sched_getscheduler(0)
        if policy in (os.SCHED_FIFO, os.SCHED_RR):
            name = "SCHED_FIFO" if policy == os.SCHED_FIFO else "SCHED_RR"
            return f"{name} {os.sched_getparam(0).sched_priority}"
        return f"nice {os.nice(0)}"
    except (AttributeError, OSError):
        return None


def validate():
    """2 threads against 1, momentum 0.9 on distorted samples, float64; (problems, gap)."""
    import jitnet
    from jitnet.engine.distortion import DistortionPlan

    train, _ = jitnet.load_mnist()
    X, labels = train.images[:VALIDATE_SAMPLES], train.labels[:VALIDATE_SAMPLES]
    plan = DistortionPlan(jitnet.Distortion(**ELASTIC), (28, 28), seed=np.random.SeedSequence(0))
    draws = plan.draw_epoch(np.random.default_rng(1), VALIDATE_SAMPLES)
    runs = []
    for threads in (1, 2, 2):
        net = jitnet.Network([784, 300, 10], seed=0)
        net.train_epoch(X, labels, 0.3, momentum=0.9, distortion=plan, draws=draws,
                        threads=threads)
        runs.append(net.params.copy())
    gap = float(np.abs(runs[0] - runs[1]).max())
    problems = []
    if not gap < 1e-9:
        problems.append(f"2 threads differ from serial by {gap:.3g} (allowed 1e-9)")
    if not np.array_equal(runs[1], runs[2]):
        problems.append("two 2-thread runs gave different weights")
    return problems, gap


def epoch(worker, name, samples, threads):
    rate, mu = ROWS[name][4], ROWS[name][5]
    return worker.epoch(name, samples, rate, threads=threads,
                        options={"momentum": mu} if mu else {})


def measure(workers, names, samples, repeats):
    """{(row, tree, threads): [seconds per round]}, after one warm-up round."""
    times = {}
    runs = [(name, tree, threads) for name in names for tree in workers for threads in (1, 2)]
    for round_ in range(repeats + 1):
        shift = round_ % len(runs)  # a different order every round
        for name, tree, threads in runs[shift:] + runs[:shift]:
            wall = epoch(workers[tree], name, samples, threads)["wall"]
            if round_:
                times.setdefault((name, tree, threads), []).append(wall)
    return times


def rows_of(times, names, trees):
    rows = []
    for name in names:
        serial = times[name, "this", 1]
        for tree in trees:
            for threads in (1, 2):
                t = times[name, tree, threads]
                sizes, dtype, _, distort, rate, mu, bar = ROWS[name]
                rows.append({
                    "recipe": name, "tree": tree, "threads": threads, "sizes": list(sizes),
                    "dtype": dtype, "distorted": distort is not None, "momentum": mu,
                    "times_s": t, "median_s": statistics.median(t),
                    "spread": (max(t) - min(t)) / statistics.median(t),
                    "speedup": statistics.median(a / b for a, b in zip(serial, t)),
                    "bar": bar if threads == 2 and tree == "this" else None,
                })
    return rows


HEADER = ["recipe", "tree", "threads", "s/epoch", "spread", "speed-up"]
RIGHT = [False, False, True, True, True, True]


def cells(row):
    bar = f" (bar {row['bar']:g}×)" if row["bar"] else ""
    return [row["recipe"], row["tree"], str(row["threads"]), f"{row['median_s']:.3f}",
            f"{100 * row['spread']:.0f}%", f"{row['speedup']:.2f}×{bar}"]


def verdicts(record):
    lines = []
    for row in record["rows"]:
        if row["bar"]:
            verdict = "met" if row["speedup"] >= row["bar"] else "NOT met"
            lines.append(f"bar {row['recipe']} 2 threads ≥ {row['bar']:g}×: {verdict} "
                         f"({row['speedup']:.2f}×)")
    return lines


def heading(record):
    cfg = record["config"]
    other = f"; tree 'other': {cfg['other']}" if cfg["other"] else ""
    return (f"MNIST's first {cfg['samples']:,} training images in file order; median of "
            f"{cfg['repeats']} interleaved rounds after a warm-up round; speed-up: median over "
            f"rounds of this tree's 1-thread epoch / the row's, same round{other}")


def report(record, markdown):
    table = (markdown_table if markdown else aligned_table)(
        HEADER, [cells(r) for r in record["rows"]], RIGHT)
    machine = (f"{machine_line(record['machine'])}; load average before → after "
               f"{record['load'][0]} → {record['load'][1]}; scheduling "
               f"{record['config']['priority']}; {record['date'][:16]}")
    valid = (f"validated: float64 784-300-10, momentum 0.9, elastic distortion, 2 threads vs "
             f"1 after {VALIDATE_SAMPLES} samples: max |Δw| {record['validation_gap']:.2g}, "
             "bitwise repeatable" + ("; both trees bitwise the same weights"
                                     if record["config"]["other"] else ""))
    lines = verdicts(record)
    if not markdown:
        return "\n".join([f"jitnet threads, recipes: {heading(record)}", machine, valid, "",
                          table, "", *lines])
    return "\n".join(["# Every core for every recipe: 2 threads against 1", "",
                      heading(record) + ".", "", f"Machine: {machine}.", "", valid + ".", "",
                      table, "", *[f"- {line}" for line in lines], "",
                      f"Reproduce: `{record['command']}`", ""])


def run(samples, repeats, other, names, quick, out_dir, argv):
    log("validating ...")
    problems, gap = validate()
    trees = {"this": ROOT}
    if other is not None:
        trees["other"] = source_tree(*other)
    workers = {}
    load_before = loadavg()
    try:
        for tree, path in trees.items():
            workers[tree] = Worker(path, tree)
            for name in names:
                sizes, dtype, network, distort, *_ = ROWS[name]
                workers[tree].setup(name, sizes, dtype, samples, network, distort)
        if other is not None:
            for name in names:
                for threads in (1, 2):
                    digests = {tree: epoch(w, name, 2000, threads)["digest"]
                               for tree, w in workers.items()}
                    if digests["this"] != digests["other"]:
                        problems.append(f"{name} threads={threads}: the trees train different "
                                        "weights")
        if problems:
            for problem in problems:
                log(f"validation failed: {problem}")
            return 1
        log("timing ...")
        times = measure(workers, names, samples, repeats)
    finally:
        for worker in workers.values():
            worker.close()
    record = {
        "benchmark": "threads-recipes",
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": shlex.join(["python", "bench/threads_recipes.py", *argv]),
        "config": {"samples": samples, "repeats": repeats, "quick": quick,
                   "priority": _priority(),
                   "other": None if other is None else (other[0] or f"git {other[1]}")},
        "machine": machine_info(), "load": [load_before, loadavg()], "validation_gap": gap,
        "rows": rows_of(times, names, list(trees)),
    }
    click.echo(report(record, False))
    paths = write_results(out_dir, "threads-recipes-quick" if quick else "threads-recipes",
                          record, report(record, True))
    log("wrote " + ", ".join(os.path.relpath(p) for p in paths))
    return 0


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--samples", type=click.IntRange(2000, 60_000), default=20_000, show_default=True,
              help="Training images per timed epoch (the first ones, in file order).")
@click.option("--repeats", type=click.IntRange(3), default=7, show_default=True,
              help="Timed rounds, after one warm-up round.")
@click.option("--other-rev", default=None, help="Git revision of a second tree to time too.")
@click.option("--other-tree", type=click.Path(file_okay=False, exists=True), default=None,
              help="Source tree (a folder holding jitnet/) to time too, instead of --other-rev.")
@click.option("--quick", is_flag=True,
              help="A smoke run: 4,000 samples, 3 rounds; results named threads-recipes-quick-*.")
@click.option("--only", "names", multiple=True, type=click.Choice(list(ROWS)),
              help="Time only this recipe (repeatable) [default: every one].")
@out_dir_option
@click.pass_context
def main(ctx, samples, repeats, other_rev, other_tree, quick, names, out_dir):
    """Time 2 threads against 1 for the momentum and distortion recipes (see the module
    docstring)."""
    other = (other_tree, None if other_tree else other_rev) if (other_tree or other_rev) else None
    if quick:
        samples, repeats = 4000, 3
    return run(samples, repeats, other, list(names or ROWS), quick, out_dir or DEFAULT_OUT_DIR,
               ctx.obj["argv"])


if __name__ == "__main__":
    sys.exit(run_command(main, sys.argv[1:], "bench/threads_recipes.py"))
