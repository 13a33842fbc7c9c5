"""Pictures of training runs and predictions, written as PNG files.

One function per picture; each takes plain data (a history, a confusion matrix, images and
labels) and a path, and writes the PNG atomically. Drawing uses matplotlib's object API on its
Agg canvas directly, never ``pyplot``, so it opens no window and leaves the backend and figures
of an interactive session alone. Needs matplotlib (``pip install "jitnet[plots]"``). The canvas,
the PNG save and the gallery mosaic are in :mod:`jitnet.plots.base`; reading a run back
(:func:`load_run`, re-exported here) is in :mod:`jitnet.training.runlog`.

A ``history`` is a list of per-epoch dicts such as
``{"epoch": 3, "loss": 0.05, "val_error": 0.021, "test_error": None}``: errors are fractions in
[0, 1] (drawn in %), ``val_error``/``test_error`` are present (not None) only at evaluations.
"""

import numpy as np

from jitnet.plots.base import (  # noqa: F401  (DPI, kept importable from here)
    _LABELS, DPI, MissingDependencyError, _best, _check_history, _figure, _gallery, _images,
    _integer_epochs, _is_number, _save, _series,
)
from jitnet.evaluation.metrics import precision_recall
from jitnet.training.runlog import load_run

__all__ = [
    "MissingDependencyError", "learning_curve", "confusion_matrix_plot", "mistakes_gallery",
    "distortion_grid", "compare_curves", "sweep_plot", "load_run",
]


def learning_curve(history, path, title="jitnet training", log_scale=False):
    """Training loss per epoch (top) and validation/test error per evaluation (bottom).

    The best epoch (lowest validation error, else lowest test error) is marked on both panels.

    Parameters
    ----------
    history : list of dict
        Per-epoch records: ``epoch``, ``loss`` and, at evaluations, ``val_error`` and/or
        ``test_error`` as fractions.
    path : str or os.PathLike
        Where to write the PNG (770 x 660 pixels).
    title : str
        Says which run this is, e.g. ``"784-300-10, rate 0.3, seed 0"``.
    log_scale : bool
        Logarithmic y axes.

    Returns
    -------
    int or None
        The best epoch marked, or None without evaluations.
    """
    history = _check_history(history)
    fig = _figure(7, 6)
    ax_loss, ax_err = fig.subplots(2, 1, sharex=True)
    epochs, losses = _series(history, "loss")
    ax_loss.plot(epochs, losses, marker="o" if len(epochs) <= 50 else None, ms=3, color="C0")
    ax_loss.set_ylabel(_LABELS["loss"])
    series = [(key, *_series(history, key, 100)) for key in ("val_error", "test_error")]
    series = [(key, e, v) for key, e, v in series if e]
    for key, e, v in series:
        color = "C1" if key == "val_error" else "C2"
        ax_err.plot(e, v, marker="o", ms=4, color=color, label=_LABELS[key][:-4])
    ax_err.set_ylabel(_LABELS[series[0][0]] if len(series) == 1 else "error (%)")
    if not series:
        ax_err.text(0.5, 0.5, "no evaluation yet", transform=ax_err.transAxes,
                    ha="center", va="center", color="0.4")
    best = _best(history)
    if best is not None:
        key, epoch, error = best
        for ax in (ax_loss, ax_err):
            ax.axvline(epoch, color="0.55", linestyle="--", linewidth=1, zorder=0)
        ax_err.plot([epoch], [100 * error], marker="*", ms=14, color="C3", linestyle="none",
                    zorder=3, label=f"best: epoch {epoch:g}, {100 * error:.2f}%")
        ax_err.legend(loc="best")  # the test error of the best model may sit top right
    if log_scale:
        ax_loss.set_yscale("log")
        ax_err.set_yscale("log")
    for ax in (ax_loss, ax_err):
        ax.grid(True, alpha=0.3)
    ax_err.set_xlabel("epoch")
    _integer_epochs(ax_err)
    fig.suptitle(title)
    _save(fig, path)
    return None if best is None else best[1]


