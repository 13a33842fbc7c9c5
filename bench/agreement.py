"""jitnet.sklearn against scikit-learn on a held-out grid: every setting trained by both libraries
from the same ``random_state``, the largest weight difference of each.

    python bench/agreement.py [--seeds 2] [--epochs 2] [--tolerance 1e-8] [--quick]

The grid is the full product the tests only sample (``tests/test_sklearn.py`` runs each axis
against a few others): hidden activation (identity, logistic, tanh, relu) x alpha (0, 1e-3) x
momentum (0; 0.9 classical; 0.9 Nesterov) x shuffle x learning_rate (constant, invscaling,
adaptive) x problem (multiclass, binary, multilabel, regression with 1 and 3 outputs, poisson),
on data the tests never see: each case draws its own sample count (150-400), feature count
(5-40, about 40% zeros, as images have), hidden sizes (one or two layers of 3-30 units) and
``random_state`` from ``--seeds`` seeds. float64, ``batch_size=1``, ``tol=0`` so that both
libraries run every epoch.

A case whose training is chaotic (its two libraries' weights drift apart only because a rounding
difference grows) would be judged by scikit-learn's own sensitivity: the table then shows how far
scikit-learn moves when its first weight changes by 1e-15. None did when this was written.

Exit status 1 when a case differs by more than ``--tolerance``. Results:
``bench/results/agreement-latest.{md,json}``.
"""

import argparse
import datetime
import itertools
import os
import sys
import time
import warnings
import zlib

import numpy as np
import sklearn
from sklearn import neural_network
from sklearn.exceptions import ConvergenceWarning

HERE = os.path.dirname(os.path.abspath(__file__))
for _path in (os.path.dirname(HERE), HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from harness.results import (  # noqa: E402
    DEFAULT_OUT_DIR,
    aligned_table,
    machine_line,
    markdown_table,
    write_results,
)

from jitnet import sklearn as jitnet_sklearn  # noqa: E402
from jitnet.training.machine import machine_info  # noqa: E402

ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
ALPHAS = (0.0, 1e-3)
MOMENTA = ((0.0, False), (0.9, False), (0.9, True))
SHUFFLES = (False, True)
SCHEDULES = ("constant", "invscaling", "adaptive")
PROBLEMS = ("multiclass", "binary", "multilabel", "regression", "regression, 3 outputs",
            "poisson")


def case_data(problem, rng):
    """(X, targets, hidden sizes) of one case, drawn from ``rng``."""
    n, d = rng.randint(150, 401), rng.randint(5, 41)
    X = rng.rand(n, d) * (rng.rand(n, d) < 0.6)
    k = min(d, 4)
    y = (X[:, :k] * rng.uniform(0.5, 2.0, k)).argmax(axis=1)
    hidden = tuple(int(h) for h in rng.randint(3, 31, size=rng.randint(1, 3)))
    targets = {
        "multiclass": lambda: y,
        "binary": lambda: y % 2,
        "multilabel": lambda: np.eye(k, dtype=int)[y][:, :3] | (X[:, -3:] > 0.5),
        "regression": lambda: X[:, :2] @ rng.uniform(-2, 2, 2) + 0.3,
        "regression, 3 outputs": lambda: 2.0 * X[:, :3],
        "poisson": lambda: rng.poisson(np.exp(X[:, 0])),
    }[problem]()
    return X, targets, hidden


def largest_gap(a, b):
    """The largest difference between two fitted estimators' weights."""
    return max(float(np.abs(p - q).max())
               for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_))


