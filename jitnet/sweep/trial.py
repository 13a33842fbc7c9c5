"""One trial of a sweep: an ordinary training run through the library, in a folder of its own.

This is the only module of :mod:`jitnet.sweep` that knows the training library's API
(:mod:`jitnet.training`). A trial is a plain dict of ``train`` options (field names of
:class:`jitnet.training.TrainConfig`, JSON values: ``{"hidden": [500, 150], "rate": 0.1, "seed":
2, "epochs": 20}``); :func:`run_trial` turns it into one training run whose folder is the trial's
folder (config, log, checkpoint, best model, report) plus a ``result.json``. It can run on any
Dask worker, or alone::

    from jitnet.sweep import run_trial
    run_trial({"hidden": [32], "rate": 0.1, "epochs": 2}, "runs/t1")

A trial's options become a configuration as ``train``'s do
(:meth:`jitnet.training.TrainConfig.from_options`): a ``recipe`` fills the options the trial does
not set, and the trial's ``config.json`` and result hold the resolved options.

A trial is identified by :func:`trial_key`, a hash of its result-defining options; options equal to
their defaults do not count, so ``{"rate": 0.3}`` and ``{}`` are the same trial.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import shlex
import time
from pathlib import Path

from jitnet import training
from jitnet.io.atomic import atomic_write_bytes
from jitnet.training.runs import CHECKPOINT_NAME

#: Options a sweep does not take: a trial's model and report stay in its own folder (the run
#: folder), not in copies elsewhere.
SWEEP_OWNED = ("output", "report")
#: Options that do not change a run's result, so they are not part of its key.
NOT_IN_KEY = ("checkpoint_every",)
#: Defaults of a trial that differ from ``train``'s: a trial lost with its worker resumes from its
#: last epoch (a checkpoint costs a few ms; an MNIST epoch of 784-300-10 about 0.6 s).
TRIAL_DEFAULTS = {"checkpoint_every": 1}
#: Options that are paths: made absolute where the sweep starts, since workers run elsewhere.
PATH_OPTIONS = ("data",)
RESULT_NAME = "result.json"


class SweepError(ValueError):
    """A problem the user can fix (bad option, bad value, unreachable scheduler); one line."""


def _one_line(text):
    return " ".join(str(text).split())


def option_kinds():
    """The options a trial may set, with the kind of value each takes.

    Derived from the fields of :class:`jitnet.training.TrainConfig` (less :data:`SWEEP_OWNED`), so
    a new ``train`` option is sweepable as soon as the configuration has it.

    Returns
    -------
    dict
        Field name -> ``(kind, nullable)``, kind one of ``"sizes"`` (a tuple of layer sizes),
        ``"bool"``, ``"int"``, ``"float"``, ``"str"``; nullable when None is a valid value.
    """
    kinds = {}
    for f in dataclasses.fields(training.TrainConfig):
        if f.name in SWEEP_OWNED:
            continue
        text = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        for kind, words in (("sizes", ("tuple", "list")), ("bool", ("bool",)),
                            ("float", ("float",)), ("int", ("int",))):
            if any(word in text for word in words):
                break
        else:
            kind = "str"
        kinds[f.name] = (kind, "None" in text or f.metadata["default"] is None)
    return kinds


@functools.lru_cache(maxsize=1)
def _defaults():
    return training.TrainConfig().to_dict()


def check_names(names):
    """Raise SweepError naming the first of ``names`` that is not a trial option, and listing
    the valid ones."""
    kinds = option_kinds()
    unknown = [name for name in names if name not in kinds]
    if unknown:
        owned = unknown[0] in SWEEP_OWNED
        what = (f"a sweep does not take {_flag(unknown[0])} (each trial keeps its model and "
                f"report in its own folder)" if owned else f"unknown option {_flag(unknown[0])}")
        raise SweepError(f"{what}; a sweep can set {', '.join(_flag(name) for name in kinds)}")


def _fields():
    return {f.name: f for f in dataclasses.fields(training.TrainConfig)}


def check_value(name, value):
    """``value`` through the check of the configuration's field ``name`` (the one
    ``TrainConfig.from_dict`` applies): the plain value, or a SweepError naming the option."""
    check_names([name])
    try:
        return _fields()[name].metadata["check"](value)
    except ValueError as exc:  # the check says what the value should be
        raise SweepError(f"{_flag(name)} {show_value(value)} is not {exc}") from None


def _values(options):
    """The trial's options, each checked, over the trial defaults."""
    return {**TRIAL_DEFAULTS, **{name: check_value(name, value) for name, value in options.items()}}


