"""What a benchmark reports: number formats, aligned and markdown tables, the machine line, and
the results files (``<stem>-<date>.json``, ``<stem>-latest.json``, ``<stem>-latest.md``)."""

import json
import os

from jitnet.io.atomic import atomic_write_bytes

# bench/results of the source tree this harness belongs to.
DEFAULT_OUT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               "results")


def machine_line(info):
    """One line: CPU model, cores, caches, versions and load, from ``jitnet.training.machine``."""
    caches = ", ".join(f"{level} {size / 1024**2:g} MB" for level, size in info["caches"].items()
                       if level != "L1")
    versions = ", ".join(f"{name} {info[name]}" for name in
                         ("python", "numpy", "numba", "torch", "jax") if name in info)
    cores = f"{info['cpu_count']} cores"
    if info.get("usable_cores") not in (None, info["cpu_count"]):
        cores += f" ({info['usable_cores']} usable)"
    load = f"; load average {info['load_average']:g}" if "load_average" in info else ""
    return f"{info['cpu']}, {cores}" + (f" ({caches})" if caches else "") + f"; {versions}{load}"


def format_number(x):
    """At least three significant figures, with thousands separators; '-' for None."""
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def aligned_table(header, rows, right):
    """Plain-text table, each column padded to its widest cell; ``right[i]`` aligns column i
    to the right."""
    widths = [max(len(cells[i]) for cells in [header] + rows) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.rjust(w) if r else c.ljust(w)
                         for c, w, r in zip(cells, widths, right)).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


def markdown_table(header, rows, right):
    """The same table in markdown."""
    align = ["---:" if r else ":---" for r in right]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [header, align] + rows)


def write_results(out_dir, stem, record, markdown):
    """Write ``record`` (JSON) and ``markdown`` atomically; returns the three paths.

    ``<stem>-<date>.json`` keeps each day's run, ``<stem>-latest.json`` and ``<stem>-latest.md``
    the newest; ``record["date"]`` starts with the ISO date.
    """
    data = (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode()
    paths = [os.path.join(out_dir, f"{stem}-{record['date'][:10]}.json"),
             os.path.join(out_dir, f"{stem}-latest.json"),
             os.path.join(out_dir, f"{stem}-latest.md")]
    atomic_write_bytes(paths[0], data)
    atomic_write_bytes(paths[1], data)
    atomic_write_bytes(paths[2], markdown.encode())
    return paths
