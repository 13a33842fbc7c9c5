"""Compiling the kernels ahead of use: a first run compiles them (several seconds per dtype),
later processes load them from Numba's on-disk cache."""

import time

import numpy as np

from jitnet.engine.network import Network


def compile_kernels(dtype="float64", x_dtype=np.uint8, activation="sigmoid"):
    """Compile (or load from Numba's cache) the kernels of training and inference for one
    combination of types, so that later calls and timings do not include compilation.

    The same compiled kernels serve every activation, loss and momentum; the distorted and the
    multi-threaded epochs compile on their first use.

    Parameters
    ----------
    dtype : {'float64', 'float32'}
        The networks' precision.
    x_dtype : numpy dtype
        The inputs' type: uint8 images (default) or float32/float64 arrays.
    activation : str
        The hidden units of the small network trained to trigger compilation.

    Returns
    -------
    float
        Seconds spent: about 0.3 s from Numba's cache, several seconds on a first run.
    """
    start = time.perf_counter()
    net = Network([4, 3, 2], activation=activation, dtype=dtype, seed=0)
    X = np.zeros((2, 4), x_dtype)
    X[:, :2] = 1
    labels = np.array([0, 1])
    net.train_epoch(X, labels, 0.1)
    net.train_epoch(X, net.targets(labels), 0.1, progress=lambda n: None, momentum=0.5)
    net.predict(X)
    net.classify(X)
    net.evaluate(X, labels)
    net.gradient(X[0], np.array([0.9, 0.1]))
    return time.perf_counter() - start
