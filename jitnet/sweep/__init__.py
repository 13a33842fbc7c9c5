"""Hyper-parameter sweeps: many ordinary training runs on Dask distributed.

A :class:`Space` of ``train`` options (:func:`parse_space`, from command-line strings or a TOML
file) expands into trials, a grid or ``random`` draws; :func:`run_sweep` runs each one as
:func:`run_trial` -- a training run through the library with its own folder, checkpoint, best model
and report -- on a Dask LocalCluster (one single-thread worker process per core) or on any Dask
cluster by address, and writes a table sorted by validation error. A rerun skips the trials that
are done and resumes the others from their checkpoints.

Example (under ``if __name__ == "__main__":``, since the local cluster's workers are spawned
processes that import the main module)::

    from jitnet.sweep import parse_space, run_sweep

    space = parse_space({"hidden": "32,64", "rate": "0.1,0.3", "seeds": "2", "epochs": "2"})
    result = run_sweep(space, "sweeps/first", workers=2)
    print(result.best_command)

Dask is needed only to run a sweep (``pip install "jitnet[sweep]"``); this package imports it
lazily, and never imports click (the ``sweep`` command is :mod:`jitnet.sweep.command`).
"""

from jitnet.sweep.results import SweepResult, format_table
from jitnet.sweep.runner import (
    MAX_TRIALS,
    SweepInterrupted,
    SweepProgress,
    SweepReporter,
    run_sweep,
)
from jitnet.sweep.space import Range, Space, parse_space
from jitnet.sweep.trial import SweepError, option_kinds, run_trial, train_command, trial_key

__all__ = [
    "MAX_TRIALS",
    "Range",
    "Space",
    "SweepError",
    "SweepInterrupted",
    "SweepProgress",
    "SweepReporter",
    "SweepResult",
    "format_table",
    "option_kinds",
    "parse_space",
    "run_sweep",
    "run_trial",
    "train_command",
    "trial_key",
]
