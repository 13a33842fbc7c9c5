"""A saved model carries everything needed to use it, and a damaged checkpoint given to
``--resume`` (or to ``evaluate``, or to ``Network.load``) is one line naming it, exit code 2.

- The input scale travels with the model: a raw-pixel run's model file, run folder and
  checkpoint all load with ``input_scale`` 1.0 (the default tutorial run's with None), and
  ``Network.load``, ``evaluate`` and ``predict`` give the same answers as the run measured.
- ``Network.load`` reads what ``evaluate`` reads: model files, run folders (the best network)
  and checkpoints (the current network).
- Checkpoints: deeply nested JSON, integers beyond float range, corrupt generator states,
  infinite or huge sizes, NUL in stored paths, oversized or pickled members: CheckpointError
  from the reader and exit code 2 from the command line; ModelFileError from Network.load when
  the damage is in what it reads (the archive, the network, the description it takes the input
  scale from), else the checkpoint's network; and a Hypothesis property over nasty JSON values.
"""

import json
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import (
    assert_user_error, bomb_zip, invoke, npy_bytes, npy_header, tiny_sets, write_mnist_files,
    write_zip,
)
from jitnet.engine.network import ModelFileError, Network
from jitnet.training import (
    CheckpointError, TrainConfig, load_checkpoint, load_model, prepare_data, run_training,
)
from jitnet.training.checkpoint import META_KEY

TINY = tiny_sets()  # 60 training and 20 test images of 4x4 raw pixels in 3 classes


def train(folder, raw_pixels):
    config = TrainConfig(hidden=(5,), epochs=3, eval_every=1, validation=12, patience=100,
                         checkpoint_every=1, raw_pixels=raw_pixels, rate=0.3 / 255 ** raw_pixels)
    return run_training(config, folder, splits=prepare_data(config, *TINY))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {raw: train(root / ("raw" if raw else "scaled"), raw) for raw in (True, False)}


def assert_one_line(message, path):
    assert "\n" not in message and message.count(str(path)) == 1, message
    assert "allow_pickle" not in message


# -- the input scale travels with the model ---------------------------------------------------


@pytest.mark.parametrize("raw", [True, False], ids=["raw-pixels", "default"])
def test_every_saved_form_of_a_run_loads_with_its_input_scale(runs, raw):
    result, scale = runs[raw], (1.0 if raw else None)
    test = TINY[1]
    state = load_checkpoint(result.run_dir / "checkpoint.npz")
    best = Network.load(result.model_path)
    assert best.input_scale == scale
    assert Network.load(result.run_dir).params.tobytes() == best.params.tobytes()  # run folder
    current = Network.load(result.run_dir / "checkpoint.npz")  # a checkpoint: its current net
    assert current.input_scale == scale and state.net.input_scale == scale
    assert current.params.tobytes() == state.net.params.tobytes()
    assert best.params.tobytes() == state.best.params.tobytes()
    for net in (best, current, load_model(result.run_dir)[0]):
        assert net.evaluate(test.images, test.labels) == net.evaluate(
            test.images, test.labels, scale=1.0 if raw else 1 / 255)
    assert best.evaluate(test.images, test.labels) == result.test_error  # what the run measured


def test_a_raw_pixel_model_used_at_the_default_scale_would_be_wrong(runs):
    """Why the scale must travel: at 1/255 the raw-pixel model's answers change."""
    net, test = Network.load(runs[True].model_path), TINY[1]
    assert not np.allclose(net.predict(test.images), net.predict(test.images, scale=1 / 255))


