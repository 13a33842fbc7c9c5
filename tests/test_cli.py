"""Every command through click's test runner, the bad-option cases, and kill-and-resume for real."""

import json
import re
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from jitnet import cli as cli_module
from jitnet.cli import cli
from jitnet.network import Network
from jitnet.training import load_checkpoint, load_model

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--hidden", "8", "--epochs", "2", "--eval-every", "1", "--train-limit", "1500",
         "--validation", "300", "--test-limit", "400"]
EVAL_LINE = re.compile(
    r"^epoch +\d+/\d+  loss \d+\.\d{4}  (val|test) error \d+\.\d\d%  [\d,]+ samples/s  \d+\.\d s$"
)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_user_error(result, *words):
    """Exit code 2, one line on stderr starting with 'Error:', no traceback, nothing on stdout."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small run through the CLI: its directory, result and report."""
    root = tmp_path_factory.mktemp("train")
    result = invoke("train", *SMALL, "--checkpoint-dir", root / "ck", "--report", root / "r.json")
    assert result.exit_code == 0, (result.output, result.exception)
    return types.SimpleNamespace(
        root=root, result=result, model=root / "ck" / "model.npz",
        checkpoint=root / "ck" / "checkpoint.npz",
        report=json.loads((root / "r.json").read_text()),
    )


# -- help and version ------------------------------------------------------------------------


