"""Trials per hour of ``jitnet sweep`` with 1 and 2 Dask workers: ``python bench/sweep.py [--quick]``.

A fixed space of 8 MNIST trials (784-100-10 and 784-300-10, rates 0.1 and 0.3, seeds 0 and 1;
the 60,000 training images of which 10,000 held out, 3 epochs, 2,000 test images) is run

- alone: :func:`jitnet.sweep.run_trial` one after the other in this process (no Dask), the
  one-core baseline;
- through :func:`jitnet.sweep.run_sweep` on a LocalCluster of 1 and of 2 single-thread worker
  processes, each repeat in a fresh folder. "trials" time runs from the submission of the first
  trial to the result of the last; "end to end" adds starting and closing the cluster and the
  kernels' warm-up.

Each trial is single-threaded, so 2 workers on 2 idle cores should reach close to 2x one worker
(the bar is 1.8x). Then the scheduling overhead: a trivial function submitted through the same
path (``runner.execute``: ``client.submit(..., pure=False, retries=2)``, ``as_completed``), per
task, and one task's round trip. Validation before the numbers count: every trial finishes, and
every run gives every trial the same validation error (a trial is fully determined by its
options). Writes ``bench/results/sweep-latest.md`` (``sweep-quick.md`` with ``--quick``).
"""

import datetime
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import click  # noqa: E402

from jitnet.training.machine import machine_info  # noqa: E402
from jitnet.sweep import SweepReporter, parse_space, run_sweep, run_trial, trial_key  # noqa: E402
from jitnet.sweep.runner import execute, plan  # noqa: E402

# Trials of a few seconds each, the size of a real sweep's smaller trials: with sub-second trials
# the per-trial fixed costs (a run folder, its pictures, result files) hide the scaling.
SPACE = {"hidden": "100,300", "rate": "0.1,0.3", "seeds": "2", "epochs": "3", "eval_every": "3",
         "patience": "10", "validation": "10000", "test_limit": "2000"}
QUICK = {**SPACE, "epochs": "1", "train_limit": "8000", "validation": "2000"}
NOOP_TASKS = 200


class _Clock(SweepReporter):
    """Times the trials phase: first submission (the first progress call) to the last result."""

    def progress(self, progress):
        self.start = time.perf_counter()

    def trial_done(self, record, progress):
        self.end = time.perf_counter()


def _noop(options, folder):
    return {"key": "noop", "status": "finished", "val_error": 0.0}


def time_alone(space, root):
    """(seconds, Σ in-trial seconds, val errors by key) of every trial one after the other in
    this process."""
    errors, inside = {}, 0.0
    start = time.perf_counter()
    for options in space.trials():
        key = trial_key(options)
        result = run_trial(options, root / key)
        errors[key] = result["val_error"]
        inside += result["seconds"]
    return time.perf_counter() - start, inside, errors


def time_sweep(space, root, workers):
    """(trials seconds, end-to-end seconds, Σ in-trial seconds, val errors by key) of one
    run_sweep."""
    clock = _Clock()
    start = time.perf_counter()
    result = run_sweep(space, root, workers=workers, reporter=clock)
    total = time.perf_counter() - start
    bad = [r for r in result.records if r["status"] != "finished"]
    if bad:
        raise SystemExit(f"validation failed: trial {bad[0]['key']}: {bad[0]['error']}")
    errors = {r["key"]: r["val_error"] for r in result.records}
    inside = sum(r["seconds"] for r in result.records)
    return clock.end - clock.start, total, inside, errors


def time_overhead(workers):
    """Seconds per trivial task through execute(), and one task's median round trip."""
    import distributed

    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as client:
        client.submit(_noop, {}, "", pure=False).result()  # the function is shipped once
        jobs = [(f"{i:012x}", {}, f"/none/{i}") for i in range(NOOP_TASKS)]
        start = time.perf_counter()
        execute(client, jobs, _noop, SweepReporter())
        per_task = (time.perf_counter() - start) / NOOP_TASKS
        trips = []
        for _ in range(20):
            t0 = time.perf_counter()
            client.submit(_noop, {}, "", pure=False, retries=2).result()
            trips.append(time.perf_counter() - t0)
    return per_task, statistics.median(trips)


def _rows_table(header, rows):
    lines = ["| " + " | ".join(header) + " |",
             "| :--- | " + " | ".join("---:" for _ in header[1:]) + " |"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


@click.command()
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True,
              help="Runs per configuration (the median counts).")
