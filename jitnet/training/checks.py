"""Checks of values read from files (a checkpoint, a run's ``config.json``, a sweep's options):
each returns the plain value, or raises ``ValueError(what the value should be)``, which
:func:`checked` turns into one line naming the field."""

import json
import math
import numbers

from jitnet.training.errors import TrainingError

#: The most epochs a run may have: more than any recipe needs by far, and few enough that every
#: count and time derived from it stays an ordinary number.
MAX_EPOCHS = 1_000_000


def _integer(value, low, high=None):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low or (
            high is not None and value > high):
        raise ValueError(f"an integer >= {low}" if high is None else
                         f"an integer from {low} to {high:,}")
    return int(value)


def positive_int(value):
    return _integer(value, 1)


def epoch_count(value):
    return _integer(value, 1, MAX_EPOCHS)


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


def optional_path(value):
    if value is None:
        return None
    if not isinstance(value, str) or not value or "\x00" in value:
        raise ValueError("a path (text without NUL characters)")
    return value


def optional_text(value):
    if value is None:
        return None
    if not isinstance(value, str) or not value or "\x00" in value:
        raise ValueError("a name (text without NUL characters)")
    return value


def optional_open_fraction(value):
    if value is None:
        return None
    value = number(value, 0.0, 1.0, what="a fraction in (0, 1)")
    if value in (0.0, 1.0):
        raise ValueError("a fraction in (0, 1)")
    return value


def optional_count(value):
    return None if value is None else _integer(value, 0)


def optional_image_shape(value):
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError("[rows, cols] of positive integers")
    return tuple(positive_int(n) for n in value)


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
