"""Side-by-side training speed of every engine: ``python bench/compare.py`` or ``jitnet bench``.

The same network (784-300-10 by default), the same MNIST training samples in file order, the same
initial weights and rate 0.3, one weight update per sample, for

- the tutorial's object version (:mod:`jitnet.reference.objects`): a few dozen samples, its
  60,000-sample epoch extrapolated and marked as such;
- the tutorial's vectorized numpy version (:mod:`jitnet.reference.vectorized`);
- the JIT engine (:class:`jitnet.Network`) in float64 and float32, fed the uint8 images;
- when importable, PyTorch with batch size 1 (the idiomatic eager loop) and JAX (a jitted
  ``lax.scan`` over the samples), both float32.

Before anything is timed, the engines of this project are trained from the same start on the same
first samples and their weights compared; a mismatch is printed and the run exits with status 1
without timing anything. The frameworks are checked the same way, but only reported.

Every engine runs on one thread. Each configuration is timed ``repeats`` times (at least 3) and the
median reported. Results go to stdout as one aligned table, progress to stderr, and to
``bench/results/`` as JSON and as a markdown table.
"""

import datetime
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

import click
import numpy as np

from jitnet._machine import machine_info
from jitnet.cli import IntListType

EPOCH_SAMPLES = 60_000
RATE = 0.3
SEED = 0
# float64 engines must agree to this (the references issue's tolerance) ...
TOL_FLOAT64 = 1e-10
# ... and float32 ones to this, loosely: float32 rounding over a few dozen updates stays near 1e-6.
TOL_FLOAT32 = 1e-4

# Repeats whose (max - min) / median exceeds this get a note: the core was probably shared.
NOISY_SPREAD = 0.10

FULL = {"samples": EPOCH_SAMPLES, "eager_samples": 5_000, "object_samples": 20, "repeats": 5,
        "cold_compile": True}
QUICK = {"samples": 6_000, "eager_samples": 300, "object_samples": 3, "repeats": 3,
         "cold_compile": False}


def log(message):
    """Progress to stderr, leaving stdout to the results."""
    click.echo(message, err=True)


# -- the machine and its threads ------------------------------------------------------------------


def machine_line(info):
    """One line: CPU, cores, caches and versions, from :func:`jitnet._machine.machine_info`."""
    caches = ", ".join(f"{level} {size / 1024**2:g} MB" for level, size in info["caches"].items()
                       if level != "L1")
    versions = ", ".join(f"{name} {info[name]}" for name in
                         ("python", "numpy", "numba", "torch", "jax") if name in info)
    cores = f"{info['cpu_count']} cores"
    if info.get("usable_cores") not in (None, info["cpu_count"]):
        cores += f" ({info['usable_cores']} usable)"
    load = f"; load average {info['load_average']:g}" if "load_average" in info else ""
    return f"{info['cpu']}, {cores}" + (f" ({caches})" if caches else "") + f"; {versions}{load}"


def _blas_libraries():
    """Paths of the OpenBLAS/MKL libraries loaded in this process (Linux: /proc/self/maps)."""
    try:
        with open("/proc/self/maps") as f:
            maps = f.read()
    except OSError:
        return []
    return sorted(set(re.findall(r"(/\S*(?:openblas|mkl_rt)\S*\.so[.\d]*)", maps)))


_BLAS_THREAD_FUNCTIONS = [
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
    ("MKL_Get_Max_Threads", "MKL_Set_Num_Threads"),
]


def _blas_thread_controls():
    import ctypes

    controls = []
    for path in _blas_libraries():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for get_name, set_name in _BLAS_THREAD_FUNCTIONS:
            get, put = getattr(lib, get_name, None), getattr(lib, set_name, None)
            if get is not None and put is not None:
                get.restype = ctypes.c_int
                put.argtypes = [ctypes.c_int]
                controls.append((get, put))
                break
    return controls


