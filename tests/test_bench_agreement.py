"""bench/agreement.py, the held-out grid of jitnet.sklearn against scikit-learn: one case agrees,
a broken engine is caught, and the report is written (a tiny grid; the full one is the bench)."""

import os
import sys

import pytest

pytest.importorskip("sklearn")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import agreement  # noqa: E402

from jitnet.sklearn import _sgd  # noqa: E402


def test_a_case_of_the_grid_agrees_and_a_wrong_unit_is_caught(monkeypatch):
    case = ("multilabel", "tanh", 1e-3, 0.9, True, True, "adaptive", 1, 2)
    gap, loss_gap, ours, theirs = agreement.run_case(*case)
    assert gap <= 1e-9 and loss_gap <= 1e-9 and ours == theirs == 2
    monkeypatch.setitem(_sgd.ENGINE_ACTIVATIONS, "tanh", "sigmoid")
    assert agreement.run_case(*case)[0] > 1e-3


def test_the_report_and_the_exit_status(monkeypatch, tmp_path):
    for axis, value in (("ACTIVATIONS", ("relu",)), ("ALPHAS", (0.0,)), ("SHUFFLES", (True,)),
                        ("SCHEDULES", ("invscaling",)), ("PROBLEMS", ("binary", "poisson")),
                        ("MOMENTA", ((0.9, True),))):
        monkeypatch.setattr(agreement, axis, value)
    assert agreement.main(["--seeds", "1", "--out-dir", str(tmp_path)]) == 0
    report = (tmp_path / "agreement-latest.md").read_text()
    assert "| binary | 1 |" in report and "every case within it" in report
    assert agreement.main(["--seeds", "1", "--tolerance=-1", "--out-dir", str(tmp_path)]) == 1
