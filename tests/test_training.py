"""The experiment loop of ``jitnet.training`` without click: stopping rule, checkpoints, resume."""

import dataclasses
import json
import os
import re

import numpy as np
import pytest

from jitnet import training
from jitnet.datasets import Dataset, load_mnist
from jitnet.network import Network
from jitnet.training import (
    CheckpointError,
    Reporter,
    TrainConfig,
    TrainingError,
    TrainingInterrupted,
    check_resume_data,
    format_evaluation,
    load_checkpoint,
    load_model,
    prepare_data,
    resume_config,
    run_training,
    save_checkpoint,
    stopping_update,
)

SMALL = dict(hidden=(8,), epochs=3, eval_every=1, validation=300, train_limit=1500,
             test_limit=400, checkpoint_every=1)


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


def small_config(tmp_path, **changes):
    return TrainConfig(**{**SMALL, "checkpoint_dir": str(tmp_path / "ck"), **changes})


def run_small(mnist, config, **kwargs):
    splits = prepare_data(config, *mnist)
    return run_training(config, splits, **kwargs), splits


def net_arrays_equal(a, b):
    assert sorted(a) == sorted(b)
    return all(np.array_equal(a[k], b[k]) for k in a)


# -- configuration and data ------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"hidden": (0,)}, "hidden"),
        ({"hidden": (300, -3)}, "hidden"),
        ({"hidden": ()}, "hidden"),
        ({"rate": 0.0}, "rate"),
        ({"rate": -1.0}, "rate"),
        ({"rate": float("nan")}, "rate"),
        ({"dtype": "float16"}, "dtype"),
        ({"epochs": 0}, "epochs"),
        ({"patience": 0}, "patience"),
        ({"validation": -1}, "validation"),
        ({"train_limit": 0}, "train_limit"),
        ({"hidden": "300"}, "hidden"),
        ({"rate": "0.3"}, "rate"),
        ({"epochs": "5"}, "epochs"),
        ({"epochs": 2.5}, "epochs"),
        ({"seed": True}, "seed"),
        ({"shuffle": "yes"}, "shuffle"),
        ({"output": 5}, "output"),
    ],
)
def test_config_rejects_bad_values(changes, words):
    with pytest.raises(TrainingError, match=words):
        TrainConfig(**changes)


def test_config_round_trips_through_dict():
    config = TrainConfig(hidden=(500, 150), rate=0.1, shuffle=False, output="m.npz")
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(TrainingError, match="dict"):
        TrainConfig.from_dict([1])


def test_prepare_output_creates_directories_and_refuses_clashes(tmp_path, monkeypatch):
    config = TrainConfig(checkpoint_dir=str(tmp_path / "a" / "ck"),
                         output=str(tmp_path / "b" / "m.npz"), report=str(tmp_path / "c" / "r"))
    training.prepare_output(config)
    assert all((tmp_path / d).is_dir() for d in ("a/ck", "b", "c"))
    ck = tmp_path / "a" / "ck"
    for changes, words in [
        ({"output": str(ck / "checkpoint.npz")}, "--output .* is the checkpoint file"),
        ({"output": str(ck / "sub" / ".." / "checkpoint.npz")}, "checkpoint file"),
        ({"report": str(ck / "model.npz"), "output": None}, "--report .* is the model file"),
        ({"report": str(tmp_path / "b" / "m.npz")}, "--report .* is the model file"),
    ]:
        with pytest.raises(TrainingError, match=words):
            training.prepare_output(dataclasses.replace(config, **changes))
    (tmp_path / "afile").write_text("")
    with pytest.raises(TrainingError, match="afile is not a directory"):
        training.prepare_output(dataclasses.replace(config, checkpoint_dir=str(tmp_path / "afile")))
    fresh = dataclasses.replace(config, checkpoint_dir=str(tmp_path / "new"))
    with pytest.raises(TrainingError, match="--report .*afile is not a directory"):
        training.prepare_output(dataclasses.replace(fresh, report=str(tmp_path / "afile" / "r")))
    assert not (tmp_path / "new").exists()  # nothing is created unless every check passes
    monkeypatch.setattr(training.os, "access", lambda path, mode: False)
    with pytest.raises(TrainingError, match="no permission to write in"):
        training.prepare_output(fresh)


