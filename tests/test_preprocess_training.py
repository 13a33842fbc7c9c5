"""Training with ``--preprocess`` (jitnet.Preprocessing): the run trains a plain network on
preprocessed images and every model it saves takes raw ones; its checkpoint's network too
(``Network.load``, ``load_model``, ``evaluate``); a stopped run resumes bitwise; the pictures
judge the model as it is saved; the one-line refusals of specs and data that do not fit."""

import json
import re

import numpy as np
import pytest

import helpers
from helpers import (
    CtrlCAt, assert_one_line_error, assert_user_error, invoke, model_arrays, same_arrays,
    same_network, train_once,
)
from jitnet import Network, Preprocessing
from jitnet.cli import pictures
from jitnet.data.datasets import Dataset
from jitnet.training import (
    TrainConfig, TrainingError, TrainingInterrupted, load_model, prepare_data, resume_training,
    run_training,
)

pytestmark = pytest.mark.usefixtures("no_pictures")
REAL_FINAL = pictures.RunPictures.final  # read before the module's runs turn pictures off

QUICK = ["--train-limit", "2000", "--test-limit", "500", "--validation", "500", "--hidden", "16",
         "--epochs", "2", "--eval-every", "2", "--checkpoint-every", "1", "--quiet"]
# patience 100: the rule never stops these runs, whatever this CPU's rounding does to the errors
SMALL = dict(hidden=(8,), epochs=3, eval_every=1, validation=300, train_limit=1500,
             test_limit=400, checkpoint_every=1, patience=100)


@pytest.fixture(scope="module")
def deslanted(tmp_path_factory):
    """``train --preprocess Deslant`` on MNIST: one evaluation, after the last epoch, so that
    the best model is the last network (the checkpoint's)."""
    return train_once(tmp_path_factory.mktemp("deslant"), "d", *QUICK, "--preprocess", "Deslant")


def wrong_of(result):
    """(wrong, total) from ``evaluate``'s output."""
    assert result.exit_code == 0, (result.output, result.exception)
    match = re.search(r"\(([\d,]+) of ([\d,]+) wrong\)", result.stdout)
    return tuple(int(n.replace(",", "")) for n in match.groups())


def test_the_model_carries_the_preprocessing_and_takes_raw_images(deslanted, mnist):
    config = json.loads((deslanted.run / "config.json").read_text())
    assert config["preprocess"] == "deslant"  # as the spec reads, in its own spelling
    with np.load(deslanted.model) as f:
        assert int(f["format_version"]) == 5 and str(f["preprocessing"]) == "deslant"
    net = Network.load(deslanted.run)
    assert net.preprocessing == Preprocessing(True, None, (28, 28))
    report = json.loads((deslanted.run / "report.json").read_text())
    test = mnist[1][:500]
    assert report["test_error"] == net.evaluate(test.images, test.labels)
    # the network inside takes the preprocessed images: raw ones would be judged otherwise
    plain = net.copy()
    plain.preprocessing = None
    done = net.preprocessing.apply(test.images)
    assert plain.evaluate(done, test.labels) == report["test_error"]
    assert not np.array_equal(plain.predict(test.images), net.predict(test.images))


def test_the_checkpoints_network_takes_raw_images_too(deslanted, mnist):
    model = Network.load(deslanted.model)
    for net in (Network.load(deslanted.checkpoint), load_model(deslanted.checkpoint)[0]):
        assert net.preprocessing == model.preprocessing
        assert same_network(net, model)  # the best epoch is the last
        assert np.array_equal(net.predict(mnist[1].images[:200]),
                              model.predict(mnist[1].images[:200]))
    # evaluate: the run's model and its checkpoint give the same count on the whole test set
    wrong, total = wrong_of(invoke("evaluate", deslanted.run))
    assert (wrong, total) == wrong_of(invoke("evaluate", deslanted.checkpoint))
    assert total == 10000
    assert wrong == int((model.classify(mnist[1].images) != mnist[1].labels).sum())


def test_a_stopped_run_resumes_bitwise(mnist, tmp_path):
    changes = dict(SMALL, preprocess="deslant+width:16", epochs=4)
    straight = helpers.run_small(changes, mnist, tmp_path / "a")
    with pytest.raises(TrainingInterrupted):
        helpers.run_small(changes, mnist, tmp_path / "b", reporter=CtrlCAt(3))
    resumed = resume_training(tmp_path / "b", data=mnist)
    helpers.assert_same_state(straight.state, resumed.state)
    assert straight.test_error == resumed.test_error
    assert same_arrays(model_arrays(tmp_path / "a" / "model.npz"),
                       model_arrays(tmp_path / "b" / "model.npz"))
    assert Network.load(tmp_path / "b").preprocessing == Preprocessing(True, 16, (28, 28))
    # the run trained on other images than a plain one
    plain = helpers.run_small(dict(SMALL, epochs=1), mnist, tmp_path / "c")
    first = helpers.run_small(dict(changes, epochs=1), mnist, tmp_path / "d")
    assert not same_network(plain.state.net, first.state.net)


def shaped_sets(shape, seed=0, n_train=80, n_test=30):
    """Images of ``shape`` in 3 classes (each brighter than the last), as tiny_sets."""
    rng = np.random.default_rng(seed)

    def make(n, name):
        labels = rng.integers(0, 3, n)
        images = rng.integers(0, 60, (n, shape[0] * shape[1])) + 60 * labels[:, None]
        return Dataset(images.astype(np.uint8), labels, shape, 3, name)

    return make(n_train, "train"), make(n_test, "test")