def _text_colour(rgba):
    """Black on light cells, white on dark ones (by the cell colour's luminance)."""
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _rate_strip(ax, values, horizontal, fontsize):
    """Percentages in a row (or column) of cells; the lowest in bold red."""
    worst = np.nanargmin(values) if not np.all(np.isnan(values)) else -1
    for k, value in enumerate(values):
        x, y = (k, 0) if horizontal else (0, k)
        text = "-" if np.isnan(value) else f"{100 * value:.1f}"
        ax.text(x, y, text, ha="center", va="center", fontsize=fontsize,
                color="C3" if k == worst else "black", weight="bold" if k == worst else None)
    n = len(values)
    ax.set_xlim(-0.5, (n if horizontal else 1) - 0.5)
    ax.set_ylim((1 if horizontal else n) - 0.5, -0.5)
    ax.set_facecolor("0.95")
    ax.set_xticks([])
    ax.set_yticks([])


def confusion_matrix_plot(matrix, path, title="confusion matrix", class_names=None):
    """Heatmap of a confusion matrix with the count in each cell and per-class rates.

    Colours follow the count on a log scale (so that rare confusions stand out next to the
    diagonal); empty cells are white. Recall (% of each true class found) is in a column on the
    right, precision (% of each predicted class that is right) in a row at the bottom; the
    lowest of each is in bold red.

    Parameters
    ----------
    matrix : array_like of int, (n_classes, n_classes)
        Rows are true classes, columns predicted ones (:func:`jitnet.evaluation.metrics.confusion_matrix`).
    path : str or os.PathLike
    title : str
    class_names : sequence of str, optional
        Tick labels; default ``0 .. n_classes-1``.
    """
    matrix = np.asarray(matrix)
    precision, recall = precision_recall(matrix)
    n = matrix.shape[0]
    names = [str(k) for k in range(n)] if class_names is None else [str(c) for c in class_names]
    if len(names) != n:
        raise ValueError(f"{len(names)} class names for {n} classes")
    cell = 0.62 if n <= 12 else max(0.25, 7.5 / n)
    fontsize = 9 if n <= 12 else max(5, 9 * cell / 0.62)
    fig = _figure(cell * (n + 1.3) + 1.4, cell * (n + 1.0) + 1.6)
    from matplotlib import colormaps  # after _figure, which says how to install matplotlib
    from matplotlib.colors import LogNorm

    grid = fig.add_gridspec(2, 2, width_ratios=[n, 1.3], height_ratios=[n, 1.0])
    ax = fig.add_subplot(grid[0, 0])
    top = max(int(matrix.max()), 2)
    cmap = colormaps["Blues"].with_extremes(bad="white")  # a copy: the registry's stays as is
    image = ax.imshow(np.ma.masked_equal(matrix, 0), cmap=cmap, norm=LogNorm(1, top),
                      aspect="auto")
    if n <= 30:  # beyond that the numbers would not be legible
        for (i, j), count in np.ndenumerate(matrix):
            colour = "0.7" if count == 0 else _text_colour(image.cmap(image.norm(count)))
            ax.text(j, i, f"{int(count):,}", ha="center", va="center", fontsize=fontsize,
                    color=colour)
    ax.set_xticks(range(n), names, fontsize=fontsize)
    ax.set_yticks(range(n), names, fontsize=fontsize)
    ax.xaxis.set_label_position("top")
    ax.xaxis.tick_top()
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    right = fig.add_subplot(grid[0, 1])
    _rate_strip(right, recall, False, fontsize)
    right.set_title("recall\n(%)", fontsize=fontsize)
    bottom = fig.add_subplot(grid[1, 0])
    _rate_strip(bottom, precision, True, fontsize)
    bottom.set_ylabel("precision (%)", rotation=0, ha="right", va="center", fontsize=fontsize)
    total, right_count = int(matrix.sum()), int(np.trace(matrix))
    error = 100 * (1 - right_count / total) if total else float("nan")
    fig.suptitle(f"{title}\n{total:,} images, error {error:.2f}%; colour: count, log scale")
    _save(fig, path)


