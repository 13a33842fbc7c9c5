"""Model files (jitnet/model_file.py): what save writes, load reads back, and every damaged file
is one ModelFileError naming it (one line, said once) -- by hand for each class of damage that
used to escape as TypeError, OverflowError, MemoryError, zlib.error or NotImplementedError, and
by Hypothesis: a valid model file, damaged; the property is "the documented error or exactly
what the file holds"."""

import json
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from helpers import bomb_zip, npy_bytes, npy_header, write_zip
from jitnet.engine import model_file
from jitnet.engine.network import ModelFileError, Network
from jitnet.training import CheckpointError, load_model, save_model


def assert_one_error(err, path):
    """One line, naming the file once (never "file: file: problem"), no advice to unpickle."""
    message = str(err.value)
    assert "\n" not in message and message.count(str(path)) == 1, message
    assert "allow_pickle" not in message and "Traceback" not in message, message


def load_both(path):
    """Network.load and training.load_model (what evaluate and predict use) refuse ``path`` with
    the same problem; returns Network.load's error."""
    with pytest.raises(ModelFileError) as err:
        Network.load(path)
    assert_one_error(err, path)
    with pytest.raises(CheckpointError) as err2:
        load_model(path)
    assert_one_error(err2, path)
    assert str(err2.value).endswith(str(err.value)[len(str(path)) :])
    return str(err.value)


@pytest.fixture
def model():
    return Network([6, 4, 3], seed=0)


# -- round trips ------------------------------------------------------------------------------


def test_a_network_without_input_scale_is_written_as_version_2_as_before(model, tmp_path):
    arrays = model.to_arrays()
    assert int(arrays["format_version"]) == 2 and "input_scale" not in arrays
    model.save(tmp_path / "m.npz")
    loaded = Network.load(tmp_path / "m.npz")
    assert loaded.input_scale is None and loaded.params.tobytes() == model.params.tobytes()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("scale", [1.0, 1 / 255, 0.5])
def test_the_input_scale_is_saved_and_used(tmp_path, dtype, scale):
    net = Network([6, 4, 3], dtype=dtype, seed=0)
    net.input_scale = scale
    net.save(tmp_path / "m.npz")
    loaded = Network.load(tmp_path / "m.npz")
    assert loaded.input_scale == scale and repr(loaded).endswith(f"input_scale={scale!r})")
    assert int(loaded.to_arrays()["format_version"]) == 3
    X = np.random.default_rng(0).integers(0, 256, (5, 6)).astype(np.uint8)
    assert loaded.predict(X).tobytes() == net.predict(X, scale=scale).tobytes()
    assert loaded.classify(X).tolist() == net.classify(X, scale=scale).tolist()
    labels = np.arange(5) % 3
    assert loaded.evaluate(X, labels) == net.evaluate(X, labels, scale=scale)
    assert loaded.predict(X, scale=1 / 255).tobytes() == Network.load(tmp_path / "m.npz").predict(
        X, scale=1 / 255).tobytes()  # an explicit scale still wins
    for clone in (loaded.copy(), Network.from_arrays(loaded.to_arrays())):
        assert clone.input_scale == scale


def test_input_scale_is_checked(model):
    for bad in (0, -1.0, np.inf, np.nan, "1", 10**400, True):
        with pytest.raises(ValueError, match="input_scale"):
            model.input_scale = bad
    with pytest.raises(ValueError, match="input_scale .* in float32"):
        Network([2, 2], dtype="float32").input_scale = 1e39
    model.input_scale = None
    assert model.input_scale is None


def test_a_run_model_file_takes_its_scale_from_the_training_description(model, tmp_path):
    """Model files written by runs before version 3 carry the scale only in jitnet_train_info."""
    path = tmp_path / "raw.npz"
    save_model(path, model, {"input_scale": 1.0, "config": {"raw_pixels": True}})
    assert Network.load(path).input_scale == 1.0
    net, info = load_model(path)
    assert net.input_scale == 1.0 and info["input_scale"] == 1.0
    save_model(path, model, {"input_scale": None})
    assert Network.load(path).input_scale is None


# -- each class of damage ---------------------------------------------------------------------


def members_with(model, **changes):
    arrays = model.to_arrays()
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    return arrays