def test_help_and_version():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("train", "evaluate", "predict", "gradcheck", "bench"):
        assert command in result.stdout
    result = invoke("--version")
    assert result.exit_code == 0 and "0.1.0" in result.stdout


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "gradcheck"])
def test_every_option_is_kebab_case_with_help_and_default(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0 and "Usage:" in result.stdout
    for param in cli.commands[command].params:
        if not param.param_type_name == "option" or param.name == "help":
            continue
        for opt in param.opts:
            assert re.fullmatch(r"--[a-z0-9]+(-[a-z0-9]+)*", opt), opt
        assert param.help and param.help.endswith("."), param.name
        assert param.show_default or param.required, param.name


def test_no_arguments_show_the_help_as_click_does():
    result = invoke()
    assert result.exit_code == 2  # click 8.2+: no command is a usage error that shows the help
    lines = result.stderr.splitlines()
    assert not lines[0].startswith("Error")
    assert lines[0].startswith("Usage:") and "Commands:" in lines and len(lines) > 10
    assert any(line.split()[:1] == ["train"] for line in lines)


def test_resume_help_names_exactly_the_options_that_may_change():
    from jitnet.training import RESUME_FIXED, RESUME_OVERRIDABLE

    params = {p.name: p for p in cli.commands["train"].params}
    assert set(RESUME_FIXED + RESUME_OVERRIDABLE) == set(params) - {"resume"}
    named = set(re.findall(r"--[a-z-]+", params["resume"].help.split(" may differ")[0]))
    assert named == {"--" + name.replace("_", "-") for name in RESUME_OVERRIDABLE}


def test_help_is_fast_and_does_not_load_the_engine():
    code = ("import sys; from jitnet.cli import main; sys.argv = ['cli.py', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "assert 'numba' not in sys.modules and 'jitnet.network' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, capture_output=True)


# -- train -----------------------------------------------------------------------------------


def test_train_prints_one_line_per_evaluation_and_a_summary(trained):
    lines = trained.result.stdout.splitlines()
    assert [line for line in lines if line.startswith("epoch")] == lines[:2]
    assert all(EVAL_LINE.match(line) for line in lines[:2]), lines[:2]
    assert lines[2].startswith("stopped after epoch 2")
    assert re.match(r"best epoch \d  val error \d+\.\d\d%  test error \d+\.\d\d% on 400 images",
                    lines[3])
    assert any(line.startswith("model") and "model.npz" in line for line in lines)
    assert "kernels ready" in trained.result.stderr  # diagnostics on stderr
    assert "epoch 1/2" not in trained.result.stderr  # ... no progress bar off a terminal


def test_train_report(trained):
    report = trained.report
    assert report["config"]["hidden"] == [8] and report["config"]["rate"] == 0.3
    assert 0 <= report["test_error"] <= 1
    shown = re.search(r"test error (\d+\.\d\d)%", trained.result.stdout).group(1)
    assert f"{100 * report['test_error']:.2f}" == shown
    assert [h["epoch"] for h in report["history"]] == [1, 2]
    for key in ("seconds_per_epoch", "samples_per_second", "compile_seconds", "machine"):
        assert report[key] is not None, key


def test_train_with_validation_zero_stops_on_test_error(tmp_path):
    result = invoke("train", *SMALL, "--validation", "0", "--checkpoint-dir", tmp_path)
    assert result.exit_code == 0, result.output
    assert "test error" in result.stdout.splitlines()[0]


def test_ctrl_c_saves_and_says_how_to_resume(tmp_path, monkeypatch):
    def epoch_progress(self, epoch, epochs, n_samples):
        if epoch == 2:
            def progress(n_done):
                raise KeyboardInterrupt
            return progress
        return None

    monkeypatch.setattr(cli_module._ClickReporter, "epoch_progress", epoch_progress)
    ck = tmp_path / "ck"
    result = invoke("train", *SMALL, "--epochs", "3", "--checkpoint-dir", ck)
    assert result.exit_code == 130, result.output
    assert "saved the state after epoch 1" in result.stderr
    assert f"resume with: python cli.py train --resume {ck / 'checkpoint.npz'}" in result.stderr
    assert "Traceback" not in result.output
    assert load_checkpoint(ck / "checkpoint.npz").epoch == 1
    monkeypatch.undo()
    result = invoke("train", "--resume", ck / "checkpoint.npz")
    assert result.exit_code == 0, result.output
    assert load_checkpoint(ck / "checkpoint.npz").epoch == 3


def test_resume_may_extend_epochs_and_refuses_changed_options(trained, tmp_path):
    result = invoke("train", "--resume", trained.checkpoint, "--hidden", "16")
    assert_user_error(result, "--hidden 8, not 16")
    result = invoke("train", "--resume", trained.checkpoint, "--train-limit", "1000")
    assert_user_error(result, "--train-limit")
    # Same values are accepted; --epochs extends; output goes to a new directory.
    result = invoke("train", "--resume", trained.checkpoint, "--hidden", "8", "--epochs", "3",
                    "--checkpoint-dir", tmp_path / "more")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("epoch 3/3")
    assert load_checkpoint(tmp_path / "more" / "checkpoint.npz").epoch == 3


def test_resume_refuses_epochs_below_the_completed_ones(trained):
    before = trained.checkpoint.read_bytes()
    result = invoke("train", "--resume", trained.checkpoint, "--epochs", "1")
    assert_user_error(result, "completed 2 epochs", "--epochs 1")
    assert trained.checkpoint.read_bytes() == before


def test_relative_output_and_report_survive_a_resume_from_elsewhere(tmp_path, monkeypatch):
    first, elsewhere = tmp_path / "first", tmp_path / "elsewhere"
    first.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(first)
    result = invoke("train", *SMALL, "--epochs", "1", "--checkpoint-dir", "ck",
                    "--output", "out/m.npz", "--report", "r.json")
    assert result.exit_code == 0, result.output
    config = load_checkpoint(first / "ck" / "checkpoint.npz").config
    assert config.output == str(first / "out" / "m.npz")
    assert config.report == str(first / "r.json")
    monkeypatch.chdir(elsewhere)
    result = invoke("train", "--resume", first / "ck" / "checkpoint.npz", "--epochs", "2")
    assert result.exit_code == 0, result.output
    assert load_model(first / "out" / "m.npz")[1]["config"]["epochs"] == 2  # rewritten there
    assert list(elsewhere.iterdir()) == []


@pytest.fixture
def afile(tmp_path):
    """A regular file where a directory would have to be."""
    path = tmp_path / "afile"
    path.write_text("not a directory")
    return path


@pytest.mark.parametrize(
    "option, path, words",
    [
        ("--checkpoint-dir", "afile/sub", ["afile", "checkpoint"]),
        ("--output", "afile/m.npz", ["afile", "model"]),
        ("--report", "afile/r.json", ["afile", "report"]),
        ("--output", "ck/checkpoint.npz", ["--output", "checkpoint file"]),
        ("--report", "ck/model.npz", ["--report", "model file"]),
        ("--report", "ck/checkpoint.npz", ["--report", "checkpoint file"]),
        ("--output", "ck", ["--output", "is a directory"]),
    ],
)
def test_unwritable_or_clashing_output_fails_before_the_data_is_loaded(
    afile, tmp_path, monkeypatch, option, path, words
):
    (tmp_path / "ck").mkdir()

    def no_data(data):
        raise AssertionError("the data was loaded before the output paths were checked")

    monkeypatch.setattr(cli_module, "_load_data", no_data)
    args = ["--checkpoint-dir", tmp_path / "ck", option, tmp_path / path]
    if option == "--checkpoint-dir":
        args = args[2:]
    assert_user_error(invoke("train", *SMALL, *args), *words)


def test_output_equal_to_the_resumed_checkpoint_leaves_it_intact(trained):
    before = trained.checkpoint.read_bytes()
    result = invoke("train", "--resume", trained.checkpoint, "--output", trained.checkpoint)
    assert_user_error(result, "checkpoint file")
    assert trained.checkpoint.read_bytes() == before
    result = invoke("train", "--resume", trained.checkpoint, "--report", trained.model)
    assert_user_error(result, "model file")


def test_write_error_during_the_run_is_one_line_after_the_checkpoint(tmp_path, monkeypatch):
    from jitnet import training

    def disk_full(path, *args, **kwargs):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(training, "save_model", disk_full)
    ck = tmp_path / "ck"
    result = invoke("train", *SMALL, "--checkpoint-every", "1", "--checkpoint-dir", ck)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"Error: cannot write {ck / 'model.npz'}: No space left on device"
    # The checkpoint of the epoch whose model could not be written is there.
    assert load_checkpoint(ck / "checkpoint.npz").epoch == 1


@pytest.mark.parametrize("command", [["evaluate"], ["predict", "--index", "0"]])
def test_ctrl_c_in_evaluate_and_predict_exits_130(trained, monkeypatch, command):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "_load_data", ctrl_c)
    result = invoke(command[0], trained.model, *command[1:])
    assert result.exit_code == 130, result.output
    assert result.stderr.strip() == "interrupted" and result.stdout == ""


