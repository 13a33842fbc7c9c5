"""The experiment of ``jitnet.training`` without the command line: configuration, data, stopping
rule, run folders, resume, divergence."""

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import helpers
from helpers import REPO, CtrlCAt, same_network
from jitnet import training
from jitnet.data.datasets import Dataset
from jitnet.engine.network import Network
from jitnet.training import (
    CheckpointError, Reporter, RunDiverged, TrainConfig, TrainingError, TrainingInterrupted,
    check_resume_data, format_evaluation, load_checkpoint, load_model, prepare_data,
    resume_config, resume_training, stopping_update,
)
from jitnet.training import runs

# patience=100: the stopping rule never ends these runs early, so where this CPU's rounding takes
# the validation error (a tie or a rise of one image in 300) decides nothing a test looks at; the
# tests of the rule itself script the errors (ScriptedErrors) and give their own patience.
SMALL = dict(hidden=(8,), epochs=3, eval_every=1, validation=300, train_limit=1500,
             test_limit=400, checkpoint_every=1, patience=100)


def small_config(**changes):
    return TrainConfig(**{**SMALL, **changes})


def run_small(mnist, run_dir, reporter=None, **changes):
    return helpers.run_small(SMALL, mnist, run_dir, reporter, **changes)


def test_importing_the_library_does_not_import_the_command_line():
    code = ("import sys, jitnet.training, jitnet.training.loop\n"
            "bad = [m for m in sys.modules\n"
            "       if m == 'click' or m.startswith(('click.', 'jitnet.cli.main', 'jitnet._cli'))]\n"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, capture_output=True)


# -- configuration and data ------------------------------------------------------------------


def test_config_round_trips_through_json():
    config = TrainConfig(hidden=(500, 150), rate=0.1, shuffle=False, output="/m.npz")
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert TrainConfig.from_dict({}) == TrainConfig()  # absent fields take their defaults


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"hidden": [0]}, "'hidden' is \\[0\\], not an integer >= 1"),
        ({"hidden": []}, "'hidden'"),
        ({"hidden": "300"}, "'hidden'"),
        ({"rate": 0}, "'rate' is 0, not a positive number"),
        ({"rate": 10 ** 400}, "'rate' is 1000.*, not a positive number"),
        ({"rate": float("nan")}, "'rate'"),
        ({"rate": True}, "'rate'"),
        ({"epochs": 2.5}, "'epochs'"),
        ({"epochs": 0}, "'epochs'"),
        ({"seed": -1}, "'seed'"),
        ({"dtype": "float16"}, "'dtype'"),
        ({"shuffle": "yes"}, "'shuffle'"),
        ({"data": "/a\x00b"}, "'data' .*NUL"),
        ({"output": 5}, "'output'"),
        ({"nesterov": 0.9}, "unknown option \"nesterov\""),
        ({"activation": "softplus"}, "'activation' is \"softplus\", not one of"),
        ({"loss": "hinge"}, "'loss'"),
        ({"init": "uniform:0"}, "'init'"),
        ({"init": 3}, "'init'"),
        ({"schedule": "cosine"}, "'schedule'"),
        ({"decay": 0}, "'decay' is 0, not a factor in \\(0, 1\\]"),
        ({"decay": 1.5}, "'decay'"),
        ({"step_every": 0}, "'step_every'"),
        ({"momentum": 1.0}, "'momentum' is 1.0, not a momentum in \\[0, 1\\)"),
        ({"momentum": -0.1}, "'momentum'"),
        ({"distort": "wobbly"}, "'distort'"),
        ({"elastic_sigma": -1}, "'elastic_sigma'"),
        ({"rotate": 181}, "'rotate'"),
        ({"scale": 1.0}, "'scale'"),
        ({"shear": 90}, "'shear'"),
        ({"recipe": "lecun1989"}, "'recipe'"),
    ],
)
def test_config_from_a_file_checks_every_field_once(changes, words):
    with pytest.raises(TrainingError, match=words) as err:
        TrainConfig.from_dict(changes)
    assert "\n" not in str(err.value)


def test_changeable_options():
    assert training.CHANGEABLE == ("epochs", "eval_every", "patience", "data", "test_data",
                                   "checkpoint_every", "output", "report")


