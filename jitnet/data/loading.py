"""``jitnet.load_data``: labelled samples from any file jitnet reads, as training and test sets.

* a folder in MNIST's four-file IDX layout (:func:`jitnet.load_mnist`): images with their
  shape, class indices as labels;
* a Keras-style ``.npz`` (:mod:`jitnet.data.archives`): images ``(N, rows, cols)`` or rows
  ``(N, n_features)``, labels of any kind;
* a ``.csv``, ``.tsv`` or ``.parquet`` table (:mod:`jitnet.data.tables`): numeric feature columns
  and one label column of any kind.

Labels other than an IDX file's become class indices with class names
(:mod:`jitnet.data.labels`). Samples are images when the data says so (IDX, ``(N, rows, cols)``
arrays) or ``image_shape`` declares it; images whose values are whole numbers 0-255 are kept as
uint8 pixels (scaled by 1/255 when trained on, like MNIST's). Everything else -- a table's
columns, feature rows, float images -- is float features in ``dtype``, used as they are: never
taken for raw pixels, whatever their range.
"""

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np

from jitnet.data import archives, tables
from jitnet.data.datasets import _SHIPPED, Dataset, _find_files, load_mnist
from jitnet.data.labels import encode_labels, encode_with
from jitnet.data.split import stratified_split
from jitnet.io.atomic import display_path
from jitnet.io.errors import DataError

__all__ = ["Loaded", "data_kind", "load_data", "read_source"]


class Loaded(NamedTuple):
    """What :func:`read_source` read: the training set, the test set (None when the data has
    none: split one off with :func:`jitnet.data.split.stratified_split`) and a description of
    the source (``format``, ``path``, ``bytes``, ``sha256``, ``label``, ``features``,
    ``class_names``, ``image_shape``, and ``test_source`` for a separate test file)."""

    train: Dataset
    test: Dataset
    info: dict


def data_kind(path):
    """``"idx"`` (a folder), ``"npz"`` or ``"table"``; a DataError for anything else."""
    where = display_path(path)
    if not os.path.exists(path):
        raise DataError(f"{where}: no such file or directory")
    if os.path.isdir(path):
        return "idx"
    if str(path).lower().endswith(".npz"):
        return "npz"
    if tables.is_table(path):
        return "table"
    raise DataError(f"{where}: not a data file jitnet reads (a folder of IDX files, an .npz, "
                    "or a .csv, .tsv or .parquet table)")


def _digest(files, stop=None):
    """{"bytes": total size, "sha256": of the files' bytes in order} of a file or files; gives up
    (returns None) once ``stop`` (a threading.Event) is set."""
    digest, size = hashlib.sha256(), 0
    for file in files:
        with open(file, "rb") as f:
            while block := f.read(1 << 22):
                if stop is not None and stop.is_set():
                    return None
                digest.update(block)
                size += len(block)
    return {"bytes": size, "sha256": digest.hexdigest()}


def _source(path, kind):
    """The source's files (IDX: the four MNIST files) for its digest."""
    if kind != "idx":
        return [path]
    directory = _SHIPPED if path is None else Path(path)
    return [file for _, file in sorted(_find_files(directory).items())]


def _samples(x, image_shape, where, name, dtype):
    """``x`` as a Dataset's samples (N, n_in) and its image shape (None: not images)."""
    if x.ndim == 3:
        if image_shape is not None and tuple(image_shape) != x.shape[1:]:
            raise DataError(f"{where}: {name} holds {x.shape[1]}x{x.shape[2]} images, not the "
                            f"{image_shape[0]}x{image_shape[1]} of image_shape")
        image_shape = x.shape[1:]
        x = x.reshape(len(x), -1)
    if image_shape is not None:
        rows, cols = image_shape
        if rows * cols != x.shape[1]:
            raise DataError(f"{where}: {x.shape[1]} values per sample are not "
                            f"{rows}x{cols} images ({rows * cols} pixels)")
        if x.dtype == np.uint8:
            return x, tuple(image_shape)
        if x.dtype.kind in "iuf" and x.size and x.min() >= 0 and x.max() <= 255 and (
                x.dtype.kind != "f" or (x.max() > 1 and np.array_equal(x, np.floor(x)))):
            return x.astype(np.uint8), tuple(image_shape)
    with np.errstate(over="ignore", invalid="ignore"):
        features = np.ascontiguousarray(x, dtype=dtype)
    if not np.isfinite(features).all():
        raise DataError(f"{where}: {name} holds values that are not finite numbers in "
                        f"{np.dtype(dtype).name} (NaN, inf or beyond its range)")
    return features, None if image_shape is None else tuple(image_shape)


