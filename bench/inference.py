"""Inference speed, jitnet against ONNX Runtime on the exported graph: ``python bench/inference.py``
(``--quick``, ``--help``).

For 784-300-10 and 784-800-10 (sigmoid, squared error, the tutorial's networks, trained briefly so
that the outputs mean something), float32 and float64, in the same run:

- jitnet: ``net.predict(images)`` on the 10,000 MNIST test images as uint8 (x 1/255 inside the
  kernel; its first layer visits only the non-zero pixels, about 19% of them). Numba's inference
  kernel runs on one thread.
- ONNX Runtime: ``session.run`` of ``net.to_onnx()`` on the same images, already converted to the
  graph's float type (not timed), one thread (``intra_op_num_threads=1``,
  ``inter_op_num_threads=1``, sequential execution), all graph optimisations on.

Each is timed on the whole test set in one call (throughput) and one row per call (latency: the
per-call overhead of a service answering single requests, first ``--single-rows`` images).
Validates first: on every test image the graph's labels must equal ``classify``'s and its
outputs agree with ``predict``'s within 1e-5 (float32) or 1e-12 (float64); exits 1 without timing
otherwise. Repeats are interleaved (jitnet, ONNX Runtime, jitnet, ...) so that a change in the
machine's load hits both alike; the tables report medians. Writes
``bench/results/inference-latest.{md,json}`` and a dated JSON.
"""

import datetime
import os
import shlex
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
for _path in (os.path.dirname(HERE), HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import click  # noqa: E402
import numpy as np  # noqa: E402

from harness import BenchError  # noqa: E402
from harness.options import log, out_dir_option, run_command  # noqa: E402
from harness.results import (  # noqa: E402
    DEFAULT_OUT_DIR,
    aligned_table,
    format_number,
    machine_line,
    markdown_table,
    write_results,
)
from harness.timing import noisy_note, one_thread  # noqa: E402
from jitnet.training.machine import machine_info  # noqa: E402

CONFIGS = [((784, 300, 10), "float32"), ((784, 300, 10), "float64"),
           ((784, 800, 10), "float32"), ((784, 800, 10), "float64")]
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}
TRAIN_SAMPLES = 2000


def _runtime():
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise BenchError('the inference benchmark needs onnx and onnxruntime: pip install -e '
                         '".[test]" (or pip install onnx onnxruntime)') from None
    return onnx, onnxruntime


def session(model):
    """An ONNX Runtime session on one thread."""
    _, ort = _runtime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def prepare(sizes, dtype, train, test):
    """The network, its session and the problems found validating the graph on ``test``."""
    from jitnet import Network

    net = Network(list(sizes), dtype=dtype, seed=0)
    net.train_epoch(train.images[:TRAIN_SAMPLES], train.labels[:TRAIN_SAMPLES], 0.3)
    sess = session(net.to_onnx())
    X = test.images.astype(dtype)
    outputs, labels = sess.run(None, {"input": X})
    gap = float(np.abs(outputs - net.predict(test.images)).max())
    mismatched = int(np.count_nonzero(labels != net.classify(test.images)))
    name = f"{'-'.join(map(str, sizes))} {dtype}"
    problems = []
    if not gap <= TOLERANCE[dtype]:
        problems.append(f"{name}: outputs differ by {gap:.3g} (allowed {TOLERANCE[dtype]:g})")
    if mismatched:
        problems.append(f"{name}: {mismatched} labels differ")
    return net, sess, X, gap, problems


def time_pair(net, sess, images, X, repeats, rows_per_call):
    """Interleaved repeats of both engines over ``images``/``X`` in calls of ``rows_per_call``
    rows; (jitnet seconds, ONNX Runtime seconds), a list of ``repeats`` each."""
    n = images.shape[0]
    jit_batches = [images[i:i + rows_per_call] for i in range(0, n, rows_per_call)]
    ort_batches = [{"input": X[i:i + rows_per_call]} for i in range(0, n, rows_per_call)]

    def jitnet_pass():
        for batch in jit_batches:
            net.predict(batch)

    def ort_pass():
        for feed in ort_batches:
            sess.run(None, feed)

    jitnet_pass(), ort_pass()  # warm-up
    times = {"jitnet": [], "ort": []}
    for _ in range(repeats):
        for name, work in (("jitnet", jitnet_pass), ("ort", ort_pass)):
            start = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - start)
    return times["jitnet"], times["ort"]


def measure(label, times, rows):
    median = statistics.median(times)
    return {"times_s": times, "median_s": median, "rows_per_s": rows / median,
            "us_per_row": median / rows * 1e6,
            "spread": (max(times) - min(times)) / median, "label": label}


# -- reports ----------------------------------------------------------------------------------

HEADER = ["sizes", "dtype", "calls", "jitnet rows/s", "ONNX Runtime rows/s", "jitnet / ORT",
          "jitnet µs/row", "ORT µs/row"]
RIGHT = [False, False, False, True, True, True, True, True]


def cells(row):
    mode = f"1 × {row['rows']:,} rows" if row["rows_per_call"] > 1 else f"{row['rows']:,} × 1 row"
    return ["-".join(map(str, row["sizes"])), row["dtype"], mode,
            format_number(row["jitnet"]["rows_per_s"]), format_number(row["ort"]["rows_per_s"]),
            f"{row['ratio']:.2f}×", f"{row['jitnet']['us_per_row']:.2f}",
            f"{row['ort']['us_per_row']:.2f}"]


def heading(record):
    cfg = record["config"]
    return (f"rows per second of jitnet's predict (uint8 pixels) and of ONNX Runtime "
            f"{record['onnxruntime']} on the exported graph (float pixels), one thread each, "
            f"MNIST test images; median of {cfg['repeats']} interleaved repeats after a warm-up")