def test_prepare_data_limits_and_holds_out_the_last_samples(mnist):
    splits = prepare_data(TrainConfig(train_limit=1000, validation=200, test_limit=300), *mnist)
    train, test = mnist
    assert (len(splits.train), len(splits.val), len(splits.test)) == (800, 200, 300)
    assert np.array_equal(splits.val.images, train.images[800:1000])
    assert np.array_equal(splits.test.labels, test.labels[:300])
    assert splits.info["n_inputs"] == 784 and splits.info["n_classes"] == 10


def test_validation_zero_stops_on_the_test_set(mnist):
    config = TrainConfig(train_limit=1000, validation=0, test_limit=300)
    splits = prepare_data(config, *mnist)
    assert splits.val is splits.test and len(splits.train) == 1000
    assert config.stopping_set == "test" and config.error_key == "test_error"


def test_a_hold_out_as_large_as_the_training_set_is_refused(mnist):
    with pytest.raises(TrainingError, match="--validation 10000 .* 5,000 .*--train-limit 5000"):
        prepare_data(TrainConfig(train_limit=5000), *mnist)


def test_fingerprint_sees_one_changed_pixel(mnist):
    train = mnist[0][:100]
    images = train.images.copy()
    before = training.data.data_fingerprint(train)
    images[50, 400] ^= 1
    changed = Dataset(images, train.labels, train.image_shape, train.n_classes)
    assert training.data.data_fingerprint(changed) != before


# -- the stopping rule -----------------------------------------------------------------------


def test_stopping_update_counts_only_evaluations_above_the_best():
    assert stopping_update(None, 0, 0.5) == (True, 0)
    assert stopping_update(0.5, 2, 0.4) == (True, 0)
    assert stopping_update(0.4, 0, 0.45) == (False, 1)
    assert stopping_update(0.4, 1, 0.41) == (False, 2)
    assert stopping_update(0.4, 1, 0.4) == (False, 1)  # a tie neither improves nor counts


class ScriptedErrors:
    """Replaces Network.evaluate on the validation set (``n_val`` samples) by scripted errors."""

    def __init__(self, monkeypatch, errors, n_val=SMALL["validation"]):
        self.errors = list(errors)
        self.calls = 0
        real = Network.evaluate
        script = self

        def evaluate(net, X, labels, scale=None):
            if len(X) == n_val:
                script.calls += 1
                return script.errors.pop(0)
            return real(net, X, labels, scale=scale)

        monkeypatch.setattr(Network, "evaluate", evaluate)


@pytest.mark.parametrize(
    "errors, patience, stop_epoch, best_epoch",
    [
        ([0.5, 0.4, 0.45, 0.3, 0.2, 0.1], 1, 3, 2),  # the tutorial: stop at the first rise
        ([0.5, 0.4, 0.45, 0.3, 0.2, 0.1], 2, 6, 6),  # one rise is tolerated
        ([0.5, 0.4, 0.45, 0.46, 0.3, 0.1], 2, 4, 2),
        ([0.5, 0.4, 0.4, 0.4, 0.39, 0.38], 1, 6, 6),  # ties do not stop the run
    ],
)
def test_patience_and_best_model(mnist, tmp_path, monkeypatch, errors, patience, stop_epoch,
                                 best_epoch):
    weights_at = {}
    real_train_epoch = Network.train_epoch

    def train_epoch(net, *args, **kwargs):
        loss = real_train_epoch(net, *args, **kwargs)
        if net.sizes == [784, 8, 10]:  # not compile_kernels' warm-up network
            weights_at[len(weights_at) + 1] = net.params.copy()
        return loss

    monkeypatch.setattr(Network, "train_epoch", train_epoch)
    script = ScriptedErrors(monkeypatch, errors)
    result = run_small(mnist, tmp_path / "run", epochs=6, patience=patience)
    state = result.state
    assert state.epoch == stop_epoch and script.calls == stop_epoch
    assert [h["epoch"] for h in state.history] == list(range(1, stop_epoch + 1))
    assert state.best_epoch == best_epoch and state.best_error == min(errors[:stop_epoch])
    assert result.stop_reason == ("patience" if stop_epoch < 6 else "epochs")
    best, info = load_model(tmp_path / "run")
    assert np.array_equal(best.params, weights_at[best_epoch]) and info["epoch"] == best_epoch


