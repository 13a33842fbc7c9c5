"""The JIT engine: a thin Python ``Network`` over one flat parameter buffer and the kernels."""

import time

import numpy as np

from jitnet.engine import epochs, kernels
from jitnet.engine import model_file
from jitnet.engine.checks import (
    check_positive,
    check_seed,
    check_sizes,
    check_weight_pairs,
)
from jitnet.engine.components import (
    ACTIVATIONS,
    OUTPUTS,
    check_activation,
    check_init,
    check_loss,
    draw_initial_weights,
    output_activation,
)
from jitnet.engine.model_file import FORMAT, FORMAT_VERSION, ModelFileError  # noqa: F401 (re-exported)
from jitnet.engine.buffers import aligned_zeros as _aligned_zeros
from jitnet.engine.training import (  # noqa: F401 (TrainingDiverged is re-exported)
    TrainingDiverged,
    TrainingMethods,
)

DTYPES = ("float64", "float32")




def _check_dtype(dtype):
    try:
        name = np.dtype(dtype).name if dtype is not None else None
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return np.dtype(name)



def _frozen(values):
    """A read-only int64 array (the layout the kernels index with: nobody may change it)."""
    array = np.array(values, np.int64)
    array.flags.writeable = False
    return array


class Network(TrainingMethods):
    """A fully connected network trained one sample at a time by the tutorial's SGD.

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, inputs first: ``[784, 300, 10]`` or ``[784, 500, 150, 10]``.
    activation : {'sigmoid', 'tanh', 'scaled_tanh', 'relu'}
        Non-linearity of the hidden units: the tutorial's sigmoid, tanh, LeCun's
        ``1.7159 tanh(2z/3)``, or ``max(z, 0)``.
    dtype : {'float64', 'float32'}
        Precision of weights and arithmetic. float64 agrees with the references to 1e-10;
        float32 is about twice as fast.
    seed : int or None
        Seed of ``np.random.default_rng`` for the initial weights.
    loss : {'squared', 'cross_entropy'}
        ``squared``: the tutorial's ``E = 1/2 sum (t - y)^2``; integer labels become 0.9/0.1
        targets. The output layer then uses the hidden activation (sigmoid, tanh or
        scaled_tanh on every layer), except that relu networks get sigmoid outputs (a relu
        output aiming at a 0.1 target can die). ``cross_entropy``: softmax outputs and
        ``E = -sum t log y`` (computed from ``log y = z - logsumexp(z)``, so never NaN);
        labels become one-hot 1/0 targets, and target vectors must be distributions.
    init : str
        Initial weights. ``tutorial`` (default): W and b uniform(-0.1, 0.1), drawn W then b
        layer by layer; ``uniform:A``: the same with uniform(-A, A). With b = 0 and W
        uniform(-s, s): ``glorot`` s = sqrt(6 / (n_in + n_out)), ``lecun`` s = sqrt(3 / n_in),
        ``he`` s = sqrt(6 / n_in).

    Attributes
    ----------
    sizes : list of int
        A copy of the layer sizes (the configuration is fixed once built).
    activation, loss, init, output_activation : str
        The recipe; ``output_activation`` follows from ``activation`` and ``loss`` (above).
    params : ndarray, (P,)
        Every weight and bias, in one contiguous, cache-line aligned buffer the kernels update
        in place (the first layer's rows are padded to 64 bytes; the padding stays zero).
    weights : tuple of ndarray
        ``weights[l]``: (n_out, n_in) views into ``params`` (writing them changes the network).
    biases : tuple of ndarray
        ``biases[l]``: (n_out,) views into ``params``.
    velocity : ndarray, (P,), or None
        Momentum's velocity, laid out like ``params``; None until an epoch trains with
        momentum (an epoch without momentum drops it). Assign a saved one to resume.
    input_scale : float or None
        The factor inputs are multiplied by when a call passes no ``scale``: None (default)
        means 1/255 for uint8 images and 1 for float inputs; a model trained on raw 0-255
        pixels has 1.0. Saved in model files, so that a loaded model scales its inputs as it
        was trained.

    Notes
    -----
    Inference (``predict``, ``classify``, ``evaluate``, ``gradient``) may run on one network from
    several threads at once: the kernels release the GIL and every call works in its own
    scratch buffers. Training changes ``params`` in place: do not train one network from two
    threads, or train it while another thread uses it; to train it on several cores, pass
    ``threads=N`` to :meth:`train` or :meth:`train_epoch` (:mod:`jitnet.engine.parallel`).
    """

    def __init__(self, sizes, activation="sigmoid", dtype="float64", seed=None,
                 loss="squared", init="tutorial"):
        self._configure(sizes, activation, dtype, loss, init)
        rng = np.random.default_rng(check_seed(seed))
        draw_initial_weights(self._weights, self._biases, self._init, rng)

    @classmethod
    def _unfilled(cls, sizes, activation="sigmoid", dtype="float64", loss="squared",
                  init="tutorial"):
        """A network with all parameters zero, for callers that load their own."""
        net = cls.__new__(cls)
        net._configure(sizes, activation, dtype, loss, init)
        return net

    def _configure(self, sizes, activation, dtype, loss, init):
        sizes = check_sizes(sizes)
        self._activation = check_activation(activation)
        self._loss = check_loss(loss, sizes[-1])
        self._init = check_init(init)
        self._output = output_activation(activation, loss)
        self._dtype = _check_dtype(dtype)
        self._velocity = None
        self._input_scale = None
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
            log_y=np.zeros(self._sizes[-1], self._dtype),
        )

    def _units(self):
        """The activation codes of the hidden and the output layer, as the kernels take them."""
        return ACTIVATIONS[self._activation], OUTPUTS[self._output]

    # -- read-only configuration ----------------------------------------------------------

    sizes = property(lambda self: list(self._sizes), doc="A copy of the layer sizes.")
    activation = property(lambda self: self._activation, doc="The hidden units' activation.")
    loss = property(lambda self: self._loss, doc="'squared' or 'cross_entropy'.")
    init = property(lambda self: self._init, doc="How the initial weights were drawn.")
    output_activation = property(lambda self: self._output, doc="The output layer's activation.")
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

    @property
    def input_scale(self):
        """The default ``scale`` of every call (None: 1/255 for uint8, 1 for floats)."""
        return self._input_scale

    @input_scale.setter
    def input_scale(self, scale):
        if scale is not None:
            try:  # checked in the network's dtype, kept as given
                check_positive("input_scale", scale, self._dtype)
                scale = float(scale)
            except OverflowError:
                raise ValueError(
                    f"input_scale must be a positive finite number, got {scale!r}") from None
        self._input_scale = scale

    @property
    def velocity(self):
        """Momentum's velocity (P,), laid out like ``params``, or None."""
        return self._velocity

    @velocity.setter
    def velocity(self, velocity):
        if velocity is None:
            self._velocity = None
            return
        with np.errstate(over="ignore"):
            checked = np.asarray(velocity).astype(self._dtype)
        if checked.shape != self._params.shape or not np.isfinite(checked).all():
            raise ValueError(
                f"velocity must be {self._params.shape[0]} finite numbers laid out like params, "
                f"got shape {np.shape(velocity)}"
            )
        self._velocity = _aligned_zeros(checked.size, self._dtype)
        self._velocity[...] = checked

    def __repr__(self):
        recipe = "" if self._loss == "squared" else f", loss={self._loss!r}"
        scale = "" if self._input_scale is None else f", input_scale={self._input_scale!r}"
        return (
            f"Network(sizes={self.sizes}, activation={self._activation!r}{recipe}, "
            f"dtype={self._dtype.name}{scale})"
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
        """An independent network with the same configuration, parameters and velocity."""
        other = Network._unfilled(self._sizes, self._activation, self._dtype, self._loss,
                                  self._init)
        other._params[...] = self._params
        other.velocity = self._velocity
        other._input_scale = self._input_scale
        return other

    def __deepcopy__(self, memo):
        return self.copy()

    def __getstate__(self):
        # Pickle the model's content, never the views: a rebuilt network gets a fresh aligned
        # buffer with weights/biases viewing it.
        return {"arrays": self.to_arrays(), "velocity": self._velocity}

    def __setstate__(self, state):
        self.__dict__.update(Network.from_arrays(state["arrays"], source="<pickle>").__dict__)
        self.velocity = state["velocity"]

    # -- inference ------------------------------------------------------------------------

    def _forward_rows(self, X, scale, keep_outputs):
        """Outputs (N, n_out) (empty unless keep_outputs) and classes (N,) of every row of X."""
        n = X.shape[0]
        y = np.empty((n if keep_outputs else 0, self.n_outputs), self._dtype)
        classes = np.empty(n, np.int64)
        epochs._forward_rows(
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
        """dE/dW and dE/db of the network's loss E for one sample x (n_in,) with target t
        (n_out,) or label, per layer.

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
        """Everything that defines the model, as a dict of arrays (the content of a model file;
        copies, never views of ``params``). See :mod:`jitnet.engine.model_file`."""
        return model_file.model_arrays(self)

    @classmethod
    def from_arrays(cls, arrays, source="<arrays>"):
        """Rebuild a network from :meth:`to_arrays` output (model format 3, 2 or 1); a bad
        entry raises ModelFileError naming ``source``."""
        return model_file.network_from_arrays(cls, arrays, source)

    def save(self, path):
        """Write the model to one ``.npz`` file, atomically (old file intact if interrupted),
        with its :attr:`input_scale`."""
        model_file.save(self, path)

    @classmethod
    def load(cls, path):
        """Read a network from a model file (:meth:`save`, or a training run's ``model.npz``),
        a checkpoint (its current network, the state after its last completed epoch, as
        ``jitnet evaluate`` uses it) or a run folder (its ``model.npz``, the best network).

        The network comes with the :attr:`input_scale` it was trained with. Anything that
        cannot be read (missing, truncated, damaged, foreign, too large) raises ModelFileError,
        one line naming the file; nothing is allocated before the file's declared sizes have
        been checked.
        """
        return model_file.load(cls, path)


def compile_kernels(dtype="float64", x_dtype=np.uint8, activation="sigmoid"):
    """Compile (or load from Numba's cache) every kernel for one dtype combination (the same
    compiled kernels serve every activation, loss and momentum).

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
    net.train_epoch(X, net._targets(labels, 2), 0.1, progress=lambda n: None, momentum=0.5)
    net.predict(X)
    net.classify(X)
    net.evaluate(X, labels)
    net.gradient(X[0], np.array([0.9, 0.1]))
    return time.perf_counter() - start
