"""The configuration of a run: one frozen dataclass, one line per option.

A :class:`TrainConfig` built in Python is trusted: the command line has already checked every
option (click), and :class:`jitnet.Network` checks what it is given. Values that come from a file
(a checkpoint, a sweep's JSON) enter through :meth:`TrainConfig.from_dict`, which checks each
field once.

Adding an option is one line here (default, check, whether a resumed run may change it) and one
click option with the same name in ``jitnet/cli.py``.
"""

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass, field

from jitnet.training.recipes import RECIPES
from jitnet.engine.components import ACTIVATIONS, INITS, LOSSES, check_init
from jitnet.training.errors import CheckpointError, TrainingError


# -- checks of values read from files: each returns the plain value or raises ValueError(what) --


def _integer(value, low):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"an integer >= {low}")
    return int(value)


def positive_int(value):
    return _integer(value, 1)


def count(value):
    return _integer(value, 0)


def optional_positive_int(value):
    return None if value is None else _integer(value, 1)


def number(value, low=0.0, high=math.inf, what="a finite number >= 0"):
    """A finite real number in ``[low, high]`` (bools and integers beyond float range refused)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ValueError(what)
    try:
        value = float(value)
    except OverflowError:
        raise ValueError(what) from None
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(what)
    return value


def positive_number(value):
    value = number(value, what="a positive number")
    if value == 0:
        raise ValueError("a positive number")
    return value


def fraction(value):
    return number(value, 0.0, 1.0, what="a fraction in [0, 1]")


def flag(value):
    if not isinstance(value, bool):
        raise ValueError("true or false")
    return value


def layer_sizes(value):
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError("a list of layer sizes")
    return tuple(positive_int(n) for n in value)


def dtype_name(value):
    if value not in ("float64", "float32"):
        raise ValueError('"float64" or "float32"')
    return value


def one_of(*names):
    """A check that accepts only ``names``."""
    def check(value):
        if value not in names:
            raise ValueError("one of " + ", ".join(map(json.dumps, names)))
        return value
    return check


def interval(low, high, what, open_low=False, open_high=False):
    """A check of a finite number between ``low`` and ``high``, each end open or closed."""
    def check(value):
        value = number(value, low, high, what)
        if (open_low and value == low) or (open_high and value == high):
            raise ValueError(what)
        return value
    return check


def init_name(value):
    try:
        return check_init(value)
    except (ValueError, AttributeError, TypeError):
        raise ValueError("one of " + ", ".join(INITS)) from None


def recipe_name(value):
    return None if value is None else one_of(*RECIPES)(value)


def optional_path(value):
    if value is None:
        return None
    if not isinstance(value, str) or not value or "\x00" in value:
        raise ValueError("a path (text without NUL characters)")
    return value


def shown(value):
    """``value`` as at most 40 characters of JSON, for error messages."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def checked(name, value, check):
    """``check(value)``, or a TrainingError ``'name' is VALUE, not WHAT``."""
    try:
        return check(value)
    except ValueError as exc:
        raise TrainingError(f"{name!r} is {shown(value)}, not {exc}") from None


# -- the configuration -----------------------------------------------------------------------

SCHEDULES = ("constant", "exponential", "step")
DISTORTIONS = ("none", "elastic", "affine", "both")