def test_a_real_run_stops_where_the_rule_says_on_the_errors_it_measured(mnist, tmp_path):
    """The stopping rule replayed on the run's own recorded errors: the stop epoch, the reason
    and the best epoch follow from them (whatever errors this CPU's rounding produced)."""
    result = run_small(mnist, tmp_path / "run", epochs=8, patience=1, rate=2.0)
    state = result.state
    best, bad, stop = None, 0, 8
    for record in state.history:
        improved, bad = stopping_update(best, bad, record["val_error"])
        assert record["improved"] == improved
        if improved:
            best, best_epoch = record["val_error"], record["epoch"]
        if bad >= 1:
            stop = record["epoch"]
            break
    assert state.epoch == stop and [h["epoch"] for h in state.history] == list(range(1, stop + 1))
    assert result.stop_reason == ("patience" if bad else "epochs")
    assert (state.best_epoch, state.best_error) == (best_epoch, best)
    assert load_model(tmp_path / "run")[1]["epoch"] == best_epoch


def test_best_model_is_written_only_when_it_improves(mnist, tmp_path, monkeypatch):
    written = []
    real_save_model = training.loop.save_model

    def save_model(path, net, info):
        written.append((Path(path).name, info["epoch"]))
        real_save_model(path, net, info)

    monkeypatch.setattr(training.loop, "save_model", save_model)
    ScriptedErrors(monkeypatch, [0.5, 0.4, 0.45, 0.3])
    result = run_small(mnist, tmp_path / "run", epochs=4, patience=2,
                       output=str(tmp_path / "copy.npz"))
    assert result.state.best_epoch == 4
    assert written == [(name, epoch) for epoch in (1, 2, 4) for name in ("model.npz", "copy.npz")]
    # A resumed run writes its checkpoint's best model once (its --output may have moved).
    written.clear()
    moved = str(tmp_path / "moved.npz")
    ScriptedErrors(monkeypatch, [0.35])
    resume_training(tmp_path / "run", {"epochs": 5, "output": moved}, data=mnist)
    assert written == [("model.npz", 4), ("moved.npz", 4)]


def test_targets_are_built_once_in_the_network_dtype(mnist, tmp_path, monkeypatch):
    seen = []
    real_train_epoch = Network.train_epoch

    def train_epoch(net, X, targets, *args, **kwargs):
        seen.append(targets)
        return real_train_epoch(net, X, targets, *args, **kwargs)

    monkeypatch.setattr(Network, "train_epoch", train_epoch)
    run_small(mnist, tmp_path / "run", dtype="float32", epochs=2)
    runs_ = [t for t in seen if t.shape == (1200, 10)]
    assert len(runs_) == 2 and runs_[0] is runs_[1] and runs_[0].dtype == np.float32
    assert set(np.unique(runs_[0])) == {np.float32(0.1), np.float32(0.9)}


def test_evaluates_every_n_epochs_and_after_the_last(mnist, tmp_path):
    result = run_small(mnist, tmp_path / "run", epochs=5, eval_every=2, checkpoint_every=0)
    assert [h["epoch"] for h in result.state.history] == [2, 4, 5]
    assert len(result.state.losses) == 5


# -- a run folder ----------------------------------------------------------------------------


class Recorder(Reporter):
    def __init__(self):
        self.records, self.messages, self.evaluations = [], [], []

    def epoch_end(self, record):
        self.records.append(record)

    def message(self, text):
        self.messages.append(text)

    def on_evaluation(self, state):
        self.evaluations.append([h["epoch"] for h in state.history])


