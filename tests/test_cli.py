"""Every command through click's test runner: output, run folders, resume, the user's errors.

Each test runs in its own temporary directory (conftest's ``in_tmp_path``), so the suite does not
depend on what earlier runs left in the checkout; no run here draws its pictures
(tests/test_cli_pictures.py looks at them).
"""

import json
import re
import shlex
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO, assert_user_error, ctrl_c_in_console, invoke, train_once
from jitnet.cli import main as cli_module
from jitnet.cli import train as _cli_train
from jitnet.cli.main import cli
from jitnet.engine.network import Network
from jitnet.training import load_checkpoint, load_model

# --patience 100: where this CPU's rounding takes the validation error (a rise at epoch 2 would
# stop a run with the default patience 1) must not decide whether a run here resumes or extends.
SMALL = ["--hidden", "8", "--epochs", "2", "--eval-every", "1", "--train-limit", "1500",
         "--validation", "300", "--test-limit", "400", "--patience", "100"]
EVAL_LINE = re.compile(
    r"^epoch +\d+/\d+  loss \d+\.\d{4}  (val|test) error \d+\.\d\d%  [\d,]+ samples/s  \d+\.\d s$"
)

pytestmark = pytest.mark.usefixtures("in_tmp_path", "no_pictures")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, no_pictures):
    """One small run through the CLI: its folder and output."""
    run = train_once(tmp_path_factory.mktemp("train"), "small", *SMALL)
    run.report = json.loads((run.run / "report.json").read_text())
    return run


# -- help and version ------------------------------------------------------------------------


def test_help_and_version():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("train", "evaluate", "predict", "plot", "compare", "gradcheck", "bench"):
        assert command in result.stdout
    result = invoke("--version")
    assert result.exit_code == 0 and "0.1.0" in result.stdout


@pytest.mark.parametrize("command",
                         ["train", "evaluate", "predict", "plot", "compare", "gradcheck"])