class ThreadLimits:
    """Run every engine on one thread (Numba, numpy's BLAS); :meth:`restore` undoes it.

    Set at run time rather than through environment variables so that it works however late it
    is called (numpy and numba may already be loaded) and leaves the process as it found it.
    """

    def __init__(self):
        import numba

        self._numba_before = numba.get_num_threads()
        numba.set_num_threads(1)
        self._blas = []
        for get, put in _blas_thread_controls():
            self._blas.append((get, put, get()))
            put(1)
        self._torch_before = None

    @property
    def blas_threads(self):
        """Threads of numpy's BLAS now (1 once limited; None if no library was found)."""
        return max((get() for get, _, _ in self._blas), default=None)

    def limit_torch(self, torch):
        if self._torch_before is None:
            self._torch_before = torch.get_num_threads()
        torch.set_num_threads(1)

    def restore(self):
        import numba

        numba.set_num_threads(self._numba_before)
        for _, put, before in self._blas:
            put(before)
        if self._torch_before is not None:
            sys.modules["torch"].set_num_threads(self._torch_before)


def _jax_single_thread():
    """Ask XLA for one thread; it reads XLA_FLAGS when its CPU backend starts (first use)."""
    flag = "--xla_cpu_multi_thread_eigen=false"
    flags = os.environ.get("XLA_FLAGS", "")
    if flag in flags:
        return True
    if "jax" in sys.modules:
        return False  # its backend may already run with its default threads
    os.environ["XLA_FLAGS"] = (flags + " " + flag).strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    return True


# -- JIT compile time -----------------------------------------------------------------------------


def _kernel_cache_counts():
    """Numba cache (hits, misses) summed over jitnet's compiled kernels so far in this process."""
    from numba.core.registry import CPUDispatcher

    from jitnet import kernels

    hits = misses = 0
    for value in vars(kernels).values():
        if isinstance(value, CPUDispatcher):
            hits += sum(value.stats.cache_hits.values())
            misses += sum(value.stats.cache_misses.values())
    return hits, misses


def compile_in_process(dtypes):
    """Compile or load the kernels for each dtype; seconds and how they were obtained."""
    from jitnet.network import compile_kernels

    result = {}
    for dtype in dtypes:
        hits0, misses0 = _kernel_cache_counts()
        seconds = compile_kernels(dtype)
        hits, misses = _kernel_cache_counts()
        hits, misses = hits - hits0, misses - misses0
        if misses and not hits:
            how = "compiled (Numba's cache was cold)"
        elif hits and not misses:
            how = "loaded from Numba's cache"
        elif hits:
            how = "partly loaded from Numba's cache"
        else:
            how = "already compiled in this process"
        result[dtype] = {"seconds": seconds, "how": how}
    return result


_COLD_COMPILE_CODE = """
import json, sys
from jitnet.network import compile_kernels
print(json.dumps(compile_kernels(sys.argv[1])))
"""


def compile_cold(dtypes):
    """Seconds to compile each dtype's kernels in a fresh process with an empty Numba cache."""
    import jitnet

    package_root = os.path.dirname(os.path.dirname(os.path.abspath(jitnet.__file__)))
    result = {}
    for dtype in dtypes:
        with tempfile.TemporaryDirectory(prefix="jitnet-numba-cache-") as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache,
                       PYTHONPATH=os.pathsep.join(filter(None, [package_root,
                                                                os.environ.get("PYTHONPATH")])))
            done = subprocess.run([sys.executable, "-c", _COLD_COMPILE_CODE, dtype], env=env,
                                  capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"cold compile of {dtype} failed:\n{done.stderr.strip()}")
        result[dtype] = float(done.stdout.strip().splitlines()[-1])
    return result


# -- the engines ----------------------------------------------------------------------------------


class Samples:
    """The first samples of the training set in every engine's input format (built once)."""

    def __init__(self, train):
        self.train = train
        self._targets = {}

    def images(self, n):
        return self.train.images[:n]

    def inputs(self, n, dtype):
        return self.train[:n].inputs(dtype)

    def targets(self, n, dtype):
        dtype = np.dtype(dtype)
        if dtype not in self._targets:
            self._targets[dtype] = self.train.targets(dtype)
        return self._targets[dtype][:n]


def layer_sizes(init):
    """Layer sizes, inputs first, of a list of (W (n_out, n_in), b) pairs."""
    return [init[0][0].shape[1]] + [W.shape[0] for W, _ in init]


class Engine:
    """One engine loaded with given weights ``init`` (float64 (W, b) pairs): ``stage(n)`` the
    first n samples (untimed), then ``run()`` trains on them once (timed); ``weights()`` as
    float64 (W, b) pairs."""

    name = dtype = ""
    threads = 1

    def warm_up(self):
        """Run whatever is compiled or cached lazily, untimed, on a few samples."""


