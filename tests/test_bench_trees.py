"""The harness that times two jitnet source trees in one run (bench/harness/trees.py) and
bench/recipes.py on it: small networks, a few samples, no timing asserted."""

import hashlib
import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import recipes  # noqa: E402
from harness import BenchError, trees  # noqa: E402

import jitnet  # noqa: E402


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def worker():
    with trees.Worker(ROOT, "new") as w:
        yield w


def test_a_worker_imports_its_own_tree_and_trains_like_this_process(worker):
    assert worker.jitnet == os.path.join(ROOT, "jitnet")
    worker.setup("small", [784, 8, 10], "float64", 60)
    first = worker.epoch("small", 60, 0.3)
    again = worker.epoch("small", 60, 0.3)
    assert first["digest"] == again["digest"]  # every epoch from the same start
    assert first["wall"] > 0 and first["cpu"] > 0 and first["loss"] > 0
    train, _ = jitnet.load_mnist()
    net = jitnet.Network([784, 8, 10], seed=0)
    net.train_epoch(train.images[:60], net.targets(train.labels[:60]), 0.3)
    assert first["digest"] == hashlib.sha1(net.params.tobytes()).hexdigest()
    shorter = worker.epoch("small", 30, 0.3, evaluate=True)
    assert shorter["digest"] != first["digest"] and 0 <= shorter["test_error"] <= 1


def test_a_worker_reports_errors_in_one_line(worker):
    with pytest.raises(BenchError, match="the new worker: KeyError"):
        worker.epoch("no such network", 10, 0.3)
    with pytest.raises(BenchError, match="the new worker: ValueError: .*momentum"):
        worker.setup("bad", [784, 8, 10], "float64", 10)
        worker.epoch("bad", 10, 0.3, options={"momentum": 2.0})
    assert worker.epoch("small", 10, 0.3)["loss"] > 0  # still answering


def test_source_tree_checks_a_folder_and_exports_a_revision(tmp_path, monkeypatch):
    with pytest.raises(BenchError, match="not a jitnet source tree"):
        trees.source_tree(path=str(tmp_path))
    assert trees.source_tree(path=ROOT) == ROOT
    with pytest.raises(BenchError, match="rev-parse"):
        trees.source_tree(rev="no-such-revision-anywhere")
    monkeypatch.setattr(trees, "SCRATCH", str(tmp_path / "scratch"))
    folder = trees.source_tree(rev="HEAD")
    assert os.path.isfile(os.path.join(folder, "jitnet", "__init__.py"))
    assert folder.startswith(str(tmp_path)) and trees.source_tree(rev="HEAD") == folder
    assert len(trees.sources_digest(folder)) == 40


def test_recipes_times_a_tree_against_itself(tmp_path, capsys):
    args = ["--repeats", "2", "--samples", "100", "--check-samples", "100", "--dtypes",
            "float64", "--recipes", "tutorial,momentum 0.9", "--old-tree", ROOT,
            "--out", str(tmp_path / "out")]
    assert recipes.main(args) == 0
    out = capsys.readouterr().out
    assert "new / old" in out and "every row within 3%" in out
    record = json.loads((tmp_path / "out" / "recipes-latest.json").read_text())
    rows = record["rows"]
    assert [(r["recipe"], r["dtype"]) for r in rows] == [("tutorial", "float64"),
                                                       ("momentum 0.9", "float64")]
    for row in rows:
        assert len(row["cpu_rounds_us"]) == 2 and len(row["old_cpu_rounds_us"]) == 2
        assert row["new_over_old"] > 0 and row["old_cpu_us"] > 0
    assert rows[0]["vs_tutorial"] == pytest.approx(1.0)
    assert "new kernels against old" in (tmp_path / "out" / "recipes-latest.md").read_text()


def test_recipes_refuses_to_time_when_old_and_new_disagree(tmp_path, capsys, monkeypatch):
    real = recipes.Config.epoch

    def old_differs(self, worker, n):
        run = real(self, worker, n)
        if worker.name == "old":
            run["digest"] = "0" * 40
        return run

    monkeypatch.setattr(recipes.Config, "epoch", old_differs)
    monkeypatch.setattr(recipes, "time_all", lambda *a: pytest.fail("timed anyway"))
    args = ["--repeats", "2", "--samples", "50", "--check-samples", "50", "--dtypes", "float64",
            "--recipes", "tutorial", "--old-tree", ROOT, "--out", str(tmp_path / "out")]
    assert recipes.main(args) == 1
    assert "VALIDATION FAILED" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def test_recipes_errors_end_in_one_line(tmp_path, capsys):
    assert recipes.main(["--old-tree", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: ") and "not a jitnet source tree" in err[0]


def test_sources_digest_sees_every_change(tmp_path):
    (tmp_path / "jitnet").mkdir()
    (tmp_path / "jitnet" / "__init__.py").write_text("x = 1\n")
    before = trees.sources_digest(str(tmp_path))
    (tmp_path / "jitnet" / "__init__.py").write_text("x = 2\n")
    assert trees.sources_digest(str(tmp_path)) != before
    assert np.all([c in "0123456789abcdef" for c in before])
