"""Speed of each training recipe on 784-300-10, float32 and float64, new kernels against old.

    python bench/recipes.py [--repeats 15] [--samples 20000] [--old-rev REV | --old-tree DIR]

Every configuration trains one epoch (``--samples`` MNIST training images in file order, rate
0.3, one update per sample) from the same seeded start, through ``Network.train_epoch``, twice:
with this tree's jitnet and with an OLD one (git revision ``--old-rev``, exported to a temporary
folder, or the source tree ``--old-tree``, e.g. a git worktree of it). Each tree runs in a
worker process of its own (``bench/harness/trees.py``), so that the two never share a module.

Validation before timing: for every recipe and dtype, old and new must leave bitwise the same
weights after one epoch of ``--check-samples`` images, and every epoch must end finite. A
failure prints the mismatch and exits with status 1 without timing.

Timing: ``--repeats`` rounds; each round times every configuration once through each tree, in
an interleaved order that rotates from round to round (and alternates which tree goes first), so
that a slow spell of the shared machine hits all of them; each epoch starts from the same
parameters. Reported per configuration: the new tree's median and smallest thread CPU time per
sample and median wall time, the old tree's median, the median over rounds of the new/old
CPU-time ratio (the two epochs ran seconds apart), and the median over rounds of the ratio to the
tutorial recipe timed in the same round. Results: an aligned table on stdout, and
``bench/results/recipes-latest.{md,json}``.
"""

import argparse
import datetime
import json
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (ROOT, os.path.join(ROOT, "bench")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from harness import BenchError  # noqa: E402
from harness.trees import Worker, source_tree  # noqa: E402
from jitnet.training.machine import machine_info  # noqa: E402

SIZES = [784, 300, 10]
RATE = 0.3
OLD_REV = "68546c1"  # the last revision before the per-sample step was written once
NEW_OVER_OLD = 1.03  # the new kernels may be at most 3% slower than the old

#: name -> (Network keyword arguments, train_epoch keyword arguments)
RECIPES = {
    "tutorial": ({}, {}),
    "cross_entropy": ({"loss": "cross_entropy"}, {}),
    "tanh": ({"activation": "tanh"}, {}),
    "scaled_tanh": ({"activation": "scaled_tanh"}, {}),
    "relu": ({"activation": "relu", "init": "he"}, {}),
    "momentum 0.9": ({}, {"momentum": 0.9}),
}


def log(message):
    print(message, file=sys.stderr, flush=True)


class Config:
    """One recipe in one dtype, set up in both trees' workers under the same key."""

    def __init__(self, recipe, dtype):
        self.name, self.dtype = recipe, dtype
        self.key = f"{recipe}/{dtype}"
        self.network, self.options = RECIPES[recipe]

    def setup(self, workers, samples):
        for worker in workers.values():
            worker.setup(self.key, SIZES, self.dtype, samples, self.network)

    def epoch(self, worker, n):
        return worker.epoch(self.key, n, RATE, options=self.options)


def validate(configs, workers, n):
    """Bitwise old == new for every configuration, finite epochs; returns the problems."""
    problems = []
    for c in configs:
        runs = {name: c.epoch(worker, n) for name, worker in workers.items()}
        for name, run in runs.items():
            if run["loss"] != run["loss"] or abs(run["loss"]) == float("inf"):
                problems.append(f"{c.key} ({name} tree): epoch not finite (loss {run['loss']})")
        same = runs["old"]["digest"] == runs["new"]["digest"]
        log(f"  {c.key}: old and new bitwise equal after {n} samples: {same}")
        if not same:
            problems.append(f"{c.key}: old and new weights differ after {n} samples")
    return problems


def time_all(configs, workers, n, repeats):
    """Interleaved rounds; returns {(config key, tree): [(wall s, cpu s) per sample, ...]}."""
    times = {(c.key, name): [] for c in configs for name in workers}
    for r in range(repeats):
        shift = r % len(configs)
        for i, c in enumerate(configs[shift:] + configs[:shift]):
            order = ["old", "new"] if (r + i) % 2 == 0 else ["new", "old"]
            for name in order:
                run = c.epoch(workers[name], n)
                times[c.key, name].append((run["wall"] / n, run["cpu"] / n))
        log(f"  round {r + 1}/{repeats} done")
    return times


def report_rows(configs, times):
    """One dict per configuration: medians, new/old and ratio to the tutorial recipe (new)."""
    rows = []
    for c in configs:
        wall = [w for w, _ in times[c.key, "new"]]
        cpu = [u for _, u in times[c.key, "new"]]
        old = [u for _, u in times[c.key, "old"]]
        tutorial = [u for _, u in times[f"tutorial/{c.dtype}", "new"]]
        rows.append({
            "recipe": c.name, "dtype": c.dtype,
            "cpu_us": statistics.median(cpu) * 1e6, "cpu_min_us": min(cpu) * 1e6,
            "wall_us": statistics.median(wall) * 1e6, "old_cpu_us": statistics.median(old) * 1e6,
            "new_over_old": statistics.median(u / v for u, v in zip(cpu, old)),
            "vs_tutorial": statistics.median(u / v for u, v in zip(cpu, tutorial)),
            "cpu_rounds_us": [u * 1e6 for u in cpu], "old_cpu_rounds_us": [u * 1e6 for u in old],
            "wall_rounds_us": [w * 1e6 for w in wall],
        })
    return rows


#: recipe -> (largest CPU-time ratio to the tutorial allowed, what it is compared with)
BARS = {
    "cross_entropy": (1.10, "within 10% of the tutorial"),
    "tanh": (1.10, "within 10% of the tutorial"),
    "scaled_tanh": (1.10, "within 10% of the tutorial"),
    "relu": (1.00, "no slower than the tutorial"),
}


def bar_lines(rows):
    """One line per speed target: the measured ratio and whether it is met."""
    slow = [r for r in rows if r["new_over_old"] > NEW_OVER_OLD]
    worst = max(rows, key=lambda r: r["new_over_old"])
    lines = [f"- new / old kernels, every row within {NEW_OVER_OLD - 1:.0%}: "
             f"{'NOT met' if slow else 'met'} (largest {worst['new_over_old']:.3f}, "
             f"{worst['recipe']} {worst['dtype']})"]
    for r in rows:
        if r["recipe"].startswith("momentum"):
            lines.append(f"- {r['dtype']} {r['recipe']}: {r['vs_tutorial']:.2f}x the tutorial "
                         "(cost of momentum, no target)")
        elif r["recipe"] in BARS:
            limit, what = BARS[r["recipe"]]
            verdict = "met" if r["vs_tutorial"] <= limit else "NOT met"
            lines.append(f"- {r['dtype']} {r['recipe']}: {r['vs_tutorial']:.3f}x the tutorial "
                         f"({what}: {verdict})")
    return lines


def recipe_text(name):
    net_kwargs, epoch_kwargs = RECIPES[name]
    words = [f"{k}={v!r}" for k, v in {**net_kwargs, **epoch_kwargs}.items()]
    return ", ".join(words) or "the defaults (sigmoid, squared error, tutorial init)"


def write_results(rows, args, old_label, loads):
    info = machine_info()
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    machine = f"{info.get('cpu')}, {info.get('cpu_count')} cores"
    lines = ["| recipe | dtype | µs/sample (CPU, median) | µs/sample (CPU, min) "
             "| µs/sample (wall, median) | old µs/sample (CPU, median) | new / old "
             "| × tutorial |",
             "| :--- | :--- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(
            f"| {r['recipe']} | {r['dtype']} | {r['cpu_us']:.2f} | {r['cpu_min_us']:.2f} "
            f"| {r['wall_us']:.2f} | {r['old_cpu_us']:.2f} | {r['new_over_old']:.3f} "
            f"| {r['vs_tutorial']:.3f} |")
    table = "\n".join(lines) + "\n\n" + "\n".join(bar_lines(rows))
    print(table)
    command = "python bench/recipes.py " + " ".join(sys.argv[1:])
    md = (
        "# Training recipes: speed per sample, new kernels against old\n\n"
        f"784-300-10, one epoch of {args.samples:,} MNIST training images in file order per "
        f"timing, rate {RATE}, one thread; {args.repeats} interleaved rounds, each timing every "
        f"configuration through this tree and through the old one ({old_label}), each tree in "
        "a worker process of its own. CPU time is the thread's (what another process on the "
        "shared machine cannot add to); new / old and × tutorial are medians over rounds of "
        "the CPU-time ratio within a round. Validated first: old and new give bitwise the same "
        f"weights after {args.check_samples:,} samples, for every recipe and dtype.\n\n"
        f"Measured {when} on {machine}; python {info.get('python')}, numpy "
        f"{info.get('numpy')}, numba {info.get('numba')}; load average {loads[0]:.2f} at the "
        f"start, {loads[1]:.2f} at the end.\n\n"
        f"{table}\n\nRecipes (Network and train_epoch arguments): "
        + "; ".join(f"{name}: {recipe_text(name)}" for name in RECIPES)
        + f".\n\nCommand: `{command.strip()}`\n"
    )
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "recipes-latest.md"), "w") as f:
        f.write(md)
    with open(os.path.join(args.out, "recipes-latest.json"), "w") as f:
        json.dump({"measured": when, "machine": info, "samples": args.samples,
                   "repeats": args.repeats, "old": old_label, "load_average": loads,
                   "rows": rows}, f, indent=1)


