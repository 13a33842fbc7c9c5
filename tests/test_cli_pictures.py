"""The command line's pictures and your own digits: what ``train`` draws in its run folder,
``evaluate --mistakes/--confusion-png/--json``, ``predict`` on image files, ``plot``,
``compare``, ``gradcheck --json`` and ``python -m jitnet``.

One tiny run (784-16-10, 2 epochs on 1,500 images) is trained once for the module; every test
works in its own temporary directory.
"""

import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import REPO, assert_user_error, ctrl_c_in_console, invoke, train_once
from jitnet.cli.pictures import NOTE
from jitnet.data.images import load_digit, probabilities
from jitnet.training import load_model, save_model

TINY = ["--train-limit", "2000", "--validation", "500", "--test-limit", "1000", "--hidden", "16",
        "--epochs", "2", "--eval-every", "1"]
PICTURES = ["confusion_matrix.png", "learning_curve.png", "mistakes.png"]

pytestmark = pytest.mark.usefixtures("in_tmp_path")


@pytest.fixture(scope="module")
def run(tmp_path_factory, mnist):
    """The tiny run through the CLI, and the test set."""
    run = train_once(tmp_path_factory.mktemp("pictures"), "tiny", *TINY)
    run.dir, run.test = run.run, mnist[1]
    return run


def not_installed(monkeypatch, package):
    """Make every ``import package`` (and of its submodules) fail, as when it is missing, even
    though this process has loaded it already."""
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, package, None)


def grey(path):
    with Image.open(path) as image:
        return np.asarray(image.convert("L"), dtype=np.int64)


def assert_not_blank(path):
    pixels = grey(path)
    dark = np.mean(pixels < 128)  # text, lines, ink
    assert 0.005 < dark < 0.6, (path, dark)
    assert pixels.std() > 20, path


def gallery_grid(path):
    """(columns, rows) of the framed cells of a gallery PNG: the frames (light grey, see
    jitnet.plots.figures._gallery) are the only long straight grey runs in it."""
    frame = (lambda p: (p > 150) & (p < 245))(grey(path))

    def edges(mask):  # groups of adjacent columns holding a vertical grey run of a cell's height
        best, current = np.zeros(mask.shape[1], int), np.zeros(mask.shape[1], int)
        for row in mask:
            current = np.where(row, current + 1, 0)
            best = np.maximum(best, current)
        columns = np.flatnonzero(best > 0.8 * best.max())
        return len(np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1))

    return edges(frame) // 2, edges(frame.T) // 2


# -- train draws in its run folder -----------------------------------------------------------


def test_train_draws_three_pictures_that_open_at_their_size_and_are_not_blank(run):
    names = sorted(p.name for p in run.dir.iterdir())
    assert [n for n in names if n.endswith(".png")] == PICTURES
    with Image.open(run.dir / "learning_curve.png") as image:
        assert image.format == "PNG" and image.size == (770, 660)  # 7 x 6 in at 110 dpi
    with Image.open(run.dir / "confusion_matrix.png") as image:
        width, height = image.size
        assert 800 < width < 1100 and abs(width - height) < 20  # ten classes: about square
    with Image.open(run.dir / "mistakes.png") as image:
        assert image.size[0] == 1430  # 8 columns of 1.6 in, 0.2 in margin, 110 dpi
    for name in PICTURES:
        assert_not_blank(run.dir / name)
    assert gallery_grid(run.dir / "mistakes.png") == (8, 3)  # the 24 most confident mistakes
    assert NOTE not in run.result.stderr


def test_without_matplotlib_train_works_and_says_so_once(monkeypatch, tmp_path):
    not_installed(monkeypatch, "matplotlib")
    result = invoke("train", *TINY, "--name", "r")
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stderr.count('pip install "jitnet[plots]"') == 1
    assert NOTE in result.stderr.splitlines()
    folder = tmp_path / "runs" / "r"
    assert (folder / "model.npz").exists() and not list(folder.glob("*.png"))
    assert result.stdout.splitlines()[-1] == f"run folder  {Path('runs/r')}"


