"""``jitnet committee`` on Dask: its own LocalCluster of one worker, tiny members (2,000 training
images of which 500 held out, 1,000 test images, 16 hidden units, 2 epochs). The committee's
files, its errors against the members' own and against jitnet.Committee, rerunning (nothing to
train: no cluster), a member resumed from its checkpoint, and a larger committee that reuses
the members done. (A worker killed mid-trial is the sweep runner's case:
test_sweep_cluster.py.)"""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import jitnet
from jitnet.cli.main import cli
from jitnet.sweep import SweepInterrupted, SweepReporter, run_committee

pytest.importorskip("distributed")

TINY = ["--hidden", "16", "--epochs", "2", "--train-limit", "2000", "--test-limit", "1000",
        "--validation", "500"]


def run(out, *args):
    result = CliRunner().invoke(cli, ["committee", "--out", str(out), "--workers", "1", *TINY,
                                      *args])
    return result


def stamps(out):
    return {p.parent.name: p.stat().st_mtime_ns for p in out.glob("trials/*/result.json")}


def test_committee_on_a_local_cluster_resumes_and_grows(tmp_path):
    out = tmp_path / "committee"
    result = run(out, "--members", "2", "--vary", "rate=0.3,0.1")
    assert result.exit_code == 0, result.output
    assert "local Dask cluster: 1 single-thread worker process" in result.stderr
    assert "members 2/2  running 0  failed 0" in result.stderr
    assert "| member 1 (seed 0): val error" in result.stderr

    document = json.loads((out / "committee.json").read_text())
    assert document["format"] == "jitnet-committee" and document["rule"] == "mean"
    members = document["members"]
    assert [m["seed"] for m in members] == [0, 1]
    assert [m["varied"] for m in members] == [{"rate": 0.3}, {"rate": 0.1}]
    assert document["varied"] == ["rate"] and document["vary"] == ["rate=0.3,0.1"]
    assert document["options"]["hidden"] == [16] and "seed" not in document["options"]
    for m in members:  # measured again from the best model: the member's own errors
        own = json.loads((out / m["folder"] / "result.json").read_text())
        assert m["model"] == f"trials/{own['key']}/model.npz" and m["key"] == own["key"]
        assert m["test_error"] == own["test_error"] and m["val_error"] == own["val_error"]
    committee = document["committee"]
    assert committee["members"] == 2
    assert committee["test_error_by_size"][0] == members[0]["test_error"]
    assert committee["val_error_by_size"][0] == members[0]["val_error"]
    # The committee as the library and `evaluate` see it.
    _, test = jitnet.load_mnist()
    loaded = jitnet.Committee.load(out)
    assert committee["test_error"] == committee["test_error_by_size"][-1] == \
        loaded.evaluate(test.images[:1000], test.labels[:1000])
    assert document["best_member"]["test_error"] == min(m["test_error"] for m in members)
    assert document["failed"] == []
    assert (out / "committee.png").stat().st_size > 10_000
    assert "| 1 | 0 | 0.3 |" in (out / "committee.md").read_text()
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["member", "seed", "rate", "val", "error", "test", "error",
                                "best", "epoch", "seconds", "trial", "note"]
    assert f"test error {100 * committee['test_error']:.2f}%" in result.stdout
    assert "2 members trained, 0 skipped (done before), 0 failed" in result.stdout
    assert "evaluate: " in result.stdout

    # The same command again: every member done, no cluster started, the same committee.
    before = stamps(out)
    again = run(out, "--members", "2", "--vary", "rate=0.3,0.1")
    assert again.exit_code == 0, again.output
    assert "2 of 2 members already done" in again.stderr
    assert "local Dask cluster" not in again.stderr
    assert stamps(out) == before
    assert json.loads((out / "committee.json").read_text())["committee"] == committee

    # A member whose result is lost resumes from its checkpoint; a third member is trained.
    second = members[1]["folder"]
    (out / second / "result.json").unlink()
    grown = run(out, "--members", "3", "--vary", "rate=0.3,0.1")
    assert grown.exit_code == 0, grown.output
    assert "1 of 3 members already done" in grown.stderr
    assert "2 members trained, 1 skipped" in grown.stdout
    assert "resumed after epoch 2" in grown.stdout
    document = json.loads((out / "committee.json").read_text())
    assert [m["folder"] for m in document["members"][:2]] == [m["folder"] for m in members]
    assert [m["varied"]["rate"] for m in document["members"]] == [0.3, 0.1, 0.3]
    assert document["members"][1]["test_error"] == members[1]["test_error"]
    assert document["committee"]["test_error_by_size"][:2] == committee["test_error_by_size"]
    assert len(jitnet.Committee.load(out)) == 3


