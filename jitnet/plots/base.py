"""Figure plumbing shared by :mod:`jitnet.plots.figures`: the Agg canvas, the atomic PNG save, the
matplotlib import with its install hint, history series and the image-gallery mosaic.

Drawing uses matplotlib's object API on its own Agg canvas, never ``pyplot``, so it opens no
window and leaves the backend and figures of an interactive session alone. matplotlib is imported
only inside :func:`_figure` and after it, so importing this module needs numpy alone.
"""

import math
import textwrap

import numpy as np

from jitnet.io.errors import MissingDependencyError  # noqa: F401 (re-exported)
from jitnet.training.runlog import _is_number

DPI = 110
_LABELS = {
    "val_error": "validation error (%)",
    "test_error": "test error (%)",
    "loss": "training loss (mean per sample)",
}


def _figure(width, height):
    """A constrained-layout Figure on its own Agg canvas (no pyplot, no global state)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError(
            'drawing pictures needs matplotlib: pip install "jitnet[plots]"'
        ) from None
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    from jitnet.io.atomic import atomic_write

    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=DPI, facecolor="white"))


def _series(history, key, scale=1.0):
    """(epochs, values) of the records of ``history`` where ``key`` holds a number."""
    points = [(r["epoch"], scale * r[key]) for r in history if _is_number(r.get(key))]
    return [e for e, _ in points], [v for _, v in points]


def _check_history(history, name="history"):
    history = list(history)
    if not history:
        raise ValueError(f"{name} is empty: nothing to draw")
    for record in history:
        if not isinstance(record, dict) or not _is_number(record.get("epoch")):
            raise ValueError(f"{name}: every record must be a dict with a numeric 'epoch'")
    return sorted(history, key=lambda r: r["epoch"])


def _best(history):
    """(key, epoch, error) of the lowest validation error (else test error), or None."""
    for key in ("val_error", "test_error"):
        epochs, errors = _series(history, key)
        if epochs:
            i = int(np.argmin(errors))  # the first of equal errors, as the stopping rule keeps
            return key, epochs[i], errors[i]
    return None


def _integer_epochs(ax):
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _images(images, name="images"):
    """(N, rows, cols) from (N, rows, cols) or square flat (N, rows*cols) images."""
    images = np.asarray(images)
    if images.ndim == 2:
        side = math.isqrt(images.shape[1])
        if side * side != images.shape[1]:
            raise ValueError(f"{name}: flat images of {images.shape[1]} pixels are not square; "
                             "pass (N, rows, cols)")
        images = images.reshape(len(images), side, side)
    if images.ndim != 3:
        raise ValueError(f"{name} must have shape (N, rows, cols), got {images.shape}")
    return images


def _gallery(images, captions, path, title, columns):
    """Images in a grid, grayscale, dark ink on white, each framed with its caption above.

    The grid is one mosaic in one axes: a subplot per image would take matplotlib ~70 ms each.
    """
    count, rows_px, cols_px = images.shape
    columns = max(1, min(columns, count))
    rows = max(1, math.ceil(count / columns))
    gap, caption = max(2, cols_px // 4), max(3, rows_px // 4)  # in image pixels
    cell_w, cell_h = cols_px + gap, rows_px + caption
    mosaic = np.full((rows * cell_h + gap // 2, columns * cell_w), np.nan)
    width = 1.6 * columns + 0.2
    fig = _figure(max(width, 4.5), width * mosaic.shape[0] / mosaic.shape[1] + 0.45)
    from matplotlib import colormaps  # after _figure, which says how to install matplotlib
    from matplotlib.patches import Rectangle

    ax = fig.subplots()
    for k, (image, text) in enumerate(zip(images, captions)):
        top, left = (k // columns) * cell_h + caption, (k % columns) * cell_w + gap // 2
        mosaic[top:top + rows_px, left:left + cols_px] = image
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), cols_px, rows_px, fill=False,
                               edgecolor="0.8", linewidth=0.8))
        ax.text(left + cols_px / 2 - 0.5, top - 1.5, text, ha="center", va="bottom",
                fontsize=8)
    vmax = 255 if count and np.nanmax(mosaic) > 1 else 1
    cmap = colormaps["gray_r"].with_extremes(bad="white")
    ax.imshow(np.ma.masked_invalid(mosaic), cmap=cmap, vmin=0, vmax=vmax,
              interpolation="nearest")
    ax.set_axis_off()
    if count == 0:
        ax.text(0.5, 0.5, "nothing to show", transform=ax.transAxes, ha="center",
                va="center", color="0.4")
    fig.suptitle("\n".join(textwrap.wrap(title, int(max(width, 4.5) * 10))))
    _save(fig, path)