PICKLED = np.array([{"a": 1}, None], dtype=object)
DAMAGED_ENTRIES = {
    "dtype-text-0.0": ({"dtype": np.array("0.0")}, "dtype must be 'float64' or 'float32'"),
    "dtype-number": ({"dtype": np.array(0.0)}, "'dtype' is a float64 array"),
    "dtype-list": ({"dtype": np.array(["float64"])}, "'dtype' is a <U7 array of shape (1,)"),
    "dtype-bytes": ({"dtype": np.array(b"float64")}, "'dtype' is a |S7 array"),
    "dtype-pickle": ({"dtype": PICKLED}, "pickled Python objects are never loaded"),
    "activation-long": ({"activation": np.array("x" * 10_000)}, "'activation' is a <U10000"),
    "version-inf": ({"format_version": np.array(np.inf)}, "'format_version' is a float64"),
    "version-huge": ({"format_version": np.array(2**63 - 1)}, "version 9223372036854775807"),
    "version-negative": ({"format_version": np.array(-1)}, "format version -1"),
    "sizes-inf": ({"sizes": np.array([6, np.inf, 3])}, "'sizes' is a float64 array"),
    # sizes the stored layers do not back: refused before the network is allocated
    "sizes-huge": ({"sizes": np.array([6, 10**15, 3])}, "W must have shape (1000000000000000, 6)"),
    "sizes-padded": ({"sizes": np.array([2**24, 1])}, "W must have shape (1, 16777216), got (4, 6)"),
    "sizes-negative": ({"sizes": np.array([6, -4, 3])}, "positive integers, got 6--4-3"),
    "sizes-one-layer": ({"sizes": np.array([6])}, "not 2 to 1001 integers"),
    "sizes-2000-layers": ({"sizes": np.ones(2000, np.int64)}, "not 2 to 1001 integers"),
    "sizes-0-d": ({"sizes": np.array(6)}, "'sizes' is a int64 array of shape ()"),
    "W-shape": ({"W0": np.zeros((4, 5))}, "layer 0: W must have shape (4, 6), got (4, 5)"),
    "W-complex": ({"W0": np.zeros((4, 6), complex)}, "W0 holds complex128, not real numbers"),
    "W-bool": ({"W0": np.zeros((4, 6), bool)}, "W0 holds bool"),
    "W-text": ({"W0": np.full((4, 6), "x")}, "W0 holds <U1"),
    "W-pickle": ({"W0": PICKLED}, "pickled Python objects are never loaded"),
    "W-nan": ({"W0": np.full((4, 6), np.nan)}, "layer 0: weights must be finite in float64"),
    "b-missing": ({"b1": None}, "missing layer 1 parameters"),
    "format-missing": ({"format": None}, "not a jitnet model"),
    "format-other": ({"format": np.array("jitnet-checkpoint")}, "not a jitnet model"),
    "sizes-missing": ({"sizes": None}, "missing 'sizes'"),
    "scale-zero": ({"format_version": np.array(3), "input_scale": np.array(0.0)},
                   "input_scale must be a positive finite number"),
    "scale-inf": ({"format_version": np.array(3), "input_scale": np.array(np.inf)},
                  "input_scale must be a positive finite number"),
    "scale-text": ({"format_version": np.array(3), "input_scale": np.array("1")},
                   "'input_scale' is a <U1 array"),
    "info-deep": ({"jitnet_train_info": np.frombuffer(b"[" * 100_000, np.uint8)},
                  "training description (jitnet_train_info) is not valid JSON"),
    "info-utf8": ({"jitnet_train_info": np.frombuffer(b'{"a": "\xff"}', np.uint8)},
                  "is not valid JSON"),
    "info-list": ({"jitnet_train_info": np.frombuffer(b"[1]", np.uint8)}, "not a JSON object"),
    "info-big-int": ({"jitnet_train_info": np.frombuffer(b'{"input_scale": 1' + b"0" * 400
                                                         + b"}", np.uint8)},
                     "has input_scale 1" + "0" * 36 + "..., not a positive number"),
    "info-digits": ({"jitnet_train_info": np.frombuffer(b'{"a": 1' + b"0" * 5000 + b"}",
                                                        np.uint8)}, "not valid JSON"),
    "info-config": ({"jitnet_train_info": np.frombuffer(b'{"config": [1]}', np.uint8)},
                    "config that is not a JSON object"),
    "info-float": ({"jitnet_train_info": np.zeros(3)}, "not stored as bytes (a float64 array"),
    "info-huge": ({"jitnet_train_info": np.zeros(2 << 20, np.uint8)}, "more than the 1,048,576 read"),
    "info-disagrees": ({"format_version": np.array(3), "input_scale": np.array(1.0),
                        "jitnet_train_info": np.frombuffer(b'{"input_scale": 0.5}', np.uint8)},
                       "input scale 1.0, but its training description says 0.5"),
}