class ObjectEngine(Engine):
    name, dtype = "object (tutorial)", "float64"
    reference = "object"  # the engine of jitnet.reference.make_network

    def __init__(self, init, samples):
        from jitnet.reference import make_network

        self.net = make_network(layer_sizes(init), engine=self.reference)
        self.net.set_weights(init)
        self.samples = samples

    def stage(self, n):
        # The tutorial's data: one list of Python floats per sample (what train() converts to).
        self.X = self.samples.inputs(n, np.float64).tolist()
        self.T = self.samples.targets(n, np.float64).tolist()

    def run(self):
        self.net.train(self.T, self.X, RATE, 1)

    def weights(self):
        return self.net.get_weights()


class VectorizedEngine(ObjectEngine):
    name, dtype = "vectorized (numpy)", "float64"
    reference = "vectorized"

    def __init__(self, init, samples, limits):
        super().__init__(init, samples)
        self.threads = limits.blas_threads or 1

    def stage(self, n):
        self.X = self.samples.inputs(n, np.float64)
        self.T = self.samples.targets(n, np.float64)

    def warm_up(self):
        self.net.train(self.T[:8], self.X[:8], RATE, 1)


class JitEngine(Engine):
    def __init__(self, init, samples, dtype):
        import numba

        from jitnet.network import Network

        self.name, self.dtype = "jitnet", dtype
        self.threads = numba.get_num_threads()
        self.net = Network(layer_sizes(init), dtype=dtype)
        self.net.set_weights(init)
        self.samples = samples

    def stage(self, n):
        # uint8 images: the engine applies the 1/255 inside its kernel, as in normal training.
        self.X = self.samples.images(n)
        self.T = self.samples.targets(n, self.dtype)

    def warm_up(self):
        self.net.copy().train_epoch(self.X[:8], self.T[:8], RATE)

    def run(self):
        self.net.train_epoch(self.X, self.T, RATE)

    def weights(self):
        return self.net.get_weights()


class TorchEngine(Engine):
    """PyTorch eager, batch size 1: the loop a PyTorch user writes for per-sample SGD."""

    name, dtype = "pytorch (batch 1)", "float32"

    def __init__(self, init, samples, limits):
        import torch

        limits.limit_torch(torch)
        self.torch = torch
        self.threads = torch.get_num_threads()
        layers = []
        for W, b in init:
            linear = torch.nn.Linear(W.shape[1], W.shape[0])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.asarray(W, np.float32)))
                linear.bias.copy_(torch.from_numpy(np.asarray(b, np.float32)))
            layers += [linear, torch.nn.Sigmoid()]
        self.model = torch.nn.Sequential(*layers)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=RATE)
        self.samples = samples

    def stage(self, n):
        self.X = self.torch.from_numpy(self.samples.inputs(n, np.float32))
        self.T = self.torch.from_numpy(np.ascontiguousarray(self.samples.targets(n, np.float32)))

    def _train(self, X, T):
        model, optimizer = self.model, self.optimizer
        for x, t in zip(X, T):
            optimizer.zero_grad()
            y = model(x)
            loss = 0.5 * ((y - t) ** 2).sum()
            loss.backward()
            optimizer.step()

    def warm_up(self):
        self._train(self.X[:8], self.T[:8])

    def run(self):
        self._train(self.X, self.T)

    def weights(self):
        linears = [m for m in self.model if isinstance(m, self.torch.nn.Linear)]
        return [(m.weight.detach().numpy().astype(np.float64),
                 m.bias.detach().numpy().astype(np.float64)) for m in linears]


class JaxEngine(Engine):
    """JAX: one jitted ``lax.scan`` over the samples, each step the per-sample SGD update."""

    name, dtype = "jax (jit lax.scan)", "float32"

    def __init__(self, init, samples, single_thread):
        import jax
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp
        self.threads = 1 if single_thread else "default"
        self.params = [(jnp.asarray(W, jnp.float32), jnp.asarray(b, jnp.float32))
                       for W, b in init]

        def loss(params, x, t):
            a = x
            for W, b in params:
                a = jax.nn.sigmoid(W @ a + b)
            return 0.5 * jnp.sum((t - a) ** 2)

        grad = jax.grad(loss)

        def step(params, xt):
            g = grad(params, *xt)
            return jax.tree_util.tree_map(lambda p, d: p - RATE * d, params, g), None

        self._epoch = jax.jit(lambda params, X, T: jax.lax.scan(step, params, (X, T))[0])
        self.samples = samples
        self.compile_s = None

    def stage(self, n):
        self.X = self.jnp.asarray(self.samples.inputs(n, np.float32))
        self.T = self.jnp.asarray(self.samples.targets(n, np.float32))

    def warm_up(self):
        # jit specialises on the number of samples: compile for exactly the staged shape.
        start = time.perf_counter()
        self.jax.block_until_ready(self._epoch(self.params, self.X, self.T))
        self.compile_s = time.perf_counter() - start

    def run(self):
        self.params = self.jax.block_until_ready(self._epoch(self.params, self.X, self.T))

    def weights(self):
        return [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in self.params]


