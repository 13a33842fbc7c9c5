"""Your data through the command line: ``train --data`` on tables and archives, class names in
``evaluate`` and ``predict``, ``predict --table``, the data source in ``config.json``, ``--resume``
refusing a changed file, and the one-line error of every broken input (no run folder left)."""

import hashlib
import json
import zipfile

import numpy as np
import pytest

import jitnet
from helpers import assert_one_line_error, invoke  # noqa: E402

pd = pytest.importorskip("pandas")

NAMES = ("setosa", "versicolor", "virginica")
QUICK = ["--hidden", "6", "--epochs", "3", "--eval-every", "1", "--quiet"]


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def flowers(n_per_class=30, seed=0):
    """Three classes named by text, four features far apart (shifted by class), file sorted by
    class as such files often are."""
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(4 * k, 1.0, (n_per_class, 4)) + [10, 200, -5, 0]
                        for k in range(3)])
    frame = pd.DataFrame(X.round(3), columns=["sepal", "petal", "stem", "leaf"])
    frame["species"] = np.repeat(NAMES, n_per_class)
    return frame


@pytest.fixture(scope="module")
def flower_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("flowers")
    flowers().to_csv(root / "flowers.csv", index=False)
    result = invoke("train", "--data", root / "flowers.csv", "--label", "species",
                    "--standardize", *QUICK, "--epochs", "20", "--eval-every", "5",
                    "--runs-dir", root / "runs", "--name", "f")
    assert result.exit_code == 0, (result.output, result.exception)
    return root


def test_a_table_with_named_classes_records_its_source(flower_run):
    run = flower_run / "runs" / "f"
    config = json.loads((run / "config.json").read_text())
    source = config["data_source"]
    content = (flower_run / "flowers.csv").read_bytes()
    assert source["path"] == str((flower_run / "flowers.csv").resolve())
    assert (source["bytes"], source["sha256"]) == (len(content),
                                                   hashlib.sha256(content).hexdigest())
    assert (source["format"], source["label"], source["class_names"]) == (
        "table", "species", list(NAMES))
    assert source["split"] == {"test_fraction": 0.2, "seed": 0}
    assert (source["n_test"], source["n_features"]) == (18, 4)  # 6 of each class's 30
    net = jitnet.Network.load(run)
    assert net.class_names == NAMES and net.standardization is not None


def test_predict_table_prints_names_in_the_rows_order(flower_run, tmp_path):
    rows = flowers(seed=5).sample(7, random_state=2)  # with its label column: left aside
    rows.to_csv(tmp_path / "rows.csv", index=False)
    result = invoke("predict", flower_run / "runs" / "f", "--table", tmp_path / "rows.csv")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "row,predicted,score" and len(lines) == 8
    net = jitnet.Network.load(flower_run / "runs" / "f")
    expected = np.array(NAMES)[net.classify(rows[["sepal", "petal", "stem", "leaf"]].to_numpy())]
    assert [line.split(",")[1] for line in lines[1:]] == expected.tolist()
    assert [line.split(",")[0] for line in lines[1:]] == [str(i) for i in range(7)]
    assert (expected == rows["species"].to_numpy()).mean() > 0.8  # the classes are far apart
    out = invoke("predict", flower_run / "runs" / "f", "--table", tmp_path / "rows.csv",
                 "--out", tmp_path / "p.csv")
    assert out.exit_code == 0 and (tmp_path / "p.csv").read_text().splitlines() == lines
    again = invoke("predict", flower_run / "runs" / "f", "--table", tmp_path / "rows.csv",
                   "--out", tmp_path / "p.csv")
    assert_one_line_error(again, "--out", "exists")
    as_json = json.loads(invoke("predict", flower_run / "runs" / "f", "--table",
                                tmp_path / "rows.csv", "--json").stdout)
    assert as_json["class_names"] == list(NAMES)
    assert [p["predicted"] for p in as_json["predictions"]] == expected.tolist()


def test_evaluate_shows_the_class_names_on_the_runs_own_test_set(flower_run):
    result = invoke("evaluate", flower_run / "runs" / "f")
    assert result.exit_code == 0, result.output
    assert "flowers.csv, test set, 18 samples" in result.stdout
    header = result.stdout.splitlines()[5]
    assert header.split()[:3] == list(NAMES)
    report = json.loads(invoke("evaluate", flower_run / "runs" / "f", "--json").stdout)
    assert report["class_names"] == list(NAMES) and report["n_images"] == 18
    assert sum(map(sum, report["confusion_matrix"])) == 18
    assert_one_line_error(invoke("evaluate", flower_run / "runs" / "f", "--mistakes", "4"),
                          "--mistakes draws images")


