"""jitnet.sklearn.MLPClassifier against scikit-learn's, one MNIST epoch of 784-300-10, same run.

    python bench/estimators.py [--repeats 3] [--sklearn-samples 2000] [--quick]

Estimators train one epoch (``max_iter=1``) on the 60,000 MNIST training images (float64 pixels
in [0, 1]), ``hidden_layer_sizes=(300,), solver='sgd', batch_size=1, random_state=0``, with two
settings (:data:`SETTINGS`): scikit-learn's defaults otherwise (L2 ``alpha=1e-4``, Nesterov's
momentum 0.9, rate 0.001), and plain per-sample SGD (``alpha=0, momentum=0``, rate 0.01).
For each:

- ``jitnet.sklearn.MLPClassifier`` in float64 and in float32 (``dtype=``);
- ``sklearn.neural_network.MLPClassifier`` with the same parameters: its per-sample loop runs
  in Python, so its epoch is timed on the first ``--sklearn-samples`` images and extrapolated
  to 60,000 (marked as such in the table).

And for reference scikit-learn's default ``MLPClassifier`` (Adam, mini-batches of 200), a real
epoch.

Validation before timing: in each setting both libraries train one epoch on the first
``--check-samples`` images from the same random_state; the float64 weights must agree within
1e-9, or the mismatch is printed and the script exits with status 1 without timing anything.

Timing: one thread (Numba and BLAS), the whole ``fit`` call (input checks, initial weights,
the epoch), the median of ``--repeats``, after an untimed warm-up that compiles or loads the
kernels. Results: an aligned table on stdout, ``bench/results/estimators-latest.{md,json}``.
"""

import argparse
import datetime
import os
import statistics
import sys
import time
import warnings

import numpy as np

import sklearn
from sklearn.neural_network import MLPClassifier as Reference