def test_evaluate_and_predict_use_the_scale_the_model_was_trained_with(runs, tmp_path):
    data = write_mnist_files(tmp_path / "data", *TINY)
    test = TINY[1]
    for raw, result in runs.items():
        for model in (result.run_dir, result.model_path, result.run_dir / "checkpoint.npz"):
            out = invoke("evaluate", model, "--data", data, "--json")
            assert out.exit_code == 0, out.output
            net = Network.load(model)
            assert json.loads(out.stdout)["error_rate"] == net.evaluate(test.images, test.labels)
        out = invoke("predict", result.model_path, "--index", "3", "--data", data, "--json")
        outputs = json.loads(out.stdout)["predictions"][0]["outputs"]
        net = Network.load(result.model_path)
        np.testing.assert_allclose(outputs, net.predict(test.images[3]), rtol=1e-12)


# -- damaged checkpoints ----------------------------------------------------------------------


def arrays_of(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def meta_text(arrays):
    return arrays[META_KEY].tobytes().decode()


def with_text(arrays, text):
    return {**arrays, META_KEY: np.frombuffer(text.encode(), np.uint8)}


def replace(old, new):
    def damage(arrays):
        text = meta_text(arrays)
        assert old in text, old
        return with_text(arrays, text.replace(old, new, 1))

    return damage


def set_field(path, value):
    def damage(arrays):
        meta = json.loads(meta_text(arrays))
        *parents, last = path
        target = meta
        for key in parents:
            target = target[key]
        target[last] = value
        return with_text(arrays, json.dumps(meta))

    return damage


def set_array(name, value):
    return lambda arrays: {**arrays, name: value}


DEEP = "[" * 5000 + "]" * 5000
MT_STATE = np.random.Generator(np.random.MT19937(0)).bit_generator.state
MT_STATE["state"]["key"] = MT_STATE["state"]["key"].tolist()
CHECKPOINT_DAMAGE = {
    # deeply nested JSON, at the top and inside fields
    "nested-top": (lambda a: with_text(a, DEEP), "not valid JSON"),
    "nested-hidden": (replace('"hidden": [5]', f'"hidden": {DEEP}'), "not valid JSON"),
    "nested-rng": (set_field(["rng_state"], json.loads("[" * 500 + "]" * 500)), "'rng_state'"),
    "nested-record": (set_field(["records", 0, "loss"], [[[[[[1]]]]]]), "'records[0].loss'"),
    # integers beyond float range
    "int-rate": (replace('"rate": 0.3', '"rate": 1' + "0" * 400), "'rate' is 1000"),
    "int-train-seconds": (set_field(["train_seconds"], -(10**400)), "'train_seconds'"),
    "int-loss": (set_field(["records", 0, "loss"], 10**400), "'records[0].loss'"),
    "int-best-error": (set_field(["best_error"], 10**400), "'best_error'"),
    "int-epoch": (set_field(["epoch"], 10**400), "beyond its --epochs"),
    "int-inputs": (set_field(["data", "n_inputs"], 10**400), "network"),
    "int-digits": (replace('"epoch": 3', '"epoch": 1' + "0" * 5000), "not valid JSON"),
    # corrupt random-generator states
    "rng-mt19937": (set_field(["rng_state"], MT_STATE), "'rng_state'"),
    "rng-state-text": (set_field(["rng_state", "state", "state"], "x"), "'rng_state'"),
    "rng-inc-huge": (set_field(["rng_state", "state", "inc"], 2**200), "'rng_state'"),
    "rng-has-uint32-huge": (set_field(["rng_state", "has_uint32"], 10**400), "'rng_state'"),
    "rng-uinteger-negative": (set_field(["rng_state", "uinteger"], -5), "'rng_state'"),
    "rng-missing-inc": (set_field(["rng_state", "state"], {"state": 1}), "'rng_state'"),
    "rng-null": (set_field(["rng_state"], None), "'rng_state'"),
    # infinite or huge sizes
    "hidden-inf": (replace('"hidden": [5]', '"hidden": [1e999]'), "'hidden'"),
    "hidden-huge": (set_field(["config", "hidden"], [10**14]), "not a 16-100000000000000-3"),
    "hidden-2-62": (set_field(["config", "hidden"], [2**62, 2**62]), "network"),
    "net-sizes-huge": (set_array("net/sizes", np.array([16, 10**15, 3])), "not a 16-5-3"),
    "net-W0-claims-terabytes": (set_array("net/W0", npy_header("<f8", (10**12, 16))),
                                "array 'net/W0'"),
    # NUL in a stored path
    "nul-data": (set_field(["config", "data"], "/mnist\x00/x"), "NUL"),
    "nul-output": (set_field(["config", "output"], "model\x00.npz"), "NUL"),
    "nul-report": (set_field(["config", "report"], "\x00"), "NUL"),
    # members that must never be read: pickles, and an input scale against the configuration
    "pickled-best": (set_array("best/W1", np.array([None, {}], dtype=object)), "pickled"),
    "pickled-meta": (set_array(META_KEY, np.array([None], dtype=object)), "pickled"),
    "scale-disagrees": (lambda a: {**a, "net/format_version": np.array(3),
                                   "net/input_scale": np.array(0.5)}, "input scale 0.5"),
}


@pytest.fixture(scope="module")
def good_checkpoint(runs):
    return runs[False].run_dir / "checkpoint.npz"


#: The damage that Network.load refuses too. It reads a checkpoint's network and input scale
#: only (the engine knows nothing of training states): other damage is the strict reader's.
LOAD_REFUSES = {"nested-top", "nested-hidden", "int-digits", "net-sizes-huge",
                "net-W0-claims-terabytes", "pickled-best", "pickled-meta", "scale-disagrees"}


@pytest.mark.parametrize("name", CHECKPOINT_DAMAGE)
def test_a_damaged_checkpoint_is_one_line_everywhere(good_checkpoint, tmp_path, name):
    damage, words = CHECKPOINT_DAMAGE[name]
    path = tmp_path / "checkpoint.npz"
    write_zip(path, damage(arrays_of(good_checkpoint)))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert_one_line(str(err.value), path)
    assert words in str(err.value), str(err.value)
    with pytest.raises(CheckpointError):
        load_model(path)
    if name in LOAD_REFUSES:
        with pytest.raises(ModelFileError) as err2:
            Network.load(path)
        assert_one_line(str(err2.value), path)
    else:  # the network and the scale it was trained with, as the intact checkpoint has them
        net, intact = Network.load(path), load_checkpoint(good_checkpoint).net
        assert net.params.tobytes() == intact.params.tobytes()
        assert (net.input_scale, net.activation) == (intact.input_scale, intact.activation)


@pytest.mark.parametrize("name", ["nested-hidden", "int-rate", "rng-mt19937", "hidden-huge",
                                  "nul-data", "pickled-best", "net-W0-claims-terabytes"])
def test_resume_and_evaluate_exit_with_2(good_checkpoint, tmp_path, name):
    damage, words = CHECKPOINT_DAMAGE[name]
    path = tmp_path / "checkpoint.npz"
    write_zip(path, damage(arrays_of(good_checkpoint)))
    for command in (["train", "--resume"], ["evaluate"]):
        result = invoke(*command, path)
        assert_user_error(result, str(path))
        assert words in result.stderr


def test_a_description_too_large_to_read_is_refused_before_it_is_inflated(good_checkpoint,
                                                                          tmp_path):
    arrays = arrays_of(good_checkpoint)
    del arrays[META_KEY]
    path = bomb_zip(tmp_path / "checkpoint.npz", arrays, META_KEY + ".npy",
                    npy_header("|u1", (100 << 20,)), 100 << 20)
    with pytest.raises(CheckpointError, match="100 MiB|104,857,600 bytes, more than the") as err:
        load_checkpoint(path)
    assert_one_line(str(err.value), path)


def test_a_checkpoint_path_with_a_newline_stays_one_line(good_checkpoint, tmp_path):
    path = tmp_path / "bad\nname.npz"
    path.write_bytes(b"junk")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert "\n" not in str(err.value) and "bad\\nname.npz" in str(err.value)
    shutil.copy(good_checkpoint, path)
    assert load_checkpoint(path).epoch == 3


# -- by Hypothesis: nasty JSON values anywhere in the description ------------------------------

NASTY = st.sampled_from([
    10**400, -(10**400), 2**64, -1, 0, 1e308, -0.0, True, None, "", "\x00", "x" * 1000,
    [], {}, [[[[[[[[1]]]]]]]], {"": {"": {"": 1}}}, [0] * 10_000, "PCG64", "float64",
    {"bit_generator": "PCG64", "state": {"state": 1, "inc": 1}, "has_uint32": 0, "uinteger": 0},
]) | st.sampled_from(["<inf>", "<nan>", "<deep>"])


def _leaves(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _leaves(child, prefix + (key,))
    elif isinstance(value, list) and len(value) < 50:
        for index, child in enumerate(value):
            yield from _leaves(child, prefix + (index,))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), value=NASTY)