def text_report(record):
    quick = "  [quick run]" if record["config"]["quick"] else ""
    return "\n".join([
        f"jitnet inference: {heading(record)}{quick}",
        f"machine: {machine_line(record['machine'])}; load average after {record['load_after']}; "
        f"{record['date'][:16].replace('T', ' ')}",
        "validated: " + "; ".join(record["validation"]), "",
        aligned_table(HEADER, [cells(r) for r in record["rows"]], RIGHT), "",
        *record["notes"],
    ])


def markdown_report(record):
    quick = record["config"]["quick"]
    return "\n".join([
        "# Inference: jitnet against ONNX Runtime on the exported graph", "",
        heading(record) + (". **Quick run: not a measurement to quote.**" if quick else "."), "",
        f"Measured {record['date'][:16].replace('T', ' ')} on {machine_line(record['machine'])}"
        f" (load average after the run {record['load_after']}).", "",
        "Validated first, on every test image: " + "; ".join(record["validation"]) + ".", "",
        markdown_table(HEADER, [cells(r) for r in record["rows"]], RIGHT), "",
        *[f"- {line}" for line in record["notes"]], "",
        f"Reproduce: `{record['command']}`", "",
    ])


NOTES = [
    "jitnet / ORT: jitnet's rows per second over ONNX Runtime's (above 1: jitnet is faster).",
    "jitnet's first layer adds a weight row per non-zero pixel (about 150 of 784 in an MNIST "
    "digit) where a Gemm multiplies all 784; ONNX Runtime's Gemm is a blocked, vectorised "
    "matrix product over the whole batch, jitnet goes row by row.",
    "ONNX Runtime is given float pixels already converted (its best case); jitnet reads the "
    "uint8 images as they are stored.",
    "One row per call: each call also pays a fixed cost (jitnet's input checks in Python, "
    "ONNX Runtime's run), which for a small float32 network is most of the time, so the two "
    "come close there.",
]


# -- the command ------------------------------------------------------------------------------


def run(repeats, single_rows, quick, out_dir, argv):
    import jitnet

    onnx, ort = _runtime()
    train, test = jitnet.load_mnist()
    if quick:
        test = test[:1000]
    rows, validation, problems = [], [], []
    with one_thread():
        prepared = []
        log("validating ...")
        for sizes, dtype in CONFIGS:
            net, sess, X, gap, found = prepare(sizes, dtype, train, test)
            problems += found
            validation.append(f"{'-'.join(map(str, sizes))} {dtype} max |Δy| {gap:.2g}")
            prepared.append((sizes, dtype, net, sess, X))
        if problems:
            for problem in problems:
                log(f"validation failed: {problem}")
            return 1
        info = machine_info()
        for sizes, dtype, net, sess, X in prepared:
            for rows_per_call, n in ((test.images.shape[0], test.images.shape[0]),
                                     (1, single_rows)):
                log(f"  {'-'.join(map(str, sizes))} {dtype}, {rows_per_call} row(s) per call ...")
                jit_t, ort_t = time_pair(net, sess, test.images[:n], X[:n], repeats, rows_per_call)
                row = {"sizes": list(sizes), "dtype": dtype, "rows": n,
                       "rows_per_call": rows_per_call,
                       "jitnet": measure("jitnet", jit_t, n), "ort": measure("ort", ort_t, n)}
                row["ratio"] = row["jitnet"]["rows_per_s"] / row["ort"]["rows_per_s"]
                rows.append(row)
    notes = list(NOTES)
    noisy = noisy_note([(f"{'-'.join(map(str, r['sizes']))} {r['dtype']} {r[e]['label']}", r[e])
                        for r in rows for e in ("jitnet", "ort")], total=2 * len(rows))
    if noisy:
        notes.append(noisy)
    record = {
        "benchmark": "inference",
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": shlex.join(["python", "bench/inference.py", *argv]),
        "config": {"repeats": repeats, "test_rows": int(test.images.shape[0]),
                   "single_rows": single_rows, "quick": quick, "train_samples": TRAIN_SAMPLES,
                   "activation": "sigmoid", "loss": "squared"},
        "onnx": onnx.__version__, "onnxruntime": ort.__version__,
        "machine": info, "load_after": round(os.getloadavg()[0], 2),
        "validation": validation, "rows": rows, "notes": notes,
    }
    click.echo(text_report(record))
    paths = write_results(out_dir, "inference-quick" if quick else "inference", record,
                          markdown_report(record))
    log("wrote " + ", ".join(os.path.relpath(p) for p in paths))
    return 0


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--repeats", type=click.IntRange(3), default=15, show_default=True,
              help="Timed repeats per engine and row, after one warm-up.")
@click.option("--single-rows", type=click.IntRange(10, 10_000), default=2000, show_default=True,
              help="Test images timed one per call (the latency rows).")
@click.option("--quick", is_flag=True,
              help="A smoke run: 1,000 test images, 3 repeats, 200 single rows; results named "
                   "inference-quick-*.")
@out_dir_option
@click.pass_context
def main(ctx, repeats, single_rows, quick, out_dir):
    """Time jitnet's predict against ONNX Runtime (see the module docstring)."""
    if quick:
        repeats, single_rows = 3, min(single_rows, 200)
    return run(repeats, single_rows, quick, out_dir or DEFAULT_OUT_DIR, ctx.obj["argv"])


if __name__ == "__main__":
    sys.exit(run_command(main, sys.argv[1:], "bench/inference.py"))