def test_prepare_data_limits_and_holds_out_the_last_samples(mnist):
    config = TrainConfig(train_limit=1000, validation=200, test_limit=300)
    splits = prepare_data(config, *mnist)
    train, test = mnist
    assert (len(splits.train), len(splits.val), len(splits.test)) == (800, 200, 300)
    assert np.array_equal(splits.val.images, train.images[800:1000])
    assert np.array_equal(splits.test.labels, test.labels[:300])
    assert not splits.val_is_test
    assert splits.info["n_inputs"] == 784 and splits.info["n_classes"] == 10


def test_validation_zero_stops_on_the_test_set(mnist):
    splits = prepare_data(TrainConfig(train_limit=1000, validation=0, test_limit=300), *mnist)
    assert splits.val_is_test and splits.val is splits.test and len(splits.train) == 1000


def test_validation_as_large_as_the_training_set_is_refused(mnist):
    with pytest.raises(TrainingError, match="leaves no samples"):
        prepare_data(TrainConfig(train_limit=500, validation=500), *mnist)


def test_fingerprint_sees_one_changed_pixel(mnist):
    train = mnist[0][:100]
    images = train.images.copy()
    before = training.data_fingerprint(train)
    images[50, 400] ^= 1
    changed = Dataset(images, train.labels, train.image_shape, train.n_classes)
    assert training.data_fingerprint(changed) != before


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
    config = small_config(tmp_path, epochs=6, patience=patience)
    weights_at = {}
    real_train_epoch = Network.train_epoch

    def train_epoch(net, *args, **kwargs):
        loss = real_train_epoch(net, *args, **kwargs)
        if net.sizes == [784, 8, 10]:  # not compile_kernels' warm-up network
            weights_at[len(weights_at) + 1] = {k: v.copy() for k, v in net.to_arrays().items()}
        return loss

    monkeypatch.setattr(Network, "train_epoch", train_epoch)
    script = ScriptedErrors(monkeypatch, errors)
    result, _ = run_small(mnist, config)
    state = result.state
    assert state.epoch == stop_epoch and script.calls == stop_epoch
    assert [h["epoch"] for h in state.history] == list(range(1, stop_epoch + 1))
    assert state.best_epoch == best_epoch and state.best_error == min(errors[:stop_epoch])
    assert result.stop_reason == ("patience" if stop_epoch < 6 else "epochs")
    best, _ = load_model(config.model_path)
    assert net_arrays_equal(best.to_arrays(), weights_at[best_epoch])


def test_best_model_is_written_only_when_it_improves(mnist, tmp_path, monkeypatch):
    written = []
    real_save_model = training.save_model

    def save_model(path, arrays, info):
        written.append(info["epoch"])
        real_save_model(path, arrays, info)

    monkeypatch.setattr(training, "save_model", save_model)
    ScriptedErrors(monkeypatch, [0.5, 0.4, 0.45, 0.3])
    config = small_config(tmp_path, epochs=4, patience=2)
    result, _ = run_small(mnist, config)
    assert result.state.best_epoch == 4 and written == [1, 2, 4]
    # A resumed run writes its checkpoint's best model once (its --output may have moved).
    written.clear()
    state = load_checkpoint(config.checkpoint_path)
    moved = str(tmp_path / "moved.npz")
    extended = resume_config(state, {"epochs": 5, "output": moved}, config.checkpoint_path)
    ScriptedErrors(monkeypatch, [0.35])
    result = run_training(extended, prepare_data(extended, *mnist), resume=state)
    assert written == [4] and load_model(moved)[1]["epoch"] == 4


def test_targets_are_built_once_in_the_network_dtype(mnist, tmp_path, monkeypatch):
    seen = []
    real_train_epoch = Network.train_epoch

    def train_epoch(net, X, targets, *args, **kwargs):
        seen.append(targets)
        return real_train_epoch(net, X, targets, *args, **kwargs)

    monkeypatch.setattr(Network, "train_epoch", train_epoch)
    run_small(mnist, small_config(tmp_path, dtype="float32", epochs=2))
    runs = [t for t in seen if t.shape == (1200, 10)]
    assert len(runs) == 2 and runs[0] is runs[1] and runs[0].dtype == np.float32
    assert set(np.unique(runs[0])) == {np.float32(0.1), np.float32(0.9)}


