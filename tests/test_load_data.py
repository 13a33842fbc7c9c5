"""jitnet.load_data (IDX folders, Keras-style .npz, tables), the stratified split, and the
standardization and class names a Network keeps in its model file."""

import io
import pickle
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jitnet
from jitnet import Network, Standardization
from jitnet.data.loading import read_source, split_off_test
from jitnet.data.split import stratified_split
from jitnet.io.errors import DataError
from jitnet.engine.model_file import ModelFileError


def one_line(call, *words):
    with pytest.raises(DataError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, message
    return message


@pytest.fixture(scope="module")
def mnist():
    return jitnet.load_mnist()


# -- the split ----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(counts=st.lists(st.integers(1, 40), min_size=2, max_size=6),
       fraction=st.floats(0.05, 0.95), seed=st.integers(0, 2**32))
def test_the_split_keeps_each_class_share_and_one_training_sample(counts, fraction, seed):
    labels = np.repeat(np.arange(len(counts)), counts)
    train, test = stratified_split(labels, fraction, seed)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(labels)))
    for k, n in enumerate(counts):
        in_test = int(np.count_nonzero(labels[test] == k))
        assert in_test == min(int(np.floor(n * fraction + 0.5)), n - 1)
    again = stratified_split(labels, fraction, seed)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], test)


def test_the_split_is_random_even_for_a_file_sorted_by_class():
    labels = np.repeat([0, 1, 2], 100)
    train, test = stratified_split(labels, 0.2, 0)
    assert len(test) == 60 and not np.array_equal(np.sort(train), train)
    assert set(labels[train[-30:]].tolist()) == {0, 1, 2}  # a hold-out from the end: all classes


def test_a_split_that_leaves_no_test_sample_is_one_line(tmp_path):
    data = jitnet.Dataset(np.zeros((2, 1)), [0, 1], None, 2, class_names=("a", "b"))
    one_line(lambda: split_off_test(data, 0.2, 0, tmp_path / "t.csv"), "t.csv",
             "leaves no test sample")


# -- what load_data reads -----------------------------------------------------------------


def test_an_idx_folder_loads_as_load_mnist_does(mnist):
    train, test = jitnet.load_data()
    assert np.array_equal(train.images, mnist[0].images) and train.class_names is None
    assert len(test) == 10_000 and train.image_shape == (28, 28)


def test_a_table_is_split_stratified_with_its_class_names(tmp_path):
    pd = pytest.importorskip("pandas")
    labels = np.array(["b", "a", "c"] * 20)
    frame = pd.DataFrame({"x": np.arange(60.0), "y2": np.arange(60) % 7, "kind": labels})
    frame.to_csv(tmp_path / "t.csv", index=False)
    train, test = jitnet.load_data(tmp_path / "t.csv", label="kind", test_fraction=0.25, seed=3)
    assert train.class_names == test.class_names == ("a", "b", "c")
    assert (len(train), len(test)) == (45, 15) and np.bincount(test.labels).tolist() == [5] * 3
    assert train.image_shape is None and train.images.dtype == np.float64
    rows = np.concatenate([train.images, test.images])[:, 0].astype(int)
    names = np.array(train.class_names)[np.concatenate([train.labels, test.labels])]
    assert np.array_equal(names, labels[rows])  # each row keeps its own label


def test_whole_number_floats_up_to_255_in_a_table_are_features_not_pixels(tmp_path):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    X = rng.integers(1, 256, (40, 3)).astype(float)
    frame = pd.DataFrame(X, columns=["age", "count", "price"])
    frame["label"] = (X[:, 0] > 128).astype(int)
    frame.to_csv(tmp_path / "t.csv", index=False)
    train, _ = jitnet.load_data(tmp_path / "t.csv")
    assert train.images.dtype == np.float64 and train.images.max() > 1
    net = Network([3, 4, 2], seed=0)
    net.input_scale = 1.0  # as a run of this table saves it: the values as they are
    net.train(train.images, train.labels, rate=0.01)  # no complaint about raw pixels
    assert np.isfinite(net.predict(train.images)).all()


