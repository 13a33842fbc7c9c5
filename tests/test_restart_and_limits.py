"""Held-out fuzzing findings, as a new user meets them: a run killed before its first checkpoint
is started again by ``--resume`` (no loop between ``--resume`` and ``--name``), and an absurd
``--epochs`` or ``--hidden`` ends in one line with no run folder left, on a terminal too."""

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import assert_one_line_error, invoke
from jitnet.cli import console
from jitnet.data.datasets import load_mnist
from jitnet.sweep import SweepError, parse_space
from jitnet.training import (
    CheckpointError, Reporter, TrainConfig, TrainingError, prepare_data, read_log,
    resume_training, run_training,
)

REPO = Path(__file__).resolve().parents[1]
HUGE = "1" + "0" * 400
SMALL = ["--hidden", "8", "--epochs", "2", "--eval-every", "1", "--train-limit", "1200",
         "--validation", "200", "--test-limit", "300", "--quiet"]


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from jitnet.cli.pictures import RunPictures  # no test here looks at pictures

    monkeypatch.setattr(RunPictures, "curve", lambda *args, **kwargs: None)
    monkeypatch.setattr(RunPictures, "final", lambda *args, **kwargs: None)


def arrays(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files if k != "jitnet_train_info"}


def killed_before_its_first_checkpoint(run):
    """What ``kill -9`` leaves of a run before its first checkpoint: config.json, its log and
    the best model so far, no checkpoint and no report."""
    (run / "checkpoint.npz").unlink()
    (run / "report.json").unlink()
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "log.jsonl", "model.npz"]


class Messages(Reporter):
    def __init__(self):
        self.lines = []

    def message(self, text):
        self.lines.append(text)


# -- a run killed before its first checkpoint ---------------------------------------------------


def test_resume_training_starts_a_run_without_checkpoint_again(tmp_path):
    config = TrainConfig(hidden=(8,), epochs=2, eval_every=1, validation=200, train_limit=1200,
                         test_limit=300, checkpoint_every=5)
    splits = prepare_data(config, *load_mnist())
    straight = run_training(config, tmp_path / "straight", splits=splits)
    run_training(config, tmp_path / "killed", splits=splits)
    killed_before_its_first_checkpoint(tmp_path / "killed")
    messages = Messages()
    again = resume_training(tmp_path / "killed", {"patience": 3}, reporter=messages)
    assert any("has no checkpoint" in line and "config.json" in line for line in messages.lines)
    assert again.state.epoch == 2 and again.state.config.patience == 3
    assert [r["epoch"] for r in read_log(tmp_path / "killed")] == [1, 2]  # not the old lines
    assert np.array_equal(again.state.net.params, straight.state.net.params)
    # The experiment stays what config.json says.
    killed_before_its_first_checkpoint(tmp_path / "killed")
    with pytest.raises(CheckpointError, match="config.json was saved with --hidden 8, not 9"):
        resume_training(tmp_path / "killed", {"hidden": (9,)})


def test_resume_of_a_folder_without_a_run_says_what_to_do(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="holds no run to resume .*delete the folder"):
        resume_training(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text('{"epochs": 0}')
    with pytest.raises(CheckpointError, match="config.json: cannot read .*'epochs' is 0"):
        resume_training(tmp_path / "bad")


def test_train_name_then_resume_is_not_a_loop(tmp_path):
    result = invoke("train", *SMALL, "--name", "r")
    assert result.exit_code == 0, result.output
    model = arrays(tmp_path / "runs" / "r" / "model.npz")
    killed_before_its_first_checkpoint(tmp_path / "runs" / "r")
    # The same --name points to --resume, and --resume now does it.
    assert_one_line_error(invoke("train", *SMALL, "--name", "r"), "--resume runs/r")
    result = invoke("train", "--resume", "runs/r")
    assert result.exit_code == 0, result.output
    assert "stopped after epoch 2" in result.stdout
    assert (tmp_path / "runs" / "r" / "checkpoint.npz").exists()
    again = arrays(tmp_path / "runs" / "r" / "model.npz")
    assert sorted(again) == sorted(model) and all(np.array_equal(again[k], model[k])
                                                  for k in model)
    (tmp_path / "runs" / "empty").mkdir()
    assert_one_line_error(invoke("train", "--resume", "runs/empty"), "holds no run",
                          "choose another --name")


# -- values beyond reason -------------------------------------------------------------------


@pytest.mark.parametrize("epochs", [HUGE, "1000001"])
def test_absurd_epochs_are_one_line_and_leave_no_run_folder(tmp_path, epochs):
    result = invoke("train", "--epochs", epochs, "--hidden", "8")
    assert_one_line_error(result, "--epochs", "1<=x<=1000000")
    assert not (tmp_path / "runs").exists()


def test_absurd_epochs_from_files_and_sweeps_are_refused():
    with pytest.raises(TrainingError, match="'epochs' is 1000.*not an integer from 1 to 1,000,000"):
        TrainConfig.from_dict({"epochs": int(HUGE)})
    with pytest.raises(SweepError, match="--epochs 1000.* is not an integer from 1 to 1,000,000"):
        parse_space({"epochs": HUGE})
    for name in ("epochs", "seed", "hidden"):  # a range is drawn in floats
        with pytest.raises(SweepError, match=f"--{name}: the range .* is too wide to draw from"):
            parse_space({name: f"1:{HUGE}", "random": "2"})


def test_a_network_too_large_to_build_is_one_line_and_leaves_no_run_folder(tmp_path):
    result = invoke("train", *SMALL, "--hidden", HUGE)
    assert_one_line_error(result, "cannot build a 784-1000")
    assert not any((tmp_path / "runs").iterdir())


def test_the_progress_bar_draws_any_run_length():
    err = io.StringIO()
    reporter = console.ConsoleReporter(bar=True, out=io.StringIO(), err=err)
    reporter.samples_done, reporter.seconds_done = 100, 1.0
    progress = reporter.epoch_start(1, int(HUGE), 100)
    progress(50)
    progress(100)
    assert ">99:59:59" in err.getvalue() and "epoch 1/" in err.getvalue()
    for seconds in (float("inf"), float("nan"), 1e300, 360000):
        assert console._duration(seconds) == ">99:59:59"
    assert console._duration(359999) == "99:59:59" and console._duration(7.4) == "0:07"


@pytest.mark.skipif(shutil.which("script") is None, reason="needs script(1) for a terminal")
def test_absurd_epochs_on_a_terminal(tmp_path):
    """As the fuzzer found it: stderr a terminal (script(1) gives the command one)."""
    command = f"{sys.executable} -m jitnet train --epochs {HUGE} --hidden 8"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run(["script", "-qec", command, "/dev/null"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout
    assert "Traceback" not in done.stdout and "Error: Invalid value for '--epochs'" in done.stdout
    assert not (tmp_path / "runs").exists()


def test_a_config_json_of_a_restarted_run_holds_the_new_changes(tmp_path):
    result = invoke("train", *SMALL, "--name", "r")
    assert result.exit_code == 0, result.output
    killed_before_its_first_checkpoint(tmp_path / "runs" / "r")
    result = invoke("train", "--resume", "runs/r", "--epochs", "3", "--quiet")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "runs" / "r" / "config.json").read_text())
    assert saved["epochs"] == 3 and len(read_log(tmp_path / "runs" / "r")) == 3