def test_evaluates_every_n_epochs_and_after_the_last(mnist, tmp_path):
    config = small_config(tmp_path, epochs=5, eval_every=2, checkpoint_every=0)
    result, _ = run_small(mnist, config)
    assert [h["epoch"] for h in result.state.history] == [2, 4, 5]
    assert len(result.state.losses) == 5


# -- a run and its files ---------------------------------------------------------------------


class Lines(Reporter):
    def __init__(self):
        self.lines, self.messages = [], []

    def evaluation(self, line, record):
        self.lines.append(line)

    def message(self, text):
        self.messages.append(text)


EVAL_LINE = re.compile(
    r"^epoch +\d+/\d+  loss \d+\.\d{4}  (val|test) error \d+\.\d\d%  [\d,]+ samples/s  \d+\.\d s$"
)


def test_run_writes_model_checkpoint_and_report(mnist, tmp_path):
    report_path = tmp_path / "report.json"
    config = small_config(tmp_path, report=str(report_path))
    reporter = Lines()
    result, splits = run_small(mnist, config, reporter=reporter)

    assert len(reporter.lines) == 3 and all(EVAL_LINE.match(line) for line in reporter.lines)
    assert any("kernels ready" in m for m in reporter.messages)

    report = json.loads(report_path.read_text())
    assert report["status"] == "finished"
    assert report["config"]["hidden"] == [8] and report["sizes"] == [784, 8, 10]
    assert 0.0 <= report["test_error"] <= 1.0 and report["test_error"] == result.test_error
    assert report["test_error"] < 0.5  # 3 epochs of a small net already learn something
    assert [h["epoch"] for h in report["history"]] == [1, 2, 3]
    assert {"loss", "val_error", "train_seconds", "samples_per_second"} <= set(report["history"][0])
    assert report["seconds_per_epoch"] > 0 and report["samples_per_second"] > 0
    assert report["compile_seconds"] >= 0
    assert {"platform", "cpu_count", "numpy", "numba"} <= set(report["machine"])

    state = load_checkpoint(config.checkpoint_path)
    assert state.epoch == 3 and state.stop_reason == "epochs" and state.config == config
    best, info = load_model(config.model_path)
    assert info["input_scale"] is None and info["epoch"] == state.best_epoch
    # The best model's test error is the reported one.
    assert best.evaluate(splits.test.images, splits.test.labels) == result.test_error
    # A model written by train is also an ordinary jitnet model file.
    assert Network.load(config.model_path).sizes == [784, 8, 10]


def test_raw_pixels_model_remembers_its_input_scale(mnist, tmp_path):
    config = small_config(tmp_path, raw_pixels=True, epochs=1)
    run_small(mnist, config)
    _, info = load_model(config.model_path)
    assert info["input_scale"] == 1.0


def test_float32_run(mnist, tmp_path):
    result, _ = run_small(mnist, small_config(tmp_path, dtype="float32", epochs=1))
    net, _ = load_model(result.model_path)
    assert net.dtype == np.float32


# -- resume ----------------------------------------------------------------------------------


class CtrlCAt(Reporter):
    """A reporter whose progress callback raises KeyboardInterrupt during epoch ``epoch``."""

    def __init__(self, epoch):
        self.epoch = epoch

    def epoch_progress(self, epoch, epochs, n_samples):
        if epoch == self.epoch:
            def progress(n_done):
                raise KeyboardInterrupt

            return progress
        return None


def test_interrupt_saves_last_complete_epoch_and_resume_is_exact(mnist, tmp_path):
    straight = small_config(tmp_path / "a", epochs=4)
    result_a, _ = run_small(mnist, straight)

    interrupted = small_config(tmp_path / "b", epochs=4)
    with pytest.raises(TrainingInterrupted) as stop:
        run_small(mnist, interrupted, reporter=CtrlCAt(3))
    assert stop.value.epoch == 2 and stop.value.checkpoint == interrupted.checkpoint_path
    state = load_checkpoint(interrupted.checkpoint_path)
    assert state.epoch == 2 and len(state.losses) == 2

    config = resume_config(state, {}, interrupted.checkpoint_path)
    splits = prepare_data(config, *mnist)
    check_resume_data(state, splits, interrupted.checkpoint_path)
    result_b = run_training(config, splits, resume=state)

    assert net_arrays_equal(result_a.state.net_arrays, result_b.state.net_arrays)
    assert net_arrays_equal(result_a.state.best_arrays, result_b.state.best_arrays)
    assert result_a.state.losses == result_b.state.losses
    assert [h["val_error"] for h in result_a.state.history] == [
        h["val_error"] for h in result_b.state.history
    ]
    assert result_a.test_error == result_b.test_error