def mistakes_gallery(images, true, predicted, confidence, path, n=24,
                     title="most confident mistakes", columns=8):
    """The misclassified images, worst first: highest confidence in the wrong class.

    Each image is captioned ``true 7 → pred 1 (93%)``.

    Parameters
    ----------
    images : array_like, (N, rows, cols) or (N, rows*cols) of square images
    true, predicted : array_like of int, (N,)
    confidence : array_like of float, (N,) or None
        The score of the predicted class, in [0, 1] (e.g. from
        :func:`jitnet.data.images.probabilities`); None leaves it out (and keeps file order).
    path : str or os.PathLike
    n : int
        How many to show; all mistakes when there are fewer.
    title : str
    columns : int

    Returns
    -------
    ndarray of int64, (min(n, mistakes),)
        Indices of the images shown, in the order shown.
    """
    images = _images(images)
    true, predicted = np.asarray(true).ravel(), np.asarray(predicted).ravel()
    if not len(images) == len(true) == len(predicted):
        raise ValueError(f"{len(images)} images, {len(true)} labels, {len(predicted)} predictions")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    wrong = np.flatnonzero(true != predicted)
    if confidence is not None:
        confidence = np.asarray(confidence, dtype=np.float64).ravel()
        if len(confidence) != len(images):
            raise ValueError(f"{len(confidence)} confidences for {len(images)} images")
        wrong = wrong[np.argsort(-confidence[wrong], kind="stable")]
    shown = wrong[:n].astype(np.int64)
    captions = [
        f"true {true[i]} → pred {predicted[i]}"
        + ("" if confidence is None else f" ({100 * confidence[i]:.0f}%)")
        for i in shown
    ]
    what = f"{len(shown)} of {len(wrong):,} misclassified"
    if confidence is not None:
        what += ", most confident first; % = score of the predicted class"
    _gallery(images[shown], captions, path, f"{title} ({what})", columns)
    return shown


def distortion_grid(original, distorted, path, labels=None, title="distortions", columns=6):
    """An image followed by its distorted versions, in a grid.

    Parameters
    ----------
    original : array_like, (rows, cols)
    distorted : array_like, (K, rows, cols)
    path : str or os.PathLike
    labels : sequence of str, optional
        Caption of each distortion; default ``distortion 1 .. K``.

    Returns
    -------
    int
        Number of images drawn (K + 1).
    """
    original = np.asarray(original)
    distorted = _images(distorted, "distorted")
    if original.shape != distorted.shape[1:]:
        raise ValueError(f"original {original.shape} and distorted {distorted.shape[1:]} "
                         "images differ in size")
    labels = [f"distortion {k + 1}" for k in range(len(distorted))] if labels is None else labels
    if len(labels) != len(distorted):
        raise ValueError(f"{len(labels)} labels for {len(distorted)} distorted images")
    stack = np.concatenate([original[None], distorted])
    _gallery(stack, ["original", *map(str, labels)], path, title, columns)
    return len(stack)


def compare_curves(runs, path, metric="val_error", title="comparison", log_scale=False):
    """One curve per run of ``metric`` against the epoch, with a legend.

    Parameters
    ----------
    runs : list of (str, list of dict)
        ``(label, history)`` pairs.
    metric : {"val_error", "test_error", "loss"} or another key of the records
        Errors are drawn in %.

    Returns
    -------
    int
        Number of curves drawn (runs without the metric are left out).
    """
    fig = _figure(7.5, 4.8)
    ax = fig.subplots()
    scale = 100 if metric.endswith("error") else 1
    drawn = 0
    for label, history in runs:
        epochs, values = _series(_check_history(history, f"run {label!r}"), metric, scale)
        if not epochs:
            continue
        best = int(np.argmin(values))
        unit = "%" if scale == 100 else ""
        line, = ax.plot(epochs, values, marker="o" if len(epochs) <= 50 else None, ms=3,
                        label=f"{label}  (best {values[best]:.4g}{unit} at epoch {epochs[best]:g})")
        ax.plot([epochs[best]], [values[best]], marker="*", ms=11, color=line.get_color())
        drawn += 1
    if not drawn:
        raise ValueError(f"no run has any {metric!r} value to draw")
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(_LABELS.get(metric, metric))
    ax.grid(True, alpha=0.3)
    _integer_epochs(ax)
    ax.legend(fontsize=8)
    ax.set_title(title)
    _save(fig, path)
    return drawn