def run(args):
    old_tree = source_tree(args.old_tree, args.old_rev)
    old_label = args.old_tree or f"git {args.old_rev}"
    recipes = args.recipes.split(",")
    unknown = sorted(set(recipes) - set(RECIPES))
    if unknown or "tutorial" not in recipes:
        raise BenchError(f"--recipes: needs 'tutorial' and names among {', '.join(RECIPES)}")
    configs = [Config(r, d) for d in args.dtypes.split(",") for r in recipes]
    loads = [os.getloadavg()[0]]
    log("starting the old and the new tree's workers; compiling or loading the kernels ...")
    with Worker(old_tree, "old") as old, Worker(ROOT, "new") as new:
        workers = {"old": old, "new": new}
        for c in configs:
            c.setup(workers, max(args.samples, args.check_samples))
            for worker in workers.values():
                c.epoch(worker, 50)
        log("validating ...")
        problems = validate(configs, workers, args.check_samples)
        if problems:
            print("VALIDATION FAILED:\n  " + "\n  ".join(problems))
            return 1
        log(f"timing {args.repeats} interleaved rounds of {args.samples} samples ...")
        times = time_all(configs, workers, args.samples, args.repeats)
    loads.append(os.getloadavg()[0])
    write_results(report_rows(configs, times), args, old_label, loads)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="interleaved rounds (median)")
    parser.add_argument("--samples", type=int, default=20_000, help="samples per timed epoch")
    parser.add_argument("--check-samples", type=int, default=60_000,
                        help="samples of the bitwise old/new check")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--recipes", default=",".join(RECIPES))
    old = parser.add_mutually_exclusive_group()
    old.add_argument("--old-rev", default=OLD_REV, help="git revision of the old kernels")
    old.add_argument("--old-tree", default=None,
                     help="source tree of the old kernels (a folder holding jitnet/)")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = parser.parse_args(argv)
    try:
        return run(args)
    except BenchError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
