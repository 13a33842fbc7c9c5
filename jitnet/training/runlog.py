"""Reading a training run's history back: its JSON-lines log, its config or its report.

A ``history`` is a list of per-epoch dicts such as
``{"epoch": 3, "loss": 0.05, "val_error": 0.021, "test_error": None}``: errors are fractions in
[0, 1], ``val_error``/``test_error`` are present (not None) only at evaluations. Needs only the
standard library and numpy; :func:`load_run` is also importable from :mod:`jitnet.plots.figures`.
The log itself is read by :func:`jitnet.training.runs.read_log`.
"""

import json
import math
from pathlib import Path

import numpy as np

from jitnet.training.runs import CONFIG_NAME, REPORT_NAME, read_log

__all__ = ["load_run", "run_title"]


def _is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    ) and math.isfinite(value)


def _read_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read as JSON ({exc})") from None


def _history_from_report(report, path):
    """Per-epoch records from a report's ``history`` (evaluations) and ``epoch_losses``."""
    history = report.get("history") or []
    losses = report.get("epoch_losses") or []
    if not isinstance(history, list) or not isinstance(losses, list):
        raise ValueError(f"{path}: 'history' and 'epoch_losses' must be lists")
    by_epoch = {r["epoch"]: dict(r) for r in history if isinstance(r, dict) and "epoch" in r}
    for epoch, loss in enumerate(losses, 1):
        by_epoch.setdefault(epoch, {"epoch": epoch}).setdefault("loss", loss)
    return [by_epoch[e] for e in sorted(by_epoch)]


def run_title(name, config, sizes=None):
    """``NAME: 784-300-10, rate 0.3, float64, seed 0`` and what differs from the tutorial
    (activation, loss, raw pixels), from a run's configuration (a dict) and its layer sizes;
    without the sizes the network is ``hidden 300``. Only what the configuration holds."""
    config = config or {}
    parts = []
    if sizes is not None:
        parts.append("-".join(map(str, sizes)))
    elif config.get("hidden") is not None:
        hidden = config["hidden"]
        parts.append("hidden " + "-".join(map(str, hidden if isinstance(hidden, (list, tuple))
                                                  else [hidden])))
    if config.get("rate") is not None:
        parts.append(f"rate {config['rate']}")
    if config.get("dtype") is not None:
        parts.append(str(config["dtype"]))
    if config.get("seed") is not None:
        parts.append(f"seed {config['seed']}")
    for key, tutorial in (("activation", "sigmoid"), ("loss", "squared")):
        if config.get(key) not in (None, tutorial):
            parts.append(str(config[key]))
    if config.get("raw_pixels"):
        parts.append("raw pixels")
    return f"{name}: " + ", ".join(parts) if parts else name


def load_run(path):
    """The history and a title of a training run, for :func:`learning_curve`.

    Parameters
    ----------
    path : str or os.PathLike
        A run folder (its JSON-lines log ``*.jsonl`` if it has one, else its ``report.json``),
        a JSON-lines log, or a JSON report with ``history`` and ``epoch_losses``.

    Returns
    -------
    history : list of dict
    title : str
        The folder or file name and the run's main settings.

    Raises
    ------
    ValueError
        Nothing readable there, or no epochs in it.
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if path.is_dir():
        logs = sorted(path.glob("*.jsonl"))
        if logs:
            path = logs[0]
        elif (path / "report.json").is_file():
            path = path / "report.json"
        else:
            raise ValueError(f"{path}: no *.jsonl log or report.json in this folder")
    elif not path.is_file():
        raise ValueError(f"{path}: no such file or folder")
    if path.suffix == ".jsonl":
        history = read_log(path)
        config = _read_json(folder / CONFIG_NAME) if (folder / CONFIG_NAME).is_file() else None
        try:  # the layer sizes, when the run has ended
            report = _read_json(folder / REPORT_NAME)
        except ValueError:
            report = {}
    else:
        report = _read_json(path)
        if not isinstance(report, dict):
            raise ValueError(f"{path}: a report must be a JSON object")
        history, config = _history_from_report(report, path), report.get("config")
    history = [r for r in history if isinstance(r, dict) and _is_number(r.get("epoch"))]
    if not history:
        raise ValueError(f"{path}: no epochs recorded")
    name = folder.name if path.name == REPORT_NAME or path.suffix == ".jsonl" else path.name
    sizes = report.get("sizes") if isinstance(report, dict) else None
    return history, run_title(name, config if isinstance(config, dict) else None,
                              sizes if isinstance(sizes, list) else None)