def test_a_picture_that_cannot_be_written_costs_a_note_not_the_run(monkeypatch, tmp_path):
    from jitnet.plots import figures as plots

    def disk_full(history, path, **kwargs):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(plots, "learning_curve", disk_full)
    result = invoke("train", *TINY, "--name", "r")
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert notes == [f"note: cannot write {Path('runs/r/learning_curve.png')} (No space left on "
                     "device); no more pictures drawn"]
    assert (tmp_path / "runs" / "r" / "report.json").exists()


def test_an_interrupted_run_keeps_its_curve_and_a_resumed_one_draws_everything(monkeypatch):
    with monkeypatch.context() as m:
        ctrl_c_in_console(m, 2)
        result = invoke("train", *TINY, "--name", "r")
    assert result.exit_code == 130, result.output
    folder = Path("runs/r")
    assert sorted(p.name for p in folder.glob("*.png")) == ["learning_curve.png"]
    curve = (folder / "learning_curve.png").read_bytes()
    result = invoke("train", "--resume", folder)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.glob("*.png")) == PICTURES
    assert (folder / "learning_curve.png").read_bytes() != curve  # redrawn with epoch 2


def test_the_curve_is_redrawn_within_its_share_of_the_run_time(monkeypatch, tmp_path):
    from jitnet.cli import pictures as _run_pictures
    from jitnet.plots import figures as plots
    from jitnet.training import TrainConfig

    clock, drawn = [100.0], []

    def learning_curve(history, path, title):  # a drawing that takes 1 s
        drawn.append((clock[0], [r["epoch"] for r in history], title))
        clock[0] += 1.0

    monkeypatch.setattr(plots, "learning_curve", learning_curve)
    monkeypatch.setattr(_run_pictures.time, "perf_counter", lambda: clock[0])
    pictures = _run_pictures.RunPictures(tmp_path / "r", print)
    state = types.SimpleNamespace(config=TrainConfig(hidden=(16,)), best_epoch=1, records=[],
                                  data={"n_inputs": 784, "n_classes": 10})
    for seconds in (0, 5, 5, 5, 5, 5):  # evaluations 5 s apart; redraws may take 10%
        clock[0] += seconds
        state.records.append({"epoch": len(state.records) + 1, "loss": 0.1, "val_error": 0.1})
        pictures.curve(state)
    # The first drawing's time (matplotlib's import) does not count; then 1 s per 10 s.
    assert [t for t, _, _ in drawn] == [100.0, 106.0, 117.0, 128.0]
    pictures.curve(state, always=True)  # the end of the run
    assert drawn[-1][1] == [1, 2, 3, 4, 5, 6]
    assert drawn[-1][2] == "r: 784-16-10, rate 0.3, float64, seed 0"


# -- evaluate --------------------------------------------------------------------------------


