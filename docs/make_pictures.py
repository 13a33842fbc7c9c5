"""Regenerate the example pictures in docs/img/ from a small, quickly trained network.

    PYTHONPATH=. python docs/make_pictures.py [--out docs/img]

Trains 784-100-10 (seed 0, rate 0.3, shuffled) for a few epochs on the shipped MNIST (50,000
training images, the last 10,000 held out for validation), then draws every picture of
``jitnet.plots.figures``. About half a minute on one core, plus the kernels' first compilation.
"""

import argparse
import time
from pathlib import Path

import numpy as np

import jitnet
from jitnet.plots import figures as plots
from jitnet.data.images import probabilities
from jitnet.evaluation.metrics import confusion_matrix


def train_run(train, val, test, hidden, rate, epochs, seed=0, limit=None):
    """A small training run; returns (network, per-epoch history)."""
    X, y = train.images[:limit], train.labels[:limit]
    net = jitnet.Network([784, *hidden, 10], seed=seed)
    rng = np.random.default_rng(seed)
    history = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        loss = net.train_epoch(X, y, rate=rate, order=rng.permutation(len(y)))
        seconds = time.perf_counter() - start
        history.append({
            "epoch": epoch, "loss": loss, "val_error": net.evaluate(val.images, val.labels),
            "test_error": net.evaluate(test.images, test.labels) if epoch == epochs else None,
            "rate": rate, "seconds": seconds,
        })
    return net, history


def distortions(image):
    """The digit as training sees it with --distort: jitnet's own compiled distortions, each
    a fresh draw (seeded), with simard2003's elastic and ciresan2010's affine settings."""
    import jitnet

    kinds = [
        ("elastic", jitnet.Distortion(elastic_sigma=4, elastic_alpha=34)),
        ("affine", jitnet.Distortion(rotate=15, scale_x=0.15, scale_y=0.15, shear=15)),
        ("both", jitnet.Distortion(elastic_sigma=4, elastic_alpha=34, rotate=15, scale_x=0.15,
                                   scale_y=0.15, shear=15)),
    ]
    out, labels = [], []
    for name, distortion in kinds:
        copies = jitnet.distort(np.repeat(image[None], 2, axis=0), distortion, seed=1)
        for k, copy in enumerate(copies):
            out.append(np.clip(copy * 255, 0, 255).astype(np.uint8))
            labels.append(f"{name}, draw {k + 1}")
    return np.stack(out), labels


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "img")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    out = args.out
    train_all, test = jitnet.load_mnist()
    train, val = train_all.split(10000)  # the last 10,000 held out, as `jitnet train` does

    net, history = train_run(train, val, test, [100], 0.3, args.epochs)
    setting = f"784-100-10, rate 0.3, seed 0, {len(train):,} training images"
    plots.learning_curve(history, out / "learning_curve.png", title=setting)

    outputs = net.predict(test.images)
    predicted = outputs.argmax(axis=1)
    matrix = confusion_matrix(test.labels, predicted, 10)
    plots.confusion_matrix_plot(matrix, out / "confusion_matrix.png",
                                title=f"784-100-10 after {args.epochs} epochs, MNIST test set")
    confidence = probabilities(outputs).max(axis=1)
    plots.mistakes_gallery(test.images, test.labels, predicted, confidence,
                           out / "mistakes.png", n=24, title="784-100-10, MNIST test set")

    distorted, labels = distortions(test.images[0].reshape(28, 28))
    plots.distortion_grid(test.images[0].reshape(28, 28), distorted, out / "distortions.png",
                          labels=labels, columns=7,
                          title="a test digit and distortions of it, as --distort trains on them")

    runs = [(f"rate {rate}", train_run(train, val, test, [100], rate, args.epochs)[1])
            for rate in (0.05, 0.3, 2.0)]
    plots.compare_curves(runs, out / "compare.png",
                         title="784-100-10, seed 0: validation error by learning rate")

    results = []
    for rate in (0.03, 0.1, 0.3, 1.0, 3.0):
        for hidden in (30, 100):
            _, h = train_run(train, val, test, [hidden], rate, 2, limit=10000)
            results.append({"rate": rate, "hidden": hidden, "val_error": h[-1]["val_error"]})
    plots.sweep_plot(results, ["rate", "hidden"], out / "sweep.png",
                     title="784-H-10, 2 epochs on 10,000 images")
    for png in sorted(out.glob("*.png")):
        print(f"{png}  {png.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
