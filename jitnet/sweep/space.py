"""A search space over ``train`` options: parsed from command-line strings or a TOML file.

Syntax (the same in both)
-------------------------
* A list of values, comma-separated: ``rate = "0.1,0.3,1"`` or ``--rate 0.1,0.3,1``. A single value
  fixes the option for every trial. Repeating an option (``--hidden 300 --hidden 500x150``) adds
  to its list.
* Hidden sizes: one network per item, its layers joined by ``x``: ``--hidden 100,300,500x150`` is
  three networks, 784-100-10, 784-300-10 and 784-500-150-10 (``train --hidden 500,150`` is the
  third one alone).
* A range ``LOW:HIGH`` (``--rate 0.01:1``, ``--hidden 16:512``, ``--epochs 5:20``), only with
  ``--random N``: rates and layer sizes are drawn log-uniformly, every other option uniformly;
  integers stay integers and drawn rates are rounded to 3 significant digits.
* Booleans: ``true``/``false`` (also ``yes``/``no``, ``1``/``0``); ``--raw-pixels`` alone means true,
  ``--no-shuffle`` means ``shuffle`` false. ``none`` (or ``all``) for ``train_limit``/``test_limit``.
* ``seeds = N``: every configuration with seeds 0..N-1 (instead of listing ``seed``).

The grid is the product of all lists, seed outermost (a sweep cut short has every configuration at
seed 0 first). ``--random N`` instead draws N configurations with a ``numpy.random.Generator`` seeded
by ``random_seed`` (default 0), each item of a list equally likely, so the same command draws the
same trials again.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

from jitnet.sweep.trial import PATH_OPTIONS, SweepError, check_names, check_value, option_kinds

#: Keys of a TOML file (and of ``parse_space``'s options) that shape the sweep, not a trial.
SWEEP_KEYS = ("seeds", "random", "random_seed")
#: Options drawn log-uniformly from a range: scale parameters.
LOG_SCALE = ("rate", "hidden")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


@dataclass(frozen=True)
class Range:
    """A range ``low:high`` to draw from (``--random`` only)."""

    low: float
    high: float
    log: bool
    integer: bool

    def draw(self, rng):
        """One value drawn from the range with ``rng`` (a numpy Generator)."""
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        if self.integer:
            return min(max(round(value), int(self.low)), int(self.high))
        return float(f"{value:.3g}")

    def __str__(self):
        return f"{self.low:g}:{self.high:g}"


@dataclass(frozen=True)
class Space:
    """Lists of values (or ranges) for ``train`` options, and how to turn them into trials.

    Attributes
    ----------
    dims : dict
        Option name -> tuple of items; an item is a JSON value (a list of ints for ``hidden``), or
        a :class:`Range`, or for ``hidden`` a tuple of layer sizes and ranges.
    seeds : int or None
        Run every configuration with seeds 0..seeds-1.
    random : int or None
        Draw this many configurations instead of the grid (:func:`run_sweep`'s ``random``
        overrides it).
    random_seed : int
        Seed of the draws.
    """

    dims: dict = field(default_factory=dict)
    seeds: int | None = None
    random: int | None = None
    random_seed: int = 0

    def _has_ranges(self):
        return any(_is_range(item) for items in self.dims.values() for item in items)

    def swept(self, random=None):
        """Names of the options that vary from trial to trial, in order."""
        random = self.random if random is None else random
        names = [name for name, items in self.dims.items()
                 if len(items) > 1 or (random and any(_is_range(i) for i in items))]
        if self.seeds and self.seeds > 1:
            names.append("seed")
        return names

    def size(self, random=None):
        """The number of trials (before duplicates are merged)."""
        random = self.random if random is None else random
        seeds = self.seeds or 1
        if random:
            return random * seeds
        return math.prod(len(items) for items in self.dims.values()) * seeds

    def trials(self, random=None):
        """The trials: one dict of ``train`` options each.

        Raises
        ------
        SweepError
            A range in a grid (ranges need ``random``).
        """
        random = self.random if random is None else random
        if random:
            import numpy as np

            rng = np.random.default_rng(self.random_seed)
            points = [{name: _draw(items[int(rng.integers(len(items)))], rng)
                       for name, items in self.dims.items()} for _ in range(random)]
        else:
            ranged = [name for name, items in self.dims.items() if any(map(_is_range, items))]
            if ranged:
                raise SweepError(
                    f"--{ranged[0].replace('_', '-')}: a range LOW:HIGH is drawn from only in a "
                    f"random search; add --random N, or give a list of values"
                )
            names = list(self.dims)
            points = [dict(zip(names, values))
                      for values in itertools.product(*self.dims.values())]
        if not self.seeds:
            return points
        return [{**point, "seed": seed} for seed in range(self.seeds) for point in points]


def _is_range(item):
    return isinstance(item, Range) or (isinstance(item, tuple) and any(map(_is_range, item)))


def _draw(item, rng):
    if isinstance(item, Range):
        return item.draw(rng)
    if isinstance(item, tuple):  # hidden layers, some of them ranges
        return [layer.draw(rng) if isinstance(layer, Range) else layer for layer in item]
    return item


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def _number(text, integer, where):
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        what = "an integer" if integer else "a number"
        raise SweepError(f"{where}: {text!r} is not {what}") from None
    if not integer and not math.isfinite(value):  # (an integer is finite, and may not fit a float)
        raise SweepError(f"{where}: {text!r} is not a finite number")
    return value


def _range(text, name, integer, where):
    low_text, _, high_text = text.partition(":")
    low, high = (_number(t.strip(), integer, where) for t in (low_text, high_text))
    if max(abs(low), abs(high)) > 1e300:  # drawn in floats
        raise SweepError(f"{where}: the range {text!r} is too wide to draw from")
    log = name in LOG_SCALE
    if not low < high:
        raise SweepError(f"{where}: the range {text!r} must have LOW < HIGH")
    if log and low <= 0:
        raise SweepError(f"{where}: {name} is drawn log-uniformly, so its range must be positive")
    return Range(low, high, log, integer)


def _layers(text, where):
    """``500x150`` -> [500, 150]; layers may be ranges (``16:512x32``)."""
    layers = []
    for part in text.lower().split("x"):
        part = part.strip()
        if not part:
            raise SweepError(f"{where}: empty layer size in {text!r} (layers are joined by x)")
        if ":" in part:
            layers.append(_range(part, "hidden", True, where))
        else:
            layers.append(_number(part, True, where))
    if any(isinstance(layer, Range) for layer in layers):
        return tuple(layers)
    return layers


def _item(text, name, kind, nullable, where):
    """One value of a list, from text."""
    text = text.strip()
    if not text:
        raise SweepError(f"{where}: empty value in the list")
    if nullable and text.lower() in ("none", "all"):
        return None
    if kind == "sizes":
        return _layers(text, where)
    if kind in ("int", "float") and ":" in text:
        return _range(text, name, kind == "int", where)
    if kind == "int":
        return _number(text, True, where)
    if kind == "float":
        return _number(text, False, where)
    if kind == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise SweepError(f"{where}: {text!r} is not true or false")
    if name in PATH_OPTIONS:
        return str(Path(text).expanduser().absolute())
    return text


def _items(value, name, kind, nullable, where, top=True):
    """The items of one option: from a string (comma-separated), a TOML value, or a list of them
    (a repeated option, a TOML array); inside a list, a list of integers is one network."""
    if isinstance(value, (list, tuple)) and top:
        items = []
        for v in value:
            items += _items(v, name, kind, nullable, where, top=False)
        return items
    if isinstance(value, str):
        return [_item(part, name, kind, nullable, where) for part in value.split(",")]
    if value is None:
        return [True] if kind == "bool" else _missing(where)
    return [_native(value, name, kind, where)]


def _all_ints(value):
    return all(isinstance(v, int) and not isinstance(v, bool) for v in value)


def _missing(where):
    raise SweepError(f"{where}: needs a value")


def _native(value, name, kind, where):
    """A TOML value (number, bool, list of layer sizes) as an item."""
    if kind == "sizes" and isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if kind == "sizes" and isinstance(value, (list, tuple)) and _all_ints(value):
        return list(value)
    fits = {"bool": isinstance(value, bool),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, (int, float)) and not isinstance(value, bool),
            "str": isinstance(value, str)}.get(kind, False)
    if not fits:
        raise SweepError(f"{where}: {value!r} is not a valid value")
    if kind == "float":
        return float(value)
    if name in PATH_OPTIONS:
        return str(Path(value).expanduser().absolute())
    return value


def _name(key):
    return str(key).lstrip("-").replace("-", "_")


def _count(value, name, minimum, where):
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if isinstance(value, str):
        value = _number(value.strip(), True, where)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise SweepError(f"{where}: {name} must be an integer of at least {minimum}")
    return value


def _read_toml(path):
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise SweepError(
                f"--config {path}: reading TOML on Python 3.10 needs tomli "
                f"(pip install \"jitnet[sweep]\")"
            ) from None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SweepError(f"--config {path}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise SweepError(f"--config {path}: not a UTF-8 text file") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"--config {path}: not valid TOML ({' '.join(str(exc).split())})") \
            from None


def parse_space(options, toml_path=None):
    """Build a :class:`Space` from command-line option values and/or a TOML file.

    Parameters
    ----------
    options : dict
        Option name (``"rate"``, ``"--train-limit"`` or ``"no-shuffle"``) -> its text
        (``"0.1,0.3"``), a list of texts (a repeated option) or None (a flag given without a
        value). ``seeds``, ``random`` and ``random_seed`` shape the sweep. Given options replace
        the file's.
    toml_path : str or os.PathLike, optional
        A TOML file of the same keys; values are strings in the command-line syntax, numbers,
        booleans, or arrays of them (``hidden = [100, 300, [500, 150]]``: three networks).

    Returns
    -------
    Space

    Raises
    ------
    SweepError
        An unknown option (the message lists the valid ones), an empty list, a value that is not
        of the option's kind, a bad range, ``seed`` together with ``seeds``, an unreadable file.
    """
    merged = {}
    if toml_path is not None:
        table = _read_toml(toml_path)
        for key, value in table.items():
            if isinstance(value, dict):
                raise SweepError(f"--config {toml_path}: [{key}] tables are not used; "
                                 f"write the options at the top level")
            merged[_name(key)] = (value, f"{key} in {toml_path}")
    for key, value in options.items():
        merged[_name(key)] = (value, f"--{_name(key).replace('_', '-')}")

    kinds = option_kinds()
    dims, shape = {}, {"seeds": None, "random": None, "random_seed": 0}
    for name, (value, where) in merged.items():
        if name in SWEEP_KEYS:
            shape[name] = _count(value, name, 0 if name == "random_seed" else 1, where)
            continue
        negated = name.startswith("no_") and kinds.get(name[3:], ("",))[0] == "bool"
        if negated:
            if value not in (None, [None], True):
                raise SweepError(f"{where} takes no value (it means {name[3:]} false)")
            name, value = name[3:], "false"
        if name not in kinds:
            check_names([name])
        kind, nullable = kinds[name]
        items = _items(value, name, kind, nullable, where)
        if not items:
            raise SweepError(f"{where}: empty list")
        dims[name] = tuple(items)
    if shape["seeds"] is not None and "seed" in dims:
        raise SweepError("give either seed (a list of seeds) or seeds (a count), not both")
    for name, items in dims.items():
        for item in items:  # every fixed value as train would take it, before any cluster starts
            if not _is_range(item):
                check_value(name, item)  # its error names the option and the value
    return Space(dims=dims, **shape)
