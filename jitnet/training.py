"""The training experiment behind ``jitnet train``: cadence, stopping rule, checkpoints and resume.

This module knows nothing about click. The command line builds a :class:`TrainConfig`, checks
where the run will write (:func:`prepare_output`), loads the data, calls :func:`prepare_data` and
:func:`run_training`, and turns :class:`TrainingError` into a one-line message with exit code 2
and :class:`TrainingInterrupted` into exit code 130.

The experiment
--------------
Each epoch visits every training sample once inside one compiled call
(:meth:`jitnet.Network.train_epoch`); the order is a fresh permutation drawn from one
``numpy.random.Generator`` (or file order with ``shuffle=False``). Every ``eval_every`` epochs, and
after the last one, the network is evaluated on the validation set -- the last ``validation``
training samples, held out -- or, with ``validation=0``, on the test set as the tutorial did. The
network with the lowest validation error is kept as the best model; its test error is measured
once at the end. Training stops after ``patience`` consecutive evaluations whose error is higher
than the best so far (``patience=1`` is the tutorial's rule: stop as soon as the error rises), or
after ``epochs`` epochs.

Checkpoints
-----------
A checkpoint is an ``.npz`` file written atomically (temporary file, fsync, rename) with

* ``net/<key>``: the current network, ``Network.to_arrays()``;
* ``best/<key>``: the best network so far (absent before the first evaluation);
* ``state/json``: UTF-8 JSON as a ``uint8`` array: format name and version, the full
  :class:`TrainConfig`, a description and fingerprint of the data, the number of completed
  epochs, the generator's ``bit_generator.state``, every epoch's loss, the history of every
  evaluation, the best epoch and error, the stopping counter and the accumulated timings.

A checkpoint always describes the state at the end of a completed epoch, so a run that is killed
(or interrupted with Ctrl-C in the middle of an epoch) and resumed draws the same permutations and
performs the same float operations as one that ran straight through: in float64 the final weights
are bitwise equal.

On resume, the options in :data:`RESUME_FIXED` must equal the saved ones (they define the
experiment), while those in :data:`RESUME_OVERRIDABLE` may change: ``epochs`` to extend a run (never
below the epochs already completed), ``patience`` and ``eval_every`` to change when it stops, and
where files go. The data may come from another directory, but it must be the same data (same
shapes and fingerprint).

Extending a finished run with a larger ``epochs`` continues it exactly -- the weights after each
epoch are those of a run started with the larger ``epochs`` -- but the evaluation it made after its
old last epoch stays in its history, in the choice of the best model and in the stopping count:
with ``eval_every=3``, a 2-epoch run extended to 6 epochs has evaluations after epochs 2, 3 and 6,
where a straight 6-epoch run has them after 3 and 6.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jitnet._atomic import atomic_save_npz, atomic_write_bytes
from jitnet._machine import machine_info

CHECKPOINT_FORMAT = "jitnet-checkpoint"
CHECKPOINT_VERSION = 1
MODEL_META_FORMAT = "jitnet-model-info"
CHECKPOINT_NAME = "checkpoint.npz"
MODEL_NAME = "model.npz"
NET_PREFIX = "net/"
BEST_PREFIX = "best/"
STATE_KEY = "state/json"
#: Extra key in a saved model: how its inputs were scaled and how it was trained (JSON, uint8).
MODEL_META_KEY = "jitnet_train_info"

#: Options that define the experiment: a resumed run must use the saved values.
RESUME_FIXED = (
    "hidden",
    "rate",
    "dtype",
    "seed",
    "shuffle",
    "validation",
    "raw_pixels",
    "train_limit",
    "test_limit",
)
#: Options a resumed run may change.
RESUME_OVERRIDABLE = (
    "epochs",
    "eval_every",
    "patience",
    "data",
    "checkpoint_dir",
    "checkpoint_every",
    "output",
    "report",
)

# The shuffling generator gets its own stream, distinct from the one that draws the weights.
_SHUFFLE_SPAWN_KEY = (1,)


class TrainingError(ValueError):
    """A problem the user can fix (bad option combination, bad checkpoint); one-line message."""


class CheckpointError(TrainingError):
    """A checkpoint that is missing, truncated, not a jitnet checkpoint or not for this run."""


class TrainingInterrupted(Exception):
    """Raised after Ctrl-C, once the state of the last completed epoch has been saved.

    Attributes
    ----------
    checkpoint : pathlib.Path
        The checkpoint that was written.
    epoch : int
        The last completed epoch, the one the checkpoint describes.
    """

    def __init__(self, checkpoint, epoch):
        super().__init__(f"interrupted; the state after epoch {epoch} is saved in {checkpoint}")
        self.checkpoint = Path(checkpoint)
        self.epoch = epoch


# --------------------------------------------------------------------------------------------
# Configuration and data
# --------------------------------------------------------------------------------------------


def _one_line(text):
    return " ".join(str(text).split())


def _is_int(value):
    """An integer that is not a bool (JSON's true and false are ints to Python)."""
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    )