HERE = os.path.dirname(os.path.abspath(__file__))
for _path in (os.path.dirname(HERE), HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from harness.results import (  # noqa: E402
    DEFAULT_OUT_DIR,
    aligned_table,
    format_number,
    machine_line,
    markdown_table,
    write_results,
)
from harness.timing import one_thread  # noqa: E402

import jitnet  # noqa: E402
from jitnet.training.machine import machine_info  # noqa: E402

#: The estimators' parameters: scikit-learn's defaults but for the per-sample solver.
PARAMS = dict(hidden_layer_sizes=(300,), solver="sgd", batch_size=1, max_iter=1,
              random_state=0)
#: The two settings compared: scikit-learn's defaults, and plain per-sample SGD.
SETTINGS = {"defaults": {}, "plain SGD": dict(alpha=0.0, momentum=0.0, learning_rate_init=0.01)}
EPOCH = 60_000
TOLERANCE = 1e-9


def _fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: one epoch on purpose
        start = time.perf_counter()
        estimator.fit(X, y)
        return time.perf_counter() - start


def validate(X, y, n, setting):
    """The largest weight difference after one epoch on n samples (float64, same seed)."""
    from jitnet.sklearn import MLPClassifier

    ours, theirs = MLPClassifier(**PARAMS, **setting), Reference(**PARAMS, **setting)
    _fit(ours, X[:n], y[:n])
    _fit(theirs, X[:n], y[:n])
    return max(np.abs(a - b).max() for a, b in zip(ours.coefs_ + ours.intercepts_,
                                                   theirs.coefs_ + theirs.intercepts_))


def measure(args, X, y, X_test, y_test):
    from jitnet.sklearn import MLPClassifier

    runs = []
    for label, setting in SETTINGS.items():
        runs += [
            (label, "jitnet float64", lambda s=setting: MLPClassifier(**PARAMS, **s), EPOCH),
            (label, "jitnet float32",
             lambda s=setting: MLPClassifier(**PARAMS, **s, dtype="float32"), EPOCH),
        ]
        if args.threads > 1:
            runs += [
                (label, f"jitnet float64, threads={args.threads}",
                 lambda s=setting: MLPClassifier(**PARAMS, **s, threads=args.threads), EPOCH),
                (label, f"jitnet float32, threads={args.threads}",
                 lambda s=setting: MLPClassifier(**PARAMS, **s, dtype="float32",
                                                 threads=args.threads), EPOCH),
            ]
        runs += [
            (label, "scikit-learn, batch_size=1", lambda s=setting: Reference(**PARAMS, **s),
             args.sklearn_samples),
        ]
    runs.append(("scikit-learn's default", "scikit-learn adam, batch 200",
                 lambda: Reference(hidden_layer_sizes=(300,), max_iter=1, random_state=0),
                 EPOCH))
    for _, name, make, _ in runs:  # compile the kernels (or load them from Numba's cache)
        if name.startswith("jitnet"):
            _fit(make(), X[:50], y[:50])
    rows = []
    for label, name, make, n in runs:
        times, error = [], None
        for _ in range(args.repeats):
            estimator = make()
            times.append(_fit(estimator, X[:n], y[:n]))
            print(f"  {name}: {times[-1]:.3f} s on {n:,} samples", file=sys.stderr)
        if n == EPOCH:
            error = 1.0 - estimator.score(X_test, y_test)
        seconds = statistics.median(times) * EPOCH / n
        rows.append(dict(setting=label, name=name, samples_timed=n, extrapolated=n != EPOCH,
                         epoch_seconds=seconds, samples_per_second=EPOCH / seconds,
                         test_error=error, repeats=times))
    for row in rows:  # against scikit-learn's batch_size=1 epoch in the same setting
        same = [r for r in rows if r["setting"] == row["setting"] and
                r["name"] == "scikit-learn, batch_size=1"]
        reference = same[0] if same else next(
            r for r in rows if r["name"] == "scikit-learn, batch_size=1")
        row["speedup"] = reference["epoch_seconds"] / row["epoch_seconds"]
    return rows


def table(rows):
    header = ["setting", "estimator", "epoch (s)", "samples/s", "vs scikit-learn batch_size=1",
              "test error"]
    cells = [[r["setting"], r["name"],
              format_number(r["epoch_seconds"]) + (" *" if r["extrapolated"] else ""),
              format_number(r["samples_per_second"]), f"{r['speedup']:,.0f}x"
              if r["speedup"] >= 10 else f"{r['speedup']:.2f}x",
              "-" if r["test_error"] is None else f"{100 * r['test_error']:.2f}%"]
             for r in rows]
    return header, cells, [False, False, True, True, True, True]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed fits per estimator")
    parser.add_argument("--sklearn-samples", type=int, default=2000,
                        help="images scikit-learn's batch_size=1 epoch is timed on")
    parser.add_argument("--check-samples", type=int, default=300,
                        help="images of the validation epoch")
    parser.add_argument("--quick", action="store_true",
                        help="1 repeat, 300 scikit-learn samples; results named estimators-quick")
    parser.add_argument("--threads", type=int, default=2,
                        help="also time jitnet with this many threads (1: not)")
    parser.add_argument("--out-dir", default=DEFAULT_OUT_DIR)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.sklearn_samples = 1, 300
    train, test = jitnet.load_mnist()
    X, y = train.images / 255.0, train.labels
    X_test, y_test = test.images / 255.0, test.labels
    with one_thread():
        gaps = {label: validate(X, y, args.check_samples, setting)
                for label, setting in SETTINGS.items()}
        gap = max(gaps.values())
        print(f"validation: weights after one epoch on {args.check_samples} images differ by "
              f"{gap:.2e} at most (tolerance {TOLERANCE:g})", file=sys.stderr)
        if not gap <= TOLERANCE:
            print(f"Error: jitnet's weights differ from scikit-learn's by {gap:.3g}",
                  file=sys.stderr)
            return 1
        info = machine_info()
        rows = measure(args, X, y, X_test, y_test)
    header, cells, right = table(rows)
    print(aligned_table(header, cells, right))

    params = ", ".join(f"{k}={v!r}" for k, v in PARAMS.items())
    plain = ", ".join(f"{k}={v!r}" for k, v in SETTINGS["plain SGD"].items())
    markdown = "\n".join([
        "# jitnet.sklearn vs scikit-learn: one MNIST epoch of 784-300-10", "",
        f"`python bench/estimators.py{' --quick' if args.quick else ''}`, "
        f"{datetime.date.today().isoformat()}; {machine_line(info)}; scikit-learn "
        f"{sklearn.__version__}. One thread (Numba and BLAS) but the rows named threads=N; "
        f"the whole `fit` call, median of {args.repeats}.",
        "", markdown_table(header, cells, right), "",
        f"Parameters of all but the last row: `{params}`, scikit-learn's defaults otherwise "
        f"(\"defaults\": L2 alpha=0.0001, Nesterov's momentum 0.9, rate 0.001) or with "
        f"`{plain}` (\"plain SGD\"). "
        f"\\* scikit-learn's batch_size=1 epoch timed on the first {args.sklearn_samples:,} "
        f"images and extrapolated to {EPOCH:,}. Validated first: after one epoch on "
        f"{args.check_samples} images the float64 weights of both libraries differ by "
        f"{gap:.1e}.", ""])
    record = dict(date=datetime.datetime.now().isoformat(timespec="seconds"), machine=info,
                  sklearn=sklearn.__version__, params={k: repr(v) for k, v in PARAMS.items()},
                  settings={k: {a: repr(b) for a, b in v.items()} for k, v in SETTINGS.items()},
                  validation_gaps=gaps, rows=rows)
    stem = "estimators-quick" if args.quick else "estimators"
    for path in write_results(args.out_dir, stem, record, markdown):
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
