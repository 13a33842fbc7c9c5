"""The JIT engine's ``Network``: its configuration, parameters, inference and files; its training
delegates to :mod:`jitnet.engine.training`, argument checks to :mod:`jitnet.engine.inputs`."""

import numpy as np

from jitnet.engine import codes, epochs, inputs, kernels, layout, model_file, training
from jitnet.io import onnx_export
from jitnet.engine.checks import check_dtype, check_seed, check_sizes, check_weight_pairs
from jitnet.engine.components import (  # noqa: F401 (ACTIVATIONS: the tutorial's, re-exported)
    ACTIVATIONS, OUTPUTS, UNITS, check_activation, check_init, check_loss,
)
from jitnet.engine.components import draw_initial_weights, output_activation
from jitnet.engine.model_file import ModelFileError  # noqa: F401 (re-exported)
from jitnet.engine.preprocess import refuse_export
from jitnet.engine.training import TrainingDiverged  # noqa: F401 (re-exported)


class Network:
    """A fully connected network trained one sample at a time by the tutorial's SGD.

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, inputs first: ``[784, 300, 10]`` or ``[784, 500, 150, 10]``.
    activation : {'sigmoid', 'tanh', 'scaled_tanh', 'relu', 'identity'}
        Non-linearity of the hidden units: the tutorial's sigmoid, tanh, LeCun's
        ``1.7159 tanh(2z/3)``, ``max(z, 0)`` or ``z``.
    dtype : {'float64', 'float32'}
        Precision of weights and arithmetic. float64 agrees with the references to 1e-10;
        float32 is about twice as fast.
    seed : int or None
        Seed of ``np.random.default_rng`` for the initial weights.
    loss : {'squared', 'cross_entropy', 'binary_cross_entropy', 'squared_error', 'poisson'}
        ``squared``: the tutorial's ``E = 1/2 sum (t - y)^2``; integer labels become 0.9/0.1
        targets. The output layer then uses the hidden activation (sigmoid, tanh or
        scaled_tanh on every layer), except that relu and identity networks get sigmoid
        outputs (a relu output aiming at a 0.1 target can die). ``cross_entropy``: softmax
        outputs and ``E = -sum t log y`` (computed from ``log y = z - logsumexp(z)``, so never
        NaN); labels become one-hot 1/0 targets, and target vectors must be distributions.
        scikit-learn's: logistic outputs with the binary log-loss, identity outputs with the
        squared error averaged over the outputs, exp outputs with the Poisson deviance
        (:data:`jitnet.engine.components.LOSS_OUTPUTS`).
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
    input_scale, standardization, class_names
        How raw inputs become the network's and what its outputs mean; saved in model files,
        so that a loaded model takes inputs as it was trained. ``input_scale``: the factor
        inputs are multiplied by when a call passes no ``scale`` (None: 1/255 for uint8 images,
        1 for floats; 1.0 for a model trained on raw 0-255 pixels). ``standardization``: None,
        or a :class:`jitnet.Standardization` every call applies to raw inputs first (``scale``
        then does not apply). ``class_names``: None, or the class name of each output.

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
        self._dtype = check_dtype(dtype)
        self._velocity = None
        self._input_scale = self._standardization = self._class_names = None
        self._preprocessing = None
        self._sizes = tuple(sizes)
        self._params, self._weights, self._biases, self._layout = layout.build(sizes, self._dtype)

    # -- what the kernels take ------------------------------------------------------------

    def _scratch(self):
        """Fresh per-call kernel buffers (a few KB), so that concurrent calls never share any."""
        return layout.scratch(self._sizes, self._dtype)

    def _units(self):
        """The activation codes of the hidden and the output layer, as the kernels take them."""
        return UNITS[self._activation], OUTPUTS[self._output]

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

    n_inputs = property(lambda self: self._sizes[0], doc="Units of the input layer.")
    n_outputs = property(lambda self: self._sizes[-1], doc="Units of the output layer.")

    n_params = property(lambda self: sum(W.size + b.size for W, b in zip(self._weights,
                                                                          self._biases)))

    input_scale = property(
        lambda self: self._input_scale,
        lambda self, scale: setattr(self, "_input_scale", inputs.optional_scale(self, scale)),
        doc="The default ``scale`` of every call (None: 1/255 for uint8, 1 for floats).")
    standardization = property(
        lambda self: self._standardization,
        lambda self, st: setattr(self, "_standardization", inputs.standardization(self, st)),
        doc="None, or the (mean, std) of each input that every call standardises inputs by.")
    preprocessing = property(lambda self: self._preprocessing, lambda self, p: setattr(
        self, "_preprocessing", inputs.preprocessing(self, p)), doc="None, or the jitnet."
        "Preprocessing every call applies to raw images first (not exported to ONNX).")
    class_names = property(
        lambda self: self._class_names,
        lambda self, names: setattr(self, "_class_names", inputs.class_names(self, names)),
        doc="None, or the name of each output's class (n_out distinct texts).")
    velocity = property(
        lambda self: self._velocity,
        lambda self, velocity: setattr(self, "_velocity", inputs.velocity(self, velocity)),
        doc="Momentum's velocity (P,), laid out like ``params``, or None.")

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
        other._standardization, other._class_names = self._standardization, self._class_names
        other._preprocessing = self._preprocessing
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
        X, scale, single = inputs.samples(self, X, scale)
        y, _ = self._forward_rows(X, scale, keep_outputs=True)
        return y[0] if single else y

    def classify(self, X, scale=None):
        """Index of the largest output for each sample: (N, n_in) -> (N,) int64."""
        X, scale, single = inputs.samples(self, X, scale)
        _, classes = self._forward_rows(X, scale, keep_outputs=False)
        return classes[0] if single else classes

    def evaluate(self, X, labels, scale=None):
        """Error rate in [0, 1]: the fraction of samples whose largest output is not the label."""
        X, scale, _ = inputs.samples(self, X, scale)
        labels = inputs.labels(self, labels, X.shape[0])
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
        X, scale, single = inputs.samples(self, x, scale, "x")
        if not single:
            raise ValueError(f"x must be one sample of shape ({self.n_inputs},)")
        t = np.asarray(t)
        T = inputs.targets(self, t.reshape(1) if t.ndim == 0 else t.reshape(1, -1), 1)
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

    # -- training -------------------------------------------------------------------------

    def targets(self, labels):
        """Target vectors (N, n_out) for integer labels (N,), as this network's loss wants them:
        0.9 at the label and 0.1 elsewhere for ``squared``, one-hot 1/0 for ``cross_entropy``."""
        return inputs.label_vectors(self, labels)

    def train_epoch(self, X, targets, rate=0.3, order=None, scale=None, progress=None,
                    momentum=0.0, distortion=None, draws=None, threads=1, nesterov=False,
                    l2=0.0):
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
            Threads sharing every sample's work (model parallel, :mod:`jitnet.engine.parallel`):
            1, the default, runs the serial kernel. With N > 1 the weights are bitwise the same
            on every run with N threads and agree with the serial ones to rounding (the order
            of one sum differs). At most the first hidden layer's units and the usable cores;
            with momentum, Nesterov's, l2 and distortions alike.
        nesterov : bool
            With momentum, Nesterov's: ``w += mu v + rate delta x`` after the velocity's update.
        l2 : float or ndarray (N,)
            L2 penalty ``1/2 l2 |W|^2`` on the weights (not the biases), applied at every sample
            as scikit-learn's ``alpha`` with ``batch_size=1``: each step also moves every weight
            by ``-rate l2 w``, and each sample's loss includes the penalty. The first layer
            stays sparse (rows at zero input decay lazily). An array gives each sample (row of
            X) its own l2 > 0; when they differ, every first-layer row is updated at every
            sample (slower). 0 (default): none. :mod:`jitnet.engine.extras` has the equations.

        Returns
        -------
        float
            Mean loss over the samples, each measured before its update.

        Raises
        ------
        TrainingDiverged
            When the mean loss or a parameter is not finite after the epoch; ``params`` and
            :attr:`velocity` are then put back as they were before the call.
        """
        return training.train_epoch(self, X, targets, rate, order, scale, progress, momentum,
                                    distortion, draws, threads, nesterov, l2)

    def train(self, X, targets, rate=0.3, epochs=1, shuffle=False, seed=None, scale=None,
              schedule="constant", momentum=0.0, distort=None, image_shape=None, threads=1):
        """Run ``epochs`` passes of per-sample SGD; returns the mean loss of each epoch.

        Inputs are checked once; each epoch is one compiled call (see :meth:`train_epoch`). With
        ``shuffle=True`` each epoch visits the samples in a fresh permutation drawn from
        ``np.random.default_rng(seed)``; otherwise in file order. ``schedule`` sets the rate of
        each epoch from ``rate`` (see :mod:`jitnet.engine.schedules`: ``constant``,
        ``exponential:GAMMA``, ``step:FACTOR:EVERY``); epochs count from 0 in every call.

        ``distort`` (a :class:`jitnet.Distortion`) trains every epoch on freshly distorted
        samples of ``image_shape`` (rows, cols) images (default: square): the field bank is
        built once from ``seed``, and each epoch's draws come from the shuffling generator
        after its permutation, so the same int seed gives bitwise the same weights.

        When an epoch diverges (TrainingDiverged), ``params`` and :attr:`velocity` are put back
        as they were before the call.
        """
        return training.train(self, X, targets, rate, epochs, shuffle, seed, scale, schedule,
                              momentum, distort, image_shape, threads)

    # -- files ----------------------------------------------------------------------------

    def to_arrays(self):
        """Everything that defines the model, as a dict of arrays (the content of a model file;
        copies, never views of ``params``). See :mod:`jitnet.engine.model_file`."""
        return model_file.model_arrays(self)

    @classmethod
    def from_arrays(cls, arrays, source="<arrays>"):
        """Rebuild a network from :meth:`to_arrays` output (model format 4, 3, 2 or 1); a bad
        entry raises ModelFileError naming ``source``."""
        return model_file.network_from_arrays(cls, arrays, source)

    def save(self, path):
        """Write the model to one ``.npz`` file, atomically (old file intact if interrupted),
        with its input scale, standardization and class names."""
        model_file.save(self, path)

    @classmethod
    def load(cls, path):
        """Read a network from a model file (:meth:`save`, or a training run's ``model.npz``),
        a checkpoint (its current network, the state after its last completed epoch, as
        ``jitnet evaluate`` uses it) or a run folder (its ``model.npz``, the best network).

        The network comes with the input scale, standardization and class names it was trained
        with. Anything that
        cannot be read (missing, truncated, damaged, foreign, claiming more than it holds)
        raises ModelFileError, one line naming the file; nothing is allocated before the
        file's declared sizes have been checked against its bytes.
        """
        return model_file.load(cls, path)

    def to_onnx(self, path=None, scale=None, class_names=None, metadata=None):
        """The network as a checked ``onnx.ModelProto`` (:mod:`jitnet.io.onnx_export`), written
        to ``path`` when given; inputs times ``scale`` (default :attr:`input_scale`, None: 1/255),
        or standardised as :attr:`standardization` says; ``label`` holds the class names when the
        network has them. ``metadata``: more properties (``test_error``). Needs ``pip install
        "jitnet[onnx]"``."""
        refuse_export([self])
        return onnx_export.build_model(
            self.get_weights(), self._activation, self._output, dtype=self._dtype, path=path,
            input_scale=next((s for s in (scale, self._input_scale) if s is not None), 1 / 255),
            standardization=self._standardization,
            class_names=self._class_names if class_names is None else class_names,
            metadata={"loss": self._loss, **(metadata or {})},
            scaled_tanh=(codes.SCALED_TANH_AMPLITUDE, codes.SCALED_TANH_SLOPE))