def test_property_nasty_json_is_the_documented_error_or_a_consistent_state(
        good_checkpoint, tmp_path_factory, data, value):
    arrays = arrays_of(good_checkpoint)
    meta = json.loads(meta_text(arrays))
    where = data.draw(st.sampled_from([path for path in _leaves(meta) if path]))
    target = meta
    for key in where[:-1]:
        target = target[key]
    marker = "@@nasty@@"
    target[where[-1]] = marker
    literal = {"<inf>": "Infinity", "<nan>": "NaN", "<deep>": DEEP}.get(value) if isinstance(
        value, str) else None
    text = json.dumps(meta).replace(json.dumps(marker), literal or json.dumps(value))
    path = tmp_path_factory.mktemp("c") / "checkpoint.npz"
    write_zip(path, with_text(arrays, text))
    try:
        state = load_checkpoint(path)
    except CheckpointError as err:
        assert_one_line(str(err), path)
        try:
            net = Network.load(path)
        except ModelFileError as err2:
            assert_one_line(str(err2), path)
            return
        # Network.load reads only the network and its scale: those are the intact ones
        intact = load_checkpoint(good_checkpoint).net
        assert net.params.tobytes() == intact.params.tobytes()
        assert net.input_scale == intact.input_scale
        return
    # Accepted: a state whose networks fit its configuration, and Network.load agrees.
    assert state.net.sizes == [state.data["n_inputs"], *state.config.hidden,
                               state.data["n_classes"]]
    assert state.epoch <= state.config.epochs and len(state.records) == state.epoch
    net = Network.load(path)
    assert net.params.tobytes() == state.net.params.tobytes()
    assert net.input_scale == state.config.input_scale


