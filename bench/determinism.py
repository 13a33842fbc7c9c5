"""Do freshly compiled kernels and kernels loaded from Numba's cache train the same weights?

Numba compiles a kernel in the process that first calls it and also writes a copy to its on-disk
cache; later processes load that copy. With reassociation allowed (fastmath), LLVM may order a
sum differently in the two builds, and then the weights after an epoch depend on whether the
cache was warm. This script runs the same training twice in fresh processes sharing a new,
empty cache directory (the first compiles, the second loads) and compares SHA-1 digests of the
parameters, for every activation x loss, momentum on and off, distortions on and off, both
dtypes. Exit status 1 on any difference.

    python bench/determinism.py            # about 30 s on a 2-core Xeon: mostly compiling
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import hashlib
import numpy as np
import jitnet

train, test = jitnet.load_mnist()
X, y = train.images[:1500], train.labels[:1500]
warp = jitnet.Distortion(elastic_sigma=4, elastic_alpha=34, rotate=15, scale_x=0.15,
                         scale_y=0.15, shear=15)
digest = lambda a: hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest()[:12]
for activation, loss, momentum in [("sigmoid", "squared", 0.0), ("relu", "cross_entropy", 0.9),
                                   ("scaled_tanh", "squared", 0.5), ("tanh", "cross_entropy", 0.0)]:
    for dtype in ("float64", "float32"):
        net = jitnet.Network([784, 50, 20, 10], activation=activation, loss=loss, dtype=dtype,
                             seed=0)
        net.train(X, y, rate=0.01, epochs=1, momentum=momentum, shuffle=True, seed=1,
                  distort=warp, image_shape=(28, 28))
        distorted = digest(net.params)
        net.train(X, y, rate=0.01, epochs=1, momentum=momentum, shuffle=True, seed=1)
        print(f"{activation:12s} {loss:14s} momentum {momentum:3.1f} {dtype}  "
              f"distorted {distorted}  plain {digest(net.params)}  "
              f"outputs {digest(net.predict(test.images[:500]))}")
"""


def run(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"Error: the training child failed: {done.stderr.strip().splitlines()[-1]}")
    return done.stdout.splitlines()


def main():
    with tempfile.TemporaryDirectory(prefix="jitnet-numba-cache-") as cache_dir:
        compiled = run(cache_dir)
        cached = run(cache_dir)
    same = compiled == cached
    for a, b in zip(compiled, cached):
        print(("same     " if a == b else "DIFFERENT") + "  " + a)
        if a != b:
            print("          " + b)
    print("fresh and cached kernels agree bitwise" if same else "MISMATCH")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
