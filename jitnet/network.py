"""The JIT engine: a thin Python ``Network`` over one flat parameter buffer and the kernels."""

import math
import time

import numpy as np

from jitnet import kernels, model_file, parallel
from jitnet._distort_kernels import FIELD_I, FIELD_J, N_DRAW
from jitnet._checks import (
    check_count,
    check_fraction,
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
from jitnet.recipes import (
    ACTIVATIONS,
    OUTPUTS,
    check_activation,
    check_distributions,
    check_init,
    check_loss,
    draw_initial_weights,
    label_targets,
    output_activation,
)
from jitnet.distortion import DistortionPlan
from jitnet.model_file import FORMAT, FORMAT_VERSION, ModelFileError  # noqa: F401 (re-exported)
from jitnet.schedules import make_schedule

DTYPES = ("float64", "float32")
MOMENTUM_TABLE = 1 << 22  # most samples at zero input that momentum's catch-up tables cover


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
    ``threads=N`` to :meth:`train` or :meth:`train_epoch` (:mod:`jitnet.parallel`).
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

    # -- input checks, done once per call at the boundary ---------------------------------

    def _inputs(self, X, scale, name="X"):
        """(X as the kernels take it, its scale, whether X was one sample)."""
        X, single = check_inputs(X, self.n_inputs, name)
        if scale is None:
            scale = self._input_scale
        X, scale = input_scale(X, scale, self._dtype, name)
        return X, scale, single

    def _labels(self, labels, n, name="labels"):
        return check_labels(labels, n, self.n_outputs, name)

    def targets(self, labels):
        """Target vectors (N, n_out) for integer labels (N,), as this network's loss wants them:
        0.9 at the label and 0.1 elsewhere for ``squared``, one-hot 1/0 for ``cross_entropy``."""
        labels = np.asarray(labels)
        if labels.ndim != 1:
            raise ValueError(f"labels must be a 1-D array of class labels, got shape {labels.shape}")
        return label_targets(self._labels(labels, labels.shape[0]), self.n_outputs, self._loss,
                             self._dtype)

    def _targets(self, targets, n):
        """(N, n_out) targets in the network's dtype; (N,) labels become target vectors."""
        targets = np.asarray(targets)
        if targets.ndim == 1:
            labels = self._labels(targets, n, "targets")
            return label_targets(labels, self.n_outputs, self._loss, self._dtype)
        T = check_target_rows(targets, n, self.n_outputs, self._dtype)
        return check_distributions(T) if self._loss == "cross_entropy" else T

    # -- training -------------------------------------------------------------------------

    def train_epoch(self, X, targets, rate=0.3, order=None, scale=None, progress=None,
                    momentum=0.0, distortion=None, draws=None, threads=1):
        """One pass of per-sample SGD (w += rate * delta * x) over ``X`` in ``order``.

        Parameters
        ----------
        X : ndarray, (N, n_in)
            uint8 images (scaled by 1/255 inside the kernel, never copied) or float inputs.
            Other integer types need an explicit ``scale``; so do float inputs that look like
            raw 0-255 pixels (whole numbers, largest above 1): see ``scale``.
        targets : ndarray, (N, n_out) or (N,)
            Target vectors, or integer labels (see :meth:`targets`).
        rate : float
            Learning rate eta > 0 (finite in the network's dtype).
        order : ndarray of int, (M,), optional
            Sample indices in the order to visit them; default file order.
        scale : float, optional
            Input factor; default :attr:`input_scale`, and when that is None 1/255 for uint8
            and 1 for float inputs.
        progress : callable, optional
            Called as ``progress(n_done)`` between chunks of samples (plain Python, so a
            Ctrl-C lands there); without it the epoch is one compiled call. Chunked or not,
            the weights come out bitwise the same.
        momentum : float
            Classical momentum mu in [0, 1): ``v = mu v + rate delta x; w += v``, with the
            velocity kept in :attr:`velocity` across epochs. 0 (default) is plain SGD.
        distortion : jitnet.DistortionPlan, optional
            Train on distorted samples: inside the compiled epoch each visited sample is
            distorted afresh into a one-sample buffer, then trained on (the data set is never
            copied). The plan's image shape must hold ``n_in`` pixels. Needs ``draws``.
        draws : ndarray, (M, N_DRAW)
            ``distortion.draw_epoch(rng, M)`` for the M samples of ``order``: row k distorts the
            k-th sample visited. Draws of the identity (a ``Distortion()`` with every part 0)
            give bitwise the weights of an undistorted epoch.
        threads : int
            Threads sharing every sample's work (model parallel, :mod:`jitnet.parallel`): 1,
            the default, runs the serial kernel. With N > 1 the weights are bitwise the same on
            every run with N threads and agree with the serial ones to rounding (the order of
            one sum differs). At most the first hidden layer's units and the usable cores;
            plain SGD only (no momentum, no distortion).

        Returns
        -------
        float
            Mean loss over the samples, each measured before its update.

        Raises
        ------
        TrainingDiverged
            When the mean loss or a parameter is not finite after the epoch.
        """
        threads = parallel.check_threads(threads, self.sizes)
        X, scale, _ = self._inputs(X, scale)
        n = X.shape[0]
        T = self._targets(targets, n)
        eta = check_positive("rate", rate, self._dtype)
        mu = check_fraction("momentum", momentum)
        order = check_order(order, n)
        distorter = self._distorter(distortion, draws, order.size)
        return self._run_epoch(X, T, eta, scale, order, progress, mu, distorter, threads)

    def _distorter(self, plan, draws, n_visits):
        """The kernels' distortion state for one epoch of n_visits samples (None: undistorted),
        after checking the plan against the network and the draws against the plan."""
        if plan is None:
            if draws is not None:
                raise ValueError("draws need a distortion (the plan they were drawn from)")
            return None
        if not isinstance(plan, DistortionPlan):
            raise ValueError(f"distortion must be a jitnet.DistortionPlan, got "
                             f"{type(plan).__name__}")
        rows, cols = plan.image_shape
        if rows * cols != self.n_inputs:
            raise ValueError(f"distortion is for {rows}x{cols} images ({rows * cols} pixels); "
                             f"the network has {self.n_inputs} inputs")
        if draws is None:
            raise ValueError("a distortion needs draws: distortion.draw_epoch(rng, len(order))")
        draws = np.ascontiguousarray(draws, dtype=np.float64)
        if draws.shape != (n_visits, N_DRAW) or not np.isfinite(draws).all():
            raise ValueError(f"draws must be {n_visits} rows of {N_DRAW} finite numbers (one per "
                             f"sample visited), got shape {draws.shape}")
        n_fields = plan.bank.shape[0]
        if n_fields:  # the kernel indexes the bank with these: never out of bounds
            fields = draws[:, [FIELD_I, FIELD_J]]
            if (fields != np.floor(fields)).any() or fields.min(initial=0) < 0 or \
                    fields.max(initial=0) >= n_fields:
                raise ValueError(f"draws name fields outside the plan's bank of {n_fields}")
        work, index = plan.scratch()
        return kernels.Distorter(rows, cols, draws, plan.bank, work, index,
                                 _aligned_zeros(self.n_inputs, self._dtype))

    def _image_shape(self, image_shape):
        """(rows, cols) of the images to distort: as given, or square when n_in is a square."""
        if image_shape is not None:
            return image_shape
        side = math.isqrt(self.n_inputs)
        if side * side != self.n_inputs:
            raise ValueError(f"distort needs image_shape=(rows, cols) for {self.n_inputs} inputs "
                             f"(not a square number)")
        return (side, side)

    def _momentum(self, mu, n_samples):
        """The kernels' momentum state for one epoch of n_samples (mu = 0: off, no buffers)."""
        dtype = self._dtype
        if mu == 0.0:
            self._velocity = None
            empty = np.zeros(0, dtype)
            return kernels.Momentum(dtype.type(0.0), empty, np.zeros(0, np.int64),
                                    np.zeros(1, np.int64), empty, empty)
        if self._velocity is None:
            self._velocity = _aligned_zeros(self._params.size, dtype)
        # A row can wait at most n_samples samples; past the gap where mu^d underflows to 0
        # the tables would stop changing (see the kernels' momentum section). Tables longer
        # than MOMENTUM_TABLE are cut there: mu^d is then below 1e-18 for mu <= 0.99999.
        underflow = int(math.log(5e-324) / math.log(mu)) + 2 if mu > 0 else 1
        longest = min(n_samples, underflow, MOMENTUM_TABLE)
        decay = mu ** np.arange(longest + 1, dtype=np.float64)
        gain = np.concatenate([[0.0], np.cumsum(decay[1:])])
        return kernels.Momentum(
            dtype.type(mu), self._velocity, np.full(self._sizes[0], -1, np.int64),
            np.zeros(1, np.int64), decay.astype(dtype), gain.astype(dtype),
        )

    def _run_epoch(self, X, T, eta, scale, order, progress=None, mu=0.0, distorter=None,
                   threads=1):
        """The compiled epoch on inputs already checked and converted; returns the mean loss."""
        if order.size == 0:
            return 0.0
        if threads > 1 and (mu > 0.0 or distorter is not None):
            raise ValueError(f"threads={threads} trains plain SGD; momentum and distortions "
                             "train on one thread (threads=1)")
        momentum = self._momentum(mu, order.size)
        args = (self._params, self._layout, self._scratch(), X, T)
        units = self._units()
        team = None
        if threads > 1:
            team = parallel.Team(self._params, self._layout, self._scratch, threads)

        def run(start, stop):
            part = order[start:stop]
            if team is not None:
                return team.train(X, T, part, scale, eta, *units)
            if distorter is None:
                return kernels._train_epoch(*args, part, scale, eta, *units, momentum)
            return kernels._train_epoch_distorted(
                *args, part, scale, eta, *units, momentum,
                distorter._replace(draws=distorter.draws[start:stop]))

        try:
            if progress is None:
                total = run(0, order.size)
            else:
                total = 0.0
                # Each multi-threaded call starts the ranks' threads: fewer, longer chunks.
                chunk = max(1000, order.size // 100) if team is None else max(5000, order.size // 20)
                for start in range(0, order.size, chunk):
                    stop = min(start + chunk, order.size)
                    total += run(start, stop)
                    progress(stop)
        finally:  # also on Ctrl-C in progress(): leave every weight and velocity up to date
            if mu > 0.0:
                kernels._finish_momentum_epoch(self._params, self._layout, momentum)
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
              schedule="constant", momentum=0.0, distort=None, image_shape=None, threads=1):
        """Run ``epochs`` passes of per-sample SGD; returns the mean loss of each epoch.

        Inputs are checked once; each epoch is one compiled call (see :meth:`train_epoch`). With
        ``shuffle=True`` each epoch visits the samples in a fresh permutation drawn from
        ``np.random.default_rng(seed)``; otherwise in file order. ``schedule`` sets the rate of
        each epoch from ``rate`` (see :mod:`jitnet.schedules`: ``constant``,
        ``exponential:GAMMA``, ``step:FACTOR:EVERY``); epochs count from 0 in every call.

        ``distort`` (a :class:`jitnet.Distortion`) trains every epoch on freshly distorted
        samples of ``image_shape`` (rows, cols) images (default: square): the field bank is
        built once from ``seed``, and each epoch's draws come from the shuffling generator
        after its permutation, so the same int seed gives bitwise the same weights.
        """
        epochs = check_count("epochs", epochs)
        threads = parallel.check_threads(threads, self.sizes)
        X, scale, _ = self._inputs(X, scale)
        n = X.shape[0]
        T = self._targets(targets, n)
        plan = make_schedule(schedule, check_positive("rate", rate, self._dtype))
        mu = check_fraction("momentum", momentum)
        seed = check_seed(seed)
        rng = np.random.default_rng(seed)
        distortion = None
        if distort is not None:
            distortion = DistortionPlan(distort, self._image_shape(image_shape),
                                        seed=np.random.SeedSequence(seed, spawn_key=(2,)))
        in_file_order = np.arange(n, dtype=np.int64)
        losses = []
        for epoch in range(epochs):
            eta = check_positive(f"rate of epoch {epoch}", plan.rate_at(epoch), self._dtype)
            order = rng.permutation(n) if shuffle else in_file_order
            distorter = None
            if distortion is not None:
                distorter = self._distorter(distortion, distortion.draw_epoch(rng, n), n)
            losses.append(self._run_epoch(X, T, eta, scale, order, mu=mu, distorter=distorter,
                                          threads=threads))
        return losses

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
        copies, never views of ``params``). See :mod:`jitnet.model_file`."""
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