def test_resume_refuses_a_data_file_that_changed(tmp_path):
    data = flowers(10)
    data.to_csv(tmp_path / "t.csv", index=False)
    args = ["--data", tmp_path / "t.csv", "--hidden", "4", "--epochs", "2", "--eval-every", "1",
            "--checkpoint-every", "1", "--quiet", "--runs-dir", tmp_path / "runs"]
    assert invoke("train", *args, "--name", "r").exit_code == 0
    # The same numbers written differently: the arrays (and their fingerprint) are the same.
    data.to_csv(tmp_path / "t.csv", index=False, float_format="%.4f")
    result = invoke("train", "--resume", tmp_path / "runs" / "r", "--epochs", "3")
    assert_one_line_error(result, "t.csv", "the file has changed")
    data.to_csv(tmp_path / "t.csv", index=False)
    assert invoke("train", "--resume", tmp_path / "runs" / "r", "--epochs", "3").exit_code == 0


def test_whole_number_floats_up_to_255_train_without_a_scale_complaint(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.integers(1, 256, (60, 3)).astype(float)
    frame = pd.DataFrame(X, columns=["age", "visits", "price"])
    frame["label"] = np.where(X[:, 0] > 128, "old", "young")
    frame.to_csv(tmp_path / "t.csv", index=False, float_format="%.1f")
    result = invoke("train", "--data", tmp_path / "t.csv", *QUICK, "--name", "w")
    assert result.exit_code == 0, result.output
    net = jitnet.Network.load(tmp_path / "runs" / "w")
    assert net.input_scale == 1.0 and net.class_names == ("old", "young")
    assert net.predict(X).shape == (60, 2)  # raw rows, no scale= needed


def bars(n, size=8, seed=0):
    """Images of a vertical or a horizontal bar on noise: classes 'vertical' and 'flat'."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 40, (n, size, size)).astype(np.uint8)
    labels = rng.integers(0, 2, n)
    for image, label, at in zip(x, labels, rng.integers(1, size - 1, n)):
        if label:
            image[:, at] = 255
        else:
            image[at, :] = 255
    return x, np.array(["flat", "vertical"])[labels]


def test_images_of_any_size_from_an_npz_predict_an_image_file(tmp_path):
    pytest.importorskip("PIL")
    from PIL import Image

    x, y = bars(300)
    np.savez(tmp_path / "bars.npz", x_train=x[:240], y_train=y[:240], x_test=x[240:],
             y_test=y[240:])
    result = invoke("train", "--data", tmp_path / "bars.npz", "--hidden", "8", "--epochs", "4",
                    "--eval-every", "2", "--validation", "40", "--quiet", "--name", "b")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "runs" / "b" / "mistakes.png").exists() or \
        "test error 0.00%" in result.stdout
    picture = np.zeros((40, 40), np.uint8)
    picture[4:36, 18:22] = 255  # a vertical bar
    Image.fromarray(picture).save(tmp_path / "bar.png")
    result = invoke("predict", tmp_path / "runs" / "b", tmp_path / "bar.png",
                    "--save-preprocessed", tmp_path)
    assert result.exit_code == 0, result.output
    assert "(8x8 after preprocessing" in result.stdout
    assert (tmp_path / "bar-8x8.png").exists()
    assert result.stdout.splitlines()[9].startswith("predicted   ")  # 8 lines of text art before


def test_a_table_declared_as_images(tmp_path):
    x, y = bars(120, size=4, seed=1)
    frame = pd.DataFrame(x.reshape(120, 16), columns=[f"p{k}" for k in range(16)])
    frame["label"] = y
    frame.to_csv(tmp_path / "pixels.csv", index=False)
    result = invoke("train", "--data", tmp_path / "pixels.csv", "--image-shape", "4x4",
                    *QUICK, "--name", "p")
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "runs" / "p" / "config.json").read_text())
    assert config["image_shape"] == [4, 4] and config["data_source"]["image_shape"] == [4, 4]
    assert_one_line_error(invoke("train", "--data", tmp_path / "pixels.csv", "--image-shape",
                                 "3x3", *QUICK), "pixels.csv", "not 3x3 images")


def test_a_keras_npz_of_mnist_trains_distorted_and_draws_its_mistakes(tmp_path):
    """Fashion-MNIST's .npz cannot be downloaded here: the shipped MNIST, saved the same way,
    exercises the same path (uint8 (N, 28, 28) images, integer labels)."""
    pytest.importorskip("matplotlib")
    train, test = jitnet.load_mnist()
    np.savez(tmp_path / "mnist.npz", x_train=train.images[:1200].reshape(-1, 28, 28),
             y_train=train.labels[:1200], x_test=test.images[:300].reshape(-1, 28, 28),
             y_test=test.labels[:300])
    result = invoke("train", "--data", tmp_path / "mnist.npz", "--distort", "affine",
                    "--hidden", "16", "--epochs", "1", "--validation", "200", "--quiet",
                    "--name", "m")
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "m"
    assert (run / "mistakes.png").stat().st_size > 1000
    assert json.loads((run / "config.json").read_text())["data_source"]["image_shape"] == [28, 28]


# -- every broken input: one line naming the file, no run folder ---------------------------


def _write(name, text):
    def make(folder):
        (folder / name).write_text(text)
        return [folder / name]
    return make


def _npz(name, **arrays):
    def make(folder):
        np.savez(folder / name, **arrays)
        return [folder / name]
    return make


def _claiming(folder):
    import io

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (1_250_000_000, 1)})
    with zipfile.ZipFile(folder / "huge.npz", "w") as archive:
        archive.writestr("x_train.npy", header.getvalue())
        archive.writestr("y_train.npy", b"")
    return [folder / "huge.npz"]


def _idx_folder(folder):
    good = jitnet.load_mnist()
    (folder / "idx").mkdir()
    for stem, array in (("train-images", good[0].images[:5].reshape(-1, 28, 28)),
                        ("train-labels", good[0].labels[:5]),
                        ("t10k-labels", good[1].labels[:5])):
        kind = "idx3" if array.ndim == 3 else "idx1"
        jitnet.write_idx(folder / "idx" / f"{stem}-{kind}-ubyte", array)
    # test images: an empty array declaring huge other dimensions
    (folder / "idx" / "t10k-images-idx3-ubyte").write_bytes(
        bytes.fromhex("0000 0803 00000000 7fffffff 7fffffff"))
    return [folder / "idx"]


def _with_test(text, test_text):
    def make(folder):
        (folder / "a.csv").write_text(text)
        (folder / "b.csv").write_text(test_text)
        return [folder / "a.csv", "--test-data", folder / "b.csv"]
    return make


BROKEN = {
    "empty table": (_write("e.csv", ""), ["e.csv", "empty"]),
    "header only": (_write("h.csv", "a,b,label\n"), ["h.csv", "no rows"]),
    "one class": (_write("o.csv", "a,label\n1,x\n2,x\n3,x\n"), ["o.csv", "one class only"]),
    "no such label": (_write("n.csv", "a,b\n1,2\n"), ["n.csv", "no label column 'kind'"]),
    "ragged": (_write("r.csv", "a,label\n1,x\n2,y,3\n"), ["r.csv", "ragged rows: line 3"]),
    "text feature": (_write("t.csv", "a,label\n1,x\nred,y\n"), ["t.csv", "column 'a'", "row 2"]),
    "missing value": (_write("m.csv", "a,b,label\n1,,x\n2,3,y\n"), ["m.csv", "missing value"]),
    "fractional labels": (_write("f.csv", "a,label\n1,0.5\n2,1\n"), ["f.csv", "not a class"]),
    "unseen test class": (_with_test("a,label\n1,x\n2,y\n3,x\n4,y\n", "a,label\n1,z\n"),
                          ["b.csv", "class 'z'"]),
    "test feature count": (_with_test("a,label\n1,x\n2,y\n3,x\n4,y\n", "a,b,label\n1,2,x\n"),
                           ["b.csv", "column 'b' is not a feature"]),
    "unknown file": (_write("d.txt", "1,2\n"), ["d.txt", "not a data file"]),
    "npz 10 GB claim": (_claiming, ["huge.npz", "x_train"]),
    "npz pickled": (_npz("p.npz", x_train=np.array([None, 1], dtype=object), y_train=[0, 1]),
                    ["p.npz", "x_train"]),
    "npz without labels": (_npz("l.npz", x_train=np.zeros((2, 3))), ["l.npz", "no y_train"]),
    "idx empty beside huge": (_idx_folder, ["t10k-images", "no data (a 0 dimension)"]),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_every_broken_input_is_one_line_and_leaves_no_run_folder(tmp_path, case):
    make, words = BROKEN[case]
    data = make(tmp_path)
    extra = ["--label", "kind"] if case == "no such label" else []
    result = invoke("train", "--data", *data, *extra, *QUICK, "--runs-dir", tmp_path / "runs")
    assert_one_line_error(result, *words)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("options, words", [
    (["--distort", "affine"], ["--distort affine needs images", "--image-shape"]),
    (["--raw-pixels"], ["--raw-pixels", "features"]),
    (["--test-fraction", "0.3", "--test-data", "t.csv"], ["--test-fraction 0.3"]),
])
def test_options_that_do_not_fit_a_table_are_one_line(tmp_path, options, words):
    flowers(10).to_csv(tmp_path / "t.csv", index=False)
    result = invoke("train", "--data", tmp_path / "t.csv", *options, *QUICK)
    assert_one_line_error(result, *words)
    assert not (tmp_path / "runs").exists()


def test_test_fraction_for_idx_data_is_one_line(tmp_path):
    assert_one_line_error(invoke("train", "--test-fraction", "0.2", *QUICK), "--test-fraction",
                          "test set of its own")
    assert not (tmp_path / "runs").exists()
