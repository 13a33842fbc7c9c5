"""What distorting every training sample costs: ``python bench/distort.py [--quick]``.

Times the compiled per-sample distortion (:mod:`jitnet.engine.distort_kernels`) on the MNIST training
images, against one epoch of a 784-800-10 float32 :class:`jitnet.Network` (Simard et al.'s
network size), all in one process, one thread, median of repeats:

- the distortion alone, per sample: affine, elastic from the bank of smoothed fields, both; and
  the rejected design, a fresh field per sample (uniform noise, drawn by NumPy, smoothed by a
  separable Gaussian in compiled code), so the choice of the bank is measured, not assumed;
- drawing one epoch's random numbers (Python, once per epoch) and building the bank (once);
- the epoch on the original uint8 images and on distorted float32 copies: bilinear resampling
  spreads ink onto neighbouring pixels, and the engine's first layer costs per non-zero input.

Validates before timing (exact identity, exact integer shift, the bank path against the fresh
field path on the same field) and exits with status 1 if that fails. Writes
``bench/results/distort-latest.md`` and ``distort-latest.json``.
"""

import argparse
import datetime
import functools
import json
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

import jitnet  # noqa: E402
from jitnet.engine import distort_kernels as dk  # noqa: E402
from jitnet.io.atomic import atomic_write_bytes  # noqa: E402
from jitnet.training.machine import machine_info  # noqa: E402
from jitnet.engine.distortion import Distortion, DistortionPlan, _field_bank, _gaussian  # noqa: E402
from jitnet.engine.compile import compile_kernels  # noqa: E402

SIZES = [784, 800, 10]
RATE = 0.1
SCALE = 1.0 / 255.0
CONFIGS = {  # name -> distortion; Simard et al. (2003) elastic, Cireșan et al. (2010)-like both
    "affine": Distortion(rotate=15, scale_x=0.15, scale_y=0.15, shear=10, translate=2),
    "elastic": Distortion(elastic_sigma=4, elastic_alpha=34),
    "both": Distortion(elastic_sigma=6, elastic_alpha=36, rotate=15, scale_x=0.15, scale_y=0.15),
}
FRESH_NOISE_POOL = 500  # noise for the fresh-field design is drawn for this many samples, reused


def log(message):
    print(message, file=sys.stderr, flush=True)