def keras_npz(path, x_train, y_train, x_test=None, y_test=None, names=None):
    arrays = {"x_train": x_train, "y_train": y_train}
    if x_test is not None:
        arrays.update(x_test=x_test, y_test=y_test)
    arrays = {(names or {}).get(k, k): v for k, v in arrays.items()}
    np.savez(path, **arrays)
    return path


def test_keras_style_npz_of_images(tmp_path, mnist):
    train, test = mnist
    path = keras_npz(tmp_path / "m.npz", train.images[:50].reshape(-1, 28, 28),
                     train.labels[:50], test.images[:20].reshape(-1, 28, 28, 1),
                     test.labels[:20].astype(np.int64))
    a, b = jitnet.load_data(path)
    assert a.image_shape == b.image_shape == (28, 28) and a.images.dtype == np.uint8
    assert np.array_equal(a.images, train.images[:50]) and np.array_equal(b.images,
                                                                          test.images[:20])
    assert a.class_names == tuple(str(k) for k in np.unique(train.labels[:50]))


@pytest.mark.parametrize("x, dtype, shape", [
    (np.arange(48, dtype=np.float32).reshape(4, 3, 4) * 5, np.uint8, (3, 4)),  # 0-235 whole
    (np.linspace(0, 1, 48).reshape(4, 3, 4), np.float32, (3, 4)),  # floats in [0, 1]
    (np.arange(48, dtype=np.int64).reshape(4, 12) * 100, np.float32, None),  # feature rows
])
def test_npz_samples_become_pixels_only_when_they_are_images_of_0_to_255(tmp_path, x, dtype,
                                                                          shape):
    path = keras_npz(tmp_path / "a.npz", x, np.array(["cat", "dog"] * 2),
                     names={"x_train": "X_train"})
    train, test = jitnet.load_data(path, dtype="float32", test_fraction=0.5)
    assert train.images.dtype == dtype and train.image_shape == shape
    both = np.concatenate([train.images, test.images]).astype(float)
    assert sorted(map(tuple, both)) == sorted(map(tuple, x.reshape(4, -1).astype(dtype)
                                                  .astype(float)))


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def pickled_npz(path):
    """x_train is an object array: only a pickle could load it."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x_train.npy", _npy(np.array([{"a": 1}, None], dtype=object)))
        archive.writestr("y_train.npy", _npy(np.array([0, 1])))


def claiming_npz(path):
    """A few hundred bytes whose x_train header declares 10 GB of float64."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (1_250_000_000, 1)})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x_train.npy", header.getvalue())
        archive.writestr("y_train.npy", _npy(np.zeros(2)))


@pytest.mark.parametrize("make, words", [
    (lambda p: np.savez(p, x_train=np.zeros((2, 3)), y_train=[0, 1], x_test=np.zeros((1, 3))),
     ["holds x_test but no y_test"]),
    (lambda p: np.savez(p, a=np.zeros(3)), ["no x_train (or X_train)", "it holds a"]),
    (lambda p: np.savez(p, x_train=np.zeros((2, 3)), y_train=np.array([0, 1, 1])),
     ["y_train has shape (3,)", "(2,)"]),
    (lambda p: np.savez(p, x_train=np.zeros((2, 4, 4, 3)), y_train=[0, 1]), ["3 channels"]),
    (lambda p: np.savez(p, x_train=np.zeros((2, 3)), y_train=[0, 1], x_test=np.zeros((1, 4)),
                        y_test=[0]), ["x_test samples have shape (4,)"]),
    (lambda p: np.savez(p, x_train=np.zeros((2, 3)), y_train=[0, 0]), ["one class only"]),
    (lambda p: np.savez(p, x_train=np.zeros((2, 3)), y_train=[0.5, 1]), ["not a class"]),
    (lambda p: np.savez(p, x_train=np.full((2, 3), np.nan), y_train=[0, 1]), ["not finite"]),
    (lambda p: np.savez(p, x_train=np.zeros((2, 3)), y_train=[0, 1], x_test=np.zeros((1, 3)),
                        y_test=[7]), ["class '7'", "not one of the 2 classes"]),
    (pickled_npz, ["array 'x_train'"]),
    (claiming_npz, ["array 'x_train'", "10000000000 data bytes"]),
])
def test_broken_archives_are_one_line_naming_the_file(tmp_path, make, words):
    path = tmp_path / "bad.npz"
    make(path)
    one_line(lambda: jitnet.load_data(path), str(path), *words)