def _is_real(value):
    """A real number that is not a bool."""
    return isinstance(value, (numbers.Real, np.floating, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    )


@dataclass(frozen=True)
class TrainConfig:
    """Everything that describes one training run.

    Attributes
    ----------
    hidden : tuple of int
        Hidden layer sizes; the input and output sizes come from the data.
    rate : float
        Learning rate (the tutorial's eta), > 0.
    epochs : int
        The most epochs to run.
    eval_every : int
        Evaluate every this many epochs (and after the last epoch).
    patience : int
        Stop after this many consecutive evaluations whose error is higher than the best so far.
    dtype : {"float64", "float32"}
        Floating-point type of the weights and arithmetic.
    seed : int
        Seed of the initial weights and of the shuffling.
    shuffle : bool
        Draw a fresh permutation every epoch (False: file order, as the tutorial).
    validation : int
        Number of training samples held out at the end for the stopping rule; 0 = use the test set.
    raw_pixels : bool
        Feed raw 0-255 pixels (the tutorial) instead of pixels scaled to [0, 1].
    train_limit, test_limit : int or None
        Use only the first N training / test samples.
    data : str or None
        Directory of a dataset in MNIST's file layout; None = the shipped MNIST.
    checkpoint_dir : str
        Directory of ``checkpoint.npz`` (and of ``model.npz`` unless ``output`` is given).
    checkpoint_every : int
        Save a checkpoint every this many epochs; 0 = only at the end and on Ctrl-C.
    output : str or None
        Where to save the best model; None = ``checkpoint_dir/model.npz``.
    report : str or None
        Where to write the JSON report; None = no report.
    """

    hidden: tuple = (300,)
    rate: float = 0.3
    epochs: int = 40
    eval_every: int = 10
    patience: int = 1
    dtype: str = "float64"
    seed: int = 0
    shuffle: bool = True
    validation: int = 10000
    raw_pixels: bool = False
    train_limit: int | None = None
    test_limit: int | None = None
    data: str | None = None
    checkpoint_dir: str = "checkpoints"
    checkpoint_every: int = 10
    output: str | None = None
    report: str | None = None

    def __post_init__(self):
        # Types first (a configuration may come from a checkpoint's JSON), normalised to plain
        # Python values so that to_dict() is always JSON-ready.
        def fail(name, what):
            raise TrainingError(f"{name} must be {what}, got {getattr(self, name)!r}")

        if isinstance(self.hidden, (str, bytes)) or not hasattr(self.hidden, "__iter__"):
            fail("hidden", "a sequence of layer sizes")
        if not all(_is_int(h) for h in self.hidden):
            fail("hidden", "a sequence of integer layer sizes")
        hidden = tuple(int(h) for h in self.hidden)
        object.__setattr__(self, "hidden", hidden)
        if not hidden or min(hidden) < 1:
            raise TrainingError(f"hidden layer sizes must be positive integers, got {list(hidden)}")
        if not (_is_real(self.rate) and math.isfinite(self.rate) and self.rate > 0):
            raise TrainingError(f"the learning rate must be a positive number, got {self.rate!r}")
        object.__setattr__(self, "rate", float(self.rate))
        if self.dtype not in ("float64", "float32"):
            raise TrainingError(f"dtype must be float64 or float32, got {self.dtype!r}")
        for name in ("epochs", "eval_every", "patience", "validation", "checkpoint_every", "seed",
                     "train_limit", "test_limit"):
            value = getattr(self, name)
            if value is None and name in ("train_limit", "test_limit"):
                continue
            if not _is_int(value):
                fail(name, "an integer")
            object.__setattr__(self, name, int(value))
        for name in ("epochs", "eval_every", "patience", "train_limit", "test_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise TrainingError(f"{name} must be at least 1, got {value}")
        for name in ("validation", "checkpoint_every", "seed"):
            if getattr(self, name) < 0:
                raise TrainingError(f"{name} must not be negative, got {getattr(self, name)}")
        for name in ("shuffle", "raw_pixels"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                fail(name, "True or False")
            object.__setattr__(self, name, bool(getattr(self, name)))
        for name in ("data", "checkpoint_dir", "output", "report"):
            value = getattr(self, name)
            if value is None and name != "checkpoint_dir":
                continue
            if not isinstance(value, (str, os.PathLike)):
                fail(name, "a path")
            object.__setattr__(self, name, os.fspath(value))

    @property
    def input_scale(self):
        """The engine's ``scale`` argument: None (1/255 for uint8 pixels) or 1.0 for raw pixels."""
        return 1.0 if self.raw_pixels else None

    @property
    def model_path(self):
        """Where the best model is saved."""
        if self.output is not None:
            return Path(self.output)
        return Path(self.checkpoint_dir) / MODEL_NAME

    @property
    def checkpoint_path(self):
        """Where checkpoints are saved."""
        return Path(self.checkpoint_dir) / CHECKPOINT_NAME

    def to_dict(self):
        """JSON-ready dictionary of all fields."""
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d):
        """Inverse of :meth:`to_dict`; unknown keys are ignored.

        Raises
        ------
        TrainingError
            When ``d`` is not a dict or a value has the wrong type or range.
        """
        if not isinstance(d, dict):
            raise TrainingError(f"a configuration must be a dict, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class Splits:
    """The data of one run.

    Attributes
    ----------
    train : Dataset
        Samples trained on.
    val : Dataset
        Samples the stopping rule looks at (the test set when ``val_is_test``).
    test : Dataset
        Samples the final test error is measured on.
    val_is_test : bool
        True with ``validation=0`` (the tutorial stopped on the test error).
    info : dict
        Sizes, shapes and a fingerprint of the data, stored in checkpoints.
    """

    train: object
    val: object
    test: object
    val_is_test: bool
    info: dict = field(default_factory=dict)

    @property
    def label(self):
        """What the stopping rule's error is called in output: ``'test'`` or ``'val'``."""
        return "test" if self.val_is_test else "val"


def _crc(crc, array):
    return zlib.crc32(memoryview(np.ascontiguousarray(array)).cast("B"), crc)


def data_fingerprint(*datasets):
    """CRC-32 of the images and labels of ``datasets``, as 8 hex digits."""
    crc = 0
    for ds in datasets:
        crc = _crc(crc, ds.images)
        crc = _crc(crc, ds.labels)
    return f"{crc:08x}"


def prepare_data(config, train, test):
    """Apply the limits and the validation hold-out of ``config`` to the loaded data.

    Parameters
    ----------
    config : TrainConfig
    train, test : Dataset
        As returned by :func:`jitnet.load_mnist`.

    Returns
    -------
    Splits

    Raises
    ------
    TrainingError
        When the hold-out leaves no training samples or the data is empty or inconsistent.
    """
    if config.train_limit is not None:
        train = train[: config.train_limit]
    if config.test_limit is not None:
        test = test[: config.test_limit]
    if len(test) == 0:
        raise TrainingError("the test set is empty")
    if config.validation >= len(train):
        raise TrainingError(
            f"--validation {config.validation} leaves no samples to train on: "
            f"the training set has {len(train):,} samples"
        )
    if train.images.shape[1] != test.images.shape[1]:
        raise TrainingError(
            f"training images have {train.images.shape[1]} pixels but test images "
            f"have {test.images.shape[1]}"
        )
    if config.validation:
        fit, val = train.split(config.validation)
    else:
        fit, val = train, test
    n_classes = int(max(fit.n_classes, test.n_classes))
    info = {
        "n_inputs": int(fit.images.shape[1]),
        "n_classes": n_classes,
        "image_shape": [int(s) for s in fit.image_shape] if fit.image_shape else None,
        "n_train": len(fit),
        "n_val": len(val) if config.validation else 0,
        "n_test": len(test),
        "fingerprint": data_fingerprint(fit, val, test) if config.validation
        else data_fingerprint(fit, test),
    }
    return Splits(fit, val, test, not config.validation, info)


def network_sizes(config, splits):
    """Layer sizes ``[n_inputs, *hidden, n_classes]`` of the network for ``config``, ``splits``."""
    return [splits.info["n_inputs"], *config.hidden, splits.info["n_classes"]]


def _same_file(a, b):
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)  # hard links, and what resolve() cannot see
    except OSError:  # one of them does not exist (yet)
        return False


def _directory_problem(directory):
    """Why ``directory`` cannot be created or written to, or None if it can (as far as one can
    tell without creating it)."""
    for existing in (directory, *directory.parents):
        if existing.is_dir():
            break
        if existing.exists() or existing.is_symlink():
            return f"{existing} is not a directory"
    else:
        return None
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"no permission to write in {existing}"
    return None


def prepare_output(config):
    """Check and create the directories a run writes to, before any training time is spent.

    The checkpoint, the best model and the report (when asked for) must be three different files
    whose directories exist or can be created, and are writable. Nothing is created unless every
    check passes.

    Parameters
    ----------
    config : TrainConfig

    Raises
    ------
    TrainingError
        With a one-line message naming the option and the path.
    """
    files = [
        ("checkpoint", config.checkpoint_path, "--checkpoint-dir"),
        ("model", config.model_path, "--output"),
    ]
    if config.report is not None:
        files.append(("report", Path(config.report), "--report"))
    for i, (what, path, option) in enumerate(files):
        for other, other_path, _ in files[:i]:
            if _same_file(path, other_path):
                raise TrainingError(
                    f"{option} {path} is the {other} file: the {what} would overwrite it; "
                    f"give the {what} another path"
                )
    for what, path, option in files:
        shown = path.parent if what == "checkpoint" else path
        if path.is_dir():
            raise TrainingError(f"{option} {shown}: the {what} file {path} is a directory")
        problem = _directory_problem(path.parent)
        if problem:
            raise TrainingError(f"{option} {shown}: cannot write the {what} there: {problem}")
    for what, path, option in files:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            shown = path.parent if what == "checkpoint" else path
            raise TrainingError(
                f"{option} {shown}: cannot create the directory {path.parent} "
                f"({exc.strerror or exc})"
            ) from None


# --------------------------------------------------------------------------------------------
# State, checkpoints and model files
# --------------------------------------------------------------------------------------------


def _json_bytes(obj):
    return np.frombuffer(json.dumps(obj, sort_keys=True).encode("utf-8"), dtype=np.uint8)


def _json_load(array):
    return json.loads(np.asarray(array, dtype=np.uint8).tobytes().decode("utf-8"))


def _stored(kinds, key=None, **kwargs):
    """A :class:`TrainState` field kept in the checkpoint's JSON under ``key`` (default: its
    name); ``kinds`` are the JSON types it may have (None: may be null)."""
    return field(metadata={"json": key, "kinds": kinds}, **kwargs)


@dataclass
class TrainState:
    """The state of a run at the end of a completed epoch: everything a checkpoint holds.

    ``net_arrays`` and ``best_arrays`` are stored as arrays; every other field is stored in the
    checkpoint's JSON (see :meth:`meta`).
    """

    config: TrainConfig = _stored((dict,))
    data_info: dict = _stored((dict,), key="data")
    epoch: int = _stored((int,))
    rng_state: dict = _stored((dict,))
    net_arrays: dict
    best_arrays: dict | None = None
    best_epoch: int | None = _stored((int, None), default=None)
    best_error: float | None = _stored((float, None), default=None)
    bad_evals: int = _stored((int,), default=0)
    losses: list = _stored((list,), default_factory=list)
    history: list = _stored((list,), default_factory=list)
    train_seconds: float = _stored((float,), default=0.0)
    eval_seconds: float = _stored((float,), default=0.0)
    elapsed_seconds: float = _stored((float,), default=0.0)
    stop_reason: str | None = _stored((str, None), default=None)
    # Networks already built from net_arrays / best_arrays (by load_checkpoint, which builds them
    # to validate the file), handed to the first caller of network() / best_network().
    _built: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def meta(self):
        """The JSON part of the checkpoint."""
        meta = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION}
        for f in _stored_fields():
            value = getattr(self, f.name)
            meta[f.metadata["json"] or f.name] = value.to_dict() if f.name == "config" else value
        return meta

    def network(self):
        """The current network, a :class:`jitnet.Network` holding ``net_arrays``.

        The caller owns it (it may train it): only the first call may return the network that
        :func:`load_checkpoint` built; later calls build a new one.
        """
        return self._take("net", self.net_arrays, "network")

    def best_network(self):
        """The best network so far (None before the first evaluation); see :meth:`network`."""
        if self.best_arrays is None:
            return None
        return self._take("best", self.best_arrays, "best network")

    def _take(self, key, arrays, what):
        net = self._built.pop(key, None)
        return net if net is not None else _network_from_arrays(arrays, f"checkpoint {what}")


def _stored_fields():
    """The fields of :class:`TrainState` kept in the checkpoint's JSON."""
    return [f for f in dataclasses.fields(TrainState) if "json" in f.metadata]


def save_checkpoint(path, state):
    """Write ``state`` to ``path`` atomically (the previous file stays intact until the rename).

    Parameters
    ----------
    path : str or os.PathLike
    state : TrainState
    """
    arrays = {NET_PREFIX + k: v for k, v in state.net_arrays.items()}
    if state.best_arrays is not None:
        arrays.update({BEST_PREFIX + k: v for k, v in state.best_arrays.items()})
    arrays[STATE_KEY] = _json_bytes(state.meta())
    atomic_save_npz(path, arrays)


def _read_npz(path, what):
    """All arrays of an ``.npz`` file (a checkpoint or a model), or a one-line error naming it."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise CheckpointError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise CheckpointError(f"{what} {path} is a directory, not a file") from None
    except Exception as exc:  # zipfile.BadZipFile, ValueError, EOFError, OSError, ...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"{what} {path} is truncated or not an .npz file ({reason})"
        ) from None


def _network_from_arrays(arrays, source):
    """``Network.from_arrays`` with its ModelFileError (a ValueError) as a CheckpointError."""
    from jitnet.network import Network

    try:
        return Network.from_arrays(arrays, source=str(source))
    except ValueError as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(message) from None


def _stored_value(meta, f):
    """The value of field ``f`` in a checkpoint's JSON, checked against the field's kinds."""
    key = f.metadata["json"] or f.name
    if key not in meta:
        raise CheckpointError(f"missing field {key!r}")
    value = meta[key]
    kinds = f.metadata["kinds"]
    if value is None and None in kinds:
        return None
    if int in kinds and _is_int(value):
        return value
    if float in kinds and _is_real(value) and math.isfinite(value):
        return float(value)
    if any(kind in (dict, list, str) and isinstance(value, kind) for kind in kinds):
        return value
    names = " or ".join("null" if k is None else {float: "number"}.get(k, k.__name__)
                        for k in kinds)
    raise CheckpointError(f"field {key!r} is {json.dumps(value)[:40]}, not {names}")


def _check_state(state):
    """The consistency checks of a checkpoint's state; a CheckpointError says what is wrong."""
    config = state.config
    if not 0 <= state.epoch <= config.epochs:
        raise CheckpointError(f"epoch {state.epoch} is outside 0..{config.epochs}")
    if len(state.losses) != state.epoch:
        raise CheckpointError(f"{len(state.losses)} epoch losses for epoch {state.epoch}")
    if not all(_is_real(loss) for loss in state.losses):
        raise CheckpointError("an epoch loss is not a number")
    if not all(isinstance(record, dict) for record in state.history):
        raise CheckpointError("an evaluation in its history is not a JSON object")
    best = (state.best_arrays is not None, state.best_epoch is not None,
            state.best_error is not None)
    if any(best) and not all(best):
        raise CheckpointError("its best model, best epoch and best error do not go together")
    if state.best_epoch is not None and not 1 <= state.best_epoch <= state.epoch:
        raise CheckpointError(f"best epoch {state.best_epoch} is outside 1..{state.epoch}")
    if state.best_error is not None and not 0 <= state.best_error <= 1:
        raise CheckpointError(f"best error {state.best_error} is not a fraction in [0, 1]")
    if state.bad_evals < 0:
        raise CheckpointError(f"negative count of bad evaluations {state.bad_evals}")


def _checkpoint_from_arrays(arrays, path):
    """The validated TrainState of a checkpoint's arrays; its networks are built once here."""
    if STATE_KEY not in arrays:
        raise CheckpointError(f"{path} is not a jitnet training checkpoint (no {STATE_KEY})")
    try:
        meta = _json_load(arrays[STATE_KEY])
    except (ValueError, UnicodeDecodeError):
        raise CheckpointError(
            f"checkpoint {path} is corrupt: its state is not valid JSON"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a jitnet training checkpoint")
    if meta.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {meta.get('version')}; "
            f"this jitnet reads version {CHECKPOINT_VERSION}"
        )
    net_arrays = {k[len(NET_PREFIX):]: v for k, v in arrays.items() if k.startswith(NET_PREFIX)}
    best_arrays = {k[len(BEST_PREFIX):]: v for k, v in arrays.items() if k.startswith(BEST_PREFIX)}
    if not net_arrays:
        raise CheckpointError(f"checkpoint {path} is corrupt: it holds no network")
    try:
        values = {f.name: _stored_value(meta, f) for f in _stored_fields()}
        values["config"] = TrainConfig.from_dict(values["config"])
        state = TrainState(net_arrays=net_arrays, best_arrays=best_arrays or None, **values)
        _check_state(state)
    except (TrainingError, KeyError, TypeError, AttributeError) as exc:
        reason = exc if isinstance(exc, TrainingError) else f"bad field ({exc!r})"
        raise CheckpointError(f"checkpoint {path} is corrupt: {_one_line(reason)}") from None
    try:
        _restore_generator(state.rng_state)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise CheckpointError(f"checkpoint {path} is corrupt: bad random generator state") from None
    # Build the networks now, so that a bad file fails before any data is loaded; the state keeps
    # them for the first caller of network() and best_network().
    net = _network_from_arrays(net_arrays, path)
    expected = [state.data_info.get("n_inputs"), *state.config.hidden,
                state.data_info.get("n_classes")]
    if list(net.sizes) != expected or net.dtype.name != state.config.dtype:
        raise CheckpointError(
            f"checkpoint {path} is corrupt: its network ({_sizes_text(net.sizes)}, "
            f"{net.dtype.name}) does not match its configuration"
        )
    state._built["net"] = net
    if state.best_arrays is not None:
        best = _network_from_arrays(state.best_arrays, path)
        if best.sizes != net.sizes or best.dtype != net.dtype:
            raise CheckpointError(
                f"checkpoint {path} is corrupt: its best network ({_sizes_text(best.sizes)}, "
                f"{best.dtype.name}) does not match its network"
            )
        state._built["best"] = best
    return state


def load_checkpoint(path):
    """Read and validate a checkpoint.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    TrainState
        Its :meth:`~TrainState.network` and :meth:`~TrainState.best_network` are already built.

    Raises
    ------
    CheckpointError
        With a one-line message naming ``path`` when the file is missing, truncated, not a jitnet
        checkpoint, holds fields of the wrong type or arrays that do not describe its network.
    """
    path = Path(path)
    return _checkpoint_from_arrays(_read_npz(path, "checkpoint"), path)


def _option(name):
    return "--" + name.replace("_", "-")


def _option_value(name, value):
    if name == "hidden":
        return ",".join(str(h) for h in value)
    if isinstance(value, bool):
        return {"shuffle": "--shuffle" if value else "--no-shuffle"}.get(name, str(value).lower())
    return "none" if value is None else str(value)


def resume_config(state, requested, checkpoint_path):
    """The configuration of a resumed run.

    Parameters
    ----------
    state : TrainState
        The checkpoint being resumed (:func:`load_checkpoint`).
    requested : dict
        Options the user gave explicitly on this command line, by field name.
    checkpoint_path : str or os.PathLike
        The checkpoint being resumed; its directory is the default ``checkpoint_dir``.

    Returns
    -------
    TrainConfig
        The saved configuration with the overridable options replaced by the requested ones
        (``report`` is not carried over: without a requested one, there is none).

    Raises
    ------
    CheckpointError
        When a requested option in :data:`RESUME_FIXED` differs from the saved value, or
        ``epochs`` is below the epochs the checkpoint has already completed.
    """
    saved = state.config
    changes = {}
    for name, value in requested.items():
        if name in RESUME_FIXED:
            saved_value = getattr(saved, name)
            if name == "hidden":
                value = tuple(value)
            if value != saved_value:
                raise CheckpointError(
                    f"checkpoint {checkpoint_path} was saved with {_option(name)} "
                    f"{_option_value(name, saved_value)}, not {_option_value(name, value)}; "
                    f"only {', '.join(_option(n) for n in RESUME_OVERRIDABLE)} may change on resume"
                )
        elif name in RESUME_OVERRIDABLE:
            changes[name] = value
        else:
            raise TrainingError(f"unknown option {name!r}")
    epochs = changes.get("epochs", saved.epochs)
    if epochs < state.epoch:
        raise CheckpointError(
            f"checkpoint {checkpoint_path} has completed {state.epoch} epochs; --epochs {epochs} "
            f"would end before them (give --epochs {state.epoch} or more)"
        )
    if "checkpoint_dir" not in changes:
        changes["checkpoint_dir"] = str(Path(checkpoint_path).parent)
    if "report" not in changes:
        changes["report"] = None
    return dataclasses.replace(saved, **changes)


def check_resume_data(state, splits, checkpoint_path):
    """Refuse to resume ``state`` on data other than the data it was trained on.

    Raises
    ------
    CheckpointError
        When sizes, shapes or the fingerprint differ.
    """
    saved = state.data_info
    new = splits.info
    for key, what in (
        ("n_inputs", "inputs per sample"),
        ("n_classes", "classes"),
        ("n_train", "training samples"),
        ("n_val", "validation samples"),
        ("n_test", "test samples"),
    ):
        if saved.get(key) != new.get(key):
            raise CheckpointError(
                f"checkpoint {checkpoint_path} was trained on data with {saved.get(key)} {what}; "
                f"this data has {new.get(key)}"
            )
    if saved.get("fingerprint") != new.get("fingerprint"):
        raise CheckpointError(
            f"checkpoint {checkpoint_path} was trained on different data "
            f"(fingerprint {saved.get('fingerprint')}, this data {new.get('fingerprint')})"
        )


def save_model(path, net_arrays, info):
    """Save a model atomically: the network arrays plus a JSON description (:data:`MODEL_META_KEY`).

    Parameters
    ----------
    path : str or os.PathLike
    net_arrays : dict
        ``Network.to_arrays()``.
    info : dict
        JSON-ready; ``input_scale`` (None or 1.0) is what :func:`load_model` returns to callers.
    """
    arrays = dict(net_arrays)
    arrays[MODEL_META_KEY] = _json_bytes({"format": MODEL_META_FORMAT, **info})
    atomic_save_npz(path, arrays)


def load_model(path):
    """Load a model saved by ``train`` or ``Network.save``, or the current network of a checkpoint.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    net : jitnet.Network
    info : dict
        The saved description (``input_scale`` among others); empty for a ``Network.save`` file.

    Raises
    ------
    CheckpointError
        With a one-line message naming ``path``.
    """
    path = Path(path)
    arrays = _read_npz(path, "model file")  # read once, whichever kind of file it is
    if STATE_KEY in arrays:
        state = _checkpoint_from_arrays(arrays, path)
        return state.network(), {
            "input_scale": state.config.input_scale,
            "config": state.config.to_dict(),
            "epoch": state.epoch,
            "checkpoint": True,
        }
    info = {}
    if MODEL_META_KEY in arrays:
        try:
            info = _json_load(arrays.pop(MODEL_META_KEY))
        except (ValueError, UnicodeDecodeError):
            raise CheckpointError(
                f"model file {path} is corrupt: its description is not JSON"
            ) from None
        if not isinstance(info, dict):
            raise CheckpointError(f"model file {path} is corrupt: bad description")
        scale = info.get("input_scale")
        if scale is not None and not (_is_real(scale) and math.isfinite(scale) and scale > 0):
            raise CheckpointError(
                f"model file {path} is corrupt: input_scale {json.dumps(scale)[:40]} is not a "
                f"positive number"
            )
    # A plain model: Network.from_arrays, the reader of Network.load, on the arrays read above.
    return _network_from_arrays(arrays, path), info


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


class Reporter:
    """Receives what a run has to say; the default one says nothing.

    :func:`run_training` only calls these four methods, so any object that has them will do: the
    command line's reporter (``jitnet.cli._ClickReporter``, which prints evaluation lines on stdout
    and diagnostics and a progress bar on stderr) does not derive from this class.
    """

    def message(self, text):
        """A diagnostic line (compile time, checkpoint written, ...)."""

    def evaluation(self, line, record):
        """One evaluation: the formatted line and the history record."""

    def epoch_progress(self, epoch, epochs, n_samples):
        """Return a callable(n_done) for the engine's progress, or None."""
        return None

    def epoch_done(self, epoch):
        """Called after each epoch's training (to clear a progress bar)."""


@dataclass
class TrainResult:
    """What :func:`run_training` returns.

    Attributes
    ----------
    state : TrainState
        The final state (also in the final checkpoint).
    test_error : float
        Test error of the best model, a fraction in [0, 1].
    stop_reason : {"epochs", "patience"}
    compile_seconds : float
    model_path, checkpoint_path : pathlib.Path
    report : dict
        The JSON report (also written to ``config.report`` when given).
    """

    state: TrainState
    test_error: float
    stop_reason: str
    compile_seconds: float
    model_path: Path
    checkpoint_path: Path
    report: dict


def format_evaluation(record, epochs, label="val"):
    """One line per evaluation.

    Example: ``epoch 10/40  loss 0.0123  val error 1.91%  212,000 samples/s  4.8 s``.
    """
    width = len(str(epochs))
    return (
        f"epoch {record['epoch']:>{width}}/{epochs}  loss {record['loss']:.4f}  "
        f"{label} error {100 * record['val_error']:.2f}%  "
        f"{record['samples_per_second']:,.0f} samples/s  {record['elapsed_seconds']:.1f} s"
    )


def _sizes_text(sizes):
    return "-".join(str(int(s)) for s in sizes)


def _restore_generator(rng_state):
    rng = np.random.default_rng(0)
    rng.bit_generator.state = rng_state
    return rng


def _report(state, result_fields, splits, compile_seconds, status):
    epochs_done = state.epoch
    n_train = state.data_info["n_train"]
    seconds_per_epoch = state.train_seconds / epochs_done if epochs_done else None
    samples_per_second = (
        epochs_done * n_train / state.train_seconds if state.train_seconds > 0 else None
    )
    return {
        "status": status,
        "config": state.config.to_dict(),
        "sizes": network_sizes(state.config, splits),
        "data": state.data_info,
        "validation_set": "test" if splits.val_is_test else "held-out training samples",
        "epochs_completed": epochs_done,
        "stop_reason": state.stop_reason,
        "best_epoch": state.best_epoch,
        "best_val_error": state.best_error,
        "history": state.history,
        "epoch_losses": state.losses,
        "seconds_per_epoch": seconds_per_epoch,
        "samples_per_second": samples_per_second,
        "compile_seconds": compile_seconds,
        "train_seconds": state.train_seconds,
        "eval_seconds": state.eval_seconds,
        "elapsed_seconds": state.elapsed_seconds,
        "machine": machine_info(),
        **result_fields,
    }


def write_report(path, report):
    """Write ``report`` as indented JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(report, indent=2) + "\n").encode("utf-8"))


def stopping_update(best_error, bad_evals, error):
    """The stopping rule's bookkeeping for one evaluation.

    An error below the best so far is an improvement and resets the count; an error above it
    counts against ``patience``; an error equal to it leaves the count as it is. With patience 1
    this is the tutorial's rule, "stop when the error is higher than at the previous
    evaluation", since every evaluation that does not stop the run is then the best so far.

    Parameters
    ----------
    best_error : float or None
        Lowest error so far (None before the first evaluation).
    bad_evals : int
        Consecutive evaluations above the best so far.
    error : float
        This evaluation's error.

    Returns
    -------
    improved : bool
    bad_evals : int
        The new count; training stops when it reaches ``patience``.
    """
    if best_error is None or error < best_error:
        return True, 0
    if error > best_error:
        return False, bad_evals + 1
    return False, bad_evals


def _noop_progress(n_done):
    """Gives the interpreter a chance to deliver Ctrl-C between the engine's chunks."""


def run_training(config, splits, resume=None, reporter=None):
    """Run (or continue) the experiment described by ``config`` on ``splits``.

    Parameters
    ----------
    config : TrainConfig
    splits : Splits
        From :func:`prepare_data`.
    resume : TrainState, optional
        A loaded checkpoint to continue; its configuration must already be merged into ``config``
        (:func:`resume_config`) and its data checked (:func:`check_resume_data`). The run takes
        over its :meth:`~TrainState.network`.
    reporter : Reporter, optional

    Returns
    -------
    TrainResult

    Raises
    ------
    TrainingError
        From :func:`prepare_output`, before anything is trained.
    TrainingInterrupted
        On Ctrl-C (KeyboardInterrupt), after saving the state of the last completed epoch.
    OSError
        When a checkpoint, the model or the report cannot be written; the checkpoint is always
        written before the model.
    """
    from jitnet.datasets import one_hot_targets
    from jitnet.network import Network, compile_kernels

    prepare_output(config)
    reporter = reporter or Reporter()
    scale = config.input_scale
    sizes = network_sizes(config, splits)
    train, val = splits.train, splits.val
    n_train = len(train)
    label = splits.label

    if resume is None:
        net = Network(sizes, dtype=config.dtype, seed=config.seed)
        rng = np.random.default_rng(
            np.random.SeedSequence(config.seed, spawn_key=_SHUFFLE_SPAWN_KEY)
        )
        state = TrainState(
            config=config,
            data_info=dict(splits.info),
            epoch=0,
            rng_state=rng.bit_generator.state,
            net_arrays=net.to_arrays(),  # copies, not views
        )
    else:
        net = resume.network()
        rng = _restore_generator(resume.rng_state)
        state = dataclasses.replace(
            resume,
            config=config,
            history=list(resume.history),
            losses=list(resume.losses),
            stop_reason=None,
        )
    best_arrays = state.best_arrays
    # The targets, built once in the network's dtype: each epoch's call then converts nothing.
    targets = one_hot_targets(train.labels, sizes[-1], net.dtype)

    reporter.message(
        f"network {_sizes_text(sizes)} {net.activation} {config.dtype}, rate {config.rate}, "
        f"{n_train:,} training samples, {label} set of {len(val):,}, "
        f"{'shuffled' if config.shuffle else 'file order'}, seed {config.seed}"
        + (", raw pixels" if config.raw_pixels else "")
    )
    if resume is not None:
        reporter.message(f"resuming after epoch {state.epoch} of {config.epochs}")
    compile_seconds = float(compile_kernels(np.dtype(config.dtype), x_dtype=train.images.dtype))
    reporter.message(f"kernels ready in {compile_seconds:.2f} s (compile or cache load)")

    checkpoint_path = config.checkpoint_path
    model_path = config.model_path
    model_info = {
        "input_scale": scale,
        "config": config.to_dict(),
        "sizes": list(sizes),
    }
    # The best epoch whose model this session has written to model_path. A resumed run writes
    # its checkpoint's best model once (model_path may have changed, or the run that saved the
    # checkpoint may have been killed before it wrote the model).
    written = None

    def save_best(state):
        nonlocal written
        save_model(model_path, state.best_arrays,
                   {**model_info, "epoch": state.best_epoch, "val_error": state.best_error})
        written = state.best_epoch

    session_start = time.perf_counter()
    elapsed_base = state.elapsed_seconds
    committed = state
    epoch = state.epoch
    since_eval_seconds, since_eval_samples = 0.0, 0
    try:
        while committed.epoch < config.epochs and committed.bad_evals < config.patience:
            epoch = committed.epoch + 1
            order = rng.permutation(n_train) if config.shuffle else None  # int64 already
            progress = reporter.epoch_progress(epoch, config.epochs, n_train) or _noop_progress
            t0 = time.perf_counter()
            loss = float(
                net.train_epoch(
                    train.images, targets, rate=config.rate, order=order, scale=scale,
                    progress=progress,
                )
            )
            train_seconds = time.perf_counter() - t0
            reporter.epoch_done(epoch)
            since_eval_seconds += train_seconds
            since_eval_samples += n_train

            history = committed.history
            best_epoch, best_error, bad_evals = (
                committed.best_epoch, committed.best_error, committed.bad_evals,
            )
            eval_seconds = 0.0
            record = None
            if epoch % config.eval_every == 0 or epoch == config.epochs:
                t1 = time.perf_counter()
                error = float(net.evaluate(val.images, val.labels, scale=scale))
                eval_seconds = time.perf_counter() - t1
                improved, bad_evals = stopping_update(best_error, bad_evals, error)
                if improved:
                    best_epoch, best_error = epoch, error
                    best_arrays = net.to_arrays()  # copies, not views
                record = {
                    "epoch": epoch,
                    "loss": loss,
                    "val_error": error,
                    "improved": improved,
                    "train_seconds": since_eval_seconds,
                    "eval_seconds": eval_seconds,
                    "samples_per_second": since_eval_samples / since_eval_seconds
                    if since_eval_seconds > 0 else 0.0,
                    "elapsed_seconds": elapsed_base + time.perf_counter() - session_start,
                }
                history = history + [record]
                since_eval_seconds, since_eval_samples = 0.0, 0

            committed = dataclasses.replace(
                committed,
                epoch=epoch,
                rng_state=rng.bit_generator.state,
                net_arrays=net.to_arrays(),  # copies, not views
                best_arrays=best_arrays,
                best_epoch=best_epoch,
                best_error=best_error,
                bad_evals=bad_evals,
                losses=committed.losses + [loss],
                history=history,
                train_seconds=committed.train_seconds + train_seconds,
                eval_seconds=committed.eval_seconds + eval_seconds,
                elapsed_seconds=elapsed_base + time.perf_counter() - session_start,
            )
            if record is not None:
                reporter.evaluation(format_evaluation(record, config.epochs, label), record)
            # The checkpoint first: a model that cannot be written must not cost the run.
            if config.checkpoint_every and epoch % config.checkpoint_every == 0:
                save_checkpoint(checkpoint_path, committed)
                reporter.message(f"checkpoint after epoch {epoch}: {checkpoint_path}")
            if record is not None and record["improved"]:
                save_best(committed)
    except KeyboardInterrupt:
        # The committed state is the end of the last completed epoch: resuming from it is exact.
        save_checkpoint(checkpoint_path, committed)
        if committed.best_arrays is not None and written != committed.best_epoch:
            save_best(committed)
        if config.report:
            write_report(
                config.report,
                _report(committed, {"test_error": None, "model": str(model_path),
                                    "checkpoint": str(checkpoint_path)},
                        splits, compile_seconds, "interrupted"),
            )
        raise TrainingInterrupted(checkpoint_path, committed.epoch) from None

    stop_reason = "patience" if committed.bad_evals >= config.patience else "epochs"
    state = dataclasses.replace(committed, stop_reason=stop_reason)
    save_checkpoint(checkpoint_path, state)

    if state.best_arrays is None:
        # No evaluation ever ran: a resumed run whose epochs equals the epochs its checkpoint
        # had completed, saved before the first evaluation. The final network stands in.
        best_net = net
        save_model(model_path, state.net_arrays, {**model_info, "epoch": state.epoch})
    else:
        if written != state.best_epoch:
            save_best(state)
        if state.best_epoch == state.epoch:
            best_net = net  # the best is the final network
        elif resume is not None and state.best_epoch == resume.best_epoch:
            best_net = resume.best_network()  # unchanged since the checkpoint
        else:
            best_net = _network_from_arrays(state.best_arrays, "best model")
    test_error = float(best_net.evaluate(splits.test.images, splits.test.labels, scale=scale))

    report = _report(
        state,
        {"test_error": test_error, "model": str(model_path), "checkpoint": str(checkpoint_path)},
        splits, compile_seconds, "finished",
    )
    if config.report:
        write_report(config.report, report)
    return TrainResult(state, test_error, stop_reason, compile_seconds, model_path,
                       checkpoint_path, report)
