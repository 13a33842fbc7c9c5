"""The JIT engine: a thin Python ``Network`` over one flat parameter buffer and the kernels."""

import os
import time
import zipfile

import numpy as np

from jitnet import kernels
from jitnet._atomic import atomic_save_npz
from jitnet._checks import check_sizes, check_weight_pairs
from jitnet.datasets import one_hot_targets

ACTIVATIONS = {"sigmoid": kernels.SIGMOID, "tanh": kernels.TANH}
DTYPES = ("float64", "float32")
FORMAT = "jitnet-model"
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model or checkpoint file that cannot be used; the message names the file."""


def _check_dtype(dtype):
    name = np.dtype(dtype).name if dtype is not None else None
    if name not in DTYPES:
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return np.dtype(name)


def _check_rate(rate):
    rate = float(rate)
    if not (np.isfinite(rate) and rate > 0):
        raise ValueError(f"rate must be a positive finite number, got {rate}")
    return rate


def _aligned_zeros(n, dtype, alignment=64):
    """A zeroed (n,) array whose first element sits on an ``alignment``-byte boundary."""
    dtype = np.dtype(dtype)
    raw = np.zeros(n * dtype.itemsize + alignment, np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start : start + n * dtype.itemsize].view(dtype)


class Network:
    """A fully connected network trained one sample at a time by the tutorial's SGD.

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, inputs first: ``[784, 300, 10]`` or ``[784, 500, 150, 10]``.
    activation : {'sigmoid', 'tanh'}
        Unit non-linearity of every layer (the tutorial uses the sigmoid).
    dtype : {'float64', 'float32'}
        Precision of weights and arithmetic. float64 agrees with the references to 1e-10;
        float32 is about twice as fast.
    seed : int or None
        Seed of ``np.random.default_rng`` for the initial weights, uniform(-0.1, 0.1).

    Attributes
    ----------
    params : ndarray, (P,)
        Every weight and bias, in one contiguous, cache-line aligned buffer the kernels update
        in place (the first layer's rows are padded to 64 bytes; the padding stays zero).
    weights : list of ndarray
        ``weights[l]``: (n_out, n_in) views into ``params`` (writing them changes the network).
    biases : list of ndarray
        ``biases[l]``: (n_out,) views into ``params``.
    """

    def __init__(self, sizes, activation="sigmoid", dtype="float64", seed=None):
        self._configure(sizes, activation, dtype)
        rng = np.random.default_rng(seed)
        for W, b in zip(self.weights, self.biases):
            W[...] = rng.uniform(-0.1, 0.1, size=W.shape)
            b[...] = rng.uniform(-0.1, 0.1, size=b.shape)

    @classmethod
    def _zeros(cls, sizes, activation="sigmoid", dtype="float64"):
        """A network with all parameters zero, for callers that load their own."""
        net = cls.__new__(cls)
        net._configure(sizes, activation, dtype)
        return net

    def _configure(self, sizes, activation, dtype):
        self.sizes = check_sizes(sizes)
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}"
            )
        self.activation = activation
        self.dtype = _check_dtype(dtype)
        self._build_layout()

    # -- layout ---------------------------------------------------------------------------

    def _build_layout(self):
        sizes = self.sizes
        n_layers = len(sizes) - 1
        # The first layer is stored transposed, one row per input, each row padded to a
        # multiple of 64 bytes so that every row starts on a cache line (SIMD loads and
        # stores then never straddle two lines).
        per_line = 64 // self.dtype.itemsize
        stride0 = -(-sizes[1] // per_line) * per_line
        w_off = np.zeros(n_layers, np.int64)
        b_off = np.zeros(n_layers, np.int64)
        offset = 0
        for l in range(n_layers):
            w_off[l] = offset
            offset += sizes[l] * (stride0 if l == 0 else sizes[l + 1])
            b_off[l] = offset
            offset += sizes[l + 1]
        a_off = np.zeros(n_layers + 1, np.int64)
        a_off[1:] = np.cumsum(sizes[1:]) - np.asarray(sizes[1:])
        self.params = _aligned_zeros(offset, self.dtype)
        self.weights, self.biases = [], []
        for l in range(n_layers):
            n_in, n_out = sizes[l], sizes[l + 1]
            if l == 0:
                block = self.params[: n_in * stride0].reshape(n_in, stride0)
                W = block[:, :n_out].T
            else:
                W = self.params[w_off[l] : w_off[l] + n_in * n_out].reshape(n_out, n_in)
            self.weights.append(W)
            self.biases.append(self.params[b_off[l] : b_off[l] + n_out])
        self._sizes = np.asarray(sizes, np.int64)
        self._w_off, self._b_off, self._a_off, self._stride0 = w_off, b_off, a_off, stride0
        # Scratch, allocated once: activations and error terms of layers 1..L, gathered inputs.
        self._act = _aligned_zeros(sum(sizes[1:]), self.dtype)
        self._delta = _aligned_zeros(sum(sizes[1:]), self.dtype)
        self._bits = np.zeros(max(sizes[1:]), np.int64)  # scratch of the vectorised exp
        self._nz_idx = np.zeros(sizes[0], np.int64)
        self._nz_val = np.zeros(sizes[0], self.dtype)

    def _core(self):
        """The leading kernel arguments shared by every kernel call."""
        return (
            self.params, self._sizes, self._w_off, self._b_off, self._a_off, self._stride0,
            self._act, self._bits,
        )

    @property
    def n_inputs(self):
        return self.sizes[0]

    @property
    def n_outputs(self):
        return self.sizes[-1]

    @property
    def n_params(self):
        return sum(W.size + b.size for W, b in zip(self.weights, self.biases))

    def __repr__(self):
        return (
            f"Network(sizes={self.sizes}, activation={self.activation!r}, "
            f"dtype={self.dtype.name})"
        )

    # -- parameters -----------------------------------------------------------------------

    def get_weights(self):
        """Copies of every layer's parameters: a list of ``(W (n_out, n_in), b (n_out,))``."""
        return [(W.copy(), b.copy()) for W, b in zip(self.weights, self.biases)]

    def set_weights(self, pairs):
        """Load a list of ``(W, b)`` pairs, one per layer (as from any engine's get_weights)."""
        checked = check_weight_pairs(self.sizes, pairs)
        for (W, b), W_self, b_self in zip(checked, self.weights, self.biases):
            W_self[...] = W
            b_self[...] = b

    def copy(self):
        """An independent network with the same configuration and parameters."""
        other = Network._zeros(self.sizes, self.activation, self.dtype)
        other.params[...] = self.params
        return other

    # -- input checks, done once per call at the boundary ---------------------------------

    def _inputs(self, X, name="X"):
        """X as a C-contiguous (N, n_in) array the kernels take, and whether it was one sample."""
        X = np.asarray(X)
        single = X.ndim == 1
        if single:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise ValueError(
                f"{name} must have shape (N, {self.n_inputs}) or ({self.n_inputs},), got {X.shape}"
            )
        if X.dtype == np.uint8:
            pass
        elif X.dtype in (np.float32, np.float64):
            if not np.isfinite(X).all():
                raise ValueError(f"{name} contains NaN or inf")
        elif X.dtype.kind in "biuf":
            X = X.astype(self.dtype)
            if not np.isfinite(X).all():
                raise ValueError(f"{name} contains NaN or inf")
        else:
            raise ValueError(f"{name} must be numeric, got dtype {X.dtype}")
        return np.ascontiguousarray(X), single

    def _scale(self, X, scale):
        """The factor applied to inputs inside the kernels: 1/255 for uint8 images by default."""
        if scale is None:
            return 1.0 / 255.0 if X.dtype == np.uint8 else 1.0
        scale = float(scale)
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive finite number, got {scale}")
        return scale

    def _labels(self, labels, n, name="labels"):
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.shape[0] != n:
            raise ValueError(f"{name} must have shape ({n},), got {labels.shape}")
        if labels.dtype.kind not in "iu":
            if labels.dtype.kind == "f" and np.all(labels == np.round(labels)):
                labels = labels.astype(np.int64)
            else:
                raise ValueError(f"{name} must be integer class labels, got dtype {labels.dtype}")
        if n and (labels.min() < 0 or labels.max() >= self.n_outputs):
            raise ValueError(
                f"{name}: class labels must lie in [0, {self.n_outputs - 1}], "
                f"got values from {labels.min()} to {labels.max()}"
            )
        return np.ascontiguousarray(labels, np.int64)

    def _targets(self, targets, n):
        """(N, n_out) targets in the network's dtype; (N,) labels become 0.9/0.1 vectors."""
        targets = np.asarray(targets)
        if targets.ndim == 1:
            return one_hot_targets(self._labels(targets, n, "targets"), self.n_outputs, self.dtype)
        if targets.shape != (n, self.n_outputs):
            raise ValueError(
                f"targets must have shape ({n}, {self.n_outputs}) or ({n},) labels, "
                f"got {targets.shape}"
            )
        if targets.dtype.kind not in "biuf":
            raise ValueError(f"targets must be numeric, got dtype {targets.dtype}")
        T = np.ascontiguousarray(targets, self.dtype)
        if not np.isfinite(T).all():
            raise ValueError("targets contain NaN or inf")
        return T

    # -- training -------------------------------------------------------------------------

    def train_epoch(self, X, targets, rate=0.3, order=None, scale=None, progress=None):
        """One pass of per-sample SGD (w += rate * delta * x) over ``X`` in ``order``.

        Parameters
        ----------
        X : ndarray, (N, n_in)
            float32/float64 inputs, or uint8 images scaled inside the kernel (never copied).
        targets : ndarray, (N, n_out) or (N,)
            Target vectors, or integer labels that become 0.9 (true class) / 0.1 targets.
        rate : float
            Learning rate eta > 0.
        order : ndarray of int, (M,), optional
            Sample indices in the order to visit them; default file order.
        scale : float, optional
            Input factor; default 1/255 for uint8 and 1 for float inputs.
        progress : callable, optional
            Called as ``progress(n_done)`` between chunks of samples (plain Python, so a
            Ctrl-C lands there); without it the epoch is one compiled call.

        Returns
        -------
        float
            Mean of E = 1/2 sum (t - y)^2 over the samples, each measured before its update.
        """
        X, _ = self._inputs(X)
        n = X.shape[0]
        T = self._targets(targets, n)
        eta = self.dtype.type(_check_rate(rate))
        scale = self._scale(X, scale)
        if order is None:
            order = np.arange(n, dtype=np.int64)
        else:
            order = np.asarray(order)
            if order.ndim != 1 or order.dtype.kind not in "iu":
                raise ValueError("order must be a 1-D array of integer sample indices")
            if order.size and (order.min() < 0 or order.max() >= n):
                raise ValueError(f"order holds indices outside [0, {n - 1}]")
            order = np.ascontiguousarray(order, np.int64)
        return self._run_epoch(X, T, eta, scale, order, progress)

    def _run_epoch(self, X, T, eta, scale, order, progress=None):
        """The compiled epoch on inputs already checked and converted; returns the mean loss."""
        if order.size == 0:
            return 0.0
        kind = ACTIVATIONS[self.activation]
        args = self._core() + (self._delta, self._nz_idx, self._nz_val, X, T)
        if progress is None:
            total = kernels._train_epoch(*args, order, scale, eta, kind)
        else:
            total = 0.0
            chunk = max(1000, order.size // 100)
            for start in range(0, order.size, chunk):
                part = order[start : start + chunk]
                total += kernels._train_epoch(*args, part, scale, eta, kind)
                progress(start + part.size)
        return total / order.size

    def train(self, X, targets, rate=0.3, epochs=1, shuffle=False, seed=None, scale=None):
        """Run ``epochs`` passes of per-sample SGD; returns the mean loss of each epoch.

        Inputs are checked once; each epoch is one compiled call (see :meth:`train_epoch`). With
        ``shuffle=True`` each epoch visits the samples in a fresh permutation drawn from
        ``np.random.default_rng(seed)``; otherwise in file order.
        """
        epochs = int(epochs)
        if epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {epochs}")
        X, _ = self._inputs(X)
        n = X.shape[0]
        T = self._targets(targets, n)
        eta = self.dtype.type(_check_rate(rate))
        scale = self._scale(X, scale)
        rng = np.random.default_rng(seed)
        in_file_order = np.arange(n, dtype=np.int64)
        return [
            self._run_epoch(X, T, eta, scale, rng.permutation(n) if shuffle else in_file_order)
            for _ in range(epochs)
        ]

    # -- inference ------------------------------------------------------------------------

    def predict(self, X, scale=None):
        """Outputs for one sample (n_in,) -> (n_out,) or a batch (N, n_in) -> (N, n_out)."""
        X, single = self._inputs(X)
        out = np.empty((X.shape[0], self.n_outputs), self.dtype)
        kernels._predict(
            *self._core(), self._nz_idx, self._nz_val, X, self._scale(X, scale),
            ACTIVATIONS[self.activation], out,
        )
        return out[0] if single else out

    def classify(self, X, scale=None):
        """Index of the largest output for each sample: (N, n_in) -> (N,) int64."""
        X, single = self._inputs(X)
        out = np.empty(X.shape[0], np.int64)
        kernels._classify(
            *self._core(), self._nz_idx, self._nz_val, X, self._scale(X, scale),
            ACTIVATIONS[self.activation], out,
        )
        return out[0] if single else out

    def evaluate(self, X, labels, scale=None):
        """Error rate in [0, 1]: the fraction of samples whose largest output is not the label."""
        X, _ = self._inputs(X)
        labels = self._labels(labels, X.shape[0])
        if X.shape[0] == 0:
            raise ValueError("cannot evaluate on zero samples")
        errors = kernels._evaluate(
            *self._core(), self._nz_idx, self._nz_val, X, labels, self._scale(X, scale),
            ACTIVATIONS[self.activation],
        )
        return errors / X.shape[0]

    def gradient(self, x, t, scale=None):
        """dE/dW and dE/db of E = 1/2 sum (t - y)^2 for one sample, per layer.

        Returns
        -------
        list of (ndarray (n_out, n_in), ndarray (n_out,))
            The true gradient (positive sign): SGD moves each weight by ``-rate * dW``.
        """
        X, single = self._inputs(x, "x")
        if not single:
            raise ValueError(f"x must be one sample of shape ({self.n_inputs},)")
        t = np.asarray(t)
        if t.ndim == 0:
            T = self._targets(t.reshape(1), 1)
        else:
            T = self._targets(t.reshape(1, -1), 1)
        scale = self._scale(X, scale)
        kernels._backprop(
            *self._core(), self._delta, X[0], T[0], scale, self._nz_idx, self._nz_val,
            ACTIVATIONS[self.activation],
        )
        grads = []
        a_prev = X[0].astype(self.dtype) * self.dtype.type(scale)
        for l in range(len(self.sizes) - 1):
            lo, hi = self._a_off[l + 1], self._a_off[l + 1] + self.sizes[l + 1]
            delta = self._delta[lo:hi]
            grads.append((-np.outer(delta, a_prev), -delta.copy()))
            a_prev = self._act[lo:hi].copy()
        return grads

    # -- files ----------------------------------------------------------------------------

    def to_arrays(self):
        """Everything that defines the model, as a dict of arrays (the content of a model file)."""
        arrays = {
            "format": np.array(FORMAT),
            "format_version": np.array(FORMAT_VERSION),
            "sizes": np.asarray(self.sizes, np.int64),
            "activation": np.array(self.activation),
            "dtype": np.array(self.dtype.name),
        }
        for l, (W, b) in enumerate(zip(self.weights, self.biases)):
            arrays[f"W{l}"] = np.array(W, order="C")  # copies, never views of params
            arrays[f"b{l}"] = b.copy()
        return arrays

    @classmethod
    def from_arrays(cls, arrays, source="<arrays>"):
        """Rebuild a network from :meth:`to_arrays` output; ModelFileError names ``source``."""

        def fail(problem):
            raise ModelFileError(f"{source}: {problem}")

        try:
            if "format" not in arrays or str(arrays["format"][()]) != FORMAT:
                fail("not a jitnet model (no 'format' entry saying jitnet-model)")
            version = int(arrays["format_version"][()])
            if version != FORMAT_VERSION:
                fail(f"model format version {version}, this jitnet reads {FORMAT_VERSION}")
            sizes = [int(n) for n in np.asarray(arrays["sizes"]).ravel()]
            activation = str(arrays["activation"][()])
            dtype = str(arrays["dtype"][()])
        except KeyError as missing:
            fail(f"not a complete jitnet model (missing {missing})")
        except (ValueError, TypeError, IndexError) as error:
            fail(f"not a valid jitnet model ({error})")
        try:
            net = cls._zeros(sizes, activation, dtype)
        except ValueError as error:
            fail(f"invalid model configuration ({error})")
        pairs = []
        for l in range(len(sizes) - 1):
            if f"W{l}" not in arrays or f"b{l}" not in arrays:
                fail(f"not a complete jitnet model (missing layer {l} parameters)")
            pairs.append((arrays[f"W{l}"], arrays[f"b{l}"]))
        try:
            net.set_weights(pairs)
        except ValueError as error:
            fail(f"parameters do not fit the model ({error})")
        return net

    def save(self, path):
        """Write the model to one ``.npz`` file, atomically (old file intact if interrupted)."""
        atomic_save_npz(path, self.to_arrays())

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`; a missing, truncated or foreign file raises
        ModelFileError naming it."""
        path = os.fspath(path)
        if not os.path.exists(path):
            raise ModelFileError(f"{path}: no such file")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
            raise ModelFileError(f"{path}: not a readable jitnet model ({error})") from None
        return cls.from_arrays(arrays, source=path)


def compile_kernels(dtype="float64", x_dtype=np.uint8, activation="sigmoid"):
    """Compile (or load from Numba's cache) every kernel for one dtype combination.

    Returns
    -------
    float
        Seconds spent; call it before timing so that compilation is reported on its own.
    """
    start = time.perf_counter()
    net = Network([4, 3, 2], activation=activation, dtype=dtype, seed=0)
    X = np.zeros((2, 4), x_dtype)
    X[:, :2] = 1
    labels = np.array([0, 1])
    net.train_epoch(X, labels, 0.1)
    net.train_epoch(X, net._targets(labels, 2), 0.1, progress=lambda n: None)
    net.predict(X)
    net.classify(X)
    net.evaluate(X, labels)
    net.gradient(X[0], np.array([0.9, 0.1]))
    return time.perf_counter() - start