# -- validation -----------------------------------------------------------------------------------


def max_difference(pairs_a, pairs_b):
    """Largest absolute difference over every weight and bias of two (W, b) lists."""
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
               for (Wa, ba), (Wb, bb) in zip(pairs_a, pairs_b) for x, y in ((Wa, Wb), (ba, bb)))


def validate(builders, n, init):
    """Train every engine from ``init`` on the first ``n`` samples; compare with the object version.

    Returns a list of dicts (engine, dtype, max_diff, tolerance, gating, ok).
    """
    results = []
    reference = None
    for key, (build, gating) in builders.items():
        engine = build()
        engine.stage(n)
        engine.run()
        weights = engine.weights()
        if reference is None:
            # The anchor: the tutorial's object version. It must have moved, or agreeing with it
            # would prove nothing.
            reference = weights
            moved = max_difference(weights, init)
            results.append({"engine": engine.name, "dtype": engine.dtype, "key": key,
                            "max_diff": None, "moved": moved, "tolerance": None,
                            "gating": gating, "ok": moved > 1e-6})
            continue
        tolerance = TOL_FLOAT64 if engine.dtype == "float64" else TOL_FLOAT32
        diff = max_difference(weights, reference)
        results.append({"engine": engine.name, "dtype": engine.dtype, "key": key,
                        "max_diff": diff, "tolerance": tolerance, "gating": gating,
                        "ok": bool(diff <= tolerance)})
    return results


def validation_lines(results, n):
    lines = [f"validation: same start, first {n} samples, rate {RATE}, weights after training "
             f"compared with the object version"]
    for r in results:
        label = f"  {r['engine']:<20} {r['dtype']:<8}"
        if r["max_diff"] is None:
            state = "ok" if r["ok"] else "FAILED (training left the weights unchanged)"
            lines.append(f"{label} reference; weights moved by up to {r['moved']:.2e}  {state}")
            continue
        state = "ok" if r["ok"] else "MISMATCH"
        note = "" if r["gating"] else ", reported only"
        lines.append(f"{label} max |dw| {r['max_diff']:.2e}  (tol {r['tolerance']:.0e}{note})"
                     f"  {state}")
    return lines


# -- timing ---------------------------------------------------------------------------------------


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
    """Stage n samples, warm up, then time ``repeats`` passes; a result row (no speed-ups yet)."""
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
    base = {}
    for row in rows:
        if row["engine"].startswith(("object", "vectorized")):
            base[row["engine"].split()[0]] = row["us_per_sample"]
    for row in rows:
        for key in ("object", "vectorized"):
            row[f"x_vs_{key}"] = base[key] / row["us_per_sample"] if key in base else None


def format_number(x):
    """Three significant figures or more, with thousands separators."""
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def _epoch_cell(row):
    if row["epoch"] == "measured":
        return f"{format_number(row['epoch_s'])} measured"
    return f"{format_number(row['epoch_s'])} extrap. from {row['samples']:,}"


HEADER = ["engine", "dtype", "threads", "µs/sample", "samples/s", "s/epoch (60k)",
          "× object", "× vectorized"]
RIGHT = [False, False, True, True, True, True, True, True]


def table_cells(row):
    return [row["engine"], row["dtype"], str(row["threads"]), format_number(row["us_per_sample"]),
            format_number(row["samples_per_s"]), _epoch_cell(row),
            format_number(row["x_vs_object"]) + ("×" if row["x_vs_object"] else ""),
            format_number(row["x_vs_vectorized"]) + ("×" if row["x_vs_vectorized"] else "")]