# -- predict's .npy digits: read like the archives' members -----------------------------------


@pytest.mark.parametrize("content, words", [
    (b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00]\x94.", "no NUMPY magic"),  # a pickle
    (npy_header("<f8", (10**12,)), "must have shape (28, 28) or (784,), got (1000000000000,)"),
    (npy_bytes(np.array([None] * 784, dtype=object)), "pickled Python objects are never loaded"),
    (npy_bytes(np.zeros((28, 28)))[:300], "could only read"),
])
def test_predict_refuses_a_bad_npy_digit_in_one_line(tmp_path, content, words):
    model = tmp_path / "m.npz"
    Network([784, 4, 10], seed=0).save(model)
    digit = tmp_path / "digit.npy"
    digit.write_bytes(content)
    result = invoke("predict", model, digit)
    assert_user_error(result, str(digit))
    assert words in result.stderr and "allow_pickle" not in result.stderr


@pytest.mark.parametrize("argument", ["rate", "epochs", "momentum"])
def test_an_integer_beyond_float_range_is_a_value_error_naming_the_argument(argument):
    net = Network([4, 3, 2], seed=0)
    before = net.params.copy()
    with pytest.raises(ValueError, match=f"^{argument} must be"):
        net.train(np.zeros((2, 4)), np.array([0, 1]), **{argument: 10**400})
    assert np.array_equal(net.params, before)
