"""A checkpoint's networks must agree with its configuration in everything the configuration
names -- sizes, dtype, activation, loss, initial weights and input scale -- for the current and
the best network alike; otherwise ``--resume`` (and the strict reader) refuse it in one line
instead of training a network other than the one its config.json describes."""

import shutil

import numpy as np
import pytest

from jitnet.data.datasets import Dataset
from jitnet.training import (
    CheckpointError, TrainConfig, load_checkpoint, prepare_data, resume_training, run_training,
)


def tiny_data(seed=0):
    """40 training and 12 test images of 4x4 pixels in 3 classes: a run takes milliseconds."""
    rng = np.random.default_rng(seed)
    make = lambda n, name: Dataset(rng.integers(0, 256, (n, 16), dtype=np.uint8),  # noqa: E731
                                   rng.integers(0, 3, n), (4, 4), 3, name)
    return make(40, "train"), make(12, "test")


TINY = tiny_data()
CONFIG = TrainConfig(hidden=(5,), epochs=2, eval_every=1, validation=10, patience=100,
                     checkpoint_every=1)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A two-epoch run of a sigmoid network with squared error: its checkpoint has a best
    network, and resuming it to 3 epochs works."""
    run = tmp_path_factory.mktemp("tiny") / "run"
    run_training(CONFIG, run, splits=prepare_data(CONFIG, *TINY))
    return run


def recipe(prefix, **entries):
    """Replace a network's recipe entries in the checkpoint's arrays (still a valid network)."""
    def change(arrays):
        for key, value in entries.items():
            arrays[prefix + key] = np.array(value)
        return arrays
    return change


def in_float32(prefix):
    def change(arrays):
        arrays[prefix + "dtype"] = np.array("float32")
        for key in [k for k in arrays if k.startswith(prefix) and k[len(prefix)] in "Wb"]:
            arrays[key] = arrays[key].astype(np.float32)
        return arrays
    return change


CONTRADICTIONS = {  # each network is valid alone; its configuration says sigmoid, squared, ...
    "net-relu": (recipe("net/", activation="relu", output_activation="sigmoid"),
                 "its network is relu (activation), its configuration says sigmoid"),
    "best-relu": (recipe("best/", activation="relu", output_activation="sigmoid"),
                  "its best network is relu (activation), its configuration says sigmoid"),
    "net-tanh": (recipe("net/", activation="tanh", output_activation="tanh"),
                 "its network is tanh (activation)"),
    "net-cross-entropy": (recipe("net/", loss="cross_entropy", output_activation="softmax"),
                          "its network is cross_entropy (loss), its configuration says squared"),
    "best-cross-entropy": (recipe("best/", loss="cross_entropy", output_activation="softmax"),
                           "its best network is cross_entropy (loss)"),
    "net-glorot": (recipe("net/", init="glorot"),
                   "its network is glorot (init), its configuration says tutorial"),
    "best-uniform": (recipe("best/", init="uniform:0.05"), "its best network is uniform:0.05"),
    "net-float32": (in_float32("net/"), "its network is float32 (dtype)"),
    "best-float32": (in_float32("best/"), "its best network is float32 (dtype)"),
    "net-scale": (recipe("net/", format_version=3, input_scale=1.0),
                  "its network's input scale 1 is not its configuration's (1/255)"),
    "best-scale": (recipe("best/", format_version=3, input_scale=0.5),
                   "input scale 0.5 is not its configuration's (1/255)"),
    "best-sizes": (recipe("best/", sizes=[16, 6, 3]), "its best network is not a 16-5-3 network"),
}


@pytest.mark.parametrize("name", CONTRADICTIONS)
def test_a_network_that_contradicts_its_configuration_is_not_resumed(tiny_run, tmp_path, name):
    change, words = CONTRADICTIONS[name]
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    path = run / "checkpoint.npz"
    with np.load(path) as f:
        arrays = change({k: f[k] for k in f.files})
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    before = path.read_bytes()
    with pytest.raises(CheckpointError) as err:
        resume_training(run, {"epochs": 3}, data=TINY)
    message = str(err.value)
    assert message.startswith(f"checkpoint {path} is corrupt: ") and "\n" not in message
    assert words in message, message
    assert path.read_bytes() == before  # nothing trained, nothing written
    with pytest.raises(CheckpointError, match=words.replace("(", r"\(").replace(")", r"\)")):
        load_checkpoint(path)


def test_the_untouched_checkpoint_resumes(tiny_run, tmp_path):
    """Guards the table above: the copy before any change is accepted and trains on."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    state = load_checkpoint(run / "checkpoint.npz")
    assert (state.net.activation, state.best.loss, state.best.init) == ("sigmoid", "squared",
                                                                        "tutorial")
    resume_training(run, {"epochs": 3}, data=TINY)
    assert load_checkpoint(run / "checkpoint.npz").epoch == 3
