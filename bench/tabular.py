"""Your data's speed: loading a large CSV into the training arrays, and training on dense rows.

1. **Loading.** A numeric CSV of ``--rows`` x ``--cols`` float32 values and an integer label
   column (written once, seeded, to ``--file``). Timed: ``pandas.read_csv`` alone, against
   jitnet's whole path to the training arrays -- ``read_source`` (parse, missing and numeric
   checks, one C-contiguous float array, labels as classes, the file's sha256) then
   ``prepare_data`` (the stratified test split, the hold-out, the fingerprint). The target is
   at most 2x ``pandas.read_csv``.
2. **Training.** One epoch of ``Network.train_epoch`` (float32 network, one thread) on: MNIST's
   uint8 images (about 19% of the pixels non-zero); dense float32 rows of the same width; and
   dense float32 rows of ``--cols`` features. Reported per multiply-add actually performed: the
   first layer visits only an input's non-zero values (the forward sum and the update each
   ``nnz x n1``), later layers every weight (forward, backward and update).

Validation first: jitnet's features must equal pandas' values exactly and its labels must be
the classes of pandas' label column; on a mismatch the script says so and exits with status 1
before timing anything.

    python bench/tabular.py                       # 1,000,000 x 50: about a minute, 2 GB of memory
    python bench/tabular.py --rows 100000 --quick
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import jitnet  # noqa: E402
from jitnet.data.loading import read_source  # noqa: E402
from jitnet.training import TrainConfig, prepare_data  # noqa: E402


def write_table(path, rows, cols, seed=0):
    """A CSV of ``rows`` float32 rows (6 significant digits) and a label 0..9, written once."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        f.write(",".join([f"f{j}" for j in range(cols)] + ["label"]) + "\n")
        for start in range(0, rows, 50_000):
            n = min(50_000, rows - start)
            X = rng.standard_normal((n, cols)).astype(np.float32)
            y = rng.integers(0, 10, n)
            f.write("\n".join(",".join(f"{v:.6g}" for v in row) + f",{label}"
                              for row, label in zip(X.tolist(), y.tolist())) + "\n")


def best_of(repeats, fn):
    """(the least seconds of ``repeats`` calls, the last result)."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def validate(path):
    import pandas as pd

    frame = pd.read_csv(path)
    loaded = read_source(path)
    expected = frame.drop(columns="label").to_numpy(dtype=np.float64)
    problems = []
    if not np.array_equal(loaded.train.images, expected):
        problems.append("features differ from pandas' values")
    labels = frame["label"].to_numpy()
    names = np.array(loaded.train.class_names)
    if not np.array_equal(names[loaded.train.labels], labels.astype(str)):
        problems.append("labels are not the classes of pandas' label column")
    return problems


def loading(path, repeats):
    import pandas as pd

    alone, _ = best_of(repeats, lambda: pd.read_csv(path))
    config = TrainConfig(data=str(path))

    def jitnet_path():
        loaded = read_source(path, dtype=np.float64)
        return prepare_data(config, loaded.train, loaded.test, source=loaded.info)

    ours, splits = best_of(repeats, jitnet_path)
    return alone, ours, splits


def madds(sizes, nnz):
    """Multiply-adds of one training step: first layer forward and update over the non-zero
    inputs, later layers forward, backward (error terms) and update."""
    later = sum(a * b for a, b in zip(sizes[1:-1], sizes[2:]))
    return 2 * nnz * sizes[1] + 3 * later


def training(name, X, labels, hidden, repeats):
    net = jitnet.Network([X.shape[1], hidden, 10], dtype="float32", seed=0)
    scale = None if X.dtype == np.uint8 else 1.0
    targets = net.targets(labels)
    net.train_epoch(X[:100], targets[:100], 0.01, scale=scale)  # compile outside the timing
    seconds, _ = best_of(repeats, lambda: net.train_epoch(X, targets, 0.01, scale=scale))
    nnz = float(np.count_nonzero(X)) / X.shape[0]
    per_sample = madds(net.sizes, nnz)
    return (name, f"{X.shape[1]}-{hidden}-10", X.dtype.name, 100 * nnz / X.shape[1],
            1e6 * seconds / len(X), per_sample, 1e9 * seconds / (len(X) * per_sample))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=50)
    parser.add_argument("--file", type=Path, default=None,
                        help="the CSV (written when missing); default in the temp folder")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--samples", type=int, default=20_000, help="training samples per row")
    parser.add_argument("--quick", action="store_true", help="one repeat, 5,000 samples")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.samples = 1, 5_000
    import numba

    numba.set_num_threads(1)
    path = args.file or Path(os.environ.get("TMPDIR", "/tmp")) / \
        f"jitnet-bench-{args.rows}x{args.cols}.csv"
    if not path.exists():
        print(f"writing {path} ...", file=sys.stderr)
        write_table(path, args.rows, args.cols)
    problems = validate(path)
    if problems:
        print("validation failed: " + "; ".join(problems))
        return 1
    print(f"validated: jitnet's arrays of {path.name} equal pandas' values")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} "
          f"({os.cpu_count()} cores)")
    alone, ours, splits = loading(path, args.repeats)
    size = path.stat().st_size / 1e6
    print(f"\n{'loading ' + path.name:<44} {'seconds':>8}")
    print(f"{'pandas.read_csv alone':<44} {alone:8.2f}")
    print(f"{'jitnet: read_source + prepare_data':<44} {ours:8.2f}   {ours / alone:.2f}x pandas "
          f"({size:,.0f} MB, {len(splits.train) + len(splits.val) + len(splits.test):,} rows; "
          f"target <= 2x: {'met' if ours <= 2 * alone else 'MISSED'})")

    mnist, _ = jitnet.load_mnist()
    n = args.samples
    rng = np.random.default_rng(1)
    dense = rng.standard_normal((n, 784)).astype(np.float32)
    table = splits.train.images[:n].astype(np.float32)
    rows = [training("MNIST images", mnist.images[:n], mnist.labels[:n], args.hidden,
                     args.repeats),
            training("dense rows, MNIST's width", dense, mnist.labels[:n], args.hidden,
                     args.repeats),
            training(f"dense rows of {path.name}", table, splits.train.labels[:n] % 10,
                     args.hidden, args.repeats)]
    print(f"\n{'training, one epoch, float32':<36} {'network':>12} {'input':>8} {'nonzero':>8} "
          f"{'us/sample':>10} {'madds':>9} {'ns/madd':>8}")
    for name, sizes, dtype, density, us, per, ns in rows:
        print(f"{name:<36} {sizes:>12} {dtype:>8} {density:7.1f}% {us:10.2f} {per:9,.0f} "
              f"{ns:8.3f}")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
