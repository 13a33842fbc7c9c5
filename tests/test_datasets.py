"""The Dataset container and load_mnist: the shipped MNIST, other directories, and bad files."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import jitnet
from jitnet.data.datasets import Dataset, load_mnist
from jitnet.data.idx import DataError, write_idx

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
SHIPPED = Path(jitnet.__file__).parent / "data" / "mnist"
STEMS = {
    ("train", "images"): "train-images",
    ("train", "labels"): "train-labels",
    ("test", "images"): "t10k-images",
    ("test", "labels"): "t10k-labels",
}


def file_name(split, what, dotted=False, gz=False):
    """The MNIST name of one of the four files, in either naming style."""
    kind = "idx3" if what == "images" else "idx1"
    return f"{STEMS[split, what]}{'.' if dotted else '-'}{kind}-ubyte{'.gz' if gz else ''}"


def write_set(directory, arrays, dotted=False, gz=False):
    """Write ``{(split, what): array}`` as MNIST-layout files; return ``{(split, what): path}``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, array in arrays.items():
        paths[key] = directory / file_name(*key, dotted=dotted, gz=gz)
        write_idx(paths[key], array)
    return paths


def small_arrays(rows=5, cols=7, n_train=12, n_test=6, n_classes=3, seed=0):
    """A tiny seeded set in the MNIST layout with every class present in each split."""
    rng = np.random.default_rng(seed)
    return {
        ("train", "images"): rng.integers(0, 256, (n_train, rows, cols), dtype=np.uint8),
        ("train", "labels"): (np.arange(n_train) % n_classes).astype(np.uint8),
        ("test", "images"): rng.integers(0, 256, (n_test, rows, cols), dtype=np.uint8),
        ("test", "labels"): (np.arange(n_test)[::-1] % n_classes).astype(np.uint8),
    }


# ---- the shipped MNIST ----


def test_shipped_mnist_sizes(mnist):
    train, test = mnist
    assert (len(train), len(test)) == (60_000, 10_000)
    assert train.images.shape == (60_000, 784) and test.images.shape == (10_000, 784)
    assert train.labels.shape == (60_000,) and test.labels.shape == (10_000,)
    for dataset in mnist:
        assert dataset.image_shape == (28, 28)
        assert dataset.n_classes == 10
        assert dataset.images.dtype == np.uint8 and dataset.labels.dtype == np.uint8
        assert dataset.images.flags.c_contiguous and dataset.images.flags.writeable
    assert (train.name, test.name) == ("train", "test")