@pytest.mark.parametrize("name", DAMAGED_ENTRIES)
def test_a_damaged_entry_is_one_model_file_error(model, tmp_path, name):
    changes, words = DAMAGED_ENTRIES[name]
    path = write_zip(tmp_path / f"{name}.npz", members_with(model, **changes))
    assert words in load_both(path)


def test_a_float32_model_refuses_weights_beyond_float32(tmp_path):
    net = Network([6, 4, 3], dtype="float32", seed=0)
    path = write_zip(tmp_path / "m.npz", members_with(net, W1=np.full((3, 4), 1e39)))
    assert "layer 1: weights must be finite in float32" in load_both(path)


def test_a_plain_npy_file(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(npy_bytes(np.zeros(3)))
    assert "a single .npy array, not an .npz archive" in load_both(path)


def test_a_huge_npy_header_inside_the_archive(model, tmp_path):
    header = b"\x93NUMPY\x02\x00" + struct.pack("<I", 1 << 30) + b"{"
    path = write_zip(tmp_path / "m.npz", members_with(model, W0=header))
    assert ".npy header of 1073741824 bytes, more than the 10000 read" in load_both(path)


def test_damaged_deflate_data(model, tmp_path):
    path = write_zip(tmp_path / "m.npz", model.to_arrays(), zipfile.ZIP_DEFLATED)
    assert Network.load(path).params.tobytes() == model.params.tobytes()  # deflate is read
    content = bytearray(path.read_bytes())
    info = zipfile.ZipFile(path).getinfo("W0.npy")
    content[info.header_offset + 30 + len("W0.npy") + info.compress_size // 2] ^= 0x55
    path.write_bytes(bytes(content))
    assert "array 'W0': damaged" in load_both(path)


@pytest.mark.parametrize("method, name", [(zipfile.ZIP_BZIP2, "bzip2"), (zipfile.ZIP_LZMA, "lzma")])
def test_unsupported_compression(model, tmp_path, method, name):
    path = write_zip(tmp_path / "m.npz", model.to_arrays(), method)
    assert f"({name}) is not supported" in load_both(path)


def test_encrypted_members(model, tmp_path):
    content = bytearray(write_zip(tmp_path / "m.npz", model.to_arrays()).read_bytes())
    for at in range(len(content) - 4):  # set the encryption flag everywhere
        if content[at : at + 4] == b"PK\x03\x04":
            content[at + 6] |= 1
        elif content[at : at + 4] == b"PK\x01\x02":
            content[at + 8] |= 1
    (tmp_path / "m.npz").write_bytes(bytes(content))
    assert "encrypted" in load_both(tmp_path / "m.npz")


BOMBS = {  # name: (sizes written in the file, W0's declared shape, MiB its data holds, message)
    "1-GB-claim": ([125_000_000, 1], (1, 125_000_000), 1, "compressed bytes can hold"),
    "3-GB-claim": ([375_000_000, 1], (1, 375_000_000), 1, "compressed bytes can hold"),
    "sizes-beyond-the-layers": ([25_000_000, 1], (1, 6), None,
                                "W must have shape (1, 25000000), got (1, 6)"),
    "shape-not-the-sizes": ([6, 4, 3], (4, 6_000_000), None, "W must have shape (4, 6)"),
}


@pytest.mark.parametrize("name", BOMBS)
def test_deflate_bombs_are_refused_before_anything_is_inflated_or_allocated(tmp_path, name):
    sizes, shape, n_mib, words = BOMBS[name]
    members = {k: v for k, v in Network([6, 4, 3]).to_arrays().items() if k != "W0"}
    members.update(sizes=np.array(sizes), b0=np.zeros(sizes[1]))
    path = bomb_zip(tmp_path / f"{name}.npz", members, "W0.npy", npy_header("<f8", shape),
                    shape[0] * shape[1] * 8, n_mib)
    assert path.stat().st_size < 4 << 20
    tracemalloc.start()
    try:
        assert words in load_both(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak


# -- by Hypothesis: valid model files, damaged -------------------------------------------------

WEIRD_ARRAYS = st.sampled_from([
    np.array(0.0), np.array(np.nan), np.array(-np.inf), np.array(2**63 - 1), np.array(-1),
    np.array(1e300), np.array("float32"), np.array("sigmoid"), np.array("x" * 300),
    np.array(""), np.array(b"float64"), np.array([]), np.zeros((2, 3)), np.array([1e39, 2.0]),
    np.array([True]), np.array([1j]), np.array([10**18, 2]), np.array([6, 4, 3]),
    np.array([7, 4, 3]), np.array(3), np.array(1), np.array(0.5), np.zeros(5, np.uint8),
    np.frombuffer(b'{"input_scale": 2}', np.uint8), np.frombuffer(b"[[[[", np.uint8), PICKLED,
])


@st.composite
def model_files(draw):
    """(arrays as np.savez would write them, damaged: a network's file, a few entries replaced,
    deleted or added; deflate or stored)."""
    sizes = draw(st.lists(st.integers(1, 5), min_size=2, max_size=4))
    net = Network(sizes, dtype=draw(st.sampled_from(["float64", "float32"])),
                  activation=draw(st.sampled_from(["sigmoid", "tanh", "relu"])), seed=0)
    if draw(st.booleans()):
        net.input_scale = draw(st.sampled_from([1.0, 1 / 255, 0.25]))
    arrays = net.to_arrays()
    if draw(st.booleans()):
        arrays[model_file.TRAIN_INFO_KEY] = np.frombuffer(json.dumps(
            {"input_scale": net.input_scale, "config": {}}).encode(), np.uint8)
    keys = sorted(arrays) + ["input_scale", "extra", f"W{len(sizes)}"]
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(keys))
        if draw(st.integers(0, 3)) == 0:
            arrays.pop(key, None)
        else:
            arrays[key] = draw(WEIRD_ARRAYS)
    return arrays, draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))


