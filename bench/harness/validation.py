"""Before anything is timed: train every engine from the same start on the same first samples
and compare its weights with the tutorial's object version."""

import math

import numpy as np

from harness.engines import RATE

# float64 engines must agree with the object version to this ...
TOL_FLOAT64 = 1e-10
# ... and float32 ones to this, loosely: float32 rounding over a few dozen updates stays near 1e-6.
TOL_FLOAT32 = 1e-4
# The object version's weights must move by more than this, or agreeing with it proves nothing.
MIN_MOVE = 1e-6


def max_difference(pairs_a, pairs_b):
    """Largest ``|a - b|`` over every weight and bias of two ``(W, b)`` lists.

    NaN when any value of either is NaN (so that no tolerance accepts it); inf when the number of
    layers or a shape differs.
    """
    pairs_a, pairs_b = list(pairs_a), list(pairs_b)
    if len(pairs_a) != len(pairs_b):
        return math.inf
    largest = 0.0
    for pair_a, pair_b in zip(pairs_a, pairs_b):
        for a, b in zip(pair_a, pair_b):
            a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
            if a.shape != b.shape:
                return math.inf
            difference = float(np.max(np.abs(a - b), initial=0.0))  # NaN propagates
            if math.isnan(difference):
                return math.nan
            largest = max(largest, difference)
    return largest


def validate(builders, n, init):
    """Train a fresh copy of every engine from ``init`` on the first ``n`` samples.

    Parameters
    ----------
    builders : dict
        ``key -> (build, gating)`` from :func:`harness.engines.engine_builders`; the first
        entry is the reference the others are compared with.
    n : int
        Samples to train on.
    init : list of (ndarray, ndarray)
        The float64 ``(W, b)`` pairs every engine started from.

    Returns
    -------
    list of dict
        Per engine: ``engine``, ``dtype``, ``key``, ``max_diff`` (None for the reference),
        ``moved`` (the reference only), ``tolerance``, ``gating`` and ``ok``.
    """
    results = []
    reference = None
    for key, (build, gating) in builders.items():
        engine = build()
        engine.stage(n)
        engine.run()
        weights = engine.weights()
        row = {"engine": engine.name, "dtype": engine.dtype, "key": key, "gating": gating}
        if reference is None:
            reference = weights
            moved = max_difference(weights, init)
            row.update(max_diff=None, moved=moved, tolerance=None, ok=bool(moved > MIN_MOVE))
        else:
            tolerance = TOL_FLOAT64 if engine.dtype == "float64" else TOL_FLOAT32
            diff = max_difference(weights, reference)
            row.update(max_diff=diff, tolerance=tolerance, ok=bool(diff <= tolerance))
        results.append(row)
    return results


def failures(results):
    """The results of engines whose failure stops the benchmark and that failed."""
    return [r for r in results if r["gating"] and not r["ok"]]


def validation_lines(results, n):
    """The validation as text, one line per engine under a heading."""
    lines = [f"validation: same start, first {n} samples, rate {RATE}, weights after training "
             f"compared with the object version"]
    for r in results:
        label = f"  {r['engine']:<20} {r['dtype']:<8}"
        if r["max_diff"] is None:
            state = "ok" if r["ok"] else "FAILED (training left the weights unchanged or NaN)"
            lines.append(f"{label} reference; weights moved by up to {r['moved']:.2e}  {state}")
            continue
        state = "ok" if r["ok"] else "MISMATCH"
        note = "" if r["gating"] else ", reported only"
        lines.append(f"{label} max |dw| {r['max_diff']:.2e}  (tol {r['tolerance']:.0e}{note})"
                     f"  {state}")
    return lines