def _table(path, label, image_shape, dtype, names=None, feature_names=None):
    """(Dataset, description) of a table; with ``names`` its labels are encoded by them."""
    where = display_path(path)
    table = tables.read_table(path, label=label, dtype=dtype)
    features = table.features
    if feature_names is not None and table.feature_names != feature_names:
        lacking = [c for c in feature_names if c not in table.feature_names]
        extra = [c for c in table.feature_names if c not in feature_names]
        if lacking or extra:
            what = (f"no column {lacking[0]!r}, a feature of the training data" if lacking else
                    f"column {extra[0]!r} is not a feature of the training data")
            raise DataError(f"{where}: {what}")
        position = {c: k for k, c in enumerate(table.feature_names)}
        features = np.ascontiguousarray(features[:, [position[c] for c in feature_names]])
    samples, shape = _samples(features, image_shape, where, "the table", dtype)
    label_where = f"{where}, column {table.label_name!r}"
    if names is None:
        codes, names = encode_labels(table.labels, label_where)
    else:
        codes = encode_with(table.labels, names, label_where)
    dataset = Dataset._trusted(samples, codes, shape, len(names), "", names)
    return dataset, {"label": table.label_name, "features": list(table.feature_names)}


def _archive(path, image_shape, dtype, names=None, test_only=False):
    """(train, test or None) Datasets of a Keras-style .npz, labels encoded by ``names`` when
    given; ``test_only`` (a test file): its test arrays, else its training arrays, as train."""
    where = display_path(path)
    arrays = archives.read_archive(path)
    parts = [("x_train", "y_train")] + ([("x_test", "y_test")] if arrays["x_test"] is not None
                                        else [])
    if test_only:
        parts = parts[-1:]
    sets = []
    for x_name, y_name in parts:
        samples, shape = _samples(arrays[x_name], image_shape, where, x_name, dtype)
        label_where = f"{where}, {y_name}"
        if names is None:
            codes, names = encode_labels(arrays[y_name], label_where)
        else:
            codes = encode_with(arrays[y_name], names, label_where)
        sets.append(Dataset._trusted(samples, codes, shape, len(names), "", names))
        image_shape = shape
    return sets[0], sets[1] if len(sets) > 1 else None


def read_source(path=None, *, label=None, test_data=None, image_shape=None, dtype=np.float64,
                class_names=None, columns=None):
    """Read labelled data, as :func:`load_data` does, without splitting it.

    ``class_names`` and ``columns`` (a model's classes and a table's feature columns) read data
    for a model already trained: labels are encoded by those names (each must be one of them;
    an IDX file's labels must lie below their number), a table's features taken by name.

    Returns
    -------
    Loaded
        ``test`` is None when the data has no test set and no ``test_data`` is given.

    Raises
    ------
    DataError, MissingDependencyError
        As :func:`load_data`.
    """
    kind = "idx" if path is None else data_kind(path)
    if label is not None and kind != "table":
        raise DataError(f"{display_path(path or _SHIPPED)}: a label column names a column of "
                        "a table; this data keeps its labels apart")
    files, stop = _source(path, kind), threading.Event()
    with ThreadPoolExecutor(1) as pool:  # the digest reads the file while it is parsed
        digest = pool.submit(_digest, files, stop)
        try:
            train, test, info = _read(path, kind, label, image_shape, dtype, class_names,
                                      columns)
        except BaseException:
            stop.set()  # a file that cannot be used: no need to finish reading it
            raise
        info = {"format": kind, "path": None if path is None else str(Path(path).resolve()),
                **digest.result(), **info, "class_names": _names(train),
                "image_shape": None if train.image_shape is None else list(train.image_shape)}
    if test_data is not None:
        test, info["test_source"] = _test_file(test_data, kind, path, test, train, info, dtype)
    train.name = "train"
    if test is not None:
        test.name = "test"
    return Loaded(train, test, info)