def _param_value(result, name):
    """A trial's value of parameter ``name``: at the top level or under "config"/"params"."""
    for where in (result, result.get("config") or {}, result.get("params") or {}):
        if name in where:
            value = where[name]
            return "-".join(map(str, value)) if isinstance(value, (list, tuple)) else value
    raise ValueError(f"sweep result has no parameter {name!r}: {sorted(result)}")


def _log_axis(name, values):
    """Rates (and positive values spanning 100x or more) get a logarithmic axis."""
    positive = all(v > 0 for v in values)
    return positive and ("rate" in name or max(values) >= 100 * min(values))


def _log_ticks(ax, levels):
    """A log x axis labelled with the swept values as plain numbers (0.03, 0.1, 0.3)."""
    from matplotlib.ticker import FuncFormatter, NullLocator

    ax.set_xscale("log")
    if len(levels) <= 10:
        ax.set_xticks(levels)
        ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def sweep_plot(results, params, path, metric="val_error", title="hyperparameter sweep"):
    """``metric`` against each swept parameter: one panel per parameter, all trials as dots.

    Each panel also joins the best trial at each value of its parameter, and stars the best
    trial overall. Learning rates (parameters named ``*rate*``) get a logarithmic axis, as do
    positive values spanning a factor of 100 or more; non-numeric values (a dtype, hidden sizes
    ``500-150``) are categories.

    Parameters
    ----------
    results : list of dict
        One per trial, holding ``metric`` (a fraction, or None for a failed trial) and each
        parameter, at the top level or under ``"config"`` or ``"params"``.
    params : sequence of str
        The swept parameters, one panel each.
    path : str or os.PathLike

    Returns
    -------
    int
        Number of trials drawn (those with a value of ``metric``).
    """
    params = list(params)
    trials = [r for r in results if _is_number(r.get(metric))]
    if not params or not trials:
        raise ValueError(f"nothing to draw: {len(params)} parameters, {len(trials)} trials "
                         f"with a {metric!r} value")
    scale = 100 if metric.endswith("error") else 1
    y = np.array([scale * r[metric] for r in trials])
    best = int(np.argmin(y))
    fig = _figure(min(4.0 * len(params), 14) + 0.5, 4.2)
    axes = np.atleast_1d(fig.subplots(1, len(params), sharey=True, squeeze=False)[0])
    for ax, name in zip(axes, params):
        values = [_param_value(r, name) for r in trials]
        if all(_is_number(v) for v in values):
            x = np.array(values, dtype=np.float64)
            if _log_axis(name, x):
                _log_ticks(ax, np.unique(x))
        else:  # categories, in order of first appearance
            categories = list(dict.fromkeys(map(str, values)))
            x = np.array([categories.index(str(v)) for v in values], dtype=np.float64)
            ax.set_xticks(range(len(categories)), categories)
        ax.scatter(x, y, s=22, alpha=0.6, color="C0", label="trial")
        levels = np.unique(x)
        ax.plot(levels, [y[x == v].min() for v in levels], color="C0", linewidth=1,
                label="best at each value")
        ax.plot(x[best], y[best], marker="*", ms=15, color="C3", linestyle="none",
                label=f"best trial ({y[best]:.4g}{'%' if scale == 100 else ''})")
        ax.set_xlabel(name)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel(_LABELS.get(metric, metric))
    axes[0].legend(fontsize=8)
    failed = len(results) - len(trials)
    fig.suptitle(f"{title}: {len(trials)} trials" + (f", {failed} without a result" if failed
                                                       else ""))
    _save(fig, path)
    return len(trials)
