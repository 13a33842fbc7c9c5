"""The JIT engine: a thin Python ``Network`` over one flat parameter buffer and the kernels."""

import functools
import os
import time
import zipfile

import numpy as np

from jitnet import kernels, parallel
from jitnet._atomic import atomic_save_npz
from jitnet._checks import (
    check_count,
    check_inputs,
    check_labels,
    check_order,
    check_positive,
    check_seed,
    check_sizes,
    check_target_rows,
    check_weight_pairs,
    input_scale,
)
from jitnet.datasets import one_hot_targets

ACTIVATIONS = {"sigmoid": kernels.SIGMOID, "tanh": kernels.TANH}
DTYPES = ("float64", "float32")
FORMAT = "jitnet-model"
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model or checkpoint file that cannot be used; the message names the file."""


class TrainingDiverged(ValueError):
    """The loss or the parameters stopped being finite during an epoch (the rate is too large)."""


def _check_dtype(dtype):
    try:
        name = np.dtype(dtype).name if dtype is not None else None
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return np.dtype(name)


def _aligned_zeros(n, dtype, alignment=64):
    """A zeroed (n,) array whose first element sits on an ``alignment``-byte boundary."""
    dtype = np.dtype(dtype)
    raw = np.zeros(n * dtype.itemsize + alignment, np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start : start + n * dtype.itemsize].view(dtype)


def _frozen(values):
    """A read-only int64 array (the layout the kernels index with: nobody may change it)."""
    array = np.array(values, np.int64)
    array.flags.writeable = False
    return array


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
    sizes : list of int
        A copy of the layer sizes (the configuration is fixed once built).
    params : ndarray, (P,)
        Every weight and bias, in one contiguous, cache-line aligned buffer the kernels update
        in place (the first layer's rows are padded to 64 bytes; the padding stays zero).
    weights : tuple of ndarray
        ``weights[l]``: (n_out, n_in) views into ``params`` (writing them changes the network).
    biases : tuple of ndarray
        ``biases[l]``: (n_out,) views into ``params``.

    Notes
    -----
    Inference (``predict``, ``classify``, ``evaluate``, ``gradient``) may run on one network from
    several threads at once: the kernels release the GIL and every call works in its own
    scratch buffers. Training changes ``params`` in place: do not train one network from two
    threads, or train it while another thread uses it; to train it on several cores, pass
    ``threads=N`` to :meth:`train` or :meth:`train_epoch` (:mod:`jitnet.parallel`).
    """

    def __init__(self, sizes, activation="sigmoid", dtype="float64", seed=None):
        self._configure(sizes, activation, dtype)
        rng = np.random.default_rng(check_seed(seed))
        for W, b in zip(self.weights, self.biases):
            W[...] = rng.uniform(-0.1, 0.1, size=W.shape)
            b[...] = rng.uniform(-0.1, 0.1, size=b.shape)

    @classmethod
    def _unfilled(cls, sizes, activation="sigmoid", dtype="float64"):
        """A network with all parameters zero, for callers that load their own."""
        net = cls.__new__(cls)
        net._configure(sizes, activation, dtype)
        return net

    def _configure(self, sizes, activation, dtype):
        sizes = check_sizes(sizes)
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}"
            )
        self._activation = activation
        self._dtype = _check_dtype(dtype)
        self._build_layout(sizes)

    # -- layout ---------------------------------------------------------------------------

    def _build_layout(self, sizes):
        n_layers = len(sizes) - 1
        # The first layer is stored transposed, one row per input, each row padded to whole
        # 64-byte cache lines (SIMD loads and stores then never straddle two lines).
        stride0 = kernels.row_stride(sizes[1], self._dtype.itemsize)
        w_off, b_off, offset = [], [], 0
        for l in range(n_layers):
            w_off.append(offset)
            offset += sizes[l] * (stride0 if l == 0 else sizes[l + 1])
            b_off.append(offset)
            offset += sizes[l + 1]
        a_off = [0] + list(np.cumsum(sizes[1:]) - np.asarray(sizes[1:]))
        self._params = _aligned_zeros(offset, self._dtype)
        weights, biases = [], []
        for l in range(n_layers):
            n_in, n_out = sizes[l], sizes[l + 1]
            if l == 0:
                W = self._params[: n_in * stride0].reshape(n_in, stride0)[:, :n_out].T
            else:
                W = self._params[w_off[l] : w_off[l] + n_in * n_out].reshape(n_out, n_in)
            weights.append(W)
            biases.append(self._params[b_off[l] : b_off[l] + n_out])
        self._weights, self._biases = tuple(weights), tuple(biases)
        self._sizes = tuple(sizes)
        self._layout = kernels.Layout(
            _frozen(sizes), _frozen(w_off), _frozen(b_off), _frozen(a_off), int(stride0)
        )

    def _scratch(self):
        """Fresh per-call kernel buffers (a few KB), so that concurrent calls never share any."""
        n_units = sum(self._sizes[1:])
        return kernels.Scratch(
            act=_aligned_zeros(n_units, self._dtype),
            delta=_aligned_zeros(n_units, self._dtype),
            bits=np.zeros(max(self._sizes[1:]), np.int64),
            nz_idx=np.zeros(self._sizes[0], np.int64),
            nz_val=np.zeros(self._sizes[0], self._dtype),
        )

    def _units(self):
        """The activation codes of the hidden and the output layer, as the kernels take them."""
        code = ACTIVATIONS[self._activation]
        return code, code

    # -- read-only configuration ----------------------------------------------------------

    sizes = property(lambda self: list(self._sizes), doc="A copy of the layer sizes.")
    activation = property(lambda self: self._activation, doc="The units' non-linearity.")
    dtype = property(lambda self: self._dtype, doc="The precision of weights and arithmetic.")
    params = property(lambda self: self._params, doc="The flat parameter buffer (P,).")
    weights = property(lambda self: self._weights, doc="Per layer (n_out, n_in) views.")
    biases = property(lambda self: self._biases, doc="Per layer (n_out,) views.")

    @property
    def n_inputs(self):
        return self._sizes[0]

    @property
    def n_outputs(self):
        return self._sizes[-1]

    @property
    def n_params(self):
        return sum(W.size + b.size for W, b in zip(self._weights, self._biases))

    def __repr__(self):
        return (
            f"Network(sizes={self.sizes}, activation={self._activation!r}, "
            f"dtype={self._dtype.name})"
        )

    # -- parameters, copies, pickling -----------------------------------------------------

    def get_weights(self):
        """Copies of every layer's parameters: a list of ``(W (n_out, n_in), b (n_out,))``."""
        return [(W.copy(), b.copy()) for W, b in zip(self._weights, self._biases)]

    def set_weights(self, pairs):
        """Load a list of ``(W, b)`` pairs, one per layer (as from any engine's get_weights).

        Values are checked in the network's dtype: one that overflows it is refused.
        """
        checked = check_weight_pairs(self.sizes, pairs, self._dtype)
        for (W, b), W_self, b_self in zip(checked, self._weights, self._biases):
            W_self[...] = W
            b_self[...] = b

    def copy(self):
        """An independent network with the same configuration and parameters."""
        other = Network._unfilled(self._sizes, self._activation, self._dtype)
        other._params[...] = self._params
        return other

    def __deepcopy__(self, memo):
        return self.copy()

    def __getstate__(self):
        # Pickle the model's content, never the views: a rebuilt network gets a fresh aligned
        # buffer with weights/biases viewing it.
        return self.to_arrays()

    def __setstate__(self, arrays):
        self.__dict__.update(Network.from_arrays(arrays, source="<pickle>").__dict__)

    # -- input checks, done once per call at the boundary ---------------------------------

    def _inputs(self, X, scale, name="X"):
        """(X as the kernels take it, its scale, whether X was one sample)."""
        X, single = check_inputs(X, self.n_inputs, name)
        X, scale = input_scale(X, scale, self._dtype, name)
        return X, scale, single

    def _labels(self, labels, n, name="labels"):
        return check_labels(labels, n, self.n_outputs, name)

    def _targets(self, targets, n):
        """(N, n_out) targets in the network's dtype; (N,) labels become 0.9/0.1 vectors."""
        targets = np.asarray(targets)
        if targets.ndim == 1:
            return one_hot_targets(self._labels(targets, n, "targets"), self.n_outputs, self._dtype)
        return check_target_rows(targets, n, self.n_outputs, self._dtype)

    # -- training -------------------------------------------------------------------------

    def train_epoch(self, X, targets, rate=0.3, order=None, scale=None, progress=None,
                    threads=1):
        """One pass of per-sample SGD (w += rate * delta * x) over ``X`` in ``order``.

        Parameters
        ----------
        X : ndarray, (N, n_in)
            uint8 images (scaled by 1/255 inside the kernel, never copied) or float inputs.
            Other integer types need an explicit ``scale``; so do float inputs that look like
            raw 0-255 pixels (whole numbers, largest above 1): see ``scale``.
        targets : ndarray, (N, n_out) or (N,)
            Target vectors, or integer labels that become 0.9 (true class) / 0.1 targets.
        rate : float
            Learning rate eta > 0 (finite in the network's dtype).
        order : ndarray of int, (M,), optional
            Sample indices in the order to visit them; default file order.
        scale : float, optional
            Input factor; default 1/255 for uint8 and 1 for float inputs.
        progress : callable, optional
            Called as ``progress(n_done)`` between chunks of samples (plain Python, so a
            Ctrl-C lands there); without it the epoch is one compiled call.
        threads : int
            Threads sharing every sample's work (model parallel, :mod:`jitnet.parallel`): 1,
            the default, runs the serial kernel. With N > 1 the weights are bitwise the same on
            every run with N threads and agree with the serial ones to rounding (the order of
            one sum differs). At most the first hidden layer's units and the usable cores.

        Returns
        -------
        float
            Mean of E = 1/2 sum (t - y)^2 over the samples, each measured before its update.

        Raises
        ------
        TrainingDiverged
            When the mean loss or a parameter is not finite after the epoch.
        """
        threads = parallel.check_threads(threads, self._sizes)
        X, scale, _ = self._inputs(X, scale)
        n = X.shape[0]
        T = self._targets(targets, n)
        eta = check_positive("rate", rate, self._dtype)
        return self._run_epoch(X, T, eta, scale, check_order(order, n), progress, threads)

    def _run_epoch(self, X, T, eta, scale, order, progress=None, threads=1):
        """The compiled epoch on inputs already checked and converted; returns the mean loss."""
        if order.size == 0:
            return 0.0
        if threads == 1:
            epoch = functools.partial(
                kernels._train_epoch, self._params, self._layout, self._scratch(), X, T
            )
        else:
            team = parallel.Team(self._params, self._layout, self._scratch, threads)
            epoch = functools.partial(team.train, X, T)
        hidden, output = self._units()
        if progress is None:
            total = epoch(order, scale, eta, hidden, output)
        else:
            total = 0.0
            # Each multi-threaded call starts the ranks' threads (~0.3 ms): fewer, longer chunks.
            chunk = max(1000, order.size // 100) if threads == 1 else max(5000, order.size // 20)
            for start in range(0, order.size, chunk):
                part = order[start : start + chunk]
                total += epoch(part, scale, eta, hidden, output)
                progress(start + part.size)
        loss = total / order.size
        if not np.isfinite(loss):
            raise TrainingDiverged(f"training diverged: loss is {loss}; try a smaller rate")
        bad = np.count_nonzero(~np.isfinite(self._params))
        if bad:
            raise TrainingDiverged(
                f"training diverged: {bad} of {self.n_params} parameters are not finite "
                f"(loss {loss:.3g}); try a smaller rate"
            )
        return loss

    def train(self, X, targets, rate=0.3, epochs=1, shuffle=False, seed=None, scale=None,
              threads=1):
        """Run ``epochs`` passes of per-sample SGD; returns the mean loss of each epoch.

        Inputs are checked once; each epoch is one compiled call (see :meth:`train_epoch`, also
        for ``threads``). With ``shuffle=True`` each epoch visits the samples in a fresh
        permutation drawn from ``np.random.default_rng(seed)``; otherwise in file order.
        """
        epochs = check_count("epochs", epochs)
        threads = parallel.check_threads(threads, self._sizes)
        X, scale, _ = self._inputs(X, scale)
        n = X.shape[0]
        T = self._targets(targets, n)
        eta = check_positive("rate", rate, self._dtype)
        rng = np.random.default_rng(check_seed(seed))
        in_file_order = np.arange(n, dtype=np.int64)
        return [
            self._run_epoch(
                X, T, eta, scale, rng.permutation(n) if shuffle else in_file_order, None, threads
            )
            for _ in range(epochs)
        ]

    # -- inference ------------------------------------------------------------------------

    def _forward_rows(self, X, scale, keep_outputs):
        """Outputs (N, n_out) (empty unless keep_outputs) and classes (N,) of every row of X."""
        n = X.shape[0]
        y = np.empty((n if keep_outputs else 0, self.n_outputs), self._dtype)
        classes = np.empty(n, np.int64)
        kernels._forward_rows(
            self._params, self._layout, self._scratch(), X, scale, *self._units(), y, classes
        )
        return y, classes

    def predict(self, X, scale=None):
        """Outputs for one sample (n_in,) -> (n_out,) or a batch (N, n_in) -> (N, n_out)."""
        X, scale, single = self._inputs(X, scale)
        y, _ = self._forward_rows(X, scale, keep_outputs=True)
        return y[0] if single else y

    def classify(self, X, scale=None):
        """Index of the largest output for each sample: (N, n_in) -> (N,) int64."""
        X, scale, single = self._inputs(X, scale)
        _, classes = self._forward_rows(X, scale, keep_outputs=False)
        return classes[0] if single else classes

    def evaluate(self, X, labels, scale=None):
        """Error rate in [0, 1]: the fraction of samples whose largest output is not the label."""
        X, scale, _ = self._inputs(X, scale)
        labels = self._labels(labels, X.shape[0])
        if X.shape[0] == 0:
            raise ValueError("cannot evaluate on zero samples")
        _, classes = self._forward_rows(X, scale, keep_outputs=False)
        return np.count_nonzero(classes != labels) / X.shape[0]

    def gradient(self, x, t, scale=None):
        """dE/dW and dE/db of E = 1/2 sum (t - y)^2 for one sample, per layer.

        Returns
        -------
        list of (ndarray (n_out, n_in), ndarray (n_out,))
            The true gradient (positive sign): SGD moves each weight by ``-rate * dW``.
        """
        X, scale, single = self._inputs(x, scale, "x")
        if not single:
            raise ValueError(f"x must be one sample of shape ({self.n_inputs},)")
        t = np.asarray(t)
        T = self._targets(t.reshape(1) if t.ndim == 0 else t.reshape(1, -1), 1)
        scratch = self._scratch()
        kernels._backprop(self._params, self._layout, scratch, X[0], T[0], scale, *self._units())
        grads = []
        a_prev = X[0].astype(self._dtype) * self._dtype.type(scale)
        for l in range(len(self._sizes) - 1):
            lo, hi = self._layout.a_off[l + 1], self._layout.a_off[l + 1] + self._sizes[l + 1]
            delta = scratch.delta[lo:hi]
            grads.append((-np.outer(delta, a_prev), -delta.copy()))
            a_prev = scratch.act[lo:hi].copy()
        return grads

    # -- files ----------------------------------------------------------------------------

    def to_arrays(self):
        """Everything that defines the model, as a dict of arrays (the content of a model file)."""
        arrays = {
            "format": np.array(FORMAT),
            "format_version": np.array(FORMAT_VERSION),
            "sizes": np.asarray(self._sizes, np.int64),
            "activation": np.array(self._activation),
            "dtype": np.array(self._dtype.name),
        }
        for l, (W, b) in enumerate(zip(self._weights, self._biases)):
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
        except (ValueError, TypeError, IndexError, OverflowError) as error:
            fail(f"not a valid jitnet model ({error})")
        try:
            net = cls._unfilled(sizes, activation, dtype)
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
