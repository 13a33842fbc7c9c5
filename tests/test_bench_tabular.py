"""Smoke test of bench/tabular.py: a small CSV, a few training samples, no timing asserted."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

pytest.importorskip("pandas")
import tabular as bench_tables  # noqa: E402


def test_the_table_benchmark_validates_then_reports_every_row(tmp_path, capsys, monkeypatch):
    path = tmp_path / "t.csv"
    status = bench_tables.main(["--rows", "3000", "--cols", "5", "--file", str(path),
                                "--repeats", "1", "--samples", "300", "--hidden", "8"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "validated: jitnet's arrays of t.csv equal pandas' values" in out
    assert "x pandas (" in out and "3,000 rows" in out
    assert sum(line.startswith(("MNIST images", "dense rows")) for line in out.splitlines()) == 3
    # A reader that disagrees with pandas is caught before anything is timed.
    real = bench_tables.read_source

    def shifted(*args, **kwargs):
        loaded = real(*args, **kwargs)
        loaded.train.images[0, 0] += 1
        return loaded

    monkeypatch.setattr(bench_tables, "read_source", shifted)
    assert bench_tables.main(["--rows", "3000", "--cols", "5", "--file", str(path)]) == 1
    assert "validation failed: features differ" in capsys.readouterr().out