@pytest.mark.parametrize("shape", [(3, 5), (4, 9), (6, 6)])
def test_a_checkpoint_of_images_of_any_shape(tmp_path, shape):
    train, test = shaped_sets(shape)
    config = TrainConfig(hidden=(4,), epochs=2, eval_every=2, validation=20, checkpoint_every=1,
                         patience=100, preprocess="deslant+width:3")
    run_training(config, tmp_path, splits=prepare_data(config, train, test))
    model = Network.load(tmp_path)
    assert model.preprocessing == Preprocessing(True, 3, shape)
    for net in (Network.load(tmp_path / "checkpoint.npz"),
                load_model(tmp_path / "checkpoint.npz")[0]):
        assert net.preprocessing == model.preprocessing
        assert np.array_equal(net.predict(test.images), model.predict(test.images))


def test_evaluate_a_checkpoint_of_an_npz_of_wide_images(tmp_path):
    train, test = shaped_sets((4, 9), n_train=120, n_test=40)
    np.savez(tmp_path / "wide.npz", x_train=train.images.reshape(-1, 4, 9),
             y_train=train.labels, x_test=test.images.reshape(-1, 4, 9), y_test=test.labels)
    run = train_once(tmp_path, "w", "--data", tmp_path / "wide.npz", "--hidden", "4",
                     "--epochs", "2", "--eval-every", "2", "--validation", "20",
                     "--checkpoint-every", "1", "--quiet", "--preprocess", "width:5")
    for net in (Network.load(run.checkpoint), load_model(run.checkpoint)[0]):
        assert net.preprocessing == Preprocessing(False, 5, (4, 9))
    assert wrong_of(invoke("evaluate", run.run)) == wrong_of(invoke("evaluate", run.checkpoint))


def test_the_final_pictures_judge_the_saved_model(tmp_path, monkeypatch):
    """The confusion matrix and the mistakes are those of the model the run saved, on the raw
    test images (not of the plain network inside on raw images)."""
    seen = {}

    def draw_test_pictures(net, dataset, scale, *args, **kwargs):
        seen["error"] = net.evaluate(dataset.images, dataset.labels, scale)

    monkeypatch.setattr(pictures.RunPictures, "final", REAL_FINAL)  # the module turned it off
    monkeypatch.setattr(pictures, "draw_test_pictures", draw_test_pictures)
    run = train_once(tmp_path, "p", *QUICK, "--epochs", "1", "--eval-every", "1",
                     "--preprocess", "width:18")
    report = json.loads((run.run / "report.json").read_text())
    assert seen["error"] == report["test_error"]


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("spec, words", [
    ("bogus", ["--preprocess", "'bogus'", "deslant+width:W"]),
    ("width:0", ["--preprocess", "'width:0'"]),
    ("width:16+deslant", ["--preprocess"]),
    ("", ["--preprocess"]),
])
def test_a_bad_spec_is_one_line(in_tmp_path, spec, words):
    assert_user_error(invoke("train", "--preprocess", spec, *QUICK), *words)
    assert not (in_tmp_path / "runs").exists()


@pytest.mark.parametrize("value, words", [
    ("width:0", "'preprocess' is \"width:0\", not none, deslant"),
    ("deslant+", "'preprocess'"),
    (None, "'preprocess' is null, not a text"),
    (16, "'preprocess' is 16"),
])
def test_a_config_file_with_a_bad_spec_is_refused(value, words):
    with pytest.raises(TrainingError, match=re.escape(words)) as error:
        TrainConfig.from_dict({"preprocess": value})
    assert "\n" not in str(error.value)
    assert TrainConfig.from_dict({"preprocess": "Deslant+Width:8"}).preprocess == \
        "deslant+width:8"
    assert TrainConfig.from_dict({}).preprocess == "none"


def pixel_table(path, n=120, side=4):
    """A CSV of ``side`` x ``side`` images (a vertical or horizontal bar) as columns p0, p1, ..."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(1)
    x = rng.integers(0, 40, (n, side, side)).astype(np.uint8)
    labels = rng.integers(0, 2, n)
    for image, label, at in zip(x, labels, rng.integers(0, side, n)):
        if label:
            image[:, at] = 255
        else:
            image[at, :] = 255
    frame = pd.DataFrame(x.reshape(n, -1), columns=[f"p{k}" for k in range(side * side)])
    frame["label"] = np.array(["flat", "vertical"])[labels]
    frame.to_csv(path, index=False)
    return path


def test_a_table_needs_its_image_shape(in_tmp_path):
    table = pixel_table(in_tmp_path / "pixels.csv")
    options = ["--data", table, "--hidden", "4", "--epochs", "1", "--quiet"]
    assert_one_line_error(invoke("train", *options, "--preprocess", "deslant"),
                          "--preprocess deslant needs images", "--image-shape")
    assert_one_line_error(invoke("train", *options, "--preprocess", "deslant", "--image-shape",
                                 "4x4", "--standardize"),
                          "--preprocess deslant cannot be combined with --standardize")
    assert not (in_tmp_path / "runs").exists()
    result = invoke("train", *options, "--preprocess", "deslant", "--image-shape", "4x4",
                    "--name", "t")
    assert result.exit_code == 0, result.output
    net = Network.load(in_tmp_path / "runs" / "t")
    assert net.preprocessing == Preprocessing(True, None, (4, 4))
    assert Network.load(in_tmp_path / "runs" / "t" / "checkpoint.npz").preprocessing == \
        net.preprocessing