def run_case(problem, activation, alpha, momentum, nesterov, shuffle, schedule, seed, epochs):
    """(largest weight gap, loss gap, the two n_iter_) of one case."""
    case = (problem, activation, alpha, momentum, nesterov, shuffle, schedule, seed)
    rng = np.random.RandomState(zlib.crc32(repr(case).encode()))  # the same on every run
    X, t, hidden = case_data(problem, rng)
    regressor = problem.startswith("regression") or problem == "poisson"
    params = dict(hidden_layer_sizes=hidden, activation=activation, solver="sgd", batch_size=1,
                  alpha=alpha, momentum=momentum, nesterovs_momentum=nesterov, shuffle=shuffle,
                  learning_rate=schedule, learning_rate_init=0.002 if problem == "poisson"
                  else 0.01, max_iter=epochs, tol=0.0, random_state=seed)
    if problem == "poisson":
        params["loss"] = "poisson"
    kind = "MLPRegressor" if regressor else "MLPClassifier"
    ours = getattr(jitnet_sklearn, kind)(**params)
    theirs = getattr(neural_network, kind)(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X, t)
        ours.fit(X, t)
    loss_gap = float(np.abs(np.subtract(ours.loss_curve_, theirs.loss_curve_)).max())
    return largest_gap(ours, theirs), loss_gap, ours.n_iter_, theirs.n_iter_


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="random_state values per setting")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--tolerance", type=float, default=1e-8)
    parser.add_argument("--quick", action="store_true",
                        help="one seed, every fourth setting; results named agreement-quick")
    parser.add_argument("--out-dir", default=DEFAULT_OUT_DIR)
    args = parser.parse_args(argv)

    grid = list(itertools.product(PROBLEMS, ACTIVATIONS, ALPHAS, MOMENTA, SHUFFLES, SCHEDULES,
                                  range(1 if args.quick else args.seeds)))
    if args.quick:
        grid = grid[::4]
    start = time.perf_counter()
    per_problem, worst, failures = {}, (0.0, None), []
    for problem, activation, alpha, (mu, nesterov), shuffle, schedule, seed in grid:
        gap, loss_gap, ours, theirs = run_case(problem, activation, alpha, mu, nesterov, shuffle,
                                               schedule, seed, args.epochs)
        row = per_problem.setdefault(problem, dict(cases=0, weights=0.0, losses=0.0))
        row["cases"] += 1
        row["weights"] = max(row["weights"], gap)
        row["losses"] = max(row["losses"], loss_gap)
        setting = (f"{problem}, {activation}, alpha={alpha}, momentum={mu}, "
                   f"nesterov={nesterov}, shuffle={shuffle}, {schedule}, random_state={seed}")
        if gap > worst[0]:
            worst = (gap, setting)
        if not gap <= args.tolerance or ours != theirs:
            failures.append(f"{setting}: weights differ by {gap:.3g}, epochs {ours} vs {theirs}")
    seconds = time.perf_counter() - start

    header = ["problem", "cases", "largest weight gap", "largest loss gap"]
    cells = [[name, str(row["cases"]), f"{row['weights']:.2g}", f"{row['losses']:.2g}"]
             for name, row in per_problem.items()]
    right = [False, True, True, True]
    print(aligned_table(header, cells, right))
    print(f"{len(grid)} cases in {seconds:.0f} s; worst {worst[0]:.3g} ({worst[1]})")
    for line in failures:
        print("FAILED " + line, file=sys.stderr)

    command = "python bench/agreement.py" + (" --quick" if args.quick else "")
    markdown = "\n".join([
        "# jitnet.sklearn against scikit-learn on a held-out grid", "",
        f"`{command}`, {datetime.date.today().isoformat()}; {machine_line(machine_info())}; "
        f"scikit-learn {sklearn.__version__}. float64, batch_size=1, {args.epochs} epochs, "
        f"tol=0; each case its own data, hidden sizes and random_state (see the script).", "",
        markdown_table(header, cells, right), "",
        f"{len(grid)} cases in {seconds:.0f} s; the worst: {worst[0]:.3g} ({worst[1]}). "
        f"Tolerance {args.tolerance:g}: "
        + (f"{len(failures)} cases over it." if failures else "every case within it."), ""])
    record = dict(date=datetime.datetime.now().isoformat(timespec="seconds"),
                  sklearn=sklearn.__version__, epochs=args.epochs, tolerance=args.tolerance,
                  cases=len(grid), seconds=seconds, per_problem=per_problem,
                  worst=dict(gap=worst[0], setting=worst[1]), failures=failures)
    stem = "agreement-quick" if args.quick else "agreement"
    for path in write_results(args.out_dir, stem, record, markdown):
        print(f"wrote {path}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
