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

A committee (:func:`run_committee`, ``jitnet committee``) is a sweep of its own kind: K members
of one configuration with seeds 0..K-1 (and ``vary``), run by the same runner, then averaged by
:class:`jitnet.Committee` into a committee folder (:mod:`jitnet.sweep.committee_report`).

Dask is needed only to run a sweep (``pip install "jitnet[sweep]"``); this package imports it
lazily, and never imports click (the ``sweep`` command is :mod:`jitnet.sweep.command`).
"""

from importlib import import_module

# Imported on first use, so that the command line (which imports jitnet.sweep.command) stays
# fast: the training library, numpy and Numba load only when a sweep runs.
_EXPORTS = {
    "SweepResult": "jitnet.sweep.results",
    "CommitteeResult": "jitnet.sweep.committee_report",
    "run_committee": "jitnet.sweep.committee",
    "format_table": "jitnet.sweep.results",
    "MAX_TRIALS": "jitnet.sweep.runner",
    "SweepInterrupted": "jitnet.sweep.runner",
    "SweepProgress": "jitnet.sweep.runner",
    "SweepReporter": "jitnet.sweep.runner",
    "run_sweep": "jitnet.sweep.runner",
    "Range": "jitnet.sweep.space",
    "Space": "jitnet.sweep.space",
    "parse_space": "jitnet.sweep.space",
    "SweepError": "jitnet.sweep.trial",
    "option_kinds": "jitnet.sweep.trial",
    "run_trial": "jitnet.sweep.trial",
    "train_command": "jitnet.sweep.trial",
    "trial_key": "jitnet.sweep.trial",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jitnet.sweep' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