@pytest.mark.parametrize("name, words", [("missing.csv", ["no such file"]),
                                         ("data.txt", ["not a data file jitnet reads"])])
def test_paths_jitnet_does_not_read_are_one_line(tmp_path, name, words):
    (tmp_path / "data.txt").write_text("1,2\n")
    one_line(lambda: jitnet.load_data(tmp_path / name), name, *words)


def test_a_separate_test_table_must_fit_the_training_table(tmp_path):
    (tmp_path / "train.csv").write_text("a,b,label\n1,2,x\n3,4,y\n5,6,x\n")
    (tmp_path / "test.csv").write_text("b,a,label\n2,1,y\n")  # columns in another order: fine
    loaded = read_source(tmp_path / "train.csv", test_data=tmp_path / "test.csv")
    assert loaded.test.images.tolist() == [[1, 2]] and loaded.test.labels.tolist() == [1]
    assert loaded.info["test_source"]["bytes"] == len("b,a,label\n2,1,y\n")
    for text, words in [("a,label\n1,x\n", ["no column 'b'"]),
                        ("a,b,c,label\n1,2,3,x\n", ["column 'c' is not a feature"]),
                        ("a,b,label\n1,2,z\n", ["class 'z'", "not one of the 2 classes"])]:
        (tmp_path / "test.csv").write_text(text)
        one_line(lambda: read_source(tmp_path / "train.csv", test_data=tmp_path / "test.csv"),
                 "test.csv", *words)


def test_the_source_is_described_with_its_size_and_digest(tmp_path):
    import hashlib

    (tmp_path / "t.csv").write_text("a,label\n1,x\n2,y\n3,x\n")
    info = read_source(tmp_path / "t.csv").info
    content = (tmp_path / "t.csv").read_bytes()
    assert info["bytes"] == len(content)
    assert info["sha256"] == hashlib.sha256(content).hexdigest()
    assert (info["format"], info["label"], info["features"], info["class_names"]) == (
        "table", "label", ["a"], ["x", "y"])


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(2, 6), at=st.integers(0, 10**6), byte=st.integers(0, 255),
       cut=st.booleans())
def test_a_damaged_archive_is_the_documented_error_or_its_arrays(tmp_path, n, at, byte, cut):
    rng = np.random.default_rng(n)
    x = rng.integers(0, 256, (n, 2, 3)).astype(np.uint8)
    y = np.array(["a", "b"] * n)[:n]
    buffer = io.BytesIO()
    np.savez(buffer, x_train=x, y_train=y)
    data = bytearray(buffer.getvalue())
    at %= len(data)
    if cut:
        del data[at:]
    else:
        data[at] = byte
    path = tmp_path / "damaged.npz"
    path.write_bytes(bytes(data))
    try:
        train, test = jitnet.load_data(path, test_fraction=0.5)
    except DataError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
        return
    images = np.concatenate([train.images, test.images])
    names = np.array(train.class_names)[np.concatenate([train.labels, test.labels])]
    rows = sorted(zip(map(bytes, images), names))
    assert rows == sorted(zip(map(bytes, x.reshape(n, 6)), y))  # every sample, as written


# -- standardization and class names in the Network ------------------------------------------


