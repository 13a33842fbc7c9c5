"""Checkpoint and model files: atomic writes, the strict reader, and damaged files (by hand and by
Hypothesis): the property is "a one-line CheckpointError naming the file, or a correct resume"."""

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from helpers import tiny_sets
from jitnet.engine.network import Network
from jitnet.training import (
    CheckpointError, TrainConfig, load_checkpoint, load_model, prepare_data, resume_training,
    run_training, save_checkpoint, save_model,
)
from jitnet.training.checkpoint import META_KEY


TINY = tiny_sets(n_train=40, n_test=12)  # 4x4 pixels in 3 classes: a run takes milliseconds
TINY_CONFIG = TrainConfig(hidden=(5,), epochs=2, eval_every=1, validation=10, patience=100,
                          checkpoint_every=1)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished two-epoch run on the tiny data (a checkpoint with a best network)."""
    run = tmp_path_factory.mktemp("tiny") / "run"
    run_training(TINY_CONFIG, run, splits=prepare_data(TINY_CONFIG, *TINY))
    return run


@pytest.fixture
def checkpoint(tiny_run, tmp_path):
    """A copy of the tiny run's folder; its checkpoint path."""
    shutil.copytree(tiny_run, tmp_path / "run")
    return tmp_path / "run" / "checkpoint.npz"