def test_a_failed_member_is_reported_and_the_others_make_the_committee(tmp_path):
    """A member that training refuses once it starts (more threads than its 16 hidden units)
    fails; the committee is the others; exit code 1."""
    out = tmp_path / "committee"
    result = run(out, "--members", "2", "--vary", "threads=1,17")
    assert result.exit_code == 1, result.output
    document = json.loads((out / "committee.json").read_text())
    assert [m["seed"] for m in document["members"]] == [0]
    (failed,) = document["failed"]
    assert failed["seed"] == 1 and failed["status"] == "failed"
    assert "threads=17 is more than the 16 units" in failed["error"]
    assert "1 failed" in result.stdout and "committee of 1 (outputs averaged)" in result.stdout
    assert np.isfinite(document["committee"]["test_error"])


class _StopAfterOne(SweepReporter):
    """Raises KeyboardInterrupt (as Ctrl-C would) when the first member is done."""

    def trial_done(self, record, progress):
        raise KeyboardInterrupt


def test_an_interrupted_committee_continues_when_rerun(tmp_path):
    options = {"hidden": [16], "epochs": 2, "train_limit": 2000, "test_limit": 1000,
               "validation": 500}
    with pytest.raises(SweepInterrupted, match="interrupted with 1 of 2 members done"):
        run_committee(options, tmp_path, members=2, workers=1, reporter=_StopAfterOne())
    assert not (tmp_path / "committee.json").exists()
    # The second member may have finished on the worker before the cluster closed: tiny
    # members take milliseconds.
    done = stamps(tmp_path)
    assert 1 <= len(done) <= 2
    result = run_committee(options, tmp_path, members=2, workers=1)
    assert (result.ran, result.skipped) == (2 - len(done), len(done))
    assert stamps(tmp_path).items() >= done.items()
    assert [m["seed"] for m in result.finished] == [0, 1] and result.files["json"].exists()
    assert result.test_error == json.loads(result.files["json"].read_text())["committee"][
        "test_error"]


def test_a_committee_of_table_members_with_the_default_validation(tmp_path):
    # --data a table and no --validation ("auto": a sixth of the rows held out): the committee
    # is measured on the members' own split of that file (not on MNIST), validation included.
    rng = np.random.default_rng(0)
    X = rng.random((240, 6))
    labels = np.where(X[:, 0] + X[:, 1] > 1.0, "big", "small")
    table = tmp_path / "rows.csv"
    table.write_text("a,b,c,d,e,f,kind\n" + "".join(
        ",".join(f"{v:.4f}" for v in row) + f",{label}\n" for row, label in zip(X, labels)))
    out = tmp_path / "committee"
    result = CliRunner().invoke(cli, ["committee", "--out", str(out), "--workers", "1",
                                      "--members", "2", "--data", str(table), "--label", "kind",
                                      "--hidden", "8", "--epochs", "3"])
    assert result.exit_code == 0, result.output
    document = json.loads((out / "committee.json").read_text())
    members = document["members"]
    for m in members:
        own = json.loads((out / m["folder"] / "result.json").read_text())
        assert m["val_error"] is not None and m["val_error"] == own["val_error"]
        assert m["test_error"] == own["test_error"]
    assert document["committee"]["val_error_by_size"][0] == members[0]["val_error"]
    assert document["committee"]["val_error"] is not None