def test_shipped_mnist_labels(mnist):
    train, test = mnist
    assert np.bincount(train.labels, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(test.labels, minlength=10).tolist() == TEST_COUNTS
    assert train.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert test.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_shipped_mnist_pixels_are_row_major(mnist):
    train, _ = mnist
    images = train.images.reshape(-1, 28, 28)
    # Digits sit in the middle of the frame: the borders are (almost) blank.
    assert images[:, 0, :].mean() < 0.01 and images[:, 14, 14].mean() > 100
    # A "1" is a vertical stroke: its ink spreads over rows far more than over columns,
    # which a column-major (transposed) reading would turn around.
    ones = images[train.labels == 1].mean(axis=0, dtype=np.float64)
    assert spread(ones.sum(axis=1)) > 2 * spread(ones.sum(axis=0))
    assert train.images.max() == 255 and train.images.min() == 0


def spread(weights):
    """Standard deviation of the index 0..n-1 weighted by ``weights``."""
    index = np.arange(len(weights))
    mean = np.average(index, weights=weights)
    return np.sqrt(np.average((index - mean) ** 2, weights=weights))


def test_targets_and_inputs_of_mnist(mnist):
    _, test = mnist
    targets = test.targets()
    assert targets.shape == (10_000, 10) and targets.dtype == np.float64
    np.testing.assert_allclose(targets.sum(axis=1), 1.8, rtol=1e-12)
    assert (targets.argmax(axis=1) == test.labels).all()
    inputs = test.inputs()
    assert inputs.shape == (10_000, 784) and inputs.dtype == np.float64
    assert inputs.min() == 0.0 and inputs.max() == 1.0
    assert np.array_equal(inputs, test.images / 255.0)


def test_top_level_names():
    assert jitnet.load_mnist is load_mnist and jitnet.Dataset is Dataset
    assert jitnet.DataError is DataError and issubclass(DataError, ValueError)


# ---- other directories ----


def test_plain_files_in_dotted_style_load_the_same_arrays(tmp_path, mnist):
    train, test = mnist
    arrays = {
        ("train", "images"): train.images.reshape(-1, 28, 28),
        ("train", "labels"): train.labels,
        ("test", "images"): test.images.reshape(-1, 28, 28),
        ("test", "labels"): test.labels,
    }
    paths = write_set(tmp_path, arrays, dotted=True)
    assert paths["train", "images"].name == "train-images.idx3-ubyte"
    assert paths["train", "images"].read_bytes()[:4] == b"\0\0\x08\x03"  # not gzip
    train2, test2 = load_mnist(tmp_path)
    for a, b in [(train, train2), (test, test2)]:
        assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
        assert (a.image_shape, a.n_classes, a.name) == (b.image_shape, b.n_classes, b.name)


def test_copied_gzip_files_load_from_a_str_path(tmp_path, mnist):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(SHIPPED / name, tmp_path / name)
    # Mixed styles in one directory: the training files plain and dotted.
    write_idx(tmp_path / "train-images.idx3-ubyte", mnist[0].images[:100].reshape(-1, 28, 28))
    write_idx(tmp_path / "train-labels.idx1-ubyte", mnist[0].labels[:100])
    train, test = load_mnist(str(tmp_path))
    assert len(train) == 100 and np.array_equal(test.labels, mnist[1].labels)


@pytest.mark.parametrize("dotted", [False, True])
@pytest.mark.parametrize("gz", [False, True])
def test_any_image_size_and_class_count(tmp_path, dotted, gz):
    arrays = small_arrays(rows=5, cols=7, n_classes=3)
    write_set(tmp_path, arrays, dotted=dotted, gz=gz)
    train, test = load_mnist(tmp_path)
    assert train.image_shape == (5, 7) and train.images.shape == (12, 35)
    assert train.n_classes == test.n_classes == 3
    assert np.array_equal(train.images, arrays["train", "images"].reshape(12, 35))
    assert np.array_equal(test.labels, arrays["test", "labels"])
    assert train.targets().shape == (12, 3)


def test_inferred_class_count_is_at_least_two(tmp_path):
    arrays = small_arrays(n_classes=1)
    write_set(tmp_path, arrays)
    assert load_mnist(tmp_path)[0].n_classes == 2


def test_class_count_comes_from_both_sets(tmp_path):
    arrays = small_arrays(n_classes=3)
    arrays["test", "labels"][2] = 6
    write_set(tmp_path, arrays)
    train, test = load_mnist(tmp_path)
    assert train.n_classes == test.n_classes == 7


def test_given_class_count(tmp_path):
    paths = write_set(tmp_path, small_arrays(n_classes=3))
    train, _ = load_mnist(tmp_path, n_classes=10)
    assert train.n_classes == 10 and train.targets().shape == (12, 10)
    with pytest.raises(DataError) as error:
        load_mnist(tmp_path, n_classes=2)
    message = str(error.value)
    assert message.startswith(str(paths["train", "labels"]))
    assert "label 2 at index 2 is outside the class range 0..1" in message


def test_missing_file_lists_what_was_looked_for(tmp_path):
    arrays = small_arrays()
    del arrays["test", "labels"]
    write_set(tmp_path, arrays, gz=True)
    with pytest.raises(DataError) as error:
        load_mnist(tmp_path)
    message = str(error.value)
    assert message.startswith(str(tmp_path)) and "\n" not in message
    assert "test labels" in message and "train" not in message
    for name in [
        "t10k-labels-idx1-ubyte",
        "t10k-labels-idx1-ubyte.gz",
        "t10k-labels.idx1-ubyte",
        "t10k-labels.idx1-ubyte.gz",
    ]:
        assert name in message


def test_empty_directory_lists_all_four(tmp_path):
    with pytest.raises(DataError) as error:
        load_mnist(tmp_path)
    message = str(error.value)
    for part in ["train images", "train labels", "test images", "test labels"]:
        assert part in message


def test_path_that_is_not_a_directory(tmp_path):
    afile = tmp_path / "train-images-idx3-ubyte.gz"
    afile.write_bytes(b"")
    with pytest.raises(DataError, match="not a directory") as error:
        load_mnist(afile)
    assert str(afile) in str(error.value)
    with pytest.raises(DataError, match="no such directory") as error:
        load_mnist(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(error.value)


def flat_images(a):
    a["train", "images"] = a["train", "images"].reshape(12, -1)


def int16_images(a):
    a["test", "images"] = a["test", "images"].astype(np.int16)


def column_labels(a):
    a["train", "labels"] = a["train", "labels"][:, None]


def int32_labels(a):
    a["test", "labels"] = a["test", "labels"].astype(np.int32)


def short_labels(a):
    a["train", "labels"] = a["train", "labels"][:-1]


def other_test_size(a):
    a["test", "images"] = np.zeros((6, 7, 5), dtype=np.uint8)


def no_images(a):
    a["test", "images"] = np.zeros((0, 5, 7), dtype=np.uint8)
    a["test", "labels"] = np.zeros(0, dtype=np.uint8)


def zero_width(a):
    a["train", "images"] = np.zeros((12, 5, 0), dtype=np.uint8)


# (how to break the set, the file the message must start with, what it must say)
BROKEN_SETS = {
    "images-2d": (flat_images, ("train", "images"), "shape (N, rows, cols), found shape (12, 35)"),
    "images-int16": (int16_images, ("test", "images"), "expected uint8 pixels"),
    "labels-2d": (column_labels, ("train", "labels"), "shape (N,), found shape (12, 1)"),
    "labels-int32": (int32_labels, ("test", "labels"), "expected uint8 labels"),
    "count-mismatch": (short_labels, ("train", "labels"), "11 labels, but"),
    "size-mismatch": (other_test_size, ("test", "images"), "images are 7x5, but"),
    "no-images": (no_images, ("test", "images"), "holds no images"),
    "no-pixels": (zero_width, ("train", "images"), "no pixels"),
}


@pytest.mark.parametrize("case", list(BROKEN_SETS))
def test_inconsistent_files_name_the_file(tmp_path, case):
    breaker, culprit, expected = BROKEN_SETS[case]
    arrays = small_arrays()
    breaker(arrays)
    paths = write_set(tmp_path, arrays, gz=True)
    with pytest.raises(DataError) as error:
        load_mnist(tmp_path)
    message = str(error.value)
    assert message.startswith(str(paths[culprit]))
    assert expected in message and "\n" not in message


def test_a_corrupt_file_is_named(tmp_path):
    paths = write_set(tmp_path, small_arrays(), gz=True)
    raw = paths["train", "labels"].read_bytes()
    paths["train", "labels"].write_bytes(raw[:-6])
    with pytest.raises(DataError, match="corrupt gzip") as error:
        load_mnist(tmp_path)
    assert str(error.value).startswith(str(paths["train", "labels"]))


# ---- the Dataset container ----


def tiny():
    images = np.arange(4 * 6, dtype=np.uint8).reshape(4, 6) * 10
    return Dataset(images, [2, 0, 1, 2], (2, 3), 3, name="tiny")


def test_repr_and_len():
    data = tiny()
    assert len(data) == 4
    assert repr(data) == "Dataset(name='tiny', samples=4, image_shape=(2, 3), n_classes=3)"


def test_hand_computed_targets_and_inputs():
    data = Dataset(np.array([[0, 51, 255], [255, 102, 0]], np.uint8), [2, 0], (1, 3), 3)
    assert data.targets().tolist() == [[0.1, 0.1, 0.9], [0.9, 0.1, 0.1]]
    assert data.inputs().tolist() == [[0.0, 0.2, 1.0], [1.0, 0.4, 0.0]]
    assert data.inputs(np.float32).dtype == np.float32
    assert data.targets(np.float32).dtype == np.float32
    assert data.inputs(np.float32).tolist() == np.float32([[0, 0.2, 1], [1, 0.4, 0]]).tolist()


def test_inputs_need_a_float_dtype():
    with pytest.raises(TypeError):
        tiny().inputs(np.int32)
    with pytest.raises(TypeError):
        tiny().targets(np.uint8)


def test_constructor_converts_at_the_boundary():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    data = Dataset(images, np.array([1, 0], dtype=np.int64), (3, 4), 2)
    assert data.images.shape == (2, 12) and np.shares_memory(data.images, images)
    assert data.labels.dtype == np.uint8 and data.labels.tolist() == [1, 0]
    transposed = Dataset(np.zeros((12, 2), np.uint8).T, [0, 1], (3, 4), 2)
    assert transposed.images.flags.c_contiguous


@pytest.mark.parametrize(
    "args, expected",
    [
        ((np.zeros((2, 6), np.int64), [0, 1], (2, 3), 2), "uint8"),
        ((np.zeros((2, 5), np.uint8), [0, 1], (2, 3), 2), "shape (N, 6)"),
        ((np.zeros((2, 6), np.uint8), [0, 1, 1], (2, 3), 2), "3 labels for 2 images"),
        ((np.zeros((2, 6), np.uint8), [[0, 1]], (2, 3), 2), "1-D integer"),
        ((np.zeros((2, 6), np.uint8), [0.0, 1.0], (2, 3), 2), "1-D integer"),
        ((np.zeros((2, 6), np.uint8), [0, 3], (2, 3), 3), "label 3 at index 1"),
        ((np.zeros((2, 6), np.uint8), [0, -1], (2, 3), 3), "label -1 at index 1"),
        ((np.zeros((2, 6), np.uint8), [0, 0], (2, 3), 1), "n_classes must be 2 to 65536"),
        ((np.zeros((2, 6), np.uint8), [0, 0], (6,), 2), "two ints"),
        ((np.zeros((2, 0), np.uint8), [0, 0], (0, 3), 2), "positive"),
    ],
)
def test_constructor_rejects(args, expected):
    with pytest.raises(DataError) as error:
        Dataset(*args, name="bad")
    assert "'bad'" in str(error.value) or "n_classes" in str(error.value)
    assert expected in str(error.value)


def test_split_gives_views_of_the_last_samples(mnist):
    train, _ = mnist
    first, last = train.split(10_000)
    assert (len(first), len(last)) == (50_000, 10_000)
    assert np.shares_memory(first.images, train.images)
    assert np.shares_memory(last.images, train.images)
    assert np.shares_memory(last.labels, train.labels)
    assert np.array_equal(last.labels, train.labels[-10_000:])
    assert np.array_equal(first.images, train.images[:50_000])
    assert last.images.flags.c_contiguous
    assert (first.image_shape, first.n_classes) == ((28, 28), 10)
    assert (first.name, last.name) == ("train[0:50000]", "train[50000:60000]")


def test_split_edges():
    data = tiny()
    first, last = data.split(0)
    assert (len(first), len(last)) == (4, 0) and last.targets().shape == (0, 3)
    first, last = data.split(3)
    assert first.labels.tolist() == [2] and last.labels.tolist() == [0, 1, 2]
    for bad in (4, 5, -1):
        with pytest.raises(DataError, match="cannot hold out"):
            data.split(bad)
    with pytest.raises(TypeError):
        data.split(1.5)


def test_slices():
    data = tiny()
    part = data[1:3]
    assert part.labels.tolist() == [0, 1] and part.images.tolist() == data.images[1:3].tolist()
    assert np.shares_memory(part.images, data.images) and np.shares_memory(part.labels, data.labels)
    assert part.name == "tiny[1:3]" and part.image_shape == (2, 3)
    assert data[-1:].labels.tolist() == [2]
    assert len(data[3:1]) == 0
    stepped = data[::2]
    assert stepped.labels.tolist() == [2, 1] and stepped.images.flags.c_contiguous
    assert not np.shares_memory(stepped.images, data.images)
    with pytest.raises(TypeError, match="slices"):
        data[0]


def test_each_load_returns_fresh_writable_arrays(mnist, tmp_path):
    write_set(tmp_path, small_arrays())
    a, _ = load_mnist(tmp_path)
    b, _ = load_mnist(tmp_path)
    a.images[0, 0] ^= 1
    assert a.images[0, 0] != b.images[0, 0]


def test_damaged_folders_name_the_culprit(tmp_path):
    """Special files where data files belong, odd directory names: one DataError line each."""
    paths = write_set(tmp_path / "fifo", small_arrays())
    paths["train", "images"].unlink()
    os.mkfifo(paths["train", "images"])
    paths = write_set(tmp_path / "dir", small_arrays(), gz=True)
    paths["test", "labels"].unlink()
    paths["test", "labels"].mkdir()
    cases = {
        tmp_path / "fifo": ("train-images-idx3-ubyte: cannot read a FIFO"),
        tmp_path / "dir": ("t10k-labels-idx1-ubyte.gz: cannot read a directory"),
        f"{tmp_path}/a\0b": (f"{tmp_path}/a\\x00b: no such directory"),
        tmp_path / "new\nline": (f"{tmp_path}/new\\nline: no such directory"),
    }
    for path, expected in cases.items():
        with pytest.raises(DataError) as error:
            load_mnist(path)
        message = str(error.value)
        assert expected in message and "\n" not in message, message


def test_a_truncated_plain_file_is_refused_before_reading(tmp_path):
    paths = write_set(tmp_path, small_arrays())
    with open(paths["train", "images"], "r+b") as file:
        file.truncate(100)
    with pytest.raises(DataError, match="truncated data") as error:
        load_mnist(tmp_path)
    assert str(error.value).startswith(str(paths["train", "images"]))