def read_arrays(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def meta_of(arrays):
    return json.loads(arrays[META_KEY].tobytes())


def with_meta(arrays, meta_bytes):
    return {**arrays, META_KEY: np.frombuffer(meta_bytes, np.uint8)}


def write_arrays(path, arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def assert_one_line_naming(err, path):
    message = str(err.value)
    assert "\n" not in message and str(path) in message, message


# -- atomic writes ---------------------------------------------------------------------------


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
                raise OSError(28, "No space left on device")

            def flush(self):
                f.flush()

            def fileno(self):
                return f.fileno()

            def __getattr__(self, name):  # read, seek, tell: what np.savez uses of a file
                return getattr(f, name)

        return HalfWriter()

    return fdopen


def _raise(*args, **kwargs):
    raise OSError(5, "Input/output error")


@pytest.mark.parametrize(
    "target, replacement",
    [("fdopen", _half_writing_fdopen(os.fdopen)), ("fsync", _raise), ("replace", _raise)],
)
def test_a_failed_write_names_the_file_and_keeps_the_previous_checkpoint(
        checkpoint, monkeypatch, target, replacement):
    before = load_checkpoint(checkpoint)
    files = sorted(os.listdir(checkpoint.parent))
    with monkeypatch.context() as m:
        m.setattr(os, target, replacement)
        with pytest.raises(OSError) as err:
            save_checkpoint(checkpoint, before.__class__(**{**before.__dict__, "epoch": 1,
                                                           "records": before.records[:1]}))
    assert err.value.filename == str(checkpoint)  # the file, not its temporary
    after = load_checkpoint(checkpoint)
    assert after.epoch == before.epoch and np.array_equal(after.net.params, before.net.params)
    assert sorted(os.listdir(checkpoint.parent)) == files  # no partial or temporary file left


# -- damaged checkpoints, by hand ------------------------------------------------------------


def _set(key, value):
    def mutate(arrays):
        meta = meta_of(arrays)
        target = meta
        *parents, last = key.split(".")
        for parent in parents:
            target = target[parent]
        target[last] = value
        return with_meta(arrays, json.dumps(meta).encode())

    return mutate


def _delete(key):
    def mutate(arrays):
        meta = meta_of(arrays)
        del meta[key]
        return with_meta(arrays, json.dumps(meta).encode())

    return mutate


def _replace_text(old, new):
    return lambda arrays: with_meta(arrays, arrays[META_KEY].tobytes().replace(old, new, 1))


def _array(key, value):
    def mutate(arrays):
        arrays = dict(arrays)
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
        return arrays

    return mutate


@pytest.mark.parametrize(
    "mutate, words",
    [
        (_array(META_KEY, None), "not a jitnet training checkpoint"),
        (_array(META_KEY, np.zeros(5, np.uint8)), "not valid JSON"),
        (_array(META_KEY, np.zeros(5, np.float64)), "not stored as bytes"),
        (lambda a: with_meta(a, b"[" * 100_000 + b"]" * 100_000), "not valid JSON"),  # recursion
        (lambda a: with_meta(a, b"[1, 2]"), "not a JSON object"),
        (_set("version", 99), "version 99"),
        (_set("format", "other"), "not a jitnet training checkpoint"),
        (_set("epoch", 7), "beyond its --epochs 2"),
        (_set("epoch", True), "'epoch' is true"),
        (_set("config", [1]), "JSON object"),
        (_set("config.hidden", "abc"), "'hidden'"),
        (_set("config.hidden", [10 ** 12]), "not a 16-1000000000000-3 network"),
        (_replace_text(b'"hidden": [5]', b'"hidden": [1e999]'), "'hidden' is \\[Infinity\\]"),
        (_replace_text(b'"rate": 0.3', b'"rate": ' + b"9" * 400), "'rate' is 9999.*, not a pos"),
        (_set("config.data", "/data\x00/mnist"), "'data' .*NUL"),
        (_set("config.nesterov", 0.9), "unknown option"),
        (_set("data", []), "'data'"),
        (_set("data.n_inputs", 10 ** 30), "not a 1000000000000000000000000000000-5-3 network"),
        (_set("best_error", "x"), "'best_error'"),
        (_set("best_error", 2.0), "'best_error' is 2.0, not a fraction"),
        (_set("best_epoch", None), "do not go together"),
        (_set("records", [{"epoch": 1, "loss": "x"}, {"epoch": 2, "loss": 0.1}]),
         "'records\\[0\\].loss' is \"x\", not a finite number"),
        (_set("records", [{"epoch": 1, "loss": 0.2, "val_error": 3}, {"epoch": 2, "loss": 0.1}]),
         "'records\\[0\\].val_error' is 3"),
        (_set("records", [{"epoch": 2, "loss": 0.2}, {"epoch": 2, "loss": 0.1}]), "numbered"),
        (_set("records", [1, 2]), "'records'"),
        (_set("records", []), "0 epoch records for epoch 2"),
        (_set("train_seconds", "1"), "'train_seconds'"),
        (_set("stop_reason", 5), "'stop_reason'"),
        (_set("rng_state", []), "'rng_state' .*PCG64"),
        (_set("rng_state.state.state", -1), "'rng_state' .*PCG64"),
        (_set("rng_state.bit_generator", "MT19937"), "'rng_state' .*PCG64"),
        (_delete("bad_evals"), "missing field 'bad_evals'"),
        (_array("net/W0", None), "network has no W0"),
        (_array("net/W0", np.zeros((3, 3))), "W0 of shape \\(5, 16\\)"),
        (_array("net/W0", np.full((5, 16), np.nan)), "finite"),
        (_array("net/sizes", np.array([16, 10 ** 12, 3])), "not a 16-5-3 network"),
        (_array("best/dtype", np.array("float32")), "best network is float32"),
    ],
)
def test_a_damaged_checkpoint_gives_one_line_naming_the_file(checkpoint, mutate, words):
    import re

    write_arrays(checkpoint, mutate(read_arrays(checkpoint)))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(checkpoint)
    assert_one_line_naming(err, checkpoint)
    assert re.search(words, str(err.value)), str(err.value)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated zip", b"plain junk"])
def test_a_checkpoint_that_is_not_an_npz(checkpoint, content):
    checkpoint.write_bytes(content or checkpoint.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not an .npz") as err:
        load_checkpoint(checkpoint)
    assert_one_line_naming(err, checkpoint)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.npz")


def test_load_model_reads_run_folders_models_plain_saves_and_checkpoints(checkpoint, tmp_path):
    net = Network([16, 4, 3], seed=1)
    net.save(tmp_path / "plain.npz")
    loaded, info = load_model(tmp_path / "plain.npz")
    assert info == {} and np.array_equal(loaded.params, net.params)
    from_folder, info = load_model(checkpoint.parent)
    best = load_checkpoint(checkpoint).best
    assert np.array_equal(from_folder.params, best.params)
    assert info["epoch"] == load_checkpoint(checkpoint).best_epoch
    from_checkpoint, info = load_model(checkpoint)
    assert info["checkpoint"] and from_checkpoint.sizes == [16, 5, 3]
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="junk.npz"):
        load_model(tmp_path / "junk.npz")


@pytest.mark.parametrize("info", [{"input_scale": "x"}, {"input_scale": 0}, [1]])
def test_load_model_refuses_a_bad_description(tmp_path, info):
    path = tmp_path / "m.npz"
    save_model(path, Network([16, 4, 3], seed=1), info)
    with pytest.raises(CheckpointError, match="m.npz: its training description"):
        load_model(path)


# -- damaged checkpoints, by Hypothesis ------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10 ** 400), 10 ** 400)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)


def _paths(meta, prefix=()):
    """Every key path in the checkpoint's JSON, to pick one to damage."""
    for key, value in meta.items():
        yield prefix + (key,)
        if isinstance(value, dict):
            yield from _paths(value, prefix + (key,))


def _damage_field(meta, path, value):
    target = meta
    for key in path[:-1]:
        target = target[key]
    if value == "<delete>":
        del target[path[-1]]
    else:
        target[path[-1]] = value


def assert_error_or_correct_resume(path, base_state):
    """The property: a one-line CheckpointError naming the file, or a resume that ends in a
    state the reader accepts, after the epochs the damaged file claims."""
    try:
        saved = load_checkpoint(path)
    except CheckpointError as err:
        message = str(err)
        assert "\n" not in message and str(path) in message, message
        return
    try:
        result = resume_training(path, {"epochs": max(3, saved.epoch)}, data=TINY)
    except CheckpointError as err:  # e.g. data sizes that are not those of the data
        assert "\n" not in str(err) and str(path) in str(err), str(err)
        return
    final = load_checkpoint(path)
    assert final.epoch == result.state.epoch >= saved.epoch
    assert final.stop_reason in ("epochs", "patience")
    assert final.net.sizes == base_state.net.sizes


def _fresh_copy(base):
    tmp = Path(tempfile.mkdtemp())
    shutil.copytree(base, tmp / "run")
    return tmp / "run" / "checkpoint.npz"


PROPERTY = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@PROPERTY
@given(data=st.data(), value=json_values | st.just("<delete>"))
def test_property_a_damaged_field(tiny_run, data, value):
    path = _fresh_copy(tiny_run)
    base = load_checkpoint(path)
    arrays = read_arrays(path)
    meta = meta_of(arrays)
    field_path = data.draw(st.sampled_from(sorted(_paths(meta))))
    _damage_field(meta, field_path, value)
    write_arrays(path, with_meta(arrays, json.dumps(meta).encode()))
    assert_error_or_correct_resume(path, base)
    shutil.rmtree(path.parent.parent)


@PROPERTY
@given(start=st.integers(0, 10 ** 6), length=st.integers(0, 40), junk=st.binary(max_size=40))
@example(start=0, length=0, junk=b"[" * 50_000)
def test_property_damaged_json_bytes(tiny_run, start, length, junk):
    path = _fresh_copy(tiny_run)
    base = load_checkpoint(path)
    arrays = read_arrays(path)
    text = arrays[META_KEY].tobytes()
    start %= len(text) + 1
    write_arrays(path, with_meta(arrays, text[:start] + junk + text[start + length:]))
    assert_error_or_correct_resume(path, base)
    shutil.rmtree(path.parent.parent)


@PROPERTY
@given(data=st.data(),
       shape=st.lists(st.integers(0, 20), max_size=3),
       dtype=st.sampled_from(["float64", "float32", "int64", "uint8", "bool", "<U3"]),
       delete=st.booleans())
def test_property_a_damaged_array(tiny_run, data, shape, dtype, delete):
    path = _fresh_copy(tiny_run)
    base = load_checkpoint(path)
    arrays = read_arrays(path)
    key = data.draw(st.sampled_from(sorted(k for k in arrays if k != META_KEY)))
    if delete:
        del arrays[key]
    else:
        arrays[key] = np.zeros(shape, dtype)
    write_arrays(path, arrays)
    assert_error_or_correct_resume(path, base)
    shutil.rmtree(path.parent.parent)


@PROPERTY
@given(cut=st.integers(0, 10 ** 7), flips=st.lists(st.tuples(st.integers(0, 10 ** 7),
                                                              st.integers(1, 255)), max_size=4))
def test_property_truncated_or_flipped_file(tiny_run, cut, flips):
    path = _fresh_copy(tiny_run)
    base = load_checkpoint(path)
    content = bytearray(path.read_bytes())
    for where, bits in flips:
        content[where % len(content)] ^= bits
    if cut % 3:  # a third of the examples keep the full length
        content = content[: cut % len(content)]
    path.write_bytes(bytes(content))
    assert_error_or_correct_resume(path, base)
    shutil.rmtree(path.parent.parent)


def test_an_array_header_claiming_terabytes(tmp_path):
    import io
    import zipfile

    from numpy.lib import format as npy_format

    header = io.BytesIO()
    npy_format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                               "shape": (10 ** 11,)})
    path = tmp_path / "checkpoint.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("meta.npy", header.getvalue() + bytes(64))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert_one_line_naming(err, path)