def test_resume_can_extend_a_finished_run(mnist, tmp_path):
    config = small_config(tmp_path, epochs=2, patience=100)
    run_small(mnist, config)
    state = load_checkpoint(config.checkpoint_path)
    extended = resume_config(state, {"epochs": 4}, config.checkpoint_path)
    assert extended.epochs == 4 and extended.patience == 100
    result = run_training(extended, prepare_data(extended, *mnist), resume=state)
    assert result.state.epoch == 4 and len(result.state.losses) == 4


def saved_state(config, epoch=1):
    """A TrainState of ``config`` after ``epoch`` epochs, as far as resume_config looks."""
    return training.TrainState(config=config, data_info={}, epoch=epoch, rng_state={},
                               net_arrays={}, losses=[0.5] * epoch)


def test_resume_refuses_epochs_below_the_completed_ones(tmp_path):
    state = saved_state(small_config(tmp_path, epochs=3), epoch=2)
    path = tmp_path / "ck" / "checkpoint.npz"
    with pytest.raises(CheckpointError, match="completed 2 epochs; --epochs 1"):
        resume_config(state, {"epochs": 1}, path)
    assert resume_config(state, {"epochs": 2}, path).epochs == 2


def test_resume_with_epochs_equal_to_a_checkpoint_before_any_evaluation(mnist, tmp_path):
    config = small_config(tmp_path, epochs=4, eval_every=3)

    with pytest.raises(TrainingInterrupted):
        run_small(mnist, config, reporter=CtrlCAt(3))
    state = load_checkpoint(config.checkpoint_path)
    assert state.epoch == 2 and state.best_epoch is None
    same = resume_config(state, {"epochs": 2}, config.checkpoint_path)
    result = run_training(same, prepare_data(same, *mnist), resume=state)
    assert result.state.epoch == 2 and result.state.history == []
    model, info = load_model(config.model_path)  # the final network stands in for the best
    assert info["epoch"] == 2 and net_arrays_equal(model.to_arrays(), state.net_arrays)


def test_extending_a_finished_run_keeps_its_last_evaluation(mnist, tmp_path):
    straight, _ = run_small(mnist, small_config(tmp_path / "a", epochs=4, eval_every=3,
                                                patience=100))
    short = small_config(tmp_path / "b", epochs=2, eval_every=3, patience=100)
    run_small(mnist, short)
    state = load_checkpoint(short.checkpoint_path)
    extended = resume_config(state, {"epochs": 4}, short.checkpoint_path)
    result = run_training(extended, prepare_data(extended, *mnist), resume=state)
    assert [h["epoch"] for h in straight.state.history] == [3, 4]
    assert [h["epoch"] for h in result.state.history] == [2, 3, 4]  # as documented
    assert net_arrays_equal(straight.state.net_arrays, result.state.net_arrays)


def test_a_checkpoint_is_read_once_and_its_networks_built_once(mnist, tmp_path, monkeypatch):
    config = small_config(tmp_path, epochs=2)
    run_small(mnist, config)
    reads, builds = [], []
    real_read, real_build = training._read_npz, Network.from_arrays

    def read(path, what):
        reads.append(path)
        return real_read(path, what)

    def build(arrays, source="<arrays>"):
        builds.append(source)
        return real_build(arrays, source)

    monkeypatch.setattr(training, "_read_npz", read)
    monkeypatch.setattr(Network, "from_arrays", staticmethod(build))
    net, info = load_model(config.checkpoint_path)
    assert info["checkpoint"] and len(reads) == 1 and len(builds) == 2  # network and best
    reads.clear(), builds.clear()
    state = load_checkpoint(config.checkpoint_path)
    extended = resume_config(state, {"epochs": 3}, config.checkpoint_path)
    run_training(extended, prepare_data(extended, *mnist), resume=state)
    assert len(reads) == 1 and len(builds) == 2  # none by run_training