def aligned_table(header, rows, right):
    """Plain-text table with each column padded to its widest cell."""
    widths = [max(len(cells[i]) for cells in [header] + rows) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.rjust(w) if r else c.ljust(w)
                         for c, w, r in zip(cells, widths, right)).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


def markdown_table(header, rows, right):
    align = ["---:" if r else ":---" for r in right]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [header, align] + rows)


# -- results files --------------------------------------------------------------------------------


def default_out_dir():
    """``bench/results`` of the source checkout jitnet runs from, else of the current directory."""
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.isfile(os.path.join(checkout, "pyproject.toml")) and os.path.isdir(
            os.path.join(checkout, "bench")):
        return os.path.join(checkout, "bench", "results")
    return os.path.join("bench", "results")


def write_results(out_dir, stem, record, markdown):
    """``<stem>-<date>.json``, ``<stem>-latest.json`` and ``<stem>-latest.md`` in ``out_dir``."""
    from jitnet._atomic import atomic_write_bytes

    data = (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode()
    date = record["date"][:10]
    paths = [os.path.join(out_dir, f"{stem}-{date}.json"),
             os.path.join(out_dir, f"{stem}-latest.json"),
             os.path.join(out_dir, f"{stem}-latest.md")]
    atomic_write_bytes(paths[0], data)
    atomic_write_bytes(paths[1], data)
    atomic_write_bytes(paths[2], markdown.encode())
    return paths


def _compare_markdown(record, rows_cells, extra_lines, check_lines):
    cfg = record["config"]
    sizes = "-".join(map(str, cfg["sizes"]))
    lines = [
        "# Training speed: every engine side by side",
        "",
        f"{sizes} sigmoid network, per-sample SGD (rate {RATE}, E = ½Σ(t−y)², one update per "
        f"sample), MNIST training set in file order, same initial weights everywhere; "
        f"one thread per engine; median of {cfg['repeats']} repeats."
        + (" **Quick run: few samples, not a measurement to quote.**" if cfg["quick"] else ""),
        "",
        f"Measured {record['date'][:16].replace('T', ' ')} on {machine_line(record['machine'])}.",
        "",
        markdown_table(HEADER, rows_cells, RIGHT),
        "",
    ]
    lines += [f"- {line}" for line in extra_lines]
    lines += ["", "Validation, before anything was timed:", "", "```", *check_lines, "```"]
    lines += ["", f"Reproduce: `{record['command']}`", ""]
    return "\n".join(lines)


# -- the command ----------------------------------------------------------------------------------


# --out of every benchmark command (compare here, bench/scaling.py); None means default_out_dir().
out_dir_option = click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), default=None,
    help="Directory for the JSON and markdown results [default: bench/results].")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--sizes", type=IntListType(min_items=2, what="layer sizes"), default="784,300,10",
              show_default=True,
              help="Layer sizes, inputs first; must start with 784 and end with 10 for MNIST.")
@click.option("--samples", type=click.IntRange(1, EPOCH_SAMPLES), default=None,
              help="Samples timed per repeat for the compiled engines (jitnet, JAX) "
                   f"[default: {FULL['samples']:,}; --quick {QUICK['samples']:,}].")
@click.option("--eager-samples", type=click.IntRange(1, EPOCH_SAMPLES), default=None,
              help="Samples timed per repeat for the engines that run Python per sample "
                   f"(vectorized, PyTorch) [default: {FULL['eager_samples']:,}; "
                   f"--quick {QUICK['eager_samples']}].")
@click.option("--object-samples", type=click.IntRange(0, EPOCH_SAMPLES), default=None,
              help="Samples timed per repeat for the object version, 0 to skip it "
                   f"[default: {FULL['object_samples']}; --quick {QUICK['object_samples']}].")
@click.option("--repeats", type=click.IntRange(3, None), default=None,
              help=f"Timed repeats per engine; the median is reported "
                   f"[default: {FULL['repeats']}; --quick {QUICK['repeats']}].")
@click.option("--validate-samples", type=click.IntRange(1, EPOCH_SAMPLES), default=20,
              show_default=True, help="Samples trained by every engine before timing, to compare "
                                      "their weights.")
@click.option("--quick", is_flag=True,
              help="Few samples and repeats (under a minute), results named compare-quick-*.")
@click.option("--frameworks/--no-frameworks", default=True, show_default=True,
              help="Include PyTorch and JAX when they are importable.")
