"""The configuration of a run: one frozen dataclass, one line per option, recipes resolved.

A recipe (:mod:`jitnet.training.recipes`) fills the options that are not given:
``TrainConfig(recipe="simard2003-plain", epochs=5)`` is the recipe's network, loss and rate for 5
epochs, the same configuration the command line builds from ``train --recipe simard2003-plain
--epochs 5``. Options given explicitly win over the recipe's, which win over the defaults.
:meth:`TrainConfig.from_options` is the entry for options a user typed (the command line's, a
sweep's): it also refuses unknown names and options that the others make meaningless.

A :class:`TrainConfig` built in Python is trusted: the command line has already checked every
option (click), and :class:`jitnet.Network` checks what it is given. Values that come from a file
(a checkpoint, a sweep's JSON) enter through :meth:`TrainConfig.from_dict`, which checks each
field once and never applies a recipe again (the file holds the resolved options).

Adding an option is one line here (default, check, whether a resumed run may change it) and one
click option with the same name in ``jitnet/cli/train.py``.
"""

import dataclasses
from dataclasses import dataclass, field

from jitnet.engine.components import ACTIVATIONS, INITS, LOSSES, check_init
from jitnet.training.checks import (  # noqa: F401 (fraction: the checkpoint's, from here)
    checked, count, dtype_name, epoch_count, flag, fraction, interval, layer_sizes, number,
    one_of, optional_count, optional_image_shape, optional_open_fraction, optional_path,
    optional_positive_int, optional_text, positive_int, positive_number, shown,
)
from jitnet.training.errors import TrainingError
from jitnet.training.recipes import RECIPES


# -- checks of the options' own values ---------------------------------------------------


def init_name(value):
    try:
        return check_init(value)
    except (ValueError, AttributeError, TypeError):
        raise ValueError("one of " + ", ".join(INITS)) from None


def preprocess_spec(value):
    if value == "none":
        return value
    if not isinstance(value, str):
        raise ValueError("a text: none, deslant, width:W or deslant+width:W")
    from jitnet.engine.preprocess import Preprocessing

    try:
        return str(Preprocessing.parse(value, (1, 1)) or "none")
    except ValueError:
        raise ValueError("none, deslant, width:W or deslant+width:W (W in pixels)") from None


def recipe_name(value):
    return None if value is None else one_of(*RECIPES)(value)


# -- the configuration -----------------------------------------------------------------------

SCHEDULES = ("constant", "exponential", "step")
#: The key of a run's ``config.json`` that describes its data, beside the options
#: (:func:`jitnet.training.runs.write_config`); :meth:`TrainConfig.from_dict` passes over it.
DATA_KEY = "data_source"
DISTORTIONS = ("none", "elastic", "affine", "both")


class _NotGiven:
    """The default of every field in the constructor: "take the recipe's value, else the
    default", so that an option given with its default value still wins over a recipe."""

    def __repr__(self):
        return "<the recipe's or the default>"


_NOT_GIVEN = _NotGiven()


def _option(default, check, changeable=False):
    """A field of TrainConfig: its default, the check of a value read from a file, and whether a
    resumed run may give it a new value (the others define the experiment)."""
    return field(default=_NOT_GIVEN, metadata={"default": default, "check": check,
                                               "changeable": changeable})