def test_resume_config_refuses_changed_experiment_and_takes_overrides(tmp_path):
    saved = small_config(tmp_path)
    state = saved_state(saved)
    path = tmp_path / "ck" / "checkpoint.npz"
    with pytest.raises(CheckpointError, match="--hidden 8, not 16") as err:
        resume_config(state, {"hidden": (16,)}, path)
    assert "\n" not in str(err.value)
    with pytest.raises(CheckpointError, match="--dtype"):
        resume_config(state, {"dtype": "float32"}, path)
    with pytest.raises(CheckpointError, match="--no-shuffle"):
        resume_config(state, {"shuffle": False}, path)
    same = resume_config(state, {"hidden": (8,), "rate": saved.rate}, path)
    assert same.hidden == (8,)
    moved = resume_config(state, {"patience": 7, "epochs": 9}, tmp_path / "elsewhere" / "c.npz")
    assert (moved.patience, moved.epochs) == (7, 9)
    assert moved.checkpoint_dir == str(tmp_path / "elsewhere")


def test_resume_refuses_other_data(mnist, tmp_path):
    config = small_config(tmp_path, epochs=1)
    run_small(mnist, config)
    state = load_checkpoint(config.checkpoint_path)
    train, test = mnist
    images = train.images[:1500].copy()
    images[0, 300] ^= 0xFF
    other = Dataset(images, train.labels[:1500], (28, 28), 10)
    with pytest.raises(CheckpointError, match="different data"):
        check_resume_data(state, prepare_data(config, other, test), config.checkpoint_path)
    fewer = dataclasses.replace(config, test_limit=None)
    with pytest.raises(CheckpointError, match="test samples"):
        check_resume_data(state, prepare_data(fewer, train, test), config.checkpoint_path)


# -- checkpoint files ------------------------------------------------------------------------


@pytest.fixture
def checkpoint(mnist, tmp_path):
    config = small_config(tmp_path, epochs=1)
    run_small(mnist, config)
    return config.checkpoint_path


