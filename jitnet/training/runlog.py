"""Reading a training run's history back: its JSON-lines log, its config or its report.

A ``history`` is a list of per-epoch dicts such as
``{"epoch": 3, "loss": 0.05, "val_error": 0.021, "test_error": None}``: errors are fractions in
[0, 1], ``val_error``/``test_error`` are present (not None) only at evaluations. Needs only the
standard library and numpy; :func:`load_run` is also importable from :mod:`jitnet.plots.figures`.
"""

import json
import math
from pathlib import Path

import numpy as np

__all__ = ["load_run"]


def _is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    ) and math.isfinite(value)


def _read_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read as JSON ({exc})") from None


def _read_jsonl(path):
    records = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read ({exc})") from None
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if number == len(lines):
                    break  # a last line cut short by a run still writing it
                raise ValueError(f"{path}: line {number} is not JSON") from None
    return records


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


def _run_title(config, where):
    config = config or {}
    parts = []
    if config.get("hidden") is not None:
        hidden = config["hidden"]
        hidden = hidden if isinstance(hidden, (list, tuple)) else [hidden]
        parts.append("hidden " + "-".join(map(str, hidden)))
    for key in ("rate", "dtype", "seed"):
        if config.get(key) is not None:
            parts.append(f"{key} {config[key]}")
    return f"{where}: " + ", ".join(parts) if parts else where


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
    config = None
    if path.suffix == ".jsonl":
        history = _read_jsonl(path)
        if (folder / "config.json").is_file():
            config = _read_json(folder / "config.json")
    else:
        report = _read_json(path)
        if not isinstance(report, dict):
            raise ValueError(f"{path}: a report must be a JSON object")
        history, config = _history_from_report(report, path), report.get("config")
    history = [r for r in history if isinstance(r, dict) and _is_number(r.get("epoch"))]
    if not history:
        raise ValueError(f"{path}: no epochs recorded")
    name = folder.name if path.name in ("report.json",) or path.suffix == ".jsonl" else path.name
    return history, _run_title(config if isinstance(config, dict) else None, name)
