"""Speed of each training recipe on 784-300-10, float32 and float64, in one run.

    python bench/recipes.py [--repeats 5] [--samples 60000] [--old-kernels FILE | --old-rev REV]

Every configuration trains one epoch (``--samples`` MNIST training images in file order, rate
0.3, one update per sample) from the same seeded start. The
tutorial recipe is also timed through an OLD copy of ``jitnet/kernels.py`` (by default the one at
git revision ``--old-rev``), driven with the same layout and buffers.

Validation before timing: the tutorial recipe must leave bitwise the same weights through the
old and the new kernels after one epoch on ``--check-samples`` images, in both dtypes; every
recipe's epoch must end finite. A failure prints the mismatch and exits with status 1. A child
process compiles every kernel first, so that this process loads old and new alike from Numba's
cache: code compiled in the running process and the same code loaded from the cache can differ
in the last bits of float64 results (about 1e-15 after 5,000 samples, for the old kernels as for
the new), and only like may be compared with like.

Timing: ``--repeats`` rounds; each round times every configuration once, in a fixed interleaved
order (so that a slow spell of the shared machine hits all of them), each epoch starting from the
same parameters. Reported per configuration: the median and the smallest thread CPU time per
sample, the median wall time, and the median over rounds of the CPU-time ratio to the tutorial
recipe timed in the same round.
Results: an aligned table on stdout, and ``bench/results/recipes-latest.{md,json}``.
"""

import argparse
import datetime
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import jitnet  # noqa: E402
from jitnet.training.machine import machine_info  # noqa: E402

SIZES = [784, 300, 10]
RATE = 0.3
SEED = 0
OLD_REV = "02dd5ae"  # the last revision before the kernels took Layout/Scratch tuples

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