@click.option("--quick", is_flag=True, help="1 repeat of 1-epoch trials, to sweep-quick.md.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path(__file__).resolve().parent / "results", show_default="bench/results")
def main(repeats, quick, out_dir):
    options = QUICK if quick else SPACE
    repeats = 1 if quick else repeats
    space = parse_space(options)
    n = len(plan(space, "."))
    info = machine_info()
    click.echo(f"{n} trials: {options}", err=True)
    runs = {}  # how -> [(trials s, end to end s, Σ in-trial s)]
    with tempfile.TemporaryDirectory(prefix="jitnet-bench-sweep-") as tmp:
        root = Path(tmp)
        # Interleaved (alone, 1 worker, 2 workers) per repeat, so that a change in the machine's
        # load during the run touches every row alike.
        for repeat in range(repeats):
            seconds, inside, reference = time_alone(space, root / f"alone-{repeat}")
            runs.setdefault(0, []).append((seconds, seconds, inside))
            click.echo(f"alone, run {repeat + 1}: {seconds:.1f} s", err=True)
            for workers in (1, 2):
                trials, total, inside, errors = time_sweep(space, root / f"w{workers}-{repeat}",
                                                           workers)
                if errors != reference:
                    raise SystemExit(f"validation failed: {workers} workers gave other val "
                                     f"errors than the trials run alone")
                runs.setdefault(workers, []).append((trials, total, inside))
                click.echo(f"{workers} workers, run {repeat + 1}: trials {trials:.1f} s, "
                           f"end to end {total:.1f} s, in trials {inside:.1f} s", err=True)
    overhead = {workers: time_overhead(workers) for workers in (1, 2)}

    median = {w: tuple(statistics.median(run[i] for run in r) for i in range(3))
              for w, r in runs.items()}
    speedup = median[1][0] / median[2][0]
    fastest = {w: min(run[0] for run in r) for w, r in runs.items()}
    header = ["how", "trials s", "end to end s", "trials/hour", "vs alone", "vs 1 worker",
              "Σ in-trial s", "cores busy"]
    rows = []
    for w, (t, e, inside) in median.items():
        how = "alone, in-process, one after another" if w == 0 else \
            f"Dask LocalCluster, {w} worker{'s' if w > 1 else ''}"
        rows.append([how, f"{t:.1f}", f"{e:.1f}", f"{n / t * 3600:,.0f}",
                     f"{median[0][0] / t:.2f}x", "" if w == 0 else f"{median[1][0] / t:.2f}x",
                     f"{inside:.1f}", f"{inside / (max(w, 1) * t):.0%}"])
    verdict = "meets" if speedup >= 1.8 else "misses"
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [
        "# Sweep throughput: trials per hour with 1 and 2 Dask workers", "",
        f"`python bench/sweep.py{' --quick' if quick else ''}`: {n} trials ({options}); "
        f"median of {repeats} run(s) per row, the rows' runs interleaved; every run validated (all trials finished, the same "
        f"validation error for every trial in every run as run alone).", "",
        f"Measured {when} on {info['cpu']}, {info['cpu_count']} cores; python {info['python']}, "
        f"numpy {info['numpy']}, numba {info['numba']}, dask distributed "
        f"{_distributed_version()}; load average {info.get('load_average', '?')} at the end "
        f"(other processes on the machine count: on a busy one, 2 workers share the cores).", "",
        *_rows_table(header, rows), "",
        f"- 2 workers / 1 worker: **{speedup:.2f}x** ({verdict} the 1.8x bar); from the "
        f"fastest run of each (the least disturbed by other processes): "
        f"{fastest[1]:.1f} s / {fastest[2]:.1f} s = {fastest[1] / fastest[2]:.2f}x.",
        f"- Scheduling overhead, a trivial task through the same path: "
        f"{1e3 * overhead[1][0]:.2f} ms per task with 1 worker, {1e3 * overhead[2][0]:.2f} ms "
        f"with 2 ({NOOP_TASKS} tasks); one task's round trip (submit to result) "
        f"{1e3 * overhead[1][1]:.1f} ms.",
        f"- Cost of the sweep path per trial against running alone (1 worker, trials phase): "
        f"{1e3 * (median[1][0] - median[0][0]) / n:+.0f} ms (data loaded once per worker, "
        f"kernels from Numba's cache).",
        "- Σ in-trial s: the trials' own training and evaluation time (their reports' "
        "elapsed_seconds), summed; cores busy = Σ in-trial s / (workers x trials s). When Σ "
        "in-trial s grows from 1 to 2 workers, the trials ran slower, not the scheduling: the "
        "cores were shared (other processes, or each other's memory bandwidth).", "",
    ]
    text = "\n".join(lines)
    click.echo(text)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / ("sweep-quick.md" if quick else "sweep-latest.md")).write_text(text)


def _distributed_version():
    import distributed

    return distributed.__version__


if __name__ == "__main__":
    main()