def median_time(fn, repeats):
    """Median and all seconds of ``repeats`` calls of fn (after one untimed call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


# -- the rejected design: a fresh smoothed field per sample ----------------------------------------

# Not cache=True: Numba's cache cannot reload functions of a script that ran as __main__ once and
# is imported by file path later (as the tests do); compiling them takes about a second.


@njit(nogil=True, fastmath={"nsz", "arcp", "contract", "reassoc"})
def _smooth_field(noise, H, W, taps, tmp, field):
    """field (2, H*W) = Gaussian(taps) * noise (2, H+2R, W+2R), separable, rows then columns."""
    R = taps.shape[0] // 2
    Hp = H + 2 * R
    for comp in range(2):
        for r in range(Hp):
            for c in range(W):
                s = 0.0
                for k in range(taps.shape[0]):
                    s += taps[k] * noise[comp, r, c + k]
                tmp[r, c] = s
        for r in range(H):
            for c in range(W):
                s = 0.0
                for k in range(taps.shape[0]):
                    s += taps[k] * tmp[r + k, c]
                field[comp, r * W + c] = s


@njit(nogil=True)
def _fresh_field_batch(X, H, W, scale, draws, noise, taps, tmp, field, work, index, out):
    """Per sample: smooth a fresh field, then resample through it (a bank of that one field)."""
    for k in range(X.shape[0]):
        _smooth_field(noise[k % noise.shape[0]], H, W, taps, tmp, field[0])
        dk._distort_sample(X[k], H, W, scale, draws[k], field, work, index, out[k])


def fresh_inputs(plan, rng, n_pool):
    """Noise for ``n_pool`` samples, the Gaussian taps and the scratch of the fresh design."""
    rows, cols = plan.image_shape
    taps = _gaussian(plan.distortion.elastic_sigma)
    R = taps.size // 2
    noise = rng.uniform(-1.0, 1.0, (n_pool, 2, rows + 2 * R, cols + 2 * R))
    tmp = np.empty((rows + 2 * R, cols))
    field = np.zeros((1, 2, rows * cols), np.float32)
    return noise, taps, tmp, field


def fresh_draws(draws, alpha):
    """The same draws, reading field 0 at weight alpha (the fresh field takes the bank's place)."""
    fresh = draws.copy()
    fresh[:, [dk.FIELD_I, dk.FIELD_J, dk.WEIGHT_I, dk.WEIGHT_J]] = 0, 0, alpha, 0.0
    return fresh


# -- validation ------------------------------------------------------------------------------------

ROWS = COLS = 28


def scratch():
    return np.zeros(dk.work_size(ROWS, COLS)), np.zeros(ROWS * COLS, np.int64)


def run_batch(X, bank, draws, out):
    """Distort every row of X (N, 784) with its draw into out (N, 784)."""
    order = np.arange(X.shape[0], dtype=np.int64)
    dk._distort_batch(X, order, ROWS, COLS, SCALE, draws, bank, *scratch(), out)


def validate(X):
    """Check the kernel on real images before timing it; a list of failure lines (empty: ok)."""
    failures = []
    n = X.shape[0]
    plan = DistortionPlan(Distortion(), (ROWS, COLS))
    draws = plan.draw_epoch(np.random.default_rng(0), n)
    out = np.empty((n, ROWS * COLS), np.float32)
    run_batch(X, plan.bank, draws, out)
    if not np.array_equal(out, (X * SCALE).astype(np.float32)):
        failures.append("identity: output differs from input * scale")
    draws[:, dk.OX], draws[:, dk.OY] = -3.0, 2.0  # content moves 3 right and 2 up
    run_batch(X, plan.bank, draws, out)
    shifted = np.zeros((n, ROWS, COLS), np.float32)
    shifted[:, : ROWS - 2, 3:] = X.reshape(n, ROWS, COLS)[:, 2:, : COLS - 3] * SCALE
    if not np.array_equal(out, shifted.reshape(n, -1)):
        failures.append("translation by (3, -2): not an exact shift")
    # The fresh-field design must smooth the noise exactly as the bank is built (same noise, same
    # field up to float32 rounding), then resample as the bank design does.
    plan = DistortionPlan(CONFIGS["elastic"], (ROWS, COLS), seed=1)
    noise, taps, tmp, field = fresh_inputs(plan, np.random.default_rng(2), 1)
    _smooth_field(noise[0], ROWS, COLS, taps, tmp, field[0])
    bank = _field_bank(ROWS, COLS, plan.distortion.elastic_sigma, 1, np.random.default_rng(2))
    if np.abs(field - bank).max() > 1e-6:
        difference = np.abs(field - bank).max()
        failures.append(f"fresh field vs bank field: max difference {difference:.3g}")
    draws = fresh_draws(plan.draw_epoch(np.random.default_rng(1), n), 34.0)
    fresh = np.empty_like(out)
    _fresh_field_batch(X, ROWS, COLS, SCALE, draws, noise, taps, tmp, field, *scratch(), fresh)
    run_batch(X, field, draws, out)
    if not np.array_equal(out, fresh):
        failures.append("fresh field: differs from the same field resampled alone")
    moved = np.abs(out - X * SCALE).max()
    if moved < 0.5:
        failures.append(f"elastic: images hardly changed (max difference {moved:.3g})")
    return failures


# -- timing ----------------------------------------------------------------------------------------


def round_robin(jobs, repeats):
    """Seconds of each job in ``repeats`` rounds after an untimed one, the jobs taking turns in
    every round, so that a busy spell of the shared machine lands on all of them, not on one."""
    for fn in jobs.values():
        fn()
    times = {key: [] for key in jobs}
    for _ in range(repeats):
        for key, fn in jobs.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return times


def distortion_jobs(X, n_fresh, repeats):
    """Timed jobs and row descriptions of each configuration and design, and the distorted
    copies of X (float32, as a float32 engine would take them)."""
    n = X.shape[0]
    jobs, rows, copies = {}, [], {}
    for name, distortion in [("identity", Distortion())] + list(CONFIGS.items()):
        start = time.perf_counter()
        plan = DistortionPlan(distortion, (ROWS, COLS), seed=0)
        build_s = time.perf_counter() - start
        rng = np.random.default_rng(0)
        draw_s, _ = median_time(lambda: plan.draw_epoch(rng, n), repeats)
        draws = plan.draw_epoch(rng, n)
        out = copies[name] = np.empty((n, ROWS * COLS), np.float32)
        jobs[("distort", name)] = functools.partial(run_batch, X, plan.bank, draws, out)
        rows.append({
            "key": ("distort", name), "config": name, "distortion": repr(distortion),
            "design": "bank" if distortion.elastic else "resampling only", "samples": n,
            "draw_us_per_sample": draw_s / n * 1e6,
            "bank_build_s": build_s if distortion.elastic else None,
            "bank_mb": plan.bank.nbytes / 1e6,
        })
        if distortion.elastic:
            pool = min(FRESH_NOISE_POOL, n_fresh)
            noise_s, _ = median_time(lambda: fresh_inputs(plan, rng, pool), repeats)
            noise, taps, tmp, field = fresh_inputs(plan, rng, pool)
            fresh = fresh_draws(draws[:n_fresh], distortion.elastic_alpha)
            fresh_out = copies[name + " fresh"] = np.empty((n_fresh, ROWS * COLS), np.float32)
            jobs[("fresh", name)] = functools.partial(
                _fresh_field_batch, X[:n_fresh], ROWS, COLS, SCALE, fresh, noise, taps, tmp,
                field, *scratch(), fresh_out)
            rows.append({
                "key": ("fresh", name), "config": name, "distortion": repr(distortion),
                "design": f"fresh field per sample ({taps.size} taps)", "samples": n_fresh,
                "draw_us_per_sample": noise_s / pool * 1e6, "bank_build_s": None,
                "bank_mb": 0.0,
            })
    return jobs, rows, copies


def epoch_jobs(X, labels, copies):
    """Timed jobs and row descriptions: a 784-800-10 float32 epoch on original and distorted
    inputs (a fresh network each, so that all start from the same weights)."""
    inputs = [("original, uint8 (scaled in the kernel)", X, None),
              ("original, float32", (X * SCALE).astype(np.float32), 1.0)]
    inputs += [(f"distorted ({name}), float32", copies[name], 1.0) for name in CONFIGS]
    jobs, rows = {}, []
    for label, data, scale in inputs:
        net = jitnet.Network(SIZES, dtype="float32", seed=0)
        jobs[("epoch", label)] = functools.partial(net.train_epoch, data, labels, RATE,
                                                   scale=scale)
        rows.append({"key": ("epoch", label), "input": label, "samples": data.shape[0],
                     "data": data})
    return jobs, rows


def measure(X, labels, repeats, n_fresh):
    """Every timing of the benchmark, in one round-robin: (distortion rows, epoch rows)."""
    jobs, distortions, copies = distortion_jobs(X, n_fresh, repeats)
    more, epochs = epoch_jobs(X, labels, copies)
    jobs.update(more)
    for key, fn in jobs.items():  # fill the distorted copies before the epochs read them
        if key[0] != "epoch":
            fn()
    times = round_robin(jobs, repeats)
    base = times[epochs[0]["key"]]  # the original uint8 epoch, the reference of every ratio
    for row in distortions + epochs:
        key = row.pop("key")
        data = row.pop("data", None)
        if data is None:
            data = copies[row["config"] + (" fresh" if key[0] == "fresh" else "")]
        row["times_s"] = times[key]
        row["us_per_sample"] = statistics.median(times[key]) / row["samples"] * 1e6
        # Per sample, against the reference epoch of the same round (they ran seconds apart,
        # so a busy spell of the shared machine mostly cancels); median over the rounds.
        row["of_epoch"] = statistics.median(
            (t / row["samples"]) / (t0 / epochs[0]["samples"]) for t, t0 in zip(times[key], base))
        row["nnz"] = float((data != 0).sum(1).mean())
        row["nnz_half_level"] = float((data >= 0.5 * SCALE).sum(1).mean())
        log(f"  {' '.join(key):50s} {row['us_per_sample']:7.2f} µs/sample")
    return distortions, epochs


# -- report ----------------------------------------------------------------------------------------


def spread(times):
    """(max - min) / median of repeated timings: above ~10% another process shared the core."""
    return (max(times) - min(times)) / statistics.median(times)


def fmt(x, digits=2):
    return "-" if x is None else f"{x:.{digits}f}"


def markdown(record):
    info, cfg = record["machine"], record["config"]
    epoch = record["epochs"][0]["us_per_sample"]  # original uint8: what training costs today
    lines = [
        "# Distorting every training sample: cost",
        "",
        f"Measured {record['date'][:16].replace('T', ' ')} on {info['cpu']}, "
        f"{info['cpu_count']} cores ({info.get('usable_cores')} usable; shared with other "
        f"processes, load average {info.get('load_average', '?')}); python {info['python']}, "
        f"numpy {info['numpy']}, numba {info['numba']}. One thread, MNIST training images, "
        f"{cfg['samples']:,} samples per timed pass, median of {cfg['repeats']} repeats. All "
        "timings run in turns, one round after another; each ratio to the epoch is the median "
        "over the rounds of the ratio within a round, which cancels most of the load of other "
        "processes (spread: (max - min) / median of a row's repeats). Quote the ratios.",
        "",
        f"Reference: one epoch of a {'-'.join(map(str, SIZES))} float32 `jitnet.Network` "
        f"(rate {RATE}) on the uint8 images costs **{epoch:.2f} µs/sample**.",
        "",
        "## Distortion per sample",
        "",
        "| config | design | µs/sample | spread | of the epoch | draws µs/sample (Python) "
        "| bank | non-zero inputs (>= ½ grey level) |",
        "| :--- | :--- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in record["distortions"]:
        bank = (f"{row['bank_mb']:.1f} MB, built in {row['bank_build_s']:.2f} s"
                if row["bank_build_s"] is not None else "-")
        lines.append(
            f"| {row['config']} | {row['design']} | {row['us_per_sample']:.2f} | "
            f"{spread(row['times_s']):.0%} | {row['of_epoch']:.0%} | "
            f"{fmt(row['draw_us_per_sample'], 3)} | {bank} | "
            f"{row['nnz']:.0f} ({row['nnz_half_level']:.0f}) |")
    lines += ["", "Configurations: " + "; ".join(
        f"{row['config']} = `{row['distortion']}`" for row in record["distortions"]
        if "fresh" not in row["design"]) + ".", ""]
    lines += [
        "## The epoch on distorted inputs",
        "",
        "| input | non-zero inputs | µs/sample | spread | × original uint8 |",
        "| :--- | ---: | ---: | ---: | ---: |",
    ]
    for row in record["epochs"]:
        lines.append(f"| {row['input']} | {row['nnz']:.0f} | {row['us_per_sample']:.2f} | "
                     f"{spread(row['times_s']):.0%} | "
                     f"{row['of_epoch']:.2f} |")
    lines += ["", "## Summary", ""] + [f"- {line}" for line in record["summary"]] + [
        "", f"Reproduce: `python bench/distort.py{' --quick' if cfg['quick'] else ''}`", ""]
    return "\n".join(lines)


def summary(distortions, epochs):
    """Plain-language lines: the chosen design against the rejected one, and the whole cost."""
    by = {(r["config"], "fresh" in r["design"]): r for r in distortions}
    epoch = epochs[0]["us_per_sample"]
    lines = []
    for name in ("elastic", "both"):
        bank, fresh = by[(name, False)], by[(name, True)]
        # the noise is drawn in NumPy, outside the timed rounds: its ratio uses the median epoch
        fresh_share = fresh["of_epoch"] + fresh["draw_us_per_sample"] / epoch
        lines.append(
            f"{name}: the bank costs {bank['of_epoch']:.0%} of the epoch "
            f"({bank['us_per_sample']:.2f} µs/sample); a fresh field per sample "
            f"{fresh_share:.0%} ({fresh['us_per_sample']:.1f} µs plus "
            f"{fresh['draw_us_per_sample']:.1f} µs of noise drawn in NumPy): "
            f"{fresh_share / bank['of_epoch']:.0f}× the bank.")
    for row in epochs[2:]:
        name = row["input"].split("(")[1].split(")")[0]
        total = by[(name, False)]["of_epoch"] + row["of_epoch"]
        lines.append(
            f"{name}: non-zero inputs {epochs[0]['nnz']:.0f} → {row['nnz']:.0f} "
            f"({row['nnz'] / epochs[0]['nnz'] - 1:+.0%}); the epoch on them costs "
            f"{row['of_epoch']:.2f}× the original, so a distorted epoch "
            f"(distortion + training) costs about {total:.2f}× an undistorted one.")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=60_000, help="samples per timed pass")
    parser.add_argument("--fresh-samples", type=int, default=10_000,
                        help="samples per timed pass of the (slow) fresh-field design")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes (median reported)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 6,000 samples, 3 repeats, results named distort-quick-*")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"),
                        help="folder for the results")
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.fresh_samples, args.repeats = 6_000, 1_000, 3
    train, _ = jitnet.load_mnist()
    X, labels = train.images[: args.samples], train.labels[: args.samples]
    log("compiling / loading kernels ...")
    compile_kernels("float32", np.uint8)
    compile_kernels("float32", np.float32)
    log("validating ...")
    failures = validate(X[:2000])
    if failures:
        for line in failures:
            print("VALIDATION FAILED: " + line)
        return 1
    log("timing ...")
    distortions, epochs = measure(X, labels, args.repeats, min(args.fresh_samples, len(X)))
    record = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine_info(),
        "config": {"samples": len(X), "fresh_samples": args.fresh_samples, "sizes": SIZES,
                   "repeats": args.repeats, "quick": args.quick},
        "distortions": distortions,
        "epochs": epochs,
        "summary": summary(distortions, epochs),
    }
    text = markdown(record)
    print(text)
    stem = "distort-quick" if args.quick else "distort"
    os.makedirs(args.out, exist_ok=True)
    data = (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode()
    for path, content in [(f"{stem}-{record['date'][:10]}.json", data),
                          (f"{stem}-latest.json", data), (f"{stem}-latest.md", text.encode())]:
        atomic_write_bytes(os.path.join(args.out, path), content)
    log(f"wrote {os.path.join(args.out, stem)}-latest.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