@click.option("--cold-compile/--no-cold-compile", default=None,
              help="Also time a compile with an empty Numba cache in a fresh process "
                   "[default: on; off with --quick].")
@out_dir_option
@click.pass_context
def compare(ctx, sizes, samples, eager_samples, object_samples, repeats, validate_samples,
            quick, frameworks, cold_compile, out_dir):
    """Validate, then time per-sample SGD training in every engine, side by side.

    All engines run on one thread (Numba, numpy's BLAS, torch.set_num_threads(1), XLA without
    its thread pool). Exit status 1 if this project's engines disagree; nothing is timed then.
    """
    defaults = QUICK if quick else FULL
    sizes = list(sizes)
    samples = samples or defaults["samples"]
    eager_samples = eager_samples or defaults["eager_samples"]
    object_samples = defaults["object_samples"] if object_samples is None else object_samples
    repeats = repeats or defaults["repeats"]
    cold_compile = defaults["cold_compile"] if cold_compile is None else cold_compile
    out_dir = out_dir or default_out_dir()

    import jitnet

    train, _ = jitnet.load_mnist()
    if sizes[0] != train.images.shape[1] or sizes[-1] != train.n_classes:
        raise click.BadParameter(
            f"MNIST has {train.images.shape[1]} inputs and {train.n_classes} classes, so sizes "
            f"must start with {train.images.shape[1]} and end with {train.n_classes}",
            param_hint="--sizes")
    data = Samples(train)
    init = jitnet.Network(sizes, seed=SEED).get_weights()

    limits = ThreadLimits()
    jax_one_thread = _jax_single_thread() if frameworks else False
    try:
        return _run(ctx, sizes, data, init, limits, jax_one_thread, samples, eager_samples,
                    object_samples, repeats, validate_samples, quick, frameworks, cold_compile,
                    out_dir)
    finally:
        limits.restore()


