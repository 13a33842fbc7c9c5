"""SHA-1 digests of weights trained through the public API, to prove a refactor left them alone.

Trains small networks on the first MNIST training images for every activation x loss, momentum
on and off, distortions on and off, one and two hidden layers, both dtypes, and ``threads=2``
where the machine has two cores, and prints one digest per training. Run it before and after a
change on the same machine and compare (``--save`` then ``--check``): any difference is a
change of the arithmetic. Digests differ between machines (AMD and Intel round differently
inside compiled loops); compare only runs made on one machine.

    python bench/digests.py --save before.txt     # about 20 s with the kernels cached
    python bench/digests.py --check before.txt    # exit status 1 on any difference
"""

import argparse
import hashlib
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import jitnet  # noqa: E402

ACTIVATIONS = ("sigmoid", "tanh", "scaled_tanh", "relu")
LOSSES = ("squared", "cross_entropy")


def digest(array):
    return hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def cases():
    """(name, network keywords, train keywords) of every training compared."""
    warp = jitnet.Distortion(elastic_sigma=4, elastic_alpha=34, rotate=15, scale_x=0.15,
                             scale_y=0.15, shear=15)
    for hidden in ((50,), (40, 20)):
        for activation in ACTIVATIONS:
            for loss in LOSSES:
                for dtype in ("float64", "float32"):
                    net = dict(sizes=[784, *hidden, 10], activation=activation, loss=loss,
                               dtype=dtype, seed=0)
                    tag = f"{'-'.join(map(str, hidden)):5s} {activation:11s} {loss:13s} {dtype}"
                    yield f"{tag} plain", net, dict(momentum=0.0)
                    yield f"{tag} momentum", net, dict(momentum=0.9)
                    yield f"{tag} distorted", net, dict(distort=warp, image_shape=(28, 28))
                    yield f"{tag} both", net, dict(momentum=0.5, distort=warp,
                                                   image_shape=(28, 28))
                    if len(os.sched_getaffinity(0)) >= 2:
                        yield f"{tag} threads=2", net, dict(threads=2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--save", type=Path, help="write the digests to this file")
    group.add_argument("--check", type=Path, help="compare with the digests in this file")
    parser.add_argument("--samples", type=int, default=600, help="training images per run")
    args = parser.parse_args()
    train, test = jitnet.load_mnist()
    X, y = train.images[: args.samples], train.labels[: args.samples]
    lines = []
    for name, net_kwargs, train_kwargs in cases():
        net = jitnet.Network(**net_kwargs)
        net.train(X, y, rate=0.02, epochs=2, shuffle=True, seed=1, **train_kwargs)
        lines.append(f"{name:48s} {digest(net.params)} {digest(net.predict(test.images[:200]))}")
        print(lines[-1], flush=True)
    if args.save:
        args.save.write_text("\n".join(lines) + "\n")
    if args.check:
        expected = args.check.read_text().splitlines()
        differ = [(a, b) for a, b in zip(expected, lines) if a != b]
        if differ or len(expected) != len(lines):
            for a, b in differ:
                print(f"differs:\n  before {a}\n  now    {b}")
            sys.exit(f"{len(differ)} of {len(lines)} digests differ")
        print(f"all {len(lines)} digests equal")


if __name__ == "__main__":
    main()
