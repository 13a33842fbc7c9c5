"""Run folders: where a run keeps its files, how a new one is named, what a resume cleans.

A run folder holds

* ``config.json``: the run's :class:`TrainConfig` (rewritten when a resume changes it) and a
  description of its data (``data_source``: the file's path, size and sha256, the label
  column, the class names, the split);
* ``log.jsonl``: one JSON line per completed epoch (epoch, loss, rate, seconds,
  samples_per_second, elapsed_seconds, and ``val_error`` or ``test_error`` after evaluations);
* ``checkpoint.npz``: the state after the last saved epoch (:mod:`jitnet.training.checkpoint`);
* ``model.npz``: the best model so far;
* ``report.json``: the report, written when the run ends (finished, interrupted or diverged).

New folders are ``RUNS_DIR/YYYY-MM-DD_HH-MM-SS`` (local time; ``-2``, ``-3``, ... when two runs
start in the same second) or ``RUNS_DIR/NAME``; a folder is created exclusively, so two runs
never share one.
"""

import json
import os
import time
from pathlib import Path

from jitnet.io.atomic import TEMP_PREFIX, atomic_write_bytes
from jitnet.training.config import DATA_KEY
from jitnet.training.errors import TrainingError

CONFIG_NAME = "config.json"
LOG_NAME = "log.jsonl"
REPORT_NAME = "report.json"
CHECKPOINT_NAME = "checkpoint.npz"
MODEL_NAME = "model.npz"


def create_run_dir(runs_dir, name=None):
    """Create a new, empty run folder in ``runs_dir`` and return its path.

    Parameters
    ----------
    runs_dir : str or os.PathLike
        Parent folder, created when missing.
    name : str, optional
        The folder's name; default: the local date and time.

    Raises
    ------
    TrainingError
        When ``name`` is given and the folder exists, or ``runs_dir`` cannot hold folders.
    """
    runs_dir = Path(runs_dir)
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        if name is not None:
            (runs_dir / name).mkdir()
            return runs_dir / name
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
        for suffix in ["", *(f"-{i}" for i in range(2, 1000))]:
            try:
                (runs_dir / (stamp + suffix)).mkdir()
                return runs_dir / (stamp + suffix)
            except FileExistsError:
                continue
        raise TrainingError(f"{runs_dir} already holds 999 runs started at {stamp}")
    except FileExistsError:
        raise TrainingError(
            f"run folder {runs_dir / name} already exists; continue it with --resume "
            f"{runs_dir / name}, or choose another --name"
        ) from None
    except OSError as exc:
        raise TrainingError(f"cannot create a run folder in {runs_dir}: {exc.strerror}") from None


def claim_run_dir(run_dir):
    """Make ``run_dir`` ready for a new run: created when missing, refused unless empty."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        busy = any(run_dir.iterdir())
    except OSError as exc:
        raise TrainingError(f"cannot use {run_dir} as a run folder: {exc.strerror}") from None
    if busy:
        raise TrainingError(
            f"{run_dir} is not empty; a new run needs an empty folder (resume the run there, "
            f"or choose another folder)"
        )
    return run_dir


def locate_checkpoint(path):
    """``(checkpoint, run_dir)`` for a run folder or a checkpoint file; the run folder of a
    checkpoint file is the folder holding it."""
    path = Path(path)
    if path.is_dir():
        return path / CHECKPOINT_NAME, path
    return path, path.parent


def remove_stale_temporaries(run_dir):
    """Delete the temporary files an atomic write left behind when its process was killed
    (``kill -9`` or a power cut between create and rename). Returns their names."""
    removed = []
    for entry in os.scandir(run_dir):
        if entry.name.startswith(TEMP_PREFIX) and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
                removed.append(entry.name)
            except FileNotFoundError:
                pass
    return sorted(removed)


def reset_run_dir(run_dir):
    """Make the folder of a run that never wrote a checkpoint ready to start it again: its log
    emptied, its best model and report removed (the new run writes its own), and the temporary
    files of killed writes removed."""
    remove_stale_temporaries(run_dir)
    rewrite_log(run_dir, [])
    for name in (MODEL_NAME, REPORT_NAME):
        try:
            os.unlink(Path(run_dir) / name)
        except FileNotFoundError:
            pass


def write_json(path, obj):
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode("utf-8"))


def write_config(run_dir, config, data_info=None):
    """``config.json`` of the run: its options and, under :data:`DATA_KEY`, what the data was
    (format, path, size and sha256 of the file, label column, class names, image shape, a
    separate test file, the test split, the sizes of the sets), from ``data_info``
    (:attr:`jitnet.training.Splits.info`)."""
    content = config.to_dict()
    if data_info is not None:
        source = data_info.get("source") or {}
        content[DATA_KEY] = {
            **{key: source.get(key) for key in ("format", "path", "bytes", "sha256", "label",
                                                "image_shape", "test_source")},
            "n_features": data_info["n_inputs"],
            "class_names": data_info.get("class_names"),
            "split": data_info.get("split"),
            **{key: data_info[key] for key in ("n_train", "n_val", "n_test")},
        }
    write_json(Path(run_dir) / CONFIG_NAME, content)


def append_log(run_dir, record):
    """Add one epoch's record to ``log.jsonl``."""
    with open(Path(run_dir) / LOG_NAME, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def rewrite_log(run_dir, records):
    """Replace ``log.jsonl`` by ``records``: a resumed run drops the lines of epochs after its
    checkpoint, which it is about to train again."""
    text = "".join(json.dumps(record) + "\n" for record in records)
    atomic_write_bytes(Path(run_dir) / LOG_NAME, text.encode("utf-8"))


def read_log(path):
    """The records of a JSON-lines log, one dict per epoch: ``path`` is a run folder (its
    ``log.jsonl``) or a log file. A last line cut short (a run still writing it) is left out.

    Raises
    ------
    ValueError
        One line naming the file: it cannot be read, or a line other than the last is not JSON.
    """
    path = Path(path)
    if path.is_dir():
        path = path / LOG_NAME
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read ({exc})") from None
    records = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if number == len(lines):
                    break
                raise ValueError(f"{path}: line {number} is not JSON") from None
    return records