def _half_writing_fdopen(real_fdopen):
    """os.fdopen whose files write half the bytes, then fail like a full disk."""

    def fdopen(fd, *args, **kwargs):
        f = real_fdopen(fd, *args, **kwargs)

        class HalfWriter:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                f.close()
                return False

            def write(self, data):
                f.write(data[: len(data) // 2])
                f.flush()
                raise OSError("simulated crash: disk full in the middle of the write")

            def flush(self):
                f.flush()

            def fileno(self):
                return f.fileno()

        return HalfWriter()

    return fdopen


def _raise(*args, **kwargs):
    raise OSError("simulated crash before the rename")


@pytest.mark.parametrize(
    "target, replacement",
    [("fdopen", _half_writing_fdopen(os.fdopen)), ("fsync", _raise), ("replace", _raise)],
)
def test_failed_write_keeps_the_previous_checkpoint(checkpoint, monkeypatch, target, replacement):
    before = load_checkpoint(checkpoint)
    changed = dataclasses.replace(
        before, epoch=before.epoch + 1, losses=before.losses + [0.0],
        config=dataclasses.replace(before.config, epochs=before.epoch + 1),
    )
    files = sorted(os.listdir(checkpoint.parent))
    with monkeypatch.context() as m:
        m.setattr(os, target, replacement)
        with pytest.raises(OSError, match="simulated crash"):
            save_checkpoint(checkpoint, changed)
    after = load_checkpoint(checkpoint)
    assert after.epoch == before.epoch
    assert net_arrays_equal(after.net_arrays, before.net_arrays)
    assert sorted(os.listdir(checkpoint.parent)) == files  # no partial or temporary file left
    # ... while a write that completes replaces it.
    save_checkpoint(checkpoint, changed)
    assert load_checkpoint(checkpoint).epoch == before.epoch + 1


def _rewrite(path, mutate):
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    mutate(arrays)
    np.savez(path, **arrays)


def _set_meta(arrays, **changes):
    meta = json.loads(arrays[training.STATE_KEY].tobytes())
    meta.update(changes)
    arrays[training.STATE_KEY] = np.frombuffer(json.dumps(meta).encode(), np.uint8)


def _del_meta(arrays, key):
    meta = json.loads(arrays[training.STATE_KEY].tobytes())
    del meta[key]
    arrays[training.STATE_KEY] = np.frombuffer(json.dumps(meta).encode(), np.uint8)


@pytest.mark.parametrize(
    "corrupt, words",
    [
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "truncated"),
        (lambda p: p.write_bytes(b"not a zip file at all"), "truncated or not an .npz"),
        (lambda p: p.write_bytes(b""), "truncated"),
        (lambda p: _rewrite(p, lambda a: a.pop(training.STATE_KEY)), "not a jitnet training"),
        (lambda p: _rewrite(p, lambda a: a.__setitem__(training.STATE_KEY, np.zeros(5, np.uint8))),
         "corrupt"),
        (lambda p: _rewrite(p, lambda a: _set_meta(a, version=99)), "version 99"),
        (lambda p: _rewrite(p, lambda a: _set_meta(a, epoch=7)), "corrupt"),
        (lambda p: _rewrite(p, lambda a: _set_meta(a, rng_state={"bit_generator": "X"})),
         "generator"),
        (lambda p: _rewrite(p, lambda a: _set_meta(a, config=[1])), "corrupt: .*dict"),
        (lambda p: _rewrite(p, lambda a: _set_meta(a, config={"hidden": "abc"})), "hidden"),
        (lambda p: _rewrite(p, lambda a: _set_meta(a, data=[])), "'data'"),
        (lambda p: _rewrite(p, lambda a: _set_meta(a, best_error="x")), "'best_error'"),
        (lambda p: _rewrite(p, lambda a: _set_meta(a, best_error=2.0)), "best error"),
        (lambda p: _rewrite(p, lambda a: _set_meta(a, best_epoch="1")), "'best_epoch'"),
        (lambda p: _rewrite(p, lambda a: _set_meta(a, best_epoch=None)), "best"),
        (lambda p: _rewrite(p, lambda a: _set_meta(a, epoch=True)), "'epoch'"),
        (lambda p: _rewrite(p, lambda a: _set_meta(a, losses={"a": 1})), "'losses'"),
        (lambda p: _rewrite(p, lambda a: _set_meta(a, losses=["x"])), "loss"),
        (lambda p: _rewrite(p, lambda a: _set_meta(a, history=[1])), "history"),
        (lambda p: _rewrite(p, lambda a: _set_meta(a, train_seconds="1")), "'train_seconds'"),
        (lambda p: _rewrite(p, lambda a: _set_meta(a, stop_reason=5)), "'stop_reason'"),
        (lambda p: _rewrite(p, lambda a: _set_meta(a, rng_state=[])), "'rng_state'"),
        (lambda p: _rewrite(p, lambda a: _del_meta(a, "bad_evals")), "missing field 'bad_evals'"),
        (lambda p: _rewrite(p, lambda a: a.pop("net/W0")), "missing"),
        (lambda p: _rewrite(p, lambda a: a.__setitem__("net/W0", np.zeros((3, 3)))), "W"),
    ],
)
def test_corrupt_checkpoint_gives_one_line_naming_the_file(checkpoint, corrupt, words):
    corrupt(checkpoint)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(checkpoint)
    message = str(err.value)
    assert "\n" not in message and str(checkpoint) in message
    assert re.search(words, message), message


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.npz")


def test_load_model_reads_models_plain_saves_and_checkpoints(checkpoint, tmp_path):
    net = Network([784, 5, 10], seed=1)
    net.save(tmp_path / "plain.npz")
    loaded, info = load_model(tmp_path / "plain.npz")
    assert info == {} and np.array_equal(loaded.params, net.params)
    from_checkpoint, info = load_model(checkpoint)
    assert info["checkpoint"] and from_checkpoint.sizes == [784, 8, 10]
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="junk.npz"):
        load_model(tmp_path / "junk.npz")


def test_load_model_refuses_a_bad_input_scale(tmp_path):
    net = Network([784, 5, 10], seed=1)
    path = tmp_path / "m.npz"
    training.save_model(path, net.to_arrays(), {"input_scale": "x"})
    with pytest.raises(CheckpointError, match="input_scale"):
        load_model(path)


def test_format_evaluation_matches_the_house_style():
    record = {"epoch": 10, "loss": 0.0123, "val_error": 0.0191, "samples_per_second": 212000.4,
              "elapsed_seconds": 4.83}
    assert format_evaluation(record, 100) == (
        "epoch  10/100  loss 0.0123  val error 1.91%  212,000 samples/s  4.8 s"
    )
    assert "test error" in format_evaluation(record, 10, "test")
