"""Resume: a run continued from its checkpoint, with the options that may change on resume, or
started again from its ``config.json`` when it was stopped before its first checkpoint.

A checkpoint describes the end of a completed epoch, so a resumed run draws the same
permutations and performs the same float operations as one that ran straight through. A run
killed before it wrote a checkpoint (``kill -9``, a crash, a power cut; Ctrl-C and SIGTERM
always save one) has nothing to continue: its folder holds its ``config.json``, perhaps a log and
a best model; resuming it starts it again from epoch 0 with that configuration, in that folder.
"""

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from jitnet.training import runs
from jitnet.training.checkpoint import generator_from_state, load_checkpoint
from jitnet.training.config import CHANGEABLE, TrainConfig, option_name
from jitnet.training.data import check_config, check_resume_data, load_splits, prepare_data
from jitnet.training.errors import CheckpointError, TrainingError, one_line
from jitnet.training.loop import _Run, new_network, start_run
from jitnet.training.report import Reporter


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
        The file the configuration came from, named in the errors.

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
                f"{checkpoint_path} was saved with {option_name(name)} "
                f"{_option_text(name, getattr(saved, name))}, not {_option_text(name, value)}; "
                f"only {', '.join(option_name(n) for n in CHANGEABLE)} may change on resume"
            )
    config = dataclasses.replace(saved, **changes)
    if config.epochs < epochs_done:
        raise CheckpointError(
            f"{checkpoint_path} has completed {epochs_done} epochs; --epochs "
            f"{config.epochs} would end before them (give --epochs {epochs_done} or more)"
        )
    return config


def _splits(config, data, source):
    try:
        return load_splits(config) if data is None else prepare_data(config, *data)
    except TrainingError as exc:  # options from the file that do not fit the data
        raise CheckpointError(f"{source} does not fit the data: {exc}") from None


def resume_training(path, changes=None, *, data=None, reporter=None):
    """Continue the run saved in ``path``: a run folder, or a checkpoint file (whose folder is
    then the run folder).

    The run ends as an uninterrupted one would: in float64 its weights are bitwise equal. A run
    folder without a checkpoint but with a ``config.json`` (a run killed before its first
    checkpoint) is started again from epoch 0 with that configuration and ``changes``.

    Parameters
    ----------
    path : str or os.PathLike
    changes : dict, optional
        New values of options in :data:`jitnet.training.CHANGEABLE` (``epochs`` to extend a
        run, ``patience``, ...); others must equal the saved ones.
    data : (Dataset, Dataset), optional
        Training and test set; default: ``load_mnist`` of the configuration's ``data``. Must be
        the data the run was trained on (same sizes and fingerprint).
    reporter : Reporter, optional

    Returns and raises as :func:`jitnet.training.run_training`; a CheckpointError (one line) for
    a damaged, foreign or mismatched checkpoint, or a folder that holds no run.
    """
    checkpoint_path, run_dir = runs.locate_checkpoint(path)
    if Path(path).is_dir() and not os.path.lexists(checkpoint_path):
        return _restart(run_dir, changes or {}, data, reporter or Reporter())
    saved = load_checkpoint(checkpoint_path)
    config = resume_config(saved.config, saved.epoch, changes or {}, checkpoint_path)
    splits = _splits(config, data, f"checkpoint {checkpoint_path}")
    check_resume_data(saved.data, splits, checkpoint_path)
    check_config(config, splits)  # e.g. --threads on a machine with fewer cores
    if not _same_standardization(saved.net.standardization, splits.standardization):
        raise CheckpointError(f"checkpoint {checkpoint_path}: its network's standardization is "
                              "not the training data's")
    removed = runs.remove_stale_temporaries(run_dir)
    runs.write_config(run_dir, config, splits.info)
    runs.rewrite_log(run_dir, saved.records)
    state = dataclasses.replace(saved, config=config, stop_reason=None)
    run = _Run(state, splits, run_dir, reporter)
    if removed:
        run.reporter.message(f"removed {len(removed)} temporary file(s) a killed write left in "
                             f"{run_dir}")
    run.reporter.message(f"resuming after epoch {saved.epoch} of {config.epochs}")
    return run.train(state.net.copy(), generator_from_state(saved.rng_state))


def _same_standardization(saved, now):
    if saved is None or now is None:
        return saved is None and now is None
    return all(np.array_equal(a, b) for a, b in zip(saved, now))


def _restart(run_dir, changes, data, reporter):
    """Start the run of ``run_dir``, which has no checkpoint, again from its config.json."""
    config_path = run_dir / runs.CONFIG_NAME
    if not config_path.is_file():
        raise CheckpointError(
            f"{run_dir} holds no run to resume (no {runs.CHECKPOINT_NAME} or "
            f"{runs.CONFIG_NAME}); delete the folder to reuse its name, or choose another --name"
        )
    try:
        saved = TrainConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # TrainingError is a ValueError
        raise CheckpointError(f"{config_path}: cannot read the run's configuration "
                              f"({one_line(exc)})") from None
    config = resume_config(saved, 0, changes, config_path)
    splits = _splits(config, data, str(config_path))
    check_config(config, splits)
    net = new_network(config, splits)
    runs.reset_run_dir(run_dir)
    reporter.message(f"{run_dir} has no checkpoint (its run was stopped before the first): "
                     f"starting it again from its {runs.CONFIG_NAME}")
    return start_run(config, run_dir, splits, net, reporter)
