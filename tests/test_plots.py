"""jitnet.plots.figures: every picture renders to a PNG of the documented size that is not blank, and
the functions choose what to draw (best epoch, worst mistakes, trials) correctly."""

import json
import sys

import numpy as np
import pytest

from jitnet.plots import figures as plots

Image = pytest.importorskip("PIL.Image")
pytest.importorskip("matplotlib")

MIN_STD = 10.0  # grey-level spread of a picture that shows something (a blank one has ~0)


def picture(path, size=None):
    """The PNG at ``path`` as a grey array, after checking it is a real, non-blank picture."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        if size is not None:
            assert image.size == size
        grey = np.asarray(image.convert("L"), dtype=np.float64)
    assert grey.std() > MIN_STD, f"{path} looks blank (std {grey.std():.1f})"
    return grey


def history(epochs=12, every=3, test=True):
    """A made-up run: loss falling, validation error lowest at epoch 9, test error at the end."""
    records = []
    for epoch in range(1, epochs + 1):
        record = {"epoch": epoch, "loss": 0.06 / epoch, "rate": 0.3, "seconds": 0.5}
        if epoch % every == 0:
            record["val_error"] = {3: 0.04, 6: 0.025, 9: 0.019, 12: 0.021}.get(epoch, 0.03)
        record["test_error"] = 0.0192 if test and epoch == epochs else None
        records.append(record)
    return records


def test_learning_curve(tmp_path):
    best = plots.learning_curve(history(), tmp_path / "curve.png", title="784-300-10, seed 0")
    assert best == 9
    picture(tmp_path / "curve.png", (770, 660))
    assert [p.name for p in tmp_path.iterdir()] == ["curve.png"]  # no temporary file left


def test_learning_curve_best_epoch_falls_back_to_test_error_and_keeps_the_first_tie(tmp_path):
    runs = [{"epoch": 1, "loss": 0.1, "test_error": 0.05}, {"epoch": 2, "loss": 0.08,
            "test_error": 0.03}, {"epoch": 3, "loss": 0.07, "test_error": 0.03}]
    assert plots.learning_curve(runs, tmp_path / "c.png", log_scale=True) == 2
    picture(tmp_path / "c.png")


def test_learning_curve_without_evaluations(tmp_path):
    only_loss = [{"epoch": e, "loss": 1.0 / e} for e in (2, 1, 3)]  # any order
    assert plots.learning_curve(only_loss, tmp_path / "c.png") is None
    picture(tmp_path / "c.png", (770, 660))


@pytest.mark.parametrize("bad", [[], [{"loss": 0.1}], [{"epoch": "one"}], ["epoch 1"]])
def test_learning_curve_rejects_bad_histories(tmp_path, bad):
    with pytest.raises(ValueError, match="history"):
        plots.learning_curve(bad, tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()


@pytest.mark.parametrize("n", [3, 10, 40])
def test_confusion_matrix_plot(tmp_path, n):
    rng = np.random.default_rng(n)
    matrix = rng.integers(0, 30, (n, n)) + np.diag(rng.integers(500, 1200, n))
    matrix[0, 1] = 0
    plots.confusion_matrix_plot(matrix, tmp_path / "cm.png", title=f"{n} classes")
    grey = picture(tmp_path / "cm.png")
    assert min(grey.shape) >= 300


def test_confusion_matrix_text_is_readable_on_dark_and_light_cells():
    assert plots._text_colour((0.03, 0.19, 0.42, 1)) == "white"  # dark blue
    assert plots._text_colour((0.97, 0.98, 1.0, 1)) == "black"  # near white


def test_confusion_matrix_plot_rejects_a_non_square_matrix(tmp_path):
    with pytest.raises(ValueError, match="square"):
        plots.confusion_matrix_plot(np.ones((3, 4)), tmp_path / "cm.png")


@pytest.fixture(scope="module")
def predictions():
    """MNIST test images with made-up predictions: every 7th image wrong, confidences known."""
    from jitnet import load_mnist

    test = load_mnist()[1]
    images, labels = test.images[:200], test.labels[:200].astype(np.int64)
    predicted = labels.copy()
    wrong = np.arange(0, 200, 7)
    predicted[wrong] = (labels[wrong] + 1) % 10
    confidence = np.random.default_rng(0).random(200)
    return images, labels, predicted, confidence, wrong


@pytest.mark.parametrize("n", [1, 24])
def test_mistakes_gallery_shows_the_most_confident_mistakes(tmp_path, predictions, n):
    images, labels, predicted, confidence, wrong = predictions
    shown = plots.mistakes_gallery(images, labels, predicted, confidence,
                                   tmp_path / "m.png", n=n, title="test")
    assert len(shown) == n
    assert set(shown) <= set(wrong)
    expected = wrong[np.argsort(-confidence[wrong])][:n]
    np.testing.assert_array_equal(shown, expected)
    assert np.all(np.diff(confidence[shown]) <= 0)  # worst (most confident) first
    picture(tmp_path / "m.png")


def test_mistakes_gallery_shows_all_when_fewer(tmp_path, predictions):
    images, labels, predicted, confidence, wrong = predictions
    images3d = images.reshape(-1, 28, 28)
    shown = plots.mistakes_gallery(images3d, labels, predicted, None, tmp_path / "m.png", n=1000)
    np.testing.assert_array_equal(shown, wrong)  # without confidences: file order
    picture(tmp_path / "m.png")


def test_mistakes_gallery_without_mistakes(tmp_path, predictions):
    images, labels, _, confidence, _ = predictions
    shown = plots.mistakes_gallery(images, labels, labels, confidence, tmp_path / "m.png", n=5)
    assert len(shown) == 0
    picture(tmp_path / "m.png")


def test_mistakes_gallery_rejects_mismatched_lengths(tmp_path, predictions):
    images, labels, predicted, confidence, _ = predictions
    with pytest.raises(ValueError, match="200 images, 199 labels"):
        plots.mistakes_gallery(images, labels[:-1], predicted, confidence, tmp_path / "m.png")


def test_distortion_grid(tmp_path, predictions):
    original = predictions[0][0].reshape(28, 28)
    distorted = np.stack([np.roll(original, k, axis=1) for k in (-2, 2, 4)])
    count = plots.distortion_grid(original, distorted, tmp_path / "d.png",
                                  labels=["left 2", "right 2", "right 4"])
    assert count == 4
    picture(tmp_path / "d.png")
    with pytest.raises(ValueError, match="differ in size"):
        plots.distortion_grid(original[:20], distorted, tmp_path / "d.png")


def test_compare_curves(tmp_path):
    runs = [("rate 0.3", history()), ("rate 1.0", history(every=2)),
            ("no evaluation", [{"epoch": 1, "loss": 0.1}])]
    assert plots.compare_curves(runs, tmp_path / "c.png") == 2
    picture(tmp_path / "c.png", (825, 528))
    assert plots.compare_curves(runs, tmp_path / "loss.png", metric="loss", log_scale=True) == 3
    with pytest.raises(ValueError, match="no run has any 'test_error'"):
        plots.compare_curves(runs[2:], tmp_path / "x.png", metric="test_error")


def sweep_results():
    results = []
    for rate in (0.03, 0.1, 0.3, 1.0):
        for hidden in ([100], [300], [500, 150]):
            error = 0.02 + abs(np.log10(rate / 0.3)) * 0.01 + 0.001 * len(hidden)
            results.append({"val_error": error, "config": {"rate": rate, "hidden": hidden}})
    results.append({"val_error": None, "config": {"rate": 3.0, "hidden": [100]}})  # failed
    return results


def test_sweep_plot(tmp_path):
    assert plots.sweep_plot(sweep_results(), ["rate", "hidden"], tmp_path / "s.png") == 12
    picture(tmp_path / "s.png")


def test_sweep_plot_uses_a_log_axis_for_rates():
    assert plots._log_axis("rate", [0.03, 0.1, 0.3])
    assert not plots._log_axis("hidden", [100, 300])
    assert plots._log_axis("epochs", [1, 1000])


def test_sweep_plot_rejects_unknown_parameters(tmp_path):
    with pytest.raises(ValueError, match="no parameter 'seed'"):
        plots.sweep_plot(sweep_results(), ["seed"], tmp_path / "s.png")
    with pytest.raises(ValueError, match="nothing to draw"):
        plots.sweep_plot(sweep_results()[-1:], ["rate"], tmp_path / "s.png")


# -- reading runs ----------------------------------------------------------------------------


def test_load_run_from_a_run_folder_with_a_json_lines_log(tmp_path):
    run = tmp_path / "2026-11-28T12-00-00"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"hidden": [300], "rate": 0.3, "seed": 0}))
    lines = [json.dumps(r) for r in history()]
    (run / "epochs.jsonl").write_text("\n".join(lines) + '\n{"epoch": 13, "lo')  # being written
    records, title = plots.load_run(run)
    assert [r["epoch"] for r in records] == list(range(1, 13))
    assert title == "2026-11-28T12-00-00: hidden 300, rate 0.3, seed 0"
    plots.learning_curve(records, tmp_path / "c.png", title=title)
    picture(tmp_path / "c.png")


def test_load_run_from_a_report(tmp_path):
    report = {"config": {"hidden": [500, 150], "rate": 0.1},
              "history": [{"epoch": 2, "loss": 0.05, "val_error": 0.03}],
              "epoch_losses": [0.08, 0.05, 0.04]}
    (tmp_path / "report.json").write_text(json.dumps(report))
    for where in (tmp_path, tmp_path / "report.json"):
        records, title = plots.load_run(where)
        assert records == [{"epoch": 1, "loss": 0.08},
                           {"epoch": 2, "loss": 0.05, "val_error": 0.03},
                           {"epoch": 3, "loss": 0.04}]
        assert title.endswith("hidden 500-150, rate 0.1")


@pytest.mark.parametrize("content, message", [
    (None, "no such file"), ("{", "cannot read as JSON"), ("[1, 2]", "JSON object"),
    ('{"history": []}', "no epochs"),
])
def test_load_run_errors(tmp_path, content, message):
    path = tmp_path / "report.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match=message):
        plots.load_run(path)


def test_load_run_of_an_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="no \\*.jsonl log or report.json"):
        plots.load_run(tmp_path)


# -- no side effects, and a clear error without matplotlib ---------------------------------


def test_drawing_leaves_pyplot_and_rc_params_alone(tmp_path):
    import matplotlib

    had_pyplot = "matplotlib.pyplot" in sys.modules
    before = matplotlib.rcParams.copy()  # not dict(...): reading "backend" imports pyplot
    plots.learning_curve(history(), tmp_path / "c.png")
    plots.confusion_matrix_plot(np.eye(3, dtype=int) * 5, tmp_path / "cm.png")
    plots.mistakes_gallery(np.zeros((2, 4, 4)), [0, 1], [1, 1], [0.5, 0.5], tmp_path / "m.png")
    assert ("matplotlib.pyplot" in sys.modules) == had_pyplot
    assert dict.__eq__(matplotlib.rcParams, before)  # the stored values, read nothing


@pytest.mark.parametrize("draw", [
    lambda p: plots.learning_curve(history(), p),
    lambda p: plots.confusion_matrix_plot(np.eye(3, dtype=int), p),
    lambda p: plots.compare_curves([("a", history())], p),
    lambda p: plots.sweep_plot(sweep_results(), ["rate"], p),
    lambda p: plots.distortion_grid(np.eye(4), np.stack([np.eye(4)]), p),
    lambda p: plots.mistakes_gallery(np.zeros((2, 4, 4)), [0, 1], [1, 1], [0.5, 0.5], p),
])
def test_without_matplotlib_the_error_says_how_to_install_it(tmp_path, monkeypatch, draw):
    real_import = __import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr("builtins.__import__", no_matplotlib)
    with pytest.raises(plots.MissingDependencyError, match=r'pip install "jitnet\[plots\]"'):
        draw(tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