def _importable(name):
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _run(ctx, sizes, data, init, limits, jax_one_thread, samples, eager_samples, object_samples,
         repeats, validate_samples, quick, frameworks, cold_compile, out_dir):
    notes = []
    builders = {
        "object": (lambda: ObjectEngine(init, data), True),
        "vectorized": (lambda: VectorizedEngine(init, data, limits), True),
        "jit64": (lambda: JitEngine(init, data, "float64"), True),
        "jit32": (lambda: JitEngine(init, data, "float32"), True),
    }
    if frameworks:
        if _importable("torch"):
            builders["torch"] = (lambda: TorchEngine(init, data, limits), False)
        else:
            notes.append("PyTorch not importable: skipped (`pip install torch` to include it).")
        if _importable("jax"):
            builders["jax"] = (lambda: JaxEngine(init, data, jax_one_thread), False)
        else:
            notes.append("JAX not importable: skipped (`pip install jax jaxlib` to include it).")
        if "jax" in builders and not jax_one_thread:
            notes.append("JAX was imported before the benchmark could limit XLA to one thread.")
    else:
        notes.append("PyTorch and JAX left out (--no-frameworks).")

    log("compiling (or loading) the JIT kernels ...")
    compiled = compile_in_process(["float64", "float32"])

    log(f"validating on the first {validate_samples} samples ...")
    checks = validate(builders, validate_samples, init)
    check_lines = validation_lines(checks, validate_samples)
    failed = [c for c in checks if c["gating"] and not c["ok"]]
    if failed:
        click.echo("\n".join(check_lines))
        names = ", ".join(f"{c['engine']} {c['dtype']}" for c in failed)
        click.echo(f"validation FAILED for {names}: not timing anything")
        return 1

    cold = None
    if cold_compile:
        log("timing a cold compile in a fresh process with an empty Numba cache ...")
        cold = compile_cold(["float64", "float32"])

    plan = []
    if object_samples:
        plan.append(("object", object_samples))
    plan += [("vectorized", eager_samples), ("jit64", samples), ("jit32", samples)]
    plan += [(key, n) for key, n in (("torch", eager_samples), ("jax", samples))
             if key in builders]
    rows = []
    jax_compile = None
    for key, n in plan:
        engine = builders[key][0]()
        log(f"timing {engine.name} {engine.dtype}: {n:,} samples x {repeats} repeats ...")
        row = time_engine(engine, n, repeats)
        check = next(c for c in checks if c["key"] == key)
        row["validated"] = check["ok"]
        if not check["ok"]:
            row["engine"] += " (!)"
            notes.append(f"{engine.name}: its weights did not match the object version's "
                         f"(max |dw| {check['max_diff']:.1e}); timed anyway.")
        if key == "jax":
            jax_compile = engine.compile_s
        rows.append(row)
    add_speedups(rows)
    noisy = [f"{r['engine']} {r['dtype']} {100 * r['spread']:.0f}%" for r in rows
             if r["spread"] > NOISY_SPREAD]
    if noisy:
        notes.append(f"noisy: repeats differ by more than {NOISY_SPREAD:.0%} of the median for "
                     f"{', '.join(noisy)}; another process may have shared the core, rerun on a "
                     f"quiet machine before quoting.")

    info = machine_info()
    now = datetime.datetime.now().astimezone()
    compile_line = "jit compile: " + ", ".join(
        f"{d} {c['seconds']:.2f} s ({c['how']})" for d, c in compiled.items())
    if cold:
        compile_line += ("; cold, in a fresh process with an empty cache: "
                         + ", ".join(f"{d} {s:.2f} s" for d, s in cold.items()))
    if jax_compile is not None:
        notes.insert(0, f"JAX compile for the timed shape ({samples:,} samples): "
                        f"{jax_compile:.2f} s, not in its row.")
    blas = limits.blas_threads
    threads_line = ("threads: every engine on 1 (numba.set_num_threads(1)"
                    + (f", numpy BLAS {blas}" if blas is not None else ", numpy BLAS not found")
                    + (", torch.set_num_threads(1)" if "torch" in builders else "")
                    + (", XLA --xla_cpu_multi_thread_eigen=false" if "jax" in builders else "")
                    + ")")
    counts = (f"timed per repeat: jitnet{' and JAX' if 'jax' in builders else ''} {samples:,} "
              f"samples, vectorized{' and PyTorch' if 'torch' in builders else ''} "
              f"{eager_samples:,}, object {object_samples:,}; epochs not measured whole are "
              f"extrapolated to {EPOCH_SAMPLES:,} samples")
    sizes_text = "-".join(map(str, sizes))
    cells = [table_cells(r) for r in rows]

    out = [
        f"jitnet bench: {sizes_text} sigmoid, per-sample SGD, rate {RATE}, MNIST training set in "
        f"file order, same initial weights; median of {repeats} repeats"
        + ("  [quick run]" if quick else ""),
        f"machine: {machine_line(info)}; {now:%Y-%m-%d %H:%M}",
        threads_line,
        "",
        *check_lines,
        "",
        compile_line,
        "",
        aligned_table(HEADER, cells, RIGHT),
        "",
        counts,
        *notes,
    ]
    click.echo("\n".join(out))

    argv = (ctx.obj or {}).get("argv", [])
    record = {
        "benchmark": "compare",
        "date": now.isoformat(timespec="seconds"),
        "command": shlex.join(["python", "bench/compare.py", *argv]),
        "config": {"sizes": sizes, "rate": RATE, "samples": samples,
                   "eager_samples": eager_samples, "object_samples": object_samples,
                   "repeats": repeats, "validate_samples": validate_samples, "quick": quick,
                   "epoch_samples": EPOCH_SAMPLES},
        "machine": info,
        "threads": threads_line,
        "compile": {"in_process": compiled, "cold": cold, "jax_s": jax_compile},
        "validation": checks,
        "rows": rows,
        "notes": [counts, *notes],
    }
    markdown = _compare_markdown(record, cells, [compile_line, threads_line, counts, *notes],
                                 check_lines)
    paths = write_results(out_dir, "compare-quick" if quick else "compare", record, markdown)
    log("wrote " + ", ".join(os.path.relpath(p) for p in paths))
    return 0


def main(argv=None):
    """Run the comparison with command-line arguments ``argv`` (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 if validation failed, 2 for a usage error.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return run_command(compare, argv, "compare.py" if script == "compare.py" else "jitnet bench")


def run_command(command, argv, prog_name):
    """Run the click ``command`` on ``argv`` (kept in ``ctx.obj["argv"]`` for the results files).

    Returns
    -------
    int
        The command's return value (None counts as 0), or the exit status of a usage error (shown
        on stderr), or 1 if aborted.
    """
    try:
        return command.main(args=argv, prog_name=prog_name, standalone_mode=False,
                            obj={"argv": argv}) or 0
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return 1