# -- user errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, words",
    [
        (["train", "--hidden", "0"], ["--hidden", "positive"]),
        (["train", "--hidden", "-3"], ["--hidden", "-3"]),
        (["train", "--hidden", "abc"], ["--hidden", "abc"]),
        (["train", "--hidden", "300,0"], ["--hidden"]),
        (["train", "--rate", "0"], ["--rate"]),
        (["train", "--rate", "-1"], ["--rate"]),
        (["train", "--rate", "inf"], ["--rate"]),
        (["train", "--epochs", "0"], ["--epochs"]),
        (["train", "--validation", "-1"], ["--validation"]),
        (["train", "--dtype", "float16"], ["--dtype"]),
        (["train", "--data", "/no/such/directory"], ["--data", "does not exist"]),
        (["train", "--resume", "/no/such/checkpoint.npz"], ["--resume"]),
        (["train", "--train-limit", "500", "--validation", "500"], ["--validation 500"]),
        (["train", "--bogus"], ["--bogus"]),
        (["evaluate", "/no/such/model.npz"], ["MODEL"]),
        (["gradcheck", "--sizes", "8,0,3"], ["--sizes"]),
        (["gradcheck", "--sizes", "8"], ["--sizes", "at least 2"]),
        (["gradcheck", "--engine", "torch"], ["--engine"]),
        (["gradcheck", "--epsilon", "0"], ["--epsilon"]),
        (["nonsense"], ["nonsense"]),
    ],
)
def test_bad_options_end_in_one_line_and_exit_code_2(args, words):
    assert_user_error(invoke(*args), *words)


def test_data_directory_without_mnist_files(tmp_path):
    assert_user_error(invoke("train", "--data", tmp_path), "missing")