def test_evaluate_json_confusion_matrix_sums_to_the_test_set(run):
    result = invoke("evaluate", run.dir, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    matrix = np.array(report["confusion_matrix"])
    labels = run.test.labels
    assert matrix.shape == (10, 10) and matrix.sum() == len(labels) == report["n_images"]
    assert list(matrix.sum(axis=1)) == list(np.bincount(labels, minlength=10))
    net, _ = load_model(run.model)
    wrong = int((net.classify(run.test.images) != labels).sum())
    assert report["wrong"] == wrong == matrix.sum() - np.trace(matrix)
    assert report["error_rate"] == pytest.approx(wrong / len(labels))
    assert report["recall"][3] == pytest.approx(matrix[3, 3] / matrix[3].sum())
    assert report["precision"][3] == pytest.approx(matrix[3, 3] / matrix[:, 3].sum())
    assert report["mistakes_png"] is None and report["confusion_png"] is None


def test_evaluate_text_has_rates_per_class(run):
    result = invoke("evaluate", run.dir)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    start = lines.index("true \\ predicted")
    assert lines[start + 1].endswith("   recall")
    rows = lines[start + 2:start + 12]
    assert [int(row.split()[0]) for row in rows] == list(range(10))
    assert all(row.endswith("%") for row in rows) and len({len(r) for r in rows}) == 1
    assert lines[start + 12].startswith("prec ") and lines[start + 12].count("%") == 10


def test_evaluate_mistakes_gallery_shows_exactly_n(run, tmp_path):
    model = tmp_path / "m.npz"
    shutil.copy(run.model, model)
    result = invoke("evaluate", model, "--mistakes", 5)
    assert result.exit_code == 0, result.output
    gallery = tmp_path / "m-mistakes-test.png"  # default: beside the model file
    assert f"mistakes   {gallery}  (the 5 most confident of " in result.stdout
    assert gallery_grid(gallery) == (5, 1)
    assert_not_blank(gallery)
    # Never replaced: a second default gallery gets a number.
    result = invoke("evaluate", model, "--mistakes", 3, "--json")
    assert json.loads(result.stdout)["mistakes_png"] == str(tmp_path / "m-mistakes-test-2.png")
    assert gallery_grid(tmp_path / "m-mistakes-test-2.png") == (3, 1)


def test_evaluate_in_a_run_folder_and_explicit_paths(run, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(run.dir, folder)
    result = invoke("evaluate", folder, "--mistakes", 2, "--confusion-png", "c.png")
    assert result.exit_code == 0, result.output
    assert (folder / "mistakes-test.png").exists() and (tmp_path / "c.png").exists()
    with Image.open(tmp_path / "c.png") as image:
        assert image.size == Image.open(folder / "confusion_matrix.png").size
    before = (tmp_path / "c.png").read_bytes()
    assert_user_error(invoke("evaluate", folder, "--confusion-png", "c.png"),
                      "--confusion-png c.png exists; add --force")
    assert_user_error(invoke("evaluate", folder, "--mistakes", 1, "--out", "c.png"), "--out")
    assert (tmp_path / "c.png").read_bytes() == before
    result = invoke("evaluate", folder, "--mistakes", 1, "--out", "c.png", "--force")
    assert result.exit_code == 0 and gallery_grid(tmp_path / "c.png") == (1, 1)
    assert_user_error(invoke("evaluate", folder, "--out", "x.png"), "--mistakes")


def test_evaluate_pictures_without_matplotlib_is_one_line(run, monkeypatch):
    not_installed(monkeypatch, "matplotlib")
    assert_user_error(invoke("evaluate", run.dir, "--mistakes", 3), 'pip install "jitnet[plots]"')
    assert invoke("evaluate", run.dir).exit_code == 0  # the numbers need no matplotlib


# -- predict on your own digits --------------------------------------------------------------


@pytest.fixture(scope="module")
def confident(run):
    """Three test digits the tiny model gets right with the largest margins."""
    net, _ = load_model(run.model)
    scores = probabilities(net.predict(run.test.images[:300]))
    ranked = np.sort(scores, axis=1)
    margin = ranked[:, -1] - ranked[:, -2]
    right = scores.argmax(axis=1) == run.test.labels[:300]
    return [int(i) for i in np.argsort(-np.where(right, margin, -1))[:3]]


def variants(image, folder, index):
    """The digit as a white-on-black PNG, inverted, and 3x larger off-centre on a page."""
    paths = [folder / f"{index}-plain.png", folder / f"{index}-inverted.png",
             folder / f"{index}-page.png"]
    Image.fromarray(image).save(paths[0])
    Image.fromarray(255 - image).save(paths[1])
    big = Image.fromarray(255 - image).resize((84, 84), Image.Resampling.BICUBIC)
    page = Image.new("L", (200, 150), 255)
    page.paste(big, (10, 60))
    page.save(paths[2])
    return paths


def test_predict_on_image_files_agrees_with_index(run, confident, tmp_path):
    for index in confident:
        by_index = json.loads(invoke("predict", run.dir, "--index", index, "--json").stdout)
        expected = by_index["predictions"][0]
        assert expected["predicted"] == expected["label"] == int(run.test.labels[index])
        image = run.test.images[index].reshape(28, 28)
        paths = variants(image, tmp_path, index)
        result = invoke("predict", run.dir, *paths, "--json")
        assert result.exit_code == 0, result.output
        predictions = json.loads(result.stdout)["predictions"]
        assert [p["image"] for p in predictions] == [str(p) for p in paths]
        assert [p["predicted"] for p in predictions] == [expected["predicted"]] * 3


def test_predict_prints_the_digit_and_the_top_3_scores(run, confident, tmp_path):
    index = confident[0]
    path = variants(run.test.images[index].reshape(28, 28), tmp_path, index)[2]
    result = invoke("predict", run.dir, path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"{path}  (28x28 after preprocessing, as the network sees it)"
    art = lines[1:29]
    assert any("@" in line for line in art) and all(len(line) <= 56 for line in art)
    label = int(run.test.labels[index])
    assert lines[29] == f"predicted   {label}"
    assert lines[30].startswith("top 3 (scores: the network's outputs divided by their sum")
    rows = [line.split() for line in lines[31:34]]
    assert int(rows[0][0]) == label and len(lines) == 34
    net, info = load_model(run.model)
    outputs = net.predict(load_digit(path).reshape(-1))
    scores = probabilities(outputs)
    for k, percent, _, output in rows:
        assert float(percent.rstrip("%")) == pytest.approx(100 * scores[int(k)], abs=0.05)
        assert float(output) == pytest.approx(outputs[int(k)], abs=5e-5)
    assert [float(r[1].rstrip("%")) for r in rows] == sorted(
        (float(r[1].rstrip("%")) for r in rows), reverse=True)


def test_predict_respects_the_input_scale_of_a_raw_pixel_model(run, tmp_path):
    net, info = load_model(run.model)
    raw = tmp_path / "raw.npz"
    save_model(raw, net, dict(info, input_scale=1.0))  # as a --raw-pixels run saves it
    image = run.test.images[0].reshape(28, 28)
    np.save(tmp_path / "digit.npy", image)
    for model, scale in ((run.model, None), (raw, 1.0)):
        result = invoke("predict", model, tmp_path / "digit.npy", "--json")
        outputs = json.loads(result.stdout)["predictions"][0]["outputs"]
        assert np.allclose(outputs, net.predict(image.reshape(-1), scale=scale), atol=1e-12)
    raw_outputs = net.predict(image.reshape(-1), scale=1.0)
    assert not np.allclose(raw_outputs, net.predict(image.reshape(-1)), atol=1e-3)


def test_save_preprocessed_writes_what_the_network_sees(run, tmp_path):
    image = run.test.images[0].reshape(28, 28)
    paths = variants(image, tmp_path, 0)
    result = invoke("predict", run.dir, paths[2], "--save-preprocessed", "seen.png")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "saved       seen.png"
    assert np.array_equal(grey(tmp_path / "seen.png"), load_digit(paths[2]))
    assert_user_error(invoke("predict", run.dir, paths[2], "--save-preprocessed", "seen.png"),
                      "exists; add --force")
    (tmp_path / "sub").mkdir()
    shutil.copy(paths[0], tmp_path / "sub" / paths[0].name)
    result = invoke("predict", run.dir, *paths, tmp_path / "sub" / paths[0].name,
                    "--save-preprocessed", "out", "--json")
    assert result.exit_code == 0, result.output
    saved = [p["preprocessed"] for p in json.loads(result.stdout)["predictions"]]
    assert saved == [str(Path("out") / name) for name in (
        "0-plain-28x28.png", "0-inverted-28x28.png", "0-page-28x28.png", "0-plain-2-28x28.png")]
    for source, path in zip([*paths, paths[0]], saved):
        assert np.array_equal(grey(path), load_digit(source))
    assert_user_error(invoke("predict", run.dir, paths[0], "--save-preprocessed", "x.jpg"),
                      "PNG")


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", ["empty.png", "not an image file"]),
        (b"this is a text file, not a picture\n", ["empty.png", "not an image file"]),
        ("truncated", ["empty.png", "cannot read the image"]),
        ("blank", ["empty.png", "no digit found"]),
    ],
)
def test_a_bad_image_is_one_line_naming_it(run, tmp_path, content, words):
    path = tmp_path / "empty.png"
    if content == "truncated":
        Image.fromarray(run.test.images[0].reshape(28, 28)).resize((280, 280)).save(path)
        path.write_bytes(path.read_bytes()[:400])
    elif content == "blank":
        Image.new("L", (60, 60), 255).save(path)
    else:
        path.write_bytes(content)
    assert_user_error(invoke("predict", run.dir, path), *words)
    good = tmp_path / "good.npy"
    np.save(good, run.test.images[0].reshape(28, 28))
    assert_user_error(invoke("predict", run.dir, good, path), *words)  # nothing printed first


def test_predict_argument_errors(run, tmp_path):
    np.save(tmp_path / "d.npy", np.zeros((5, 5)))
    assert_user_error(invoke("predict", run.dir, tmp_path / "d.npy"), "d.npy", "(28, 28)")
    assert_user_error(invoke("predict", run.dir), "IMAGE", "--index")
    assert_user_error(invoke("predict", run.dir, tmp_path / "d.npy", "--index", 0), "not both")
    assert_user_error(invoke("predict", run.dir, "missing.png"), "missing.png")
    assert_user_error(invoke("predict", run.dir, "--index", 0, "--top", 11), "--top 11")


def test_predict_without_pillow_is_one_line(run, tmp_path, monkeypatch):
    Image.fromarray(run.test.images[0].reshape(28, 28)).save(tmp_path / "d.png")
    not_installed(monkeypatch, "PIL")
    assert_user_error(invoke("predict", run.dir, tmp_path / "d.png"),
                      'pip install "jitnet[plots]"')


# -- plot, compare, gradcheck --json, python -m jitnet --------------------------------------


def test_plot_redraws_the_curve_and_never_replaces_a_file(run, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(run.dir, folder)
    result = invoke("plot", folder)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"learning curve  {folder / 'learning_curve-2.png'}  (2 epochs, " \
                            "best epoch 2)\n"
    with Image.open(folder / "learning_curve-2.png") as image:
        assert image.size == (770, 660)
    result = invoke("plot", folder / "report.json", "--log-scale", "--out", "log.png")
    assert result.exit_code == 0 and (tmp_path / "log.png").exists()
    assert_user_error(invoke("plot", folder, "--out", "log.png"), "exists; add --force")
    (tmp_path / "empty").mkdir()
    assert_user_error(invoke("plot", tmp_path / "empty"), "no *.jsonl log or report.json")
    (tmp_path / "bad.json").write_text("{not json")
    assert_user_error(invoke("plot", tmp_path / "bad.json"), "bad.json", "JSON")


def test_compare_overlays_runs(run, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(run.dir, other)
    result = invoke("compare", run.dir, other, "--out", "c.png")
    assert result.exit_code == 0, result.output
    assert result.stdout == "comparison  c.png  (2 of 2 runs drawn)\n"
    with Image.open(tmp_path / "c.png") as image:
        assert image.size == (825, 528)  # 7.5 x 4.8 in at 110 dpi
    assert_not_blank(tmp_path / "c.png")
    assert_user_error(invoke("compare", run.dir, "--out", "c.png"), "exists")
    assert_user_error(invoke("compare", run.dir), "--out")
    result = invoke("compare", run.dir, "--metric", "loss", "--out", "loss.png")
    assert result.exit_code == 0, result.output


def test_gradcheck_json():
    result = invoke("gradcheck", "--sizes", "5,4,3", "--json", "--top", 2)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["passed"] is True and report["n_params"] == 4 * 6 + 3 * 5
    assert report["n_failed"] == 0 and len(report["worst"]) == 2
    assert report["worst"][0]["name"].startswith(("W", "b"))
    assert report["max_abs_error"] < 1e-8


def test_gradcheck_json_reports_a_failure(monkeypatch):
    import jitnet.evaluation.gradcheck as gradcheck

    real = gradcheck.run_gradcheck

    def broken(*args, **kwargs):
        result = real(*args, **kwargs)
        result.actual[0] = np.nan  # a deliberately broken gradient entry
        return result

    monkeypatch.setattr(gradcheck, "run_gradcheck", broken)
    result = invoke("gradcheck", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["passed"] is False and report["n_failed"] == 1
    assert report["worst"][0]["actual"] == "nan"


def test_python_dash_m_jitnet_is_the_command_line():
    result = subprocess.run([sys.executable, "-m", "jitnet", "--help"], cwd=REPO,
                            capture_output=True, text=True, check=True)
    assert result.stdout.startswith("Usage: python -m jitnet [OPTIONS] COMMAND")
    for command in ("train", "evaluate", "predict", "plot", "compare", "gradcheck"):
        assert f"  {command} " in result.stdout
    result = subprocess.run([sys.executable, "-m", "jitnet", "predict", "x.npz"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.startswith("Error: ")
    assert len(result.stderr.splitlines()) == 1


def test_picture_commands_load_nothing_heavy_for_help():
    code = ("import sys; from jitnet.cli.main import main; sys.argv = ['cli.py', 'predict', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('numba', 'matplotlib', 'PIL', 'jitnet.engine.network') "
            "if m in sys.modules]\n"
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, capture_output=True)