def load_old_kernels(path, rev):
    """The old kernels module, from a file or from ``git show REV:jitnet/kernels.py``."""
    if path is None:
        source = subprocess.run(
            ["git", "-C", ROOT, "show", f"{rev}:jitnet/kernels.py"],
            check=True, capture_output=True, text=True,
        ).stdout
        folder = os.path.join(tempfile.gettempdir(), f"jitnet-old-kernels-{rev}")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "old_kernels.py")
        if not os.path.exists(path) or open(path).read() != source:
            with open(path, "w") as f:
                f.write(source)
    spec = importlib.util.spec_from_file_location("jitnet_old_kernels", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # Numba's cache finds the module's functions by this name
    spec.loader.exec_module(module)
    return module, path


class Config:
    """One timed configuration: a recipe in a dtype, through the new or the old kernels."""

    def __init__(self, recipe, dtype, images, labels, old=None):
        net_kwargs, self.epoch_kwargs = RECIPES[recipe]
        self.name, self.dtype, self.old = recipe, dtype, old
        self.net = jitnet.Network(SIZES, dtype=dtype, seed=SEED, **net_kwargs)
        self.start = self.net.params.copy()
        self.X, self.labels = images, labels
        self.T = self.net.targets(labels)

    @property
    def label(self):
        return f"{self.name} (old kernels)" if self.old else self.name

    def reset(self):
        self.net.params[...] = self.start
        self.net.velocity = None

    def epoch(self, n):
        """One epoch over the first n samples; returns the mean loss."""
        X, T = self.X[:n], self.T[:n]
        if self.old is None:
            return self.net.train_epoch(X, T, RATE, **self.epoch_kwargs)
        net, lay = self.net, self.net._layout
        s = net._scratch()
        layout = [np.array(a) for a in (lay.sizes, lay.w_off, lay.b_off, lay.a_off)]
        total = self.old._train_epoch(
            net.params, *layout, lay.stride0, s.act, s.bits, s.delta, s.nz_idx, s.nz_val,
            X, T, np.arange(n, dtype=np.int64), 1.0 / 255.0, net.dtype.type(RATE), self.old.SIGMOID,
        )
        return total / n


def validate(configs, n):
    """Bitwise old == new for the tutorial recipe; finite epochs for all. Returns problems."""
    problems, after = [], {}
    for c in configs:
        c.reset()
        loss = c.epoch(n)
        after[(c.name, c.dtype, bool(c.old))] = c.net.params.copy()
        if not (np.isfinite(loss) and np.isfinite(c.net.params).all()):
            problems.append(f"{c.label} {c.dtype}: epoch not finite (loss {loss})")
        c.reset()
    for dtype in {c.dtype for c in configs}:
        old = after.get(("tutorial", dtype, True))
        new = after.get(("tutorial", dtype, False))
        if old is not None and new is not None:
            same = old.tobytes() == new.tobytes()
            log(f"  tutorial {dtype}: old and new kernels bitwise equal after {n} samples: {same}")
            if not same:
                problems.append(
                    f"tutorial {dtype}: old and new kernels differ by up to "
                    f"{np.abs(old - new).max():.3g} after {n} samples"
                )
    return problems


def time_all(configs, n, repeats):
    """Interleaved rounds; returns {config: [(wall s, cpu s) per sample, one per round]}.

    Each round times every configuration once; the order rotates from round to round so that no
    configuration always runs right after the same neighbour.
    """
    times = {c: [] for c in configs}
    for r in range(repeats):
        shift = r % len(configs)
        for c in configs[shift:] + configs[:shift]:
            c.reset()
            wall, cpu = time.perf_counter(), time.thread_time()
            c.epoch(n)
            times[c].append(((time.perf_counter() - wall) / n, (time.thread_time() - cpu) / n))
        log(f"  round {r + 1}/{repeats} done")
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="interleaved rounds (median)")
    parser.add_argument("--samples", type=int, default=20_000, help="samples per timed epoch")
    parser.add_argument("--check-samples", type=int, default=60_000,
                        help="samples of the bitwise old/new check")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--old-kernels", default=None, help="file of the old kernels module")
    parser.add_argument("--old-rev", default=OLD_REV, help="git revision of the old kernels")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    parser.add_argument("--compile-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.compile_only:
        log("compiling (or loading) the kernels in a child process ...")
        argv = sys.argv[1:] if argv is None else list(argv)
        subprocess.run([sys.executable, os.path.abspath(__file__), *argv, "--compile-only"],
                       check=True)

    import numba

    numba.set_num_threads(1)
    old, old_path = load_old_kernels(args.old_kernels, args.old_rev)
    train, _ = jitnet.load_mnist()
    images, labels = train.images, train.labels
    dtypes = args.dtypes.split(",")
    recipes = args.recipes.split(",")
    configs = []
    for dtype in dtypes:
        if "tutorial" in recipes:
            configs.append(Config("tutorial", dtype, images, labels, old=old))
        configs += [Config(r, dtype, images, labels) for r in recipes]
    for c in configs:
        c.epoch(50)
        c.reset()
    if args.compile_only:
        return 0
    log("validating ...")
    problems = validate(configs, args.check_samples)
    if problems:
        print("VALIDATION FAILED:\n  " + "\n  ".join(problems))
        return 1
    log(f"timing {args.repeats} interleaved rounds of {args.samples} samples ...")
    times = time_all(configs, args.samples, args.repeats)
    rows = report_rows(configs, times)
    write_results(rows, args, old_path)
    return 0


def report_rows(configs, times):
    """One dict per configuration: medians, and ratios to the tutorial recipe (new kernels).

    ``vs_tutorial`` is the median over rounds of the ratio of CPU times within a round: the two
    epochs ran seconds apart, so a slow spell of the shared machine affects both.
    """
    base = {c.dtype: c for c in configs if c.name == "tutorial" and not c.old}
    rows = []
    for c in configs:
        wall = [w for w, _ in times[c]]
        cpu = [u for _, u in times[c]]
        ref = [u for _, u in times[base[c.dtype]]]
        rows.append({
            "recipe": c.label, "dtype": c.dtype,
            "wall_us": statistics.median(wall) * 1e6, "cpu_us": statistics.median(cpu) * 1e6,
            "cpu_min_us": min(cpu) * 1e6,
            "vs_tutorial": statistics.median(u / v for u, v in zip(cpu, ref)),
            "wall_rounds_us": [w * 1e6 for w in wall], "cpu_rounds_us": [u * 1e6 for u in cpu],
        })
    return rows


#: recipe -> (largest CPU-time ratio allowed, what it is compared with)
BARS = {
    "tutorial (old kernels)": (None, "new kernels within 3% of the old"),
    "cross_entropy": (1.10, "within 10% of the tutorial"),
    "tanh": (1.10, "within 10% of the tutorial"),
    "scaled_tanh": (1.10, "within 10% of the tutorial"),
    "relu": (1.00, "no slower than the tutorial"),
}


def bar_lines(rows):
    """One line per speed target: the measured ratio and whether it is met."""
    lines = []
    for r in rows:
        if r["recipe"] not in BARS and not r["recipe"].startswith("momentum"):
            continue
        limit, what = BARS.get(r["recipe"], (None, "cost of momentum (no target)"))
        if r["recipe"] == "tutorial (old kernels)":
            ratio = 1 / r["vs_tutorial"]  # new / old
            verdict = "met" if ratio <= 1.03 else "NOT met"
            lines.append(f"- {r['dtype']} tutorial, new / old kernels: {ratio:.3f} "
                         f"({what}: {verdict})")
        elif limit is None:
            lines.append(f"- {r['dtype']} {r['recipe']}: {r['vs_tutorial']:.2f}x the tutorial "
                         f"({what})")
        else:
            verdict = "met" if r["vs_tutorial"] <= limit else "NOT met"
            lines.append(f"- {r['dtype']} {r['recipe']}: {r['vs_tutorial']:.3f}x the tutorial "
                         f"({what}: {verdict})")
    return lines


def recipe_text(name):
    net_kwargs, epoch_kwargs = RECIPES[name]
    words = [f"{k}={v!r}" for k, v in {**net_kwargs, **epoch_kwargs}.items()]
    return ", ".join(words) or "the defaults (sigmoid, squared error, tutorial init)"


def write_results(rows, args, old_path):
    info = machine_info()
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    machine = f"{info.get('cpu')}, {info.get('cpu_count')} cores"
    header = (
            "| recipe | dtype | µs/sample (CPU, median) | µs/sample (CPU, min) "
            "| µs/sample (wall, median) | s per 60k epoch (CPU) | × tutorial |"
    )
    lines = [header, "| :--- | :--- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(
            f"| {r['recipe']} | {r['dtype']} | {r['cpu_us']:.2f} | {r['cpu_min_us']:.2f} "
            f"| {r['wall_us']:.2f} | {r['cpu_us'] * 0.06:.3f} | {r['vs_tutorial']:.3f} |"
        )
    table = "\n".join(lines) + "\n\n" + "\n".join(bar_lines(rows))
    print(table)
    command = "python bench/recipes.py " + " ".join(sys.argv[1:] if args is not None else [])
    md = (
        "# Training recipes: speed per sample\n\n"
        f"784-300-10, one epoch of {args.samples:,} MNIST training images in file order per "
        f"timing, rate {RATE}, one thread; {args.repeats} interleaved rounds. CPU time is the "
        "thread's (what another process on the shared machine cannot add to); × tutorial is "
        "the median over rounds of the CPU-time ratio to the tutorial recipe in the same round "
        "and dtype. The "
        "tutorial recipe is also run through the old kernels "
        f"(`{os.path.basename(old_path)}`, git {args.old_rev}); validated first: old and new "
        f"kernels give bitwise the same weights after {args.check_samples:,} samples, in both "
        "dtypes.\n\n"
        f"Measured {when} on {machine}; python {info.get('python')}, numpy "
        f"{info.get('numpy')}, numba {info.get('numba')}; load average "
        f"{os.getloadavg()[0]:.2f} at the end.\n\n"
        f"{table}\n\nRecipes (Network and train_epoch arguments): "
        + "; ".join(f"{name}: {recipe_text(name)}" for name in RECIPES)
        + f".\n\nCommand: `{command.strip()}`\n"
    )
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "recipes-latest.md"), "w") as f:
        f.write(md)
    with open(os.path.join(args.out, "recipes-latest.json"), "w") as f:
        json.dump({"measured": when, "machine": info, "samples": args.samples,
                   "repeats": args.repeats, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