def test_corrupt_data_directory(tmp_path):
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / name).write_bytes(b"\x00\x00\x08\x03garbage")
    assert_user_error(invoke("train", "--data", tmp_path), "train-images-idx3-ubyte")
    model = tmp_path / "m.npz"
    Network([784, 4, 10], seed=0).save(model)
    assert_user_error(invoke("evaluate", model, "--data", tmp_path))


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated zip", b"plain junk"])
def test_corrupt_checkpoint(trained, tmp_path, content):
    bad = tmp_path / "checkpoint.npz"
    good = trained.checkpoint.read_bytes()
    bad.write_bytes(content or good[: len(good) // 3])
    assert_user_error(invoke("train", "--resume", bad), str(bad))
    assert_user_error(invoke("evaluate", bad), str(bad))


@pytest.mark.parametrize("changes", [{"config": [1]}, {"best_error": "x"}, {"losses": 3}])
def test_checkpoint_with_fields_of_the_wrong_type(trained, tmp_path, changes):
    with np.load(trained.checkpoint) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(arrays["state/json"].tobytes())
    meta.update(changes)
    arrays["state/json"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    bad = tmp_path / "checkpoint.npz"
    np.savez(bad, **arrays)
    assert_user_error(invoke("train", "--resume", bad), str(bad), "corrupt")
    assert_user_error(invoke("evaluate", bad), str(bad), "corrupt")


def test_model_file_that_is_not_a_model(tmp_path):
    path = tmp_path / "weights.npz"
    np.savez(path, W=np.zeros((3, 3)))
    assert_user_error(invoke("evaluate", path), "not a jitnet model")
    assert_user_error(invoke("predict", path, "--index", "0"), "not a jitnet model")


def test_model_that_does_not_fit_the_data(tmp_path):
    path = tmp_path / "small.npz"
    Network([100, 5, 10], seed=0).save(path)
    assert_user_error(invoke("evaluate", path), "100 inputs")


def test_predict_index_out_of_range(trained):
    assert_user_error(invoke("predict", trained.model, "--index", "10000"), "out of range")
    assert_user_error(invoke("predict", trained.model, "--index", "-1"), "--index")
    assert_user_error(invoke("predict", trained.model), "--index")


# -- evaluate and predict --------------------------------------------------------------------


def test_evaluate_prints_error_rate_and_confusion_matrix(trained):
    result = invoke("evaluate", trained.model)
    assert result.exit_code == 0, result.output
    out = result.stdout
    rate = float(re.search(r"error rate (\d+\.\d\d)%", out).group(1))
    wrong, total = (int(n.replace(",", "")) for n in
                    re.search(r"\(([\d,]+) of ([\d,]+) wrong\)", out).groups())
    assert total == 10000 and rate == pytest.approx(100 * wrong / total, abs=0.005)
    rows = out.splitlines()[-10:]
    assert len({len(row) for row in rows}) == 1  # aligned
    matrix = np.array([[int(v.replace(",", "")) for v in row.split()[1:]] for row in rows])
    assert [int(row.split()[0]) for row in rows] == list(range(10))
    assert matrix.shape == (10, 10) and matrix.sum() == total
    assert total - np.trace(matrix) == wrong
    # Rows are true labels: row sums are the class counts of the test set.
    from jitnet.datasets import load_mnist

    labels = load_mnist()[1].labels
    assert list(matrix.sum(axis=1)) == list(np.bincount(labels, minlength=10))
    # The model is the best one from training.
    net, _ = load_model(trained.model)
    assert wrong == int((net.classify(load_mnist()[1].images) != labels).sum())


def test_confusion_matrix_counts():
    m = cli_module.confusion_matrix([0, 1, 1, 2], [0, 2, 1, 2], 3)
    assert m.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]


def test_predict_shows_the_image_label_and_outputs(trained):
    result = invoke("predict", trained.model, "--index", "0")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "test image 0 (28x28)"
    art = lines[1:29]
    assert len(art) == 28 and all(len(line) <= 56 for line in art)
    assert any("@" in line for line in art) and set("".join(art)) <= set(" .:-=+*#%@")
    assert lines[29] == "true label  7"  # MNIST's first test image is a 7
    predicted = int(re.match(r"predicted   (\d)", lines[30]).group(1))
    outputs = [float(line.split()[1]) for line in lines[32:42]]
    assert len(outputs) == 10 and int(np.argmax(outputs)) == predicted
    assert lines[32 + predicted].endswith("<")
    net, info = load_model(trained.model)
    from jitnet.datasets import load_mnist

    expected = net.predict(load_mnist()[1].images[0])
    assert np.allclose(outputs, expected, atol=5e-5)


def test_text_art_ramp():
    image = np.zeros(4, np.uint8)
    image[1], image[3] = 255, 128
    assert cli_module.text_art(image, (2, 2)).splitlines() == ["  @@", "  ++"]


# -- gradcheck and bench ---------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["object", "vectorized", "jit"])
def test_gradcheck_passes(engine):
    result = invoke("gradcheck", "--sizes", "6,4,3", "--engine", engine, "--seed", "1")
    assert result.exit_code == 0, result.output
    assert "gradient check passed" in result.stdout


def test_gradcheck_failure_exits_1(monkeypatch):
    import jitnet.gradcheck as gradcheck

    real = gradcheck.run_gradcheck

    def broken(*args, **kwargs):
        result = real(*args, **kwargs)
        result.actual[0] += 1.0  # a deliberately wrong gradient entry
        return result

    monkeypatch.setattr(gradcheck, "run_gradcheck", broken)
    result = invoke("gradcheck")
    assert result.exit_code == 1, result.output
    assert "gradient check FAILED" in result.stdout


def test_bench_passes_every_argument_through(monkeypatch):
    calls = []

    def fake_main(argv):
        calls.append(argv)
        return 3

    monkeypatch.setitem(sys.modules, "jitnet.bench", types.SimpleNamespace(main=fake_main))
    result = invoke("bench", "--quick", "--sizes", "784,30,10", "--help", "-x")
    assert calls == [["--quick", "--sizes", "784,30,10", "--help", "-x"]]
    assert result.exit_code == 3


# -- a real kill, a real Ctrl-C --------------------------------------------------------------

# Big enough that an epoch takes a noticeable time (~0.1-0.2 s), small enough to stay quick.
REAL = ["--hidden", "64", "--epochs", "14", "--eval-every", "1", "--checkpoint-every", "1",
        "--patience", "100", "--train-limit", "20000", "--validation", "2000",
        "--test-limit", "1000"]


def run_cli(*args, **kwargs):
    return subprocess.Popen([sys.executable, str(REPO / "cli.py"), *map(str, args)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    ck = tmp_path_factory.mktemp("straight")
    rc, out, err = finish(run_cli("train", *REAL, "--checkpoint-dir", ck))
    assert rc == 0, err
    return ck


def wait_for_checkpoint(path, epoch, proc, timeout=120):
    """Wait until ``path`` holds a checkpoint at or after ``epoch``; return that epoch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        if path.exists():
            saved = load_checkpoint(path).epoch
            if saved >= epoch:
                return saved
        time.sleep(0.01)
    raise AssertionError("no checkpoint appeared")


def assert_same_run(dir_a, dir_b):
    a, b = load_checkpoint(dir_a / "checkpoint.npz"), load_checkpoint(dir_b / "checkpoint.npz")
    assert a.epoch == b.epoch == 14
    for key in a.net_arrays:
        assert np.array_equal(a.net_arrays[key], b.net_arrays[key]), key
    for key in a.best_arrays:
        assert np.array_equal(a.best_arrays[key], b.best_arrays[key]), key
    assert a.losses == b.losses
    assert [h["val_error"] for h in a.history] == [h["val_error"] for h in b.history]
    model_a, _ = load_model(dir_a / "model.npz")
    model_b, _ = load_model(dir_b / "model.npz")
    assert np.array_equal(model_a.params, model_b.params)


def test_sigkill_then_resume_ends_bitwise_equal(straight_run, tmp_path):
    ck = tmp_path / "ck"
    proc = run_cli("train", *REAL, "--checkpoint-dir", ck)
    try:
        saved = wait_for_checkpoint(ck / "checkpoint.npz", 3, proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    # Whatever the kill interrupted, the checkpoint on disk is complete and not the last epoch.
    saved = load_checkpoint(ck / "checkpoint.npz").epoch
    assert 3 <= saved < 14
    rc, out, err = finish(run_cli("train", "--resume", ck / "checkpoint.npz"))
    assert rc == 0, err
    assert f"resuming after epoch {saved}" in err
    assert out.splitlines()[0].startswith(f"epoch {saved + 1:>2}/14")
    assert_same_run(straight_run, ck)


def test_sigint_saves_checkpoint_and_resume_ends_bitwise_equal(straight_run, tmp_path):
    ck = tmp_path / "ck"
    proc = run_cli("train", *REAL, "--checkpoint-dir", ck)
    try:
        wait_for_checkpoint(ck / "checkpoint.npz", 2, proc)
        proc.send_signal(signal.SIGINT)
        rc, out, err = finish(proc, timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 130, err
    assert "Traceback" not in err
    assert f"resume with: python {REPO / 'cli.py'} train --resume {ck / 'checkpoint.npz'}" in err
    saved = load_checkpoint(ck / "checkpoint.npz").epoch
    assert f"saved the state after epoch {saved} " in err and saved < 14
    rc, out, err = finish(run_cli("train", "--resume", ck / "checkpoint.npz"))
    assert rc == 0, err
    assert_same_run(straight_run, ck)