def test_a_run_folder_holds_config_log_checkpoint_model_and_report(mnist, tmp_path):
    reporter = Recorder()
    copy = tmp_path / "elsewhere" / "report.json"
    result = run_small(mnist, tmp_path / "run", reporter=reporter, report=str(copy))
    run = tmp_path / "run"
    assert sorted(os.listdir(run)) == ["checkpoint.npz", "config.json", "log.jsonl", "model.npz",
                                       "report.json"]
    saved_config = json.loads((run / "config.json").read_text())
    assert TrainConfig.from_dict(saved_config) == result.state.config
    log = runs.read_log(run)
    assert log == reporter.records == result.state.records
    assert [r["epoch"] for r in log] == [1, 2, 3]
    assert {"loss", "rate", "seconds", "samples_per_second", "elapsed_seconds", "val_error",
            "eval_seconds", "improved"} <= set(log[0])
    assert reporter.evaluations == [[1], [1, 2], [1, 2, 3]]
    assert any("kernels ready" in m for m in reporter.messages)

    report = json.loads((run / "report.json").read_text())
    assert json.loads(copy.read_text()) == report == json.loads(json.dumps(result.report))
    assert report["status"] == "finished" and report["stop_reason"] == "epochs"
    assert report["config"]["hidden"] == [8] and report["sizes"] == [784, 8, 10]
    assert report["test_error"] == result.test_error and 0 < result.test_error < 0.5
    assert report["seconds_per_epoch"] > 0 and report["samples_per_second"] > 0
    assert {"platform", "cpu", "numpy", "numba"} <= set(report["machine"])
    assert report["files"]["model"] == str(run / "model.npz")

    state = load_checkpoint(run / "checkpoint.npz")
    assert (state.epoch, state.stop_reason) == (3, "epochs")
    assert state.config == result.state.config
    best, info = load_model(run / "model.npz")
    assert info["input_scale"] is None and info["epoch"] == state.best_epoch
    assert same_network(best, state.best)
    test = prepare_data(state.config, *mnist).test
    assert best.evaluate(test.images, test.labels) == result.test_error
    assert Network.load(run / "model.npz").sizes == [784, 8, 10]  # also a plain model file