def expected_network(arrays):
    """What a model file holding ``arrays`` must load as, decoded here from np.load's arrays:
    (sizes, dtype name, activation, weight pairs in that dtype, input scale)."""
    dtype = str(arrays["dtype"])
    pairs = [(np.asarray(arrays[f"W{l}"]).astype(dtype), np.asarray(arrays[f"b{l}"]).astype(dtype))
             for l in range(len(arrays["sizes"]) - 1)]
    scale = arrays.get("input_scale") if int(arrays["format_version"]) >= 3 else None
    if scale is None and model_file.TRAIN_INFO_KEY in arrays:
        scale = json.loads(arrays[model_file.TRAIN_INFO_KEY].tobytes()).get("input_scale")
    return ([int(n) for n in arrays["sizes"]], dtype, str(arrays["activation"]), pairs,
            None if scale is None else float(scale))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=model_files(), cut=st.integers(0, 10**6), flips=st.lists(
    st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=3))
@example(case=({"format": np.array("jitnet-model"), "format_version": np.array(2),
                "dtype": np.array("0.0")}, zipfile.ZIP_STORED), cut=0, flips=[])
def test_property_a_damaged_model_file(tmp_path_factory, case, cut, flips):
    arrays, method = case
    path = write_zip(tmp_path_factory.mktemp("m") / "model.npz", arrays, method)
    content = bytearray(path.read_bytes())
    for where, bits in flips:
        content[where % len(content)] ^= bits
    if cut % 4 == 1:
        content = content[: cut % len(content)]
    path.write_bytes(bytes(content))
    try:
        net = Network.load(path)
    except ModelFileError as err:
        message = str(err)
        assert "\n" not in message and message.count(str(path)) == 1, message
        assert "allow_pickle" not in message
        with pytest.raises(CheckpointError):
            load_model(path)
        event("refused")
        return
    event("read")
    with np.load(path, allow_pickle=False) as f:  # read: then np.load reads it too
        stored = {k: f[k] for k in f.files}
    sizes, dtype, activation, pairs, scale = expected_network(stored)
    assert (net.sizes, net.dtype.name, net.activation, net.input_scale) == (
        sizes, dtype, activation, scale)
    for (W, b), (W2, b2) in zip(pairs, net.get_weights()):
        assert W.tobytes() == W2.tobytes() and b.tobytes() == b2.tobytes()
    assert load_model(path)[0].params.tobytes() == net.params.tobytes()