def _config(options):
    """The TrainConfig of a trial's options, as ``train`` builds it from the same options
    (:meth:`TrainConfig.from_options`: a recipe fills the options not given); SweepError
    otherwise."""
    try:
        return training.TrainConfig.from_options(**_values(options))
    except training.TrainingError as exc:
        raise SweepError(_one_line(exc)) from None


def canonical(options):
    """The options of a trial that define its result, as JSON values, defaults left out: the
    resolved options, so a recipe counts through every option it sets (and its name).

    Raises
    ------
    SweepError
        An unknown option (the message lists the valid ones) or a value ``train`` refuses.
    """
    full = _config(options).to_dict()
    defaults = _defaults()
    return {name: full[name] for name in option_kinds()
            if name not in NOT_IN_KEY and full[name] != defaults[name]}


def trial_key(options):
    """The trial's identity: 12 hex digits of the SHA-256 of :func:`canonical` ``(options)``."""
    text = json.dumps(canonical(options), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def full_options(options):
    """Every option of the trial (defaults filled in), as JSON values."""
    full = _config(options).to_dict()
    return {name: full[name] for name in option_kinds()}


def _flag(name):
    return "--" + name.replace("_", "-")


def show_value(value):
    """A value as the sweep syntax writes it: ``500x150``, ``true``, ``none``, ``0.3``."""
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return "none" if value is None else str(value)


def train_command(options, prog="python cli.py"):
    """The ``train`` command line that runs the trial alone, e.g.
    ``python cli.py train --hidden 500,150 --rate 0.1 --seed 2``: its ``--recipe``, if any,
    and the options whose value differs from the recipe's (or the default).

    ``options`` are a trial's, or the resolved ones of its result record.
    """
    config = training.TrainConfig(**_values(options))
    full, base = config.to_dict(), training.TrainConfig(recipe=config.recipe).to_dict()
    parts = [] if config.recipe is None else ["--recipe", config.recipe]
    for name in option_kinds():
        value = full[name]
        if name in NOT_IN_KEY or name == "recipe" or value == base[name]:
            continue
        if isinstance(value, bool):
            parts.append(_flag(name) if value else "--no-" + name.replace("_", "-"))
        elif isinstance(value, list):
            parts += [_flag(name), ",".join(str(v) for v in value)]
        else:
            parts += [_flag(name), "none" if value is None else str(value)]
    return f"{prog} train {shlex.join(parts)}".rstrip()


def read_result(trial_dir, key):
    """The stored result of a done trial (finished or failed) with this key, else None."""
    try:
        result = json.loads((Path(trial_dir) / RESULT_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(result, dict) and result.get("key") == key and \
            result.get("status") in ("finished", "failed"):
        return result
    return None


@functools.lru_cache(maxsize=2)
def _load_data(data, label=None, test_data=None, image_shape=None, dtype="float64"):
    """The training and test sets with their description (:func:`jitnet.data.loading.read_source`),
    loaded once per worker process (trials share them read-only)."""
    from jitnet.data.loading import read_source

    return read_source(data, label=label, test_data=test_data, image_shape=image_shape,
                       dtype=dtype)


def blank_result(trial, trial_dir, status, error=None):
    """A result record with no outcome yet (or none ever: a failed trial)."""
    return {"key": trial_key(trial), "status": status, "options": full_options(trial),
            "val_error": None, "test_error": None, "best_epoch": None, "epochs_completed": None,
            "stop_reason": None, "seconds": None, "resumed_from": None, "note": None,
            "error": error, "folder": str(trial_dir)}


class _FirstEpoch(training.Reporter):
    """Silent, but notes the first epoch a session trains (a resumed run's checkpoint epoch + 1)."""

    first = None

    def epoch_start(self, epoch, epochs, n_samples):
        if self.first is None:
            self.first = epoch
        return None


def _clear(folder):
    """Empty a trial folder that holds no usable checkpoint (a run killed before its first
    checkpoint leaves its config and log): a new run needs an empty folder. Only files go; a
    subfolder (no trial makes one) stays, and the trial fails with run_training's error."""
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.is_file() or entry.is_symlink():
                entry.unlink()


def _train(config, folder, data, result):
    """Resume the trial from its checkpoint, or start it afresh; the TrainResult."""
    checkpoint = folder / CHECKPOINT_NAME
    if checkpoint.exists():
        reporter = _FirstEpoch()
        # Every option given: a checkpoint of another configuration is refused, not continued.
        options = {f: getattr(config, f) for f in _fields()}
        try:
            outcome = training.resume_training(folder, options, data=data, reporter=reporter)
        except training.CheckpointError as exc:  # damaged, foreign, or other data: start over
            result["note"] = f"started over: {_one_line(exc)}"
        else:
            epoch = outcome.state.epoch if reporter.first is None else reporter.first - 1
            result["resumed_from"] = epoch
            return outcome
    _clear(folder)
    return training.run_training(config, folder, splits=training.prepare_data(config, *data))


def run_trial(trial, trial_dir):
    """Run one trial (or finish it from its checkpoint) and write its ``result.json``.

    Parameters
    ----------
    trial : dict
        ``train`` options by field name (see :func:`option_kinds`).
    trial_dir : str or os.PathLike
        The trial's folder, its run folder: ``config.json``, ``log.jsonl``, ``checkpoint.npz``,
        ``model.npz``, ``report.json`` and ``result.json``.

    Returns
    -------
    dict
        The result: ``key``, ``status`` (``"finished"`` or ``"failed"``), ``options`` (all of
        them), ``val_error`` (the best model's stopping error, a fraction), ``test_error``,
        ``best_epoch``, ``epochs_completed``, ``stop_reason``, ``seconds`` (training and
        evaluation, over all sessions), ``resumed_from`` (the checkpoint's epoch, or None),
        ``note``, ``error`` (one line, for a failed trial) and ``folder``. A trial whose folder
        already holds the result for its key returns it without training.

    Raises
    ------
    SweepError
        Unknown option or bad value (before anything is written).
    OSError
        A file could not be written (a Dask worker retries the trial).
    """
    key = trial_key(trial)
    folder = Path(trial_dir)
    done = read_result(folder, key)
    if done is not None:
        return done
    config = _config(trial)
    result = blank_result(trial, folder, "failed")
    try:
        outcome = _train(config, folder, _load_data(config.data, config.label, config.test_data,
                                                    config.image_shape, config.dtype), result)
    except (ValueError, ArithmeticError) as exc:  # TrainingError, DataError, a numerical failure
        result["error"] = _one_line(exc) or type(exc).__name__
    else:
        report = outcome.report
        result.update(status="finished", val_error=report["best_error"],
                      test_error=outcome.test_error, best_epoch=report["best_epoch"],
                      epochs_completed=report["epochs_completed"],
                      stop_reason=report["stop_reason"], seconds=report["elapsed_seconds"])
    atomic_write_bytes(folder / RESULT_NAME, (json.dumps(result, indent=2) + "\n").encode())
    return result


def warm_up(dtypes):
    """Compile (or load from Numba's on-disk cache) the kernels for ``dtypes``, in this process.

    Run on one worker before the trials: the kernels are cached beside their source
    (``cache=True``), so every other process of the same installation then loads them (~0.3 s)
    instead of every worker compiling them at once (~7 s per dtype each). Compiled and
    cache-loaded kernels give the same weights bit for bit, so a trial's result does not depend
    on which worker runs it.

    Returns
    -------
    float
        Seconds spent.
    """
    import numpy as np

    from jitnet.engine.compile import compile_kernels

    start = time.perf_counter()
    for dtype in sorted(set(dtypes)):
        compile_kernels(np.dtype(dtype), x_dtype=np.uint8)
    return time.perf_counter() - start


def trial_dtypes(trials):
    """The dtypes the trials train in (for :func:`warm_up`)."""
    return sorted({_config(trial).dtype for trial in trials})