def test_a_new_run_needs_an_empty_folder(mnist, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(TrainingError, match="busy is not empty"):
        run_small(mnist, tmp_path / "busy")
    assert os.listdir(tmp_path / "busy") == ["notes.txt"]
    (tmp_path / "empty").mkdir()
    assert run_small(mnist, tmp_path / "empty", epochs=1).state.epoch == 1


def test_run_folders_are_named_by_time_and_never_shared(tmp_path):
    first = training.create_run_dir(tmp_path / "runs")
    second = training.create_run_dir(tmp_path / "runs")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d(-\d+)?", first.name)
    assert first != second and first.is_dir() and second.is_dir()
    assert training.create_run_dir(tmp_path / "runs", "mine") == tmp_path / "runs" / "mine"
    with pytest.raises(TrainingError, match="mine already exists; continue it with --resume"):
        training.create_run_dir(tmp_path / "runs", "mine")


def test_raw_pixels_model_remembers_its_input_scale(mnist, tmp_path):
    run_small(mnist, tmp_path / "run", raw_pixels=True, epochs=1)
    assert load_model(tmp_path / "run")[1]["input_scale"] == 1.0


def test_float32_run(mnist, tmp_path):
    result = run_small(mnist, tmp_path / "run", dtype="float32", epochs=1)
    assert load_model(result.model_path)[0].dtype == np.float32


# -- resume ----------------------------------------------------------------------------------


def assert_same_run(a, b):
    helpers.assert_same_state(a.state, b.state)
    assert a.test_error == b.test_error


def test_interrupt_saves_the_last_complete_epoch_and_resume_is_exact(mnist, tmp_path):
    straight = run_small(mnist, tmp_path / "a", epochs=4, report=str(tmp_path / "a.json"))
    with pytest.raises(TrainingInterrupted) as stop:
        run_small(mnist, tmp_path / "b", reporter=CtrlCAt(3), epochs=4,
                  report=str(tmp_path / "b.json"))
    assert stop.value.epoch == 2 and stop.value.run_dir == tmp_path / "b"
    assert load_checkpoint(tmp_path / "b" / "checkpoint.npz").epoch == 2
    for report in (tmp_path / "b" / "report.json", tmp_path / "b.json"):
        assert json.loads(report.read_text())["status"] == "interrupted"
    resumed = resume_training(tmp_path / "b", data=mnist)
    assert_same_run(straight, resumed)
    assert runs.read_log(tmp_path / "b") == resumed.state.records
    # The resumed run keeps its --report, and both reports end final.
    for report in (tmp_path / "b" / "report.json", tmp_path / "b.json"):
        assert json.loads(report.read_text())["status"] == "finished"


def test_an_interrupt_before_the_first_epoch_saves_epoch_0(mnist, tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(training.loop, "compile_kernels", lambda *a, **k: (_ for _ in ()).throw(
            KeyboardInterrupt))
        with pytest.raises(TrainingInterrupted) as stop:
            run_small(mnist, tmp_path / "run")
    assert stop.value.epoch == 0
    assert load_checkpoint(tmp_path / "run" / "checkpoint.npz").epoch == 0
    assert resume_training(tmp_path / "run", data=mnist).state.epoch == 3


def test_resume_drops_log_lines_after_the_checkpoint(mnist, tmp_path):
    run = tmp_path / "run"
    saved = {}

    class KeepEpoch2(Reporter):  # the files as a kill -9 after epoch 3's log line leaves them
        def epoch_end(self, record):
            if record["epoch"] == 3:
                saved["checkpoint"] = (run / "checkpoint.npz").read_bytes()

    run_small(mnist, run, reporter=KeepEpoch2(), epochs=3, checkpoint_every=2, patience=100)
    (run / "checkpoint.npz").write_bytes(saved["checkpoint"])
    assert len(runs.read_log(run)) == 3
    with pytest.raises(TrainingInterrupted):
        resume_training(run, data=mnist, reporter=CtrlCAt(3))
    assert [r["epoch"] for r in runs.read_log(run)] == [1, 2]


def test_resume_removes_stale_temporary_files(mnist, tmp_path):
    run_small(mnist, tmp_path / "run", epochs=1, patience=100)
    stale = tmp_path / "run" / ".tmp-abc123checkpoint.npz"
    stale.write_bytes(b"half a checkpoint")
    reporter = Recorder()
    resume_training(tmp_path / "run", {"epochs": 2}, data=mnist, reporter=reporter)
    assert not stale.exists()
    assert any("removed 1 temporary file" in m for m in reporter.messages)


def test_resume_can_extend_a_finished_run(mnist, tmp_path):
    run_small(mnist, tmp_path / "run", epochs=2, patience=100)
    result = resume_training(tmp_path / "run" / "checkpoint.npz", {"epochs": 4}, data=mnist)
    assert result.state.epoch == 4 and len(result.state.losses) == 4
    assert result.state.config.patience == 100
    assert json.loads((tmp_path / "run" / "config.json").read_text())["epochs"] == 4


def test_resume_with_epochs_equal_to_a_checkpoint_before_any_evaluation(mnist, tmp_path):
    with pytest.raises(TrainingInterrupted):
        run_small(mnist, tmp_path / "run", reporter=CtrlCAt(3), epochs=4, eval_every=3)
    state = load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert state.epoch == 2 and state.best_epoch is None
    result = resume_training(tmp_path / "run", {"epochs": 2}, data=mnist)
    assert result.state.epoch == 2 and result.state.history == []
    model, info = load_model(tmp_path / "run")  # the final network stands in for the best
    assert info["epoch"] == 2 and same_network(model, state.net)


def test_extending_a_finished_run_keeps_its_last_evaluation(mnist, tmp_path):
    straight = run_small(mnist, tmp_path / "a", epochs=4, eval_every=3)
    run_small(mnist, tmp_path / "b", epochs=2, eval_every=3)
    result = resume_training(tmp_path / "b", {"epochs": 4}, data=mnist)
    assert [h["epoch"] for h in straight.state.history] == [3, 4]
    assert [h["epoch"] for h in result.state.history] == [2, 3, 4]  # as documented
    assert same_network(straight.state.net, result.state.net)


def test_momentum_and_a_schedule_resume_bitwise(mnist, tmp_path):
    # This recipe's validation error ties from epoch to epoch; with patience 1 a CPU whose
    # rounding turned one tie into a rise stopped the run after epoch 3 (SMALL: patience 100).
    recipe = dict(epochs=4, momentum=0.9, schedule="step", decay=0.5, step_every=2,
                  activation="tanh", init="glorot", rate=0.05)
    straight = run_small(mnist, tmp_path / "a", **recipe)
    with pytest.raises(TrainingInterrupted):
        run_small(mnist, tmp_path / "b", reporter=CtrlCAt(3), **recipe)
    saved = load_checkpoint(tmp_path / "b" / "checkpoint.npz")
    assert saved.epoch == 2 and np.abs(saved.net.velocity).max() > 0
    resumed = resume_training(tmp_path / "b", data=mnist)
    assert_same_run(straight, resumed)  # velocities included
    assert [r["rate"] for r in resumed.state.records] == [0.05, 0.05, 0.025, 0.025]
    # Without the velocity the resumed run would differ: the checkpoint must carry it.
    lost = dataclasses.replace(saved, net=saved.net.copy())
    lost.net.velocity = None
    training.save_checkpoint(tmp_path / "b" / "checkpoint.npz", lost)
    assert not same_network(resume_training(tmp_path / "b", data=mnist).state.net,
                            straight.state.net)


def test_a_checkpoint_velocity_that_does_not_fit_is_refused(mnist, tmp_path):
    run_small(mnist, tmp_path / "a", epochs=1, momentum=0.5)
    path = tmp_path / "a" / "checkpoint.npz"
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["velocity"] = arrays["velocity"][:-1]
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match="velocity does not fit its network"):
        load_checkpoint(path)


def test_resume_config_refuses_a_changed_experiment_and_takes_changes():
    saved = small_config()
    with pytest.raises(CheckpointError, match="saved with --hidden 8, not 16") as err:
        resume_config(saved, 1, {"hidden": (16,)}, "ck.npz")
    assert "\n" not in str(err.value)
    with pytest.raises(CheckpointError, match="--no-shuffle"):
        resume_config(saved, 1, {"shuffle": False}, "ck.npz")
    with pytest.raises(CheckpointError, match="completed 2 epochs; --epochs 1"):
        resume_config(saved, 2, {"epochs": 1}, "ck.npz")
    same = resume_config(saved, 1, {"hidden": (8,), "rate": saved.rate}, "ck.npz")
    assert same == saved
    changed = resume_config(saved, 1, {"patience": 7, "epochs": 9}, "ck.npz")
    assert (changed.patience, changed.epochs, changed.report) == (7, 9, saved.report)


def test_resume_refuses_other_data(mnist, tmp_path):
    config = small_config(epochs=1)
    run_small(mnist, tmp_path / "run", epochs=1)
    state = load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    train, test = mnist
    images = train.images[:1500].copy()
    images[0, 300] ^= 0xFF
    other = Dataset(images, train.labels[:1500], (28, 28), 10)
    with pytest.raises(CheckpointError, match="different data"):
        check_resume_data(state.data, prepare_data(config, other, test), "ck")
    with pytest.raises(CheckpointError, match="test samples"):
        resume_training(tmp_path / "run", {"epochs": 2}, data=(train, test[:300]))


# -- divergence ------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["nan", "error"])
def test_a_diverging_run_stops_and_keeps_the_last_good_epoch(mnist, tmp_path, monkeypatch,
                                                             failure):
    real_train_epoch = Network.train_epoch
    calls = []

    def train_epoch(net, *args, **kwargs):
        loss = real_train_epoch(net, *args, **kwargs)
        if net.sizes == [784, 8, 10]:
            calls.append(1)
            if len(calls) == 3:
                net.params[:] = np.nan
                if failure == "error":
                    raise type("TrainingDiverged", (ValueError,), {})("weights became NaN")
                return float("nan")
        return loss

    monkeypatch.setattr(Network, "train_epoch", train_epoch)
    with pytest.raises(RunDiverged) as err:
        run_small(mnist, tmp_path / "run", epochs=5, checkpoint_every=0, rate=0.5)
    message = str(err.value)
    assert "\n" not in message and err.value.epoch == 3
    assert "diverged in epoch 3" in message and "smaller --rate than 0.5" in message
    assert ("weights became NaN" if failure == "error" else "mean loss nan") in message
    state = load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert state.epoch == 2 and np.isfinite(state.net.params).all()
    assert json.loads((tmp_path / "run" / "report.json").read_text())["status"] == "diverged"


# -- lines -----------------------------------------------------------------------------------


def test_format_evaluation_matches_the_house_style():
    record = {"epoch": 10, "loss": 0.0123, "val_error": 0.0191, "test_error": 0.02,
              "samples_per_second": 212000.4, "elapsed_seconds": 4.83}
    assert format_evaluation(record, 100) == (
        "epoch  10/100  loss 0.0123  val error 1.91%  212,000 samples/s  4.8 s"
    )
    assert "test error 2.00%" in format_evaluation(record, 10, "test_error")
    assert training.format_epoch(record, 100) == (
        "epoch  10/100  loss 0.0123  212,000 samples/s  4.8 s"
    )