def _option(default, check, changeable=False):
    """A field of TrainConfig: its default, the check of a value read from a file, and whether a
    resumed run may give it a new value (the others define the experiment)."""
    return field(default=default, metadata={"check": check, "changeable": changeable})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that describes one training run; each field is a ``train`` option.

    Attributes
    ----------
    hidden : tuple of int
        Hidden layer sizes; the input and output sizes come from the data.
    rate : float
        Learning rate (the tutorial's eta).
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
    checkpoint_every : int
        Save a checkpoint every this many epochs; 0 = only at the end and on an interrupt.
    output : str or None
        A copy of the best model outside the run folder; None = none.
    report : str or None
        A copy of the JSON report outside the run folder; None = none.
    activation : {"sigmoid", "tanh", "scaled_tanh", "relu"}
        The hidden units' non-linearity (see :class:`jitnet.Network`).
    loss : {"squared", "cross_entropy"}
        The tutorial's squared error with 0.9/0.1 targets, or softmax outputs with
        cross-entropy and one-hot targets.
    init : str
        Initial weights: ``tutorial``, ``glorot``, ``lecun``, ``he`` or ``uniform:A``.
    schedule : {"constant", "exponential", "step"}
        The rate of epoch e (from 0): ``rate``, ``rate * decay**e`` or
        ``rate * decay**(e // step_every)`` (:mod:`jitnet.engine.schedules`).
    decay : float
        The schedule's factor, in (0, 1].
    step_every : int
        Epochs per step of the ``step`` schedule.
    momentum : float
        Classical momentum in [0, 1); 0 is the tutorial's plain SGD.
    distort : {"none", "elastic", "affine", "both"}
        Distort every training sample afresh each epoch (:mod:`jitnet.engine.distortion`) with the
        elastic part, the affine part or both; evaluation never distorts.
    elastic_sigma, elastic_alpha : float
        Width and scale in pixels of the elastic displacement field.
    rotate, shear : float
        ± ranges in degrees of the affine part's rotation and horizontal shear.
    scale : float
        ± fraction of the affine part's horizontal and vertical scaling (drawn independently).
    translate : float
        ± range in pixels of the affine part's shift along each axis.
    recipe : str or None
        The recipe (:mod:`jitnet.training.recipes`) the options came from, if any.
    threads : int
        Threads sharing every sample's work (:mod:`jitnet.engine.parallel`); 1 is the serial kernel.
        Part of the experiment: N threads give bitwise the same weights on every run and agree
        with one thread to rounding. More than 1 trains plain SGD only.
    """

    hidden: tuple = _option((300,), layer_sizes)
    rate: float = _option(0.3, positive_number)
    epochs: int = _option(40, positive_int, changeable=True)
    eval_every: int = _option(10, positive_int, changeable=True)
    patience: int = _option(1, positive_int, changeable=True)
    dtype: str = _option("float64", dtype_name)
    seed: int = _option(0, count)
    shuffle: bool = _option(True, flag)
    validation: int = _option(10000, count)
    raw_pixels: bool = _option(False, flag)
    train_limit: int = _option(None, optional_positive_int)
    test_limit: int = _option(None, optional_positive_int)
    data: str = _option(None, optional_path, changeable=True)
    checkpoint_every: int = _option(10, count, changeable=True)
    output: str = _option(None, optional_path, changeable=True)
    report: str = _option(None, optional_path, changeable=True)
    activation: str = _option("sigmoid", one_of(*ACTIVATIONS))
    loss: str = _option("squared", one_of(*LOSSES))
    init: str = _option("tutorial", init_name)
    schedule: str = _option("constant", one_of(*SCHEDULES))
    decay: float = _option(0.95, interval(0, 1, "a factor in (0, 1]", open_low=True))
    step_every: int = _option(10, positive_int)
    momentum: float = _option(0.0, interval(0, 1, "a momentum in [0, 1)", open_high=True))
    distort: str = _option("none", one_of(*DISTORTIONS))
    elastic_sigma: float = _option(4.0, number)
    elastic_alpha: float = _option(34.0, number)
    rotate: float = _option(15.0, interval(0, 180, "an angle in [0, 180]"))
    scale: float = _option(0.15, interval(0, 1, "a fraction in [0, 1)", open_high=True))
    shear: float = _option(15.0, interval(0, 90, "an angle in [0, 90)", open_high=True))
    translate: float = _option(0.0, number)
    recipe: str = _option(None, recipe_name)
    threads: int = _option(1, positive_int)

    @property
    def schedule_spec(self):
        """The schedule as :func:`jitnet.engine.schedules.make_schedule` takes it."""
        if self.schedule == "exponential":
            return f"exponential:{self.decay!r}"
        if self.schedule == "step":
            return f"step:{self.decay!r}:{self.step_every}"
        return "constant"

    @property
    def distortion(self):
        """The :class:`jitnet.Distortion` of ``distort`` (None for ``none``): the elastic part
        from ``elastic_sigma``/``elastic_alpha``, the affine part from ``rotate``, ``scale``,
        ``shear`` and ``translate``; a part that is not chosen is 0.

        Raises
        ------
        TrainingError
            One line naming the option that does not fit (an elastic part with
            ``elastic_sigma`` 0, a value out of range).
        """
        if self.distort == "none":
            return None
        from jitnet.engine.distortion import Distortion

        parts = {}
        if self.distort in ("elastic", "both"):
            if self.elastic_alpha > 0 and self.elastic_sigma == 0:
                raise TrainingError("--elastic-sigma must be positive for an elastic "
                                    f"distortion (--elastic-alpha {self.elastic_alpha:g})")
            parts.update(elastic_sigma=self.elastic_sigma, elastic_alpha=self.elastic_alpha)
        if self.distort in ("affine", "both"):
            parts.update(rotate=self.rotate, scale_x=self.scale, scale_y=self.scale,
                         shear=self.shear, translate=self.translate)
        try:
            return Distortion(**parts)
        except ValueError as exc:
            raise TrainingError(str(exc)) from None

    @property
    def input_scale(self):
        """The engine's ``scale`` argument: None (1/255 for uint8 pixels) or 1.0 for raw pixels."""
        return 1.0 if self.raw_pixels else None

    @property
    def stopping_set(self):
        """What the stopping rule measures: ``"val"`` (held-out training samples) or ``"test"``
        (``validation=0``, as the tutorial did)."""
        return "val" if self.validation else "test"

    @property
    def error_key(self):
        """The key of the stopping rule's error in an epoch record: ``val_error`` or
        ``test_error``."""
        return f"{self.stopping_set}_error"

    def to_dict(self):
        """JSON-ready dictionary of all fields."""
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d):
        """A configuration read from a file: every field checked once; absent ones take their
        default (files written before the field existed).

        Raises
        ------
        TrainingError
            One line naming the first field that is unknown or has a bad value.
        """
        if not isinstance(d, dict):
            raise TrainingError(f"a configuration must be a JSON object, got {shown(d)}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise TrainingError(f"unknown option {shown(unknown[0])} (from a newer jitnet?)")
        return cls(**{name: checked(name, value, fields[name].metadata["check"])
                      for name, value in d.items()})


#: Options a resumed run may change; every other option defines the experiment.
CHANGEABLE = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata["changeable"])


def check_config(config, splits):
    """The checks of ``config`` that need the data, before any folder or network exists (data
    sets have at least 2 classes, so every loss fits).

    Raises
    ------
    TrainingError
        One line: a distortion that does not fit the images, or a thread count the run
        cannot use.
    """
    check_threads(config)
    distortion = config.distortion
    rows, cols = splits.train.image_shape
    if distortion is not None and distortion.elastic_sigma > max(rows, cols):
        raise TrainingError(f"--elastic-sigma {config.elastic_sigma:g} is wider than the "
                            f"{rows}x{cols} images (at most {max(rows, cols)})")


def check_threads(config):
    """Refuse (one line) a ``threads`` the network or this machine cannot use, or threads > 1
    with momentum or distortions (the multi-threaded epoch trains plain SGD)."""
    if config.threads == 1:
        return
    for name, used in (("momentum", config.momentum > 0), ("distort", config.distort != "none")):
        if used:
            raise TrainingError(f"--threads {config.threads} trains plain SGD and cannot be "
                                f"combined with {option_name(name)} "
                                f"{getattr(config, name)} (use --threads 1)")
    from jitnet.engine import parallel

    try:  # only the hidden sizes matter to the check
        parallel.check_threads(config.threads, (None, *config.hidden, None))
    except ValueError as exc:
        raise TrainingError(f"--threads: {exc}") from None


def option_name(name):
    """The command-line spelling of a field: ``eval_every`` -> ``--eval-every``."""
    return "--" + name.replace("_", "-")


def _option_text(name, value):
    if name == "hidden":
        return ",".join(str(h) for h in value)
    if name == "shuffle":
        return "--shuffle" if value else "--no-shuffle"
    if isinstance(value, bool):
        return str(value).lower()
    return "none" if value is None else str(value)


def resume_config(saved, epochs_done, changes, checkpoint_path):
    """The configuration of a resumed run.

    Parameters
    ----------
    saved : TrainConfig
        The checkpoint's configuration.
    epochs_done : int
        The epochs the checkpoint has completed.
    changes : dict
        Options given for the resumed run, by field name. Those in :data:`CHANGEABLE` replace
        the saved values; the others must equal them.
    checkpoint_path : str or os.PathLike
        Named in the errors.

    Returns
    -------
    TrainConfig

    Raises
    ------
    CheckpointError
        When an option that defines the experiment differs from the saved one, or ``epochs`` is
        below the epochs already completed.
    """
    for name, value in changes.items():
        if name not in CHANGEABLE and value != getattr(saved, name):
            raise CheckpointError(
                f"checkpoint {checkpoint_path} was saved with {option_name(name)} "
                f"{_option_text(name, getattr(saved, name))}, not {_option_text(name, value)}; "
                f"only {', '.join(option_name(n) for n in CHANGEABLE)} may change on resume"
            )
    config = dataclasses.replace(saved, **changes)
    if config.epochs < epochs_done:
        raise CheckpointError(
            f"checkpoint {checkpoint_path} has completed {epochs_done} epochs; --epochs "
            f"{config.epochs} would end before them (give --epochs {epochs_done} or more)"
        )
    return config