def _read(path, kind, label, image_shape, dtype, class_names, columns):
    """(train, test or None, {"label", "features"}) of the source ``path`` of ``kind``."""
    if kind == "idx":
        train, test = load_mnist(path, None if class_names is None else len(class_names))
        if image_shape is not None and tuple(image_shape) != train.image_shape:
            raise DataError(f"{display_path(path or _SHIPPED)}: its images are "
                            f"{train.image_shape[0]}x{train.image_shape[1]}, not "
                            f"{image_shape[0]}x{image_shape[1]}")
        return train, test, {"label": None, "features": None}
    if kind == "npz":
        train, test = _archive(path, image_shape, dtype, class_names)
        return train, test, {"label": None, "features": None}
    train, info = _table(path, label, image_shape, dtype, class_names,
                         None if columns is None else tuple(columns))
    return train, None, info


def _names(dataset):
    return None if dataset.class_names is None else list(dataset.class_names)


def _test_file(test_data, kind, path, test, train, info, dtype):
    """The test set of a separate file, of the same kind as the training data."""
    where = display_path(test_data)
    if test is not None:
        raise DataError(f"{where}: {display_path(path or _SHIPPED)} holds its own test set; a "
                        "separate test file is for data without one")
    if data_kind(test_data) != kind:
        raise DataError(f"{where}: not the same kind of file as {display_path(path)}")
    shape = train.image_shape
    if kind == "table":
        test, _ = _table(test_data, info["label"], shape, dtype, train.class_names,
                         tuple(info["features"]))
    else:
        test = _archive(test_data, shape, dtype, train.class_names, test_only=True)[0]
    if test.images.shape[1] != train.images.shape[1]:
        raise DataError(f"{where}: {test.images.shape[1]} values per sample, but the training "
                        f"data has {train.images.shape[1]}")
    if (test.image_shape is None) != (train.image_shape is None) or (
            test.images.dtype == np.uint8) != (train.images.dtype == np.uint8):
        raise DataError(f"{where}: its samples are not of the training data's kind (images "
                        "of 0-255 pixels, or features)")
    return test, {"path": str(Path(test_data).resolve()), **_digest([test_data])}


def load_data(path=None, *, label=None, test_data=None, test_fraction=0.2, seed=0,
              image_shape=None, dtype="float64"):
    """Load labelled samples as a training and a test set.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A folder of IDX files in MNIST's layout, a Keras-style ``.npz``, or a ``.csv``,
        ``.tsv`` (plain or ``.gz``) or ``.parquet`` table; None: the shipped MNIST.
    label : str or int, optional
        A table's label column, by name or index; default ``label``, ``target``, ``class`` or
        ``y`` (any case), else the last column.
    test_data : str or os.PathLike, optional
        A separate test file of the same kind, for data without a test set of its own.
    test_fraction : float
        For data without a test set (and no ``test_data``): the share of each class set aside
        as the test set, in a random order drawn from ``seed``
        (:func:`jitnet.data.split.stratified_split`).
    seed : int
    image_shape : (int, int), optional
        Declares the samples to be ``rows x cols`` images (taken from the data when it has a
        shape of its own: IDX files, ``(N, rows, cols)`` arrays).
    dtype : {"float64", "float32"}
        Of float features.

    Returns
    -------
    train, test : Dataset
        With ``class_names`` (the label values in order) for every source but IDX files.

    Raises
    ------
    DataError
        One line naming the file: see :func:`jitnet.load_mnist`, :mod:`jitnet.data.archives`,
        :func:`jitnet.data.tables.read_table`, :mod:`jitnet.data.labels`; also a test file
        with a class or a feature the training data lacks, or a split that leaves no test
        sample.
    MissingDependencyError
        A table, and pandas or pyarrow is not installed (``pip install "jitnet[tables]"``).
    """
    loaded = read_source(path, label=label, test_data=test_data, image_shape=image_shape,
                         dtype=np.dtype(dtype))
    if loaded.test is not None:
        return loaded.train, loaded.test
    return split_off_test(loaded.train, test_fraction, seed, path)


def split_off_test(data, fraction, seed, path):
    """``data`` as (train, test) by :func:`stratified_split`; a DataError naming ``path`` when
    the test part would be empty."""
    if not 0 < fraction < 1:
        raise DataError(f"test_fraction must lie in (0, 1), got {fraction!r}")
    train, test = stratified_split(data.labels, fraction, seed)
    if len(test) == 0:
        raise DataError(f"{display_path(path)}: a test fraction of {fraction:g} of its "
                        f"{len(data):,} samples leaves no test sample")
    return data._part(train, "train"), data._part(test, "test")
