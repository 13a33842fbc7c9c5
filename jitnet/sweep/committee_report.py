"""A committee's evaluation and files, once its members are trained.

Files in the committee folder
-----------------------------
``committee.json``
    The committee (:mod:`jitnet.engine.committee` reads it: ``jitnet evaluate DIR``,
    :meth:`jitnet.Committee.load`): its members' run folders and best models, the combination
    rule, each member's and the committee's validation and test errors, the committee of the
    first k members for every k, the shared and the varied options, the failed members.
``committee.md``
    The members' table and the committee's line.
``committee.png``
    Each member's error against the committee's (:func:`jitnet.plots.committee.committee_plot`),
    when matplotlib is installed.

The members' errors here are measured again from their saved best models on the same data as
the committee's (they equal those of the members' own reports), so that members and committee
are compared on one footing. The validation set is the one every member's stopping rule
watched, so the committee's validation error is a little optimistic; the test error is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from jitnet.sweep.results import _seconds, format_value
from jitnet.sweep.trial import SweepError, train_command

PLOT_NAME = "committee.png"
TABLE_NAME = "committee.md"


@dataclass
class CommitteeResult:
    """What :func:`jitnet.sweep.run_committee` returns.

    Attributes
    ----------
    out_dir : pathlib.Path
    members : list of dict
        One per member in order of seed (``index`` = ``seed``): ``index``, ``seed``, ``varied`` (its
        values of the varied options), ``status``, ``val_error``, ``test_error``,
        ``best_epoch``, ``epochs_completed``, ``seconds``, ``key``, ``folder``, ``model``,
        ``error`` (a failed member's one line), ``train_command``.
    varied : list of str
        The options that differ between members (seed aside).
    val_error, test_error : float or None
        The committee's (of the finished members); None without a validation set or a member.
    val_by_size, test_by_size : list of float
        The committee of the first k finished members, k = 1..K.
    ran, skipped : int
        Members trained by this run, and members found done before.
    files : dict
        ``"json"``, ``"markdown"`` (and ``"plot"``) -> path.
    notes : list of str
    """

    out_dir: Path
    members: list
    varied: list
    val_error: float | None = None
    test_error: float | None = None
    val_by_size: list = field(default_factory=list)
    test_by_size: list = field(default_factory=list)
    ran: int = 0
    skipped: int = 0
    files: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    @property
    def finished(self):
        return [m for m in self.members if m["status"] == "finished"]

    @property
    def failed(self):
        return [m for m in self.members if m["status"] != "finished"]

    @property
    def best_member(self):
        """The finished member with the lowest test error (None without one)."""
        return min(self.finished, key=lambda m: (m["test_error"], m["index"]), default=None)


def _relative(path, out_dir):
    """``path`` relative to ``out_dir`` (POSIX separators) when inside it, else absolute."""
    try:
        return Path(path).relative_to(out_dir).as_posix()
    except ValueError:
        return str(path)


def _member(index, options, record, varied, out_dir):
    folder = Path(record["folder"])
    return {
        "index": index, "seed": options["seed"],
        "varied": {name: record["options"].get(name) for name in varied},
        "status": record["status"], "val_error": record["val_error"],
        "test_error": record["test_error"], "best_epoch": record["best_epoch"],
        "epochs_completed": record["epochs_completed"], "seconds": record["seconds"],
        "resumed_from": record.get("resumed_from"), "key": record["key"],
        "folder": _relative(folder, out_dir), "model": _relative(folder / "model.npz", out_dir),
        "error": record.get("error"), "train_command": train_command(record["options"]),
    }


def measure(folders, options):
    """Load the members' best models and measure them and their committees.

    Parameters
    ----------
    folders : list of path
        The members' run folders, in order.
    options : dict
        A member's resolved options (its data options are every member's).

    Returns
    -------
    dict
        ``"test_error"`` (and ``"val_error"`` with a validation set) -> ``(member_errors,
        committee_errors)``: member k alone, and the committee of members 1..k.
    """
    import numpy as np

    from jitnet import training
    from jitnet.engine.committee import average, common_dtype
    from jitnet.engine.network import Network
    from jitnet.training.data import load_splits

    config = training.TrainConfig.from_dict(options)
    splits = load_splits(config)  # the members' own data, as each of them split it
    nets = [Network.load(Path(folder) / "model.npz") for folder in folders]
    sets = {"test_error": splits.test}
    if config.validation != 0:  # None: "auto", a held-out part of the training set
        sets["val_error"] = splits.val
    errors = {}
    for metric, data in sets.items():
        outputs = [net.predict(data.images, config.input_scale) for net in nets]

        def error(y):
            return float(np.count_nonzero(np.argmax(y, axis=1) != data.labels) / len(data))

        alone = [error(y) for y in outputs]
        together = [error(average(outputs[:k], common_dtype(nets[:k])))
                    for k in range(1, len(nets) + 1)]
        errors[metric] = (alone, together)
    return errors


def _title(result, options):
    parts = [f"committee of {len(result.finished)} networks"]
    if options.get("recipe"):
        parts.append(options["recipe"])
    if "hidden" not in result.varied:
        parts.append("hidden " + "x".join(map(str, options["hidden"])))
    if result.varied:
        parts.append("members differ by seed and " + ", ".join(
            "hidden size" if n == "hidden" else n.replace("_", " ") for n in result.varied))
    title = ", ".join(parts)
    if result.test_error is not None:
        best = result.best_member["test_error"]
        title += f"\ntest error {100 * result.test_error:.2f}% (best member {100 * best:.2f}%)"
    return title


def _plot(result, errors, options):
    try:
        from jitnet.plots.committee import committee_plot
    except ImportError as exc:
        return None, f"no plot: jitnet.plots.committee cannot be imported ({exc})"
    path = result.out_dir / PLOT_NAME
    try:
        committee_plot(errors, path, title=_title(result, options))
    except Exception as exc:  # a picture must not cost the committee's results
        return None, f"no plot: {type(exc).__name__}: {' '.join(str(exc).split())}"
    return path, None


def write_committee(out_dir, plans, records, varied, vary, reporter, ran=0, skipped=0,
                    command=None):
    """Measure the finished members and their committee; write ``committee.json``,
    ``committee.md`` and ``committee.png``; return the CommitteeResult. With no finished
    member nothing is written."""
    from jitnet.engine.committee import FILE_NAME, write_file
    from jitnet.io.atomic import atomic_write_bytes

    members = [_member(i, p, r, varied, out_dir) for i, (p, r) in enumerate(zip(plans, records))]
    result = CommitteeResult(out_dir, members, list(varied), ran=ran, skipped=skipped)
    finished = result.finished
    if not finished:
        return result
    options = records[members.index(finished[0])]["options"]
    try:
        errors = measure([out_dir / m["folder"] for m in finished], options)
    except ValueError as exc:  # a model file or the data that cannot be read: one line
        raise SweepError(f"cannot evaluate the committee: {' '.join(str(exc).split())}") \
            from None
    for metric, (alone, together) in errors.items():
        for member, value in zip(finished, alone):
            member[metric] = value
        setattr(result, metric, together[-1])
        setattr(result, metric.replace("_error", "_by_size"), together)
    if "val_error" not in errors:
        for member in finished:
            member["val_error"] = None  # the stopping error was the test error
    shared = {k: v for k, v in options.items() if k not in ("seed", *varied)}
    best = result.best_member
    write_file(
        out_dir / FILE_NAME,
        [{k: m[k] for k in ("model", "folder", "key", "seed", "varied", "val_error",
                            "test_error", "best_epoch", "epochs_completed", "seconds",
                            "train_command")} for m in finished],
        committee={"members": len(finished), "val_error": result.val_error,
                   "test_error": result.test_error, "val_error_by_size": result.val_by_size,
                   "test_error_by_size": result.test_by_size},
        best_member={"seed": best["seed"], "test_error": best["test_error"],
                     "val_error": best["val_error"]},
        mean_member_test_error=sum(m["test_error"] for m in finished) / len(finished),
        failed=[{k: m[k] for k in ("seed", "key", "folder", "status", "error")}
                for m in result.failed],
        options=shared, varied=list(varied), vary=list(vary), command=command,
    )
    result.files["json"] = out_dir / FILE_NAME
    atomic_write_bytes(out_dir / TABLE_NAME, markdown(result).encode("utf-8"))
    result.files["markdown"] = out_dir / TABLE_NAME
    plot, note = _plot(result, errors, options)
    if plot is not None:
        result.files["plot"] = plot
    if note:
        result.notes.append(note)
        reporter.message(note)
    return result


def _percent(value):
    return "-" if value is None else f"{100 * value:.2f}%"


def table_rows(result):
    """Header and rows of the members' table, as strings."""
    header = ["member", "seed", *result.varied, "val error", "test error", "best epoch",
              "seconds", "trial", "note"]
    rows = []
    for m in result.members:
        note = "" if m["status"] == "finished" else f"{m['status']}: {m['error']}"
        if m["status"] == "finished" and m.get("resumed_from"):
            note = f"resumed after epoch {m['resumed_from']}"
        seconds = _seconds(m["seconds"])
        rows.append([str(m["index"] + 1), str(m["seed"]),
                     *(format_value(m["varied"].get(name)) for name in result.varied),
                     _percent(m["val_error"]), _percent(m["test_error"]),
                     "-" if m["best_epoch"] is None else str(m["best_epoch"]), seconds,
                     m["key"], note])
    return header, rows


def summary_lines(result):
    """The committee's lines under the table: its errors, the best and the mean member's."""
    finished = result.finished
    if not finished:
        return ["no member finished: no committee"]
    best = result.best_member
    mean = sum(m["test_error"] for m in finished) / len(finished)
    lines = [f"committee of {len(finished)} (outputs averaged)  val error "
             f"{_percent(result.val_error)}  test error {_percent(result.test_error)}",
             f"best member (seed {best['seed']})  test error {_percent(best['test_error'])};  "
             f"mean of the members {_percent(mean)}"]
    return lines


def format_table(result):
    """The members as aligned text, then the committee's lines."""
    header, rows = table_rows(result)
    numeric = set(range(len(header) - 2))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(w) if i in numeric else cell.ljust(w)
                       for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
             for row in [header, *rows]]
    return "\n".join([*lines, "", *summary_lines(result)])


def markdown(result):
    header, rows = table_rows(result)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    text = "# Committee\n\n" + "\n".join(lines) + "\n\n"
    text += "\n".join(f"- {line}" for line in summary_lines(result)) + "\n"
    return text