def test_standardization_is_the_z_score_of_the_training_samples(monkeypatch):
    import jitnet.engine.standardize as standardize

    monkeypatch.setattr(standardize, "_ROWS", 7)  # several blocks
    rng = np.random.default_rng(0)
    X = rng.normal(5, 3, (50, 4))
    X[:, 2] = 4.0  # constant: left at 0
    st_ = Standardization.fit(X)
    assert np.allclose(st_.mean, X.mean(axis=0), rtol=0, atol=1e-12)
    assert np.allclose(st_.std, X.std(axis=0), rtol=0, atol=1e-12) and st_.std[2] == 0
    Z = st_.apply(X, np.float64)
    assert np.allclose(Z.mean(axis=0), 0, atol=1e-12)
    assert np.allclose(Z.std(axis=0), [1, 1, 0, 1]) and (Z[:, 2] == 0).all()
    assert st_.apply(np.full((1, 4), 99.0), np.float32)[0, 2] == 0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_standardizing_network_takes_raw_inputs_in_every_call(dtype):
    rng = np.random.default_rng(1)
    X = rng.normal(100, 20, (30, 3))
    labels = (X[:, 0] > 100).astype(int)
    st_ = Standardization.fit(X)
    bare = Network([3, 5, 2], seed=0, dtype=dtype)
    net = bare.copy()
    net.standardization = st_
    Z = st_.apply(X, dtype)
    assert np.array_equal(net.predict(X), bare.predict(Z, scale=1.0))
    assert np.array_equal(net.classify(X), bare.classify(Z, scale=1.0))
    assert net.evaluate(X, labels) == bare.evaluate(Z, labels, scale=1.0)
    net.train_epoch(X, labels, 0.1)
    bare.train_epoch(Z, labels, 0.1, scale=1.0)
    assert np.array_equal(net.params, bare.params)  # trained on the same standardized inputs
    with pytest.raises(ValueError, match="scale does not apply"):
        net.predict(X, scale=1.0)
    with pytest.raises(ValueError, match="standardization must hold 3 means"):
        net.standardization = (np.zeros(2), np.ones(2))
    with pytest.raises(ValueError, match="standard deviations >= 0"):
        net.standardization = (np.zeros(3), -np.ones(3))


def test_standardization_and_class_names_travel_in_model_files(tmp_path):
    net = Network([3, 4, 2], seed=2)
    net.standardization = (np.array([1.0, 2, 3]), np.array([0.5, 0.0, 2]))
    net.class_names = ("cat", "dog")
    net.save(tmp_path / "m.npz")
    loaded = Network.load(tmp_path / "m.npz")
    assert loaded.class_names == ("cat", "dog")
    assert np.array_equal(loaded.standardization.mean, [1, 2, 3])
    assert np.array_equal(loaded.standardization.std, [0.5, 0, 2])
    X = np.array([[1.0, 5, 9], [0, 0, 0]])
    assert np.array_equal(loaded.predict(X), net.predict(X))
    assert int(np.load(tmp_path / "m.npz")["format_version"]) == 4
    copy = pickle.loads(pickle.dumps(net))
    assert copy.class_names == ("cat", "dog") and np.array_equal(copy.predict(X), net.predict(X))
    plain = Network([3, 4, 2], seed=2)
    plain.save(tmp_path / "p.npz")
    assert int(np.load(tmp_path / "p.npz")["format_version"]) == 2  # as before


@pytest.mark.parametrize("change, words", [
    ({"input_std": None}, "'input_mean' without its partner"),
    ({"input_std": np.ones(2)}, "'input_std' is a float64 array of shape (2,)"),
    ({"input_std": -np.ones(3)}, "standard deviations >= 0"),
    ({"class_names": np.array(["a", "b", "c"])}, "'class_names' is a <U1 array of shape (3,)"),
    ({"class_names": np.array(["a", "a"])}, "class_names must be distinct"),
    ({"class_names": np.array([1, 2])}, "'class_names' is a int64 array"),
])
def test_damaged_version_4_entries_are_one_line(tmp_path, change, words):
    net = Network([3, 4, 2], seed=2)
    net.standardization = (np.zeros(3), np.ones(3))
    net.class_names = ("a", "b")
    arrays = net.to_arrays()
    for key, value in change.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    np.savez(tmp_path / "m.npz", **arrays)
    with pytest.raises(ModelFileError) as info:
        Network.load(tmp_path / "m.npz")
    assert words in str(info.value) and "\n" not in str(info.value)


def test_class_names_must_fit_the_outputs():
    net = Network([3, 4, 2])
    for bad in (("a",), ("a", "a"), "ab", ("a", "")):
        with pytest.raises(ValueError, match="class_names"):
            net.class_names = bad


def test_a_standardizing_network_trains_on_no_distortion():
    net = Network([4, 3, 2], seed=0)
    net.standardization = (np.zeros(4), np.ones(4))
    with pytest.raises(ValueError, match="cannot train on distorted samples"):
        net.train(np.zeros((2, 4)), [0, 1], distort=jitnet.Distortion(rotate=5),
                  image_shape=(2, 2))