# Options that only matter with another option's value: (option, needs, the values it needs).
_USED_ONLY_WITH = (
    [("decay", "schedule", ("exponential", "step")), ("step_every", "schedule", ("step",))]
    + [(name, "distort", ("elastic", "both")) for name in ("elastic_sigma", "elastic_alpha")]
    + [(name, "distort", ("affine", "both")) for name in ("rotate", "scale", "shear", "translate")]
)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that describes one training run; each field is a ``train`` option.

    A field not given to the constructor takes the ``recipe``'s value, else the default below:
    ``TrainConfig(recipe="simard2003", hidden=(1000,))`` is simard2003 with 1000 hidden units.

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
    validation : int or None
        Number of training samples held out at the end for the stopping rule; 0 = use the test
        set; None = the tutorial's 10000 for IDX data, a sixth of the training set otherwise.
    raw_pixels : bool
        Feed raw 0-255 pixels (the tutorial) instead of pixels scaled to [0, 1].
    train_limit, test_limit : int or None
        Use only the first N training / test samples.
    data : str or None
        The data (:func:`jitnet.load_data`): a folder in MNIST's IDX layout, a Keras-style
        ``.npz``, or a ``.csv``/``.tsv``/``.parquet`` table; None = the shipped MNIST.
    label : str or None
        A table's label column, by name or index; None = ``label``, ``target``, ``class`` or
        ``y``, else the last column.
    test_data : str or None
        A separate test file, for data without a test set of its own.
    test_fraction : float or None
        For data without a test set and no ``test_data``: the share of each class held out as
        the test set (stratified, drawn from ``seed``); None = 0.2.
    standardize : bool
        Standardise every input feature by the training samples' mean and standard deviation
        (kept in the model, which then takes raw inputs).
    image_shape : tuple of int or None
        ``(rows, cols)``: declares the samples to be images (taken from the data when it has a
        shape: IDX files, ``(N, rows, cols)`` arrays).
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
    preprocess : str
        ``none``, or how every image is preprocessed before training and in the saved model
        (:class:`jitnet.Preprocessing`): ``deslant``, ``width:W`` (every digit stretched to W
        columns) or ``deslant+width:W``, as Meier et al. (2011) varied their committee's members.
    recipe : str or None
        The recipe (:mod:`jitnet.training.recipes`) whose options fill those not given to the
        constructor; the configuration then holds the resolved values, and this field the name.
    threads : int
        Threads sharing every sample's work (:mod:`jitnet.engine.parallel`); 1 is the serial kernel.
        Part of the experiment: N threads give bitwise the same weights on every run and agree
        with one thread to rounding, with momentum and distortions too.
    """

    hidden: tuple = _option((300,), layer_sizes)
    rate: float = _option(0.3, positive_number)
    epochs: int = _option(40, epoch_count, changeable=True)
    eval_every: int = _option(10, positive_int, changeable=True)
    patience: int = _option(1, positive_int, changeable=True)
    dtype: str = _option("float64", dtype_name)
    seed: int = _option(0, count)
    shuffle: bool = _option(True, flag)
    validation: int = _option(None, optional_count)
    raw_pixels: bool = _option(False, flag)
    train_limit: int = _option(None, optional_positive_int)
    test_limit: int = _option(None, optional_positive_int)
    data: str = _option(None, optional_path, changeable=True)
    label: str = _option(None, optional_text)
    test_data: str = _option(None, optional_path, changeable=True)
    test_fraction: float = _option(None, optional_open_fraction)
    standardize: bool = _option(False, flag)
    image_shape: tuple = _option(None, optional_image_shape)
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
    preprocess: str = _option("none", preprocess_spec)
    recipe: str = _option(None, recipe_name)
    threads: int = _option(1, positive_int)

    def __post_init__(self):
        # Resolve the recipe: every field not given takes the recipe's value, else its default.
        recipe = None if self.recipe is _NOT_GIVEN else self.recipe
        if recipe is not None and (not isinstance(recipe, str) or recipe not in RECIPES):
            raise TrainingError(f"unknown recipe {shown(recipe)}; the recipes are "
                                + ", ".join(RECIPES))
        preset = RECIPES[recipe].options if recipe is not None else {}
        for f in dataclasses.fields(self):
            if getattr(self, f.name) is _NOT_GIVEN:
                value = recipe if f.name == "recipe" else preset.get(f.name, f.metadata["default"])
                object.__setattr__(self, f.name, value)

    @classmethod
    def from_options(cls, recipe=None, **given):
        """The configuration of the options a user gave: each given option, else the recipe's
        value, else the default (as the constructor resolves them).

        Parameters
        ----------
        recipe : str, optional
            A name in :data:`jitnet.training.recipes.RECIPES`.
        **given
            Options by field name. Their values are trusted, as the constructor's are.

        Raises
        ------
        TrainingError
            One line: an unknown option or recipe, or a given option that the others make
            meaningless (``decay`` without a schedule that decays, ``rotate`` without an affine
            distortion, ...).
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(given) - names)
        if unknown:
            raise TrainingError(f"unknown option {option_name(unknown[0])}")
        config = cls(recipe=recipe, **given)
        for name, needs, allowed in _USED_ONLY_WITH:
            if name in given and getattr(config, needs) not in allowed:
                raise TrainingError(f"{option_name(name)} needs {option_name(needs)} "
                                    f"{' or '.join(allowed)} (it is {getattr(config, needs)})")
        return config

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
        return "test" if self.validation == 0 else "val"

    @property
    def error_key(self):
        """The key of the stopping rule's error in an epoch record: ``val_error`` or
        ``test_error``."""
        return f"{self.stopping_set}_error"

    def to_dict(self):
        """JSON-ready dictionary of all fields."""
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        if self.image_shape is not None:
            d["image_shape"] = list(self.image_shape)
        return d

    @classmethod
    def from_dict(cls, d):
        """A configuration read from a file (a checkpoint's, a run's ``config.json``): every field
        checked once; absent ones take their default (files written before the field existed),
        never a recipe's; the data's description (:data:`DATA_KEY`) is passed over.

        Raises
        ------
        TrainingError
            One line naming the first field that is unknown or has a bad value.
        """
        if not isinstance(d, dict):
            raise TrainingError(f"a configuration must be a JSON object, got {shown(d)}")
        d = {name: value for name, value in d.items() if name != DATA_KEY}  # config.json's
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise TrainingError(f"unknown option {shown(unknown[0])} (from a newer jitnet?)")
        values = {name: f.metadata["default"] for name, f in fields.items()}
        values.update((name, checked(name, value, fields[name].metadata["check"]))
                      for name, value in d.items())
        return cls(**values)


#: Options a resumed run may change; every other option defines the experiment.
CHANGEABLE = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata["changeable"])


def option_name(name):
    """The command-line spelling of a field: ``eval_every`` -> ``--eval-every``."""
    return "--" + name.replace("_", "-")