def test_every_option_is_kebab_case_with_help_and_default(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0 and "Usage:" in result.stdout
    for param in cli.get_command(None, command).params:
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
    assert lines[0].startswith("Usage:") and "Commands:" in lines and len(lines) > 10
    assert any(line.split()[:1] == ["train"] for line in lines)


def test_train_options_are_the_config_fields_and_resume_names_the_changeable_ones():
    from jitnet.training import CHANGEABLE, TrainConfig

    params = {p.name: p for p in _cli_train.train.params}
    fields = set(TrainConfig.__dataclass_fields__)
    assert set(params) - set(_cli_train.RUN_OPTIONS) == fields
    named = set(re.findall(r"--[a-z-]+", params["resume"].help.split(" may differ")[0]))
    assert named == {"--" + name.replace("_", "-") for name in CHANGEABLE}


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"]])
def test_help_is_fast_and_does_not_load_the_engine(args):
    code = (f"import sys; from jitnet.cli.main import main; sys.argv = ['cli.py', *{args!r}]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "assert 'numba' not in sys.modules and 'jitnet.engine.network' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, capture_output=True)


# -- train and its run folder ----------------------------------------------------------------


def test_train_prints_one_line_per_evaluation_and_a_summary(trained):
    lines = trained.result.stdout.splitlines()
    assert [line for line in lines if line.startswith("epoch")] == lines[:2]
    assert all(EVAL_LINE.match(line) for line in lines[:2]), lines[:2]
    assert lines[2].startswith("stopped after epoch 2")
    assert re.match(r"best epoch \d  val error \d+\.\d\d%  test error \d+\.\d\d% on 400 images",
                    lines[3])
    assert lines[-1] == f"run folder  {trained.run}"
    assert "kernels ready" in trained.result.stderr  # diagnostics on stderr
    assert "[" not in trained.result.stderr  # ... no progress bar off a terminal


def test_the_run_folder_and_its_report(trained):
    assert sorted(p.name for p in trained.run.iterdir()) == [
        "checkpoint.npz", "config.json", "log.jsonl", "model.npz", "report.json"]
    report = trained.report
    assert report["config"]["hidden"] == [8] and report["config"]["rate"] == 0.3
    shown = re.search(r"test error (\d+\.\d\d)%", trained.result.stdout).group(1)
    assert f"{100 * report['test_error']:.2f}" == shown
    assert [h["epoch"] for h in report["history"]] == [1, 2]
    lines = (trained.run / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]


def test_a_new_run_gets_a_new_folder_named_by_time(tmp_path):
    for _ in range(2):
        assert invoke("train", *SMALL, "--epochs", "1").exit_code == 0
    folders = sorted((tmp_path / "runs").iterdir())
    assert len(folders) == 2 and all((f / "model.npz").exists() for f in folders)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d(-2)?", folders[1].name)


def test_a_named_run_is_never_replaced(tmp_path):
    assert invoke("train", *SMALL, "--epochs", "1", "--name", "mine").exit_code == 0
    before = (tmp_path / "runs" / "mine" / "model.npz").read_bytes()
    result = invoke("train", *SMALL, "--name", "mine")
    assert_user_error(result, "runs/mine already exists", "--resume runs/mine")
    assert (tmp_path / "runs" / "mine" / "model.npz").read_bytes() == before
    assert_user_error(invoke("train", "--name", "a/b"), "--name", "not a folder name")


@pytest.mark.parametrize("option", ["--output", "--report"])
def test_output_and_report_never_replace_a_file_without_force(tmp_path, option):
    target = tmp_path / "existing.file"
    target.write_bytes(b"the user's file")
    result = invoke("train", *SMALL, option, target)
    assert_user_error(result, option, "exists; add --force")
    assert target.read_bytes() == b"the user's file" and not (tmp_path / "runs").exists()
    result = invoke("train", *SMALL, option, target, "--force")
    assert result.exit_code == 0, result.output
    if option == "--output":
        assert load_model(target)[0].sizes == [784, 8, 10]
    else:
        assert json.loads(target.read_text())["status"] == "finished"


@pytest.mark.parametrize("option", ["--output", "--report"])
def test_output_in_a_folder_that_cannot_exist_fails_before_training(tmp_path, option):
    (tmp_path / "afile").write_text("not a directory")
    assert_user_error(invoke("train", *SMALL, option, tmp_path / "afile" / "m"), "afile is not a")
    assert_user_error(invoke("train", *SMALL, option, tmp_path), "is a directory")
    assert not (tmp_path / "runs").exists()


def test_a_hold_out_larger_than_the_training_set_fails_before_creating_anything(tmp_path):
    result = invoke("train", "--train-limit", "5000")
    assert_user_error(result, "--validation 10000", "5,000", "give a smaller --validation")
    assert list(tmp_path.iterdir()) == []


def test_train_with_validation_zero_stops_on_the_test_error():
    result = invoke("train", *SMALL, "--validation", "0")
    assert result.exit_code == 0, result.output
    assert "test error" in result.stdout.splitlines()[0]


def test_epochs_without_evaluation_get_a_line_on_stderr_in_logs():
    result = invoke("train", *SMALL, "--epochs", "3", "--eval-every", "2")
    assert result.exit_code == 0, result.output
    epoch_lines = [line for line in result.stderr.splitlines() if line.startswith("epoch")]
    assert len(epoch_lines) == 1 and epoch_lines[0].startswith("epoch 1/3  loss ")
    assert [line[:9] for line in result.stdout.splitlines()[:2]] == ["epoch 2/3", "epoch 3/3"]


def test_quiet_prints_only_the_summary():
    result = invoke("train", *SMALL, "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stderr == "" and result.stdout.startswith("stopped after epoch 2")


# -- stopping and resuming -------------------------------------------------------------------


def test_ctrl_c_saves_and_prints_a_resume_command_that_works(tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        ctrl_c_in_console(m, 2)
        result = invoke("train", *SMALL, "--epochs", "3", "--name", "my run")
    run = Path("runs") / "my run"
    assert result.exit_code == 130, result.output
    assert f"interrupted: saved the state after epoch 1 in {run}" in result.stderr
    command = result.stderr.strip().splitlines()[-1].removeprefix("resume with: ")
    # Under the test runner this process is not cli.py: the module form works anywhere.
    assert shlex.split(command) == [sys.executable, "-m", "jitnet", "train", "--resume",
                                    str(run)]
    assert "Traceback" not in result.output
    assert load_checkpoint(run / "checkpoint.npz").epoch == 1
    result = invoke(*shlex.split(command)[3:])
    assert result.exit_code == 0, result.output
    assert load_checkpoint(run / "checkpoint.npz").epoch == 3
    assert json.loads((run / "report.json").read_text())["status"] == "finished"


@pytest.mark.parametrize(
    "argv0, main_spec, prefix",
    [
        ("cli.py", None, [sys.executable, "cli.py"]),
        ("/my dir/cli.py", None, [sys.executable, "/my dir/cli.py"]),
        ("/x/jitnet/cli/main.py", "jitnet.cli.main", [sys.executable, "-m", "jitnet"]),
        ("/nowhere/bin/jitnet", None, ["/nowhere/bin/jitnet"]),
    ],
)
def test_the_resume_command_is_how_this_process_was_started(monkeypatch, argv0, main_spec,
                                                             prefix):
    monkeypatch.setattr(sys, "argv", [argv0, "train"])
    main = types.SimpleNamespace(__spec__=types.SimpleNamespace(name=main_spec)
                                 if main_spec else None)
    monkeypatch.setitem(sys.modules, "__main__", main)
    command = _cli_train.resume_command(Path("runs/a b"))
    assert shlex.split(command) == [*prefix, "train", "--resume", "runs/a b"]


def test_resume_may_extend_epochs_and_refuses_changed_options(trained, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained.run, run)
    assert_user_error(invoke("train", "--resume", run, "--hidden", "16"), "--hidden 8, not 16")
    assert_user_error(invoke("train", "--resume", run, "--train-limit", "1000"), "--train-limit")
    assert_user_error(invoke("train", "--resume", run, "--name", "x"), "--name", "--resume")
    before = (run / "checkpoint.npz").read_bytes()
    assert_user_error(invoke("train", "--resume", run, "--epochs", "1"), "completed 2 epochs")
    assert (run / "checkpoint.npz").read_bytes() == before
    # Same values are accepted; --epochs extends; a checkpoint file works as well as its folder.
    result = invoke("train", "--resume", run / "checkpoint.npz", "--hidden", "8", "--epochs", "3")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("epoch 3/3")
    assert load_checkpoint(run / "checkpoint.npz").epoch == 3


def test_relative_output_and_report_survive_a_resume_from_elsewhere(tmp_path, monkeypatch):
    first, elsewhere = tmp_path / "first", tmp_path / "elsewhere"
    first.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(first)
    result = invoke("train", *SMALL, "--epochs", "1", "--name", "r", "--output", "out/m.npz",
                    "--report", "r.json")
    assert result.exit_code == 0, result.output
    config = load_checkpoint(first / "runs" / "r" / "checkpoint.npz").config
    assert (config.output, config.report) == (str(first / "out" / "m.npz"), str(first / "r.json"))
    monkeypatch.chdir(elsewhere)
    result = invoke("train", "--resume", first / "runs" / "r", "--epochs", "2")
    assert result.exit_code == 0, result.output
    assert load_model(first / "out" / "m.npz")[1]["config"]["epochs"] == 2  # rewritten there
    assert json.loads((first / "r.json").read_text())["epochs_completed"] == 2
    assert list(elsewhere.iterdir()) == []


def test_a_write_error_names_the_file_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    from jitnet.training import loop

    def disk_full(path, *args, **kwargs):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(loop, "save_model", disk_full)
    result = invoke("train", *SMALL, "--checkpoint-every", "1", "--name", "r")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"Error: cannot write {Path('runs/r/model.npz')}: No space left on device"
    assert load_checkpoint(tmp_path / "runs" / "r" / "checkpoint.npz").epoch == 1


def test_divergence_is_one_line_naming_the_epoch_and_a_smaller_rate(tmp_path, monkeypatch):
    real = Network.train_epoch

    def train_epoch(net, *args, **kwargs):
        loss = real(net, *args, **kwargs)
        return float("inf") if net.sizes == [784, 8, 10] and kwargs["rate"] == 50 else loss

    monkeypatch.setattr(Network, "train_epoch", train_epoch)
    result = invoke("train", *SMALL, "--rate", "50", "--name", "r")
    assert result.exit_code == 2, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: training diverged in epoch 1 (mean loss inf)")
    assert "try a smaller --rate than 50" in last
    assert load_checkpoint(tmp_path / "runs" / "r" / "checkpoint.npz").epoch == 0


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
        (["train", "--resume", "/no/such/run"], ["--resume"]),
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
    (tmp_path / "data").mkdir()
    assert_user_error(invoke("train", "--data", tmp_path / "data"), "missing")
    assert not (tmp_path / "runs").exists()


def test_corrupt_data_directory(tmp_path):
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / name).write_bytes(b"\x00\x00\x08\x03garbage")
    assert_user_error(invoke("train", "--data", tmp_path), "train-images-idx3-ubyte")
    model = tmp_path / "m.npz"
    Network([784, 4, 10], seed=0).save(model)
    assert_user_error(invoke("evaluate", model, "--data", tmp_path))


def _damaged_meta(text, old, new):
    assert old in text, old
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda t: "[" * 100_000 + "]" * 100_000, "not valid JSON"),  # deeper than recursion
        (lambda t: _damaged_meta(t, '"rate": 0.3', '"rate": ' + "9" * 400), "'rate'"),
        (lambda t: _damaged_meta(t, '"epoch": 2', '"epoch": 1e999'), "'epoch' is Infinity"),
        (lambda t: _damaged_meta(t, '"bit_generator": "PCG64"', '"bit_generator": "PCG"'),
         "PCG64 generator state"),
        (lambda t: _damaged_meta(t, '"hidden": [8]', '"hidden": [100000000000000]'),
         "not a 784-100000000000000-10 network"),
        (lambda t: _damaged_meta(t, '"hidden": [8]', '"hidden": [1e999]'), "'hidden'"),
        (lambda t: _damaged_meta(t, '"data": null', '"data": "/mnist\\u0000x"'), "NUL"),
        (lambda t: _damaged_meta(t, '"best_error": ', '"best_error": "x", "_": '),
         "'best_error'"),
    ],
)
def test_a_damaged_checkpoint_is_one_line_and_exit_code_2(trained, tmp_path, damage, words):
    with np.load(trained.checkpoint) as f:
        arrays = {k: f[k] for k in f.files}
    text = damage(arrays["meta"].tobytes().decode())
    arrays["meta"] = np.frombuffer(text.encode(), np.uint8)
    bad = tmp_path / "checkpoint.npz"
    np.savez(bad, **arrays)
    for command in (["train", "--resume"], ["evaluate"]):
        result = invoke(*command, bad)
        assert_user_error(result, str(bad), *words)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated zip", b"plain junk"])
