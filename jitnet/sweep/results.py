"""A sweep's results: the table sorted by validation error, its files, the best trial's command.

Files in the sweep folder
-------------------------
``results.csv``, ``results.md`` and ``results.json`` (every record in full, the swept options and
the best trial's command), and ``val_error.png`` -- validation error against each swept option --
when :func:`jitnet.plots.figures.sweep_plot` can be imported (it needs matplotlib).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from jitnet.io.atomic import atomic_write_bytes
from jitnet.sweep.trial import train_command

PLOT_NAME = "val_error.png"


@dataclass
class SweepResult:
    """What :func:`run_sweep` returns.

    Attributes
    ----------
    out_dir : pathlib.Path
    records : list of dict
        One per trial (see :func:`jitnet.sweep.run_trial`), finished ones by validation error,
        then failed ones; status ``"error"`` marks a trial whose task raised on Dask.
    params : list of str
        The options that vary across the trials.
    ran, skipped : int
        Trials run now, and trials found done in ``out_dir`` and not run again.
    files : dict
        ``"csv"``, ``"markdown"``, ``"json"`` (and ``"plot"``) -> path written.
    best_command : str or None
        The ``train`` command line that reruns the best trial alone.
    notes : list of str
        E.g. why there is no plot.
    """

    out_dir: Path
    records: list
    params: list
    ran: int = 0
    skipped: int = 0
    files: dict = field(default_factory=dict)
    best_command: str | None = None
    notes: list = field(default_factory=list)

    @property
    def best(self):
        """The record with the lowest validation error, or None when no trial finished."""
        if self.records and self.records[0]["status"] == "finished":
            return self.records[0]
        return None

    @property
    def failed(self):
        """The records of the trials that did not finish."""
        return [r for r in self.records if r["status"] != "finished"]


def _or_inf(value):
    return math.inf if value is None else value


def sort_records(records):
    """Finished trials by validation error (then test error, then key), then the others by key."""
    def order(r):
        if r["status"] == "finished":
            return (0, _or_inf(r["val_error"]), _or_inf(r["test_error"]), r["key"])
        return (1, 0.0, 0.0, r["key"])

    return sorted(records, key=order)


def format_value(value):
    """An option's value as the sweep syntax writes it: ``500x150``, ``0.3``, ``true``."""
    if isinstance(value, list):
        return "x".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return "none" if value is None else str(value)


def _percent(value):
    return "-" if value is None else f"{100 * value:.2f}%"


def _seconds(value):
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def table_rows(records, params):
    """Header and rows of the results table, as strings."""
    header = ["#", *params, "val error", "test error", "best epoch", "seconds", "trial", "note"]
    rows = []
    for rank, r in enumerate(records, 1):
        note = r.get("error") or r.get("note") or ""
        if r["status"] != "finished":
            note = f"{r['status']}: {note}"
        elif r.get("resumed_from"):
            note = f"resumed after epoch {r['resumed_from']}" + (f"; {note}" if note else "")
        rows.append([
            str(rank), *(format_value(r["options"].get(p)) for p in params),
            _percent(r["val_error"]), _percent(r["test_error"]),
            "-" if r["best_epoch"] is None else str(r["best_epoch"]),
            _seconds(r["seconds"]), r["key"], note,
        ])
    return header, rows


def format_table(result):
    """The results as aligned text, one line per trial, the best first."""
    header, rows = table_rows(result.records, result.params)
    numeric = set(range(len(header) - 2))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [cell.rjust(w) if i in numeric else cell.ljust(w)
                 for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _markdown(records, params, best_command):
    header, rows = table_rows(records, params)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    text = "# Sweep results\n\nSorted by validation error (the best model's stopping error).\n\n"
    text += "\n".join(lines) + "\n"
    if best_command:
        text += f"\nThe best trial alone:\n\n```\n{best_command}\n```\n"
    return text


def _csv(records, params):
    columns = ["key", "status", *params, "val_error", "test_error", "best_epoch",
               "epochs_completed", "stop_reason", "seconds", "resumed_from", "error", "folder"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for r in records:
        writer.writerow([format_value(r["options"].get(c)) if c in params else
                         ("" if r.get(c) is None else r.get(c)) for c in columns])
    return buffer.getvalue()


def _plot(out_dir, records, params):
    """Draw the plot if jitnet.plots.figures can; returns (path or None, note or None)."""
    finished = [r for r in records if r["status"] == "finished"]
    if not finished or not params:
        return None, None
    try:
        from jitnet.plots.figures import sweep_plot
    except ImportError as exc:
        return None, f"no plot: jitnet.plots.figures.sweep_plot cannot be imported ({exc})"
    rows = [{**r, "params": dict(r["options"])} for r in finished]  # where sweep_plot looks
    for name in params:  # networks of one hidden layer: their sizes on a numeric axis
        if all(isinstance(row["params"].get(name), list) and len(row["params"][name]) == 1
               for row in rows):
            for row in rows:
                row["params"][name] = row["params"][name][0]
    path = out_dir / PLOT_NAME
    try:
        sweep_plot(rows, params, path)
    except Exception as exc:  # a picture must not cost the results of a whole sweep
        return None, f"no plot: {type(exc).__name__}: {' '.join(str(exc).split())}"
    return path, None


def finish(out_dir, records, params, reporter, ran=0, skipped=0):
    """Write the result files of ``records`` (already sorted) and return the SweepResult."""
    out_dir = Path(out_dir)
    result = SweepResult(out_dir, records, list(params), ran=ran, skipped=skipped)
    if result.best is not None:
        result.best_command = train_command(result.best["options"])
    texts = {
        "csv": ("results.csv", _csv(records, result.params)),
        "markdown": ("results.md", _markdown(records, result.params, result.best_command)),
        "json": ("results.json", json.dumps(
            {"params": result.params, "best_command": result.best_command,
             "trials": records}, indent=2) + "\n"),
    }
    for what, (name, text) in texts.items():
        atomic_write_bytes(out_dir / name, text.encode("utf-8"))
        result.files[what] = out_dir / name
    plot, note = _plot(out_dir, records, result.params)
    if plot is not None:
        result.files["plot"] = plot
    if note:
        result.notes.append(note)
        reporter.message(note)
    return result
