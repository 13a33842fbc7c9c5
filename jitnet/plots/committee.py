"""The picture of a committee: each member's error against the error of the committee of the
first k members (``committee.png`` of ``jitnet committee``)."""

import textwrap

import numpy as np

from jitnet.plots.base import _LABELS, _figure, _is_number, _save

_SETS = {"test_error": "test set",
         "val_error": "validation set (each member's best epoch was picked on it)"}


def committee_plot(errors, path, title="committee"):
    """One panel per set: member k's own error (dots) and the error of the committee of members
    1..k (line, its last value written beside it), with the best member's error as a dashed
    line.

    Parameters
    ----------
    errors : dict
        ``"test_error"`` and/or ``"val_error"`` -> ``(member_errors, committee_errors)``: two
        sequences of K fractions, the k-th member alone and the committee of the first k.
    path : str or os.PathLike
        Where to write the PNG.
    title : str
        Says which committee this is.

    Returns
    -------
    int
        The number of members drawn.
    """
    panels = [(metric, np.asarray(m, float), np.asarray(c, float))
              for metric, (m, c) in errors.items()
              if len(m) and all(map(_is_number, m)) and all(map(_is_number, c))]
    if not panels:
        raise ValueError("nothing to draw: no member errors")
    k = np.arange(1, len(panels[0][1]) + 1)
    fig = _figure(4.6 * len(panels) + 0.4, 4.2)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (metric, members, committee) in zip(axes, panels):
        members, committee = 100 * members, 100 * committee
        ax.plot(k, committee, "-", marker="s", ms=5, color="C3", zorder=2,
                label="committee of members 1..k")
        ax.plot(k, members, "o", color="C0", ms=6, zorder=3, label="member k alone")
        best = members.min()
        ax.axhline(best, color="0.45", linestyle="--", linewidth=0.9, zorder=1,
                   label=f"best member alone ({best:.2f}%)")
        ax.annotate(f"{committee[-1]:.2f}%", (k[-1], committee[-1]), xytext=(7, 0),
                    textcoords="offset points", color="C3", fontsize=9, va="center")
        ax.set_xlabel("k (members in order of seed)")
        ax.set_ylabel(_LABELS[metric])
        ax.set_title(_SETS[metric], fontsize=10)
        ax.set_xlim(0.5, k[-1] + 0.6 + 0.16 * k[-1])  # room for the last label inside
        ax.set_xticks(k if len(k) <= 12 else np.unique(np.linspace(1, k[-1], 10).round()))
        low, high = min(members.min(), committee.min()), max(members.max(), committee.max())
        bottom = max(0.0, low - max(0.05, 0.1 * (high - low)))
        # The data in the lower 62% of the panel: the legend sits above it.
        ax.set_ylim(bottom, bottom + max(high - bottom, 0.1) / 0.62)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
    # Each line of the title wrapped to the figure's width (about 10 characters an inch).
    width = int(10 * fig.get_figwidth())
    fig.suptitle("\n".join(textwrap.fill(line, width) for line in title.splitlines()))
    _save(fig, path)
    return len(k)