def test_a_checkpoint_that_is_not_an_npz(trained, tmp_path, content):
    bad = tmp_path / "checkpoint.npz"
    good = trained.checkpoint.read_bytes()
    bad.write_bytes(content or good[: len(good) // 3])
    assert_user_error(invoke("train", "--resume", bad), str(bad))
    assert_user_error(invoke("evaluate", bad), str(bad))


def test_model_file_that_is_not_a_model(tmp_path):
    path = tmp_path / "weights.npz"
    np.savez(path, W=np.zeros((3, 3)))
    assert_user_error(invoke("evaluate", path), "not a jitnet model")
    assert_user_error(invoke("predict", path, "--index", "0"), "not a jitnet model")
    assert_user_error(invoke("evaluate", tmp_path), "model.npz does not exist")


def test_model_that_does_not_fit_the_data(tmp_path):
    path = tmp_path / "small.npz"
    Network([100, 5, 10], seed=0).save(path)
    assert_user_error(invoke("evaluate", path), "100 inputs")


def test_predict_index_out_of_range(trained):
    assert_user_error(invoke("predict", trained.model, "--index", "10000"), "out of range")
    assert_user_error(invoke("predict", trained.model, "--index", "-1"), "--index")
    assert_user_error(invoke("predict", trained.model), "--index")


# -- evaluate and predict --------------------------------------------------------------------


@pytest.mark.parametrize("which", ["run", "model"])
def test_evaluate_prints_error_rate_and_confusion_matrix(trained, which, mnist):
    result = invoke("evaluate", trained.run if which == "run" else trained.model)
    assert result.exit_code == 0, result.output
    out = result.stdout
    rate = float(re.search(r"error rate (\d+\.\d\d)%", out).group(1))
    wrong, total = (int(n.replace(",", "")) for n in
                    re.search(r"\(([\d,]+) of ([\d,]+) wrong\)", out).groups())
    assert total == 10000 and rate == pytest.approx(100 * wrong / total, abs=0.005)
    lines = out.splitlines()
    start = lines.index("true \\ predicted") + 2
    rows = lines[start:start + 10]
    assert len({len(row) for row in rows}) == 1  # aligned
    matrix = np.array([[int(v.replace(",", "")) for v in row.split()[1:-1]] for row in rows])
    assert [int(row.split()[0]) for row in rows] == list(range(10))
    assert matrix.shape == (10, 10) and matrix.sum() == total
    assert total - np.trace(matrix) == wrong
    labels = mnist[1].labels
    assert list(matrix.sum(axis=1)) == list(np.bincount(labels, minlength=10))
    net, _ = load_model(trained.model)  # the best model of the run
    assert wrong == int((net.classify(mnist[1].images) != labels).sum())


def test_predict_shows_the_image_label_and_outputs(trained, mnist):
    result = invoke("predict", trained.run, "--index", "0")
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
    net, _ = load_model(trained.model)
    assert np.allclose(outputs, net.predict(mnist[1].images[0]), atol=5e-5)


@pytest.mark.parametrize("command", [["evaluate"], ["predict", "--index", "0"]])
def test_ctrl_c_in_evaluate_and_predict_exits_130(trained, monkeypatch, command):
    from jitnet.cli import datafiles

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(datafiles, "evaluation_set", ctrl_c)
    result = invoke(command[0], trained.model, *command[1:])
    assert result.exit_code == 130, result.output
    assert result.stderr.strip() == "interrupted" and result.stdout == ""


# -- gradcheck and bench ---------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["object", "vectorized", "jit"])
def test_gradcheck_passes(engine):
    result = invoke("gradcheck", "--sizes", "6,4,3", "--engine", engine, "--seed", "1")
    assert result.exit_code == 0, result.output
    assert "gradient check passed" in result.stdout


def test_gradcheck_failure_exits_1(monkeypatch):
    import jitnet.evaluation.gradcheck as gradcheck

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

    def fake_main(argv, prog_name):
        calls.append(argv)
        return 3

    monkeypatch.setattr(cli_module, "_bench_main", lambda: fake_main)
    result = invoke("bench", "--quick", "--sizes", "784,30,10", "--help", "-x")
    assert calls == [["--quick", "--sizes", "784,30,10", "--help", "-x"]]
    assert result.exit_code == 3
