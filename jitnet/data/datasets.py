"""Labelled samples: the `Dataset` container, and `load_mnist` for files in MNIST's layout.

Shapes: ``images: (N, n_in)`` -- uint8 pixels of ``rows*cols`` images flattened row-major, as
the tutorial flattens 28x28 into 784, or float features (a table's columns, float images);
``labels: (N,)`` class indices (uint8, uint16 beyond 256 classes); ``inputs(): (N, n_in)``
float (pixels in [0, 1]); ``targets(): (N, n_classes)``.
"""

import operator
from pathlib import Path

import numpy as np

from jitnet.engine.components import TARGET_OFF, TARGET_ON, one_hot_targets  # noqa: F401 (re-exported)
from jitnet.io.atomic import display_path
from jitnet.data.idx import DataError, read_idx
from jitnet.data.labels import MAX_CLASSES, code_dtype

__all__ = ["Dataset", "load_mnist", "one_hot_targets", "TARGET_ON", "TARGET_OFF"]

# The tutorial's targets: sigmoid outputs never reach 0 or 1, so aim at 0.1 and 0.9 instead.

_SHIPPED = Path(__file__).resolve().parent / "mnist"
_PARTS = (  # (split, what, file name stem, IDX kind)
    ("train", "images", "train-images", "idx3"),
    ("train", "labels", "train-labels", "idx1"),
    ("test", "images", "t10k-images", "idx3"),
    ("test", "labels", "t10k-labels", "idx1"),
)
_FEATURE_TYPES = (np.uint8, np.float32, np.float64)


class Dataset:
    """Samples with one class label each: images, or the rows of a table.

    Parameters
    ----------
    images : array_like, shape (N, n_in), or (N, rows, cols) for images
        uint8 pixels 0-255, or float32/float64 features (finite). Stored as a C-contiguous
        (N, n_in) array; a view of the input when it already is one.
    labels : array_like of int, shape (N,)
        Class of each sample, in ``0 .. n_classes-1``. Stored as uint8 (uint16 beyond 256
        classes).
    image_shape : tuple of int, or None
        ``(rows, cols)`` of one image, ``rows * cols = n_in``; None for samples that are not
        images (a table's rows): no distortions or pictures of them.
    n_classes : int
        Number of classes, 2 to 65,536.
    name : str, optional
        Shown by ``repr`` and in error messages, e.g. ``"train"``.
    class_names : sequence of str, optional
        What each class index means (``("setosa", "versicolor", "virginica")``); None: the
        indices themselves, as for MNIST's digits.

    Attributes
    ----------
    images : numpy.ndarray, shape (N, n_in)
    labels : numpy.ndarray of uint8 or uint16, shape (N,)
    image_shape : tuple of int, (rows, cols), or None
    n_classes : int
    name : str
    class_names : tuple of str, or None

    Raises
    ------
    DataError
        Shapes, dtypes, values or labels do not fit together.
    """

    __slots__ = ("images", "labels", "image_shape", "n_classes", "name", "class_names")

    def __init__(self, images, labels, image_shape, n_classes, name="", class_names=None):
        name = str(name)
        where = f"Dataset {name!r}"
        if image_shape is not None:
            try:
                rows, cols = (operator.index(size) for size in image_shape)
            except (TypeError, ValueError):
                raise DataError(f"{where}: image_shape must be two ints (rows, cols) or None, "
                                f"got {image_shape!r}") from None
            if rows < 1 or cols < 1:
                raise DataError(f"{where}: image_shape must be positive, got ({rows}, {cols})")
            image_shape = (rows, cols)
        n_classes = _check_n_classes(n_classes)

        images = np.asarray(images)
        if images.dtype not in _FEATURE_TYPES:
            raise DataError(f"{where}: images must be uint8 pixels 0-255 or float32/float64 "
                            f"features, got dtype {images.dtype}")
        if image_shape is not None and images.ndim == 3 and images.shape[1:] == image_shape:
            images = images.reshape(len(images), rows * cols)
        if image_shape is None and (images.ndim != 2 or images.shape[1] == 0):
            raise DataError(f"{where}: samples must have shape (N, n_in), got {images.shape}")
        if image_shape is not None and (images.ndim != 2 or images.shape[1] != rows * cols):
            raise DataError(
                f"{where}: images must have shape (N, {rows * cols}) or (N, {rows}, {cols}) for "
                f"image_shape ({rows}, {cols}), got {images.shape}"
            )
        if images.dtype.kind == "f" and not np.isfinite(images).all():
            raise DataError(f"{where}: features must be finite (no NaN or inf)")
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.dtype.kind not in "ui":
            raise DataError(
                f"{where}: labels must be a 1-D integer array, got {labels.dtype} of shape "
                f"{labels.shape}"
            )
        if len(labels) != len(images):
            raise DataError(f"{where}: {len(labels)} labels for {len(images)} images")
        _check_labels(labels, n_classes, where)
        if class_names is not None:
            class_names = tuple(str(c) for c in class_names)
            if len(class_names) != n_classes or len(set(class_names)) != n_classes:
                raise DataError(f"{where}: class_names must be {n_classes} distinct names, got "
                                f"{len(set(class_names))} distinct of {len(class_names)}")

        self.images = np.ascontiguousarray(images)
        self.labels = np.ascontiguousarray(labels, dtype=code_dtype(n_classes))
        self.image_shape = image_shape
        self.n_classes = n_classes
        self.name = name
        self.class_names = class_names

    @classmethod
    def _trusted(cls, images, labels, image_shape, n_classes, name, class_names=None):
        """Build from parts already known to be valid (views of a valid Dataset)."""
        dataset = cls.__new__(cls)
        dataset.images = images
        dataset.labels = labels
        dataset.image_shape = image_shape
        dataset.n_classes = n_classes
        dataset.name = name
        dataset.class_names = class_names
        return dataset

    def __len__(self):
        return len(self.labels)

    def __repr__(self):
        return (
            f"Dataset(name={self.name!r}, samples={len(self)}, image_shape={self.image_shape}, "
            f"n_classes={self.n_classes})"
        )

    def __getitem__(self, index):
        """Samples ``index`` (a slice) as a Dataset.

        A view sharing memory with this one when the slice's step is 1 (the usual case,
        ``data[:1000]``); a copy for other steps, since images must stay C-contiguous.
        """
        if not isinstance(index, slice):
            raise TypeError(
                f"Dataset indices must be slices, not {type(index).__name__}; "
                f"use .images[i] and .labels[i] for single samples"
            )
        start, stop, step = index.indices(len(self))
        if step == 1:
            stop = max(start, stop)
            name = f"{self.name}[{start}:{stop}]"
        else:
            name = f"{self.name}[{start}:{stop}:{step}]"
        return self._part(index, name)

    def _part(self, index, name):
        """The samples ``index`` (a slice or an index array) as a Dataset named ``name``."""
        return Dataset._trusted(
            np.ascontiguousarray(self.images[index]),
            np.ascontiguousarray(self.labels[index]),
            self.image_shape,
            self.n_classes,
            name,
            self.class_names,
        )

    def split(self, n_last):
        """Split off the last ``n_last`` samples, e.g. as a validation hold-out.

        Parameters
        ----------
        n_last : int
            Number of samples in the second part, ``0 <= n_last < len(self)``.

        Returns
        -------
        first, last : Dataset
            Views (no copy) of samples ``[:N - n_last]`` and ``[N - n_last:]``.

        Raises
        ------
        DataError
            ``n_last`` is negative or would leave the first part empty.
        """
        n_last = operator.index(n_last)
        if not 0 <= n_last < len(self):
            choice = f"choose 0 to {len(self) - 1}" if len(self) else "it is empty"
            raise DataError(
                f"Dataset {self.name!r}: cannot hold out {n_last} of its {len(self)} samples; "
                f"{choice}"
            )
        cut = len(self) - n_last
        return self[:cut], self[cut:]

    def inputs(self, dtype=np.float64):
        """The pixels scaled to [0, 1] (float features as they are), as the network's input
        layer takes them.

        Parameters
        ----------
        dtype : numpy floating dtype, optional
            float64 (the default) or float32.

        Returns
        -------
        numpy.ndarray, shape (N, n_in)
            ``images / 255`` (uint8) or ``images`` (float) in ``dtype``, a new C-contiguous
            array.
        """
        dtype = _float_dtype(dtype, "inputs")
        if self.images.dtype != np.uint8:
            return np.array(self.images, dtype=dtype)
        out = np.empty(self.images.shape, dtype=dtype)
        np.divide(self.images, dtype.type(255), out=out, dtype=dtype)
        return out

    def targets(self, dtype=np.float64):
        """The tutorial's target vectors: 0.9 for the true class, 0.1 for every other.

        Returns a new numpy.ndarray of shape (N, n_classes) in ``dtype`` (a floating dtype,
        float64 by default, as for :meth:`inputs`): row ``i`` is ``TARGET_OFF`` everywhere except
        ``TARGET_ON`` at ``labels[i]``.
        """
        return one_hot_targets(self.labels, self.n_classes, _float_dtype(dtype, "targets"))


def load_mnist(path=None, n_classes=None):
    """Load a training and a test set stored in MNIST's four-file IDX layout.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each plain or gzip (``.gz``),
        each also accepted with a dot before ``idx`` (``train-images.idx3-ubyte``). None, the
        default, loads the copy of MNIST shipped inside the package. Fashion-MNIST, EMNIST digits
        or any other set in this layout loads the same way.
    n_classes : int, optional
        Number of classes; every label must be below it. None, the default, infers it as the
        largest label in either set plus one (at least 2).

    Returns
    -------
    train, test : Dataset
        Named ``"train"`` and ``"test"``. Image size comes from the files: for MNIST
        ``train.images`` is (60000, 784) and ``test.images`` (10000, 784), uint8, with
        ``image_shape`` (28, 28) and ``n_classes`` 10.

    Raises
    ------
    DataError
        ``path`` is not a directory; a file is missing (the message lists the names looked for);
        a file is malformed (see `read_idx`); images are not ``(N, rows, cols)`` uint8; labels
        are not ``(N,)`` uint8; image and label counts differ; the two sets' image sizes differ;
        a label is outside ``0 .. n_classes-1``. Each message names the file.

    Notes
    -----
    Nothing is cached: every call reads the files again (about 0.2 s for MNIST, mostly gzip
    decompression) and returns new, writable arrays that belong to the caller.
    """
    directory = _SHIPPED if path is None else Path(path).expanduser()
    try:
        files = _find_files(directory)
    except OSError as error:  # e.g. a directory we may not list
        raise DataError(
            f"{display_path(directory)}: cannot read ({error.strerror or error})"
        ) from None
    arrays = {
        split: _read_pair(files[split, "images"], files[split, "labels"])
        for split in ("train", "test")
    }
    train_shape, test_shape = arrays["train"][0].shape[1:], arrays["test"][0].shape[1:]
    if test_shape != train_shape:
        raise DataError(
            f"{display_path(files['test', 'images'])}: images are {test_shape[0]}x"
            f"{test_shape[1]}, but the training images in {display_path(files['train', 'images'])}"
            f" are {train_shape[0]}x{train_shape[1]}"
        )

    if n_classes is None:
        n_classes = max(2, 1 + max(int(labels.max()) for _, labels in arrays.values()))
    else:
        n_classes = _check_n_classes(n_classes)
        for split in ("train", "test"):
            _check_labels(arrays[split][1], n_classes, display_path(files[split, "labels"]))

    rows, cols = train_shape
    return tuple(
        Dataset._trusted(
            images.reshape(len(images), rows * cols), labels, (rows, cols), n_classes, split
        )
        for split, (images, labels) in arrays.items()
    )


def _find_files(directory):
    """The four files' paths in ``directory``, {(split, what): path}; DataError if one is missing.

    A name that exists but is not a regular file (a FIFO, a directory) is still returned, so
    that `read_idx` says what is wrong with it instead of calling it missing.
    """
    where = display_path(directory)
    if not directory.is_dir():
        what = "not a directory" if directory.exists() else "no such directory"
        raise DataError(f"{where}: {what}; expected a directory holding the four MNIST files")
    files, missing = {}, []
    for split, what, stem, kind in _PARTS:
        names = [f"{stem}{sep}{kind}-ubyte{gz}" for sep in "-." for gz in ("", ".gz")]
        candidates = [directory / name for name in names]
        found = [p for p in candidates if p.is_file()] or [p for p in candidates if p.exists()]
        if found:
            files[split, what] = found[0]
        else:
            missing.append(f"{split} {what} (looked for {', '.join(names)})")
    if missing:
        raise DataError(f"{where}: missing {'; '.join(missing)}")
    return files


def _read_pair(images_file, labels_file):
    """Read one set's images and labels; raise DataError naming the file that does not fit."""
    images, labels = read_idx(images_file), read_idx(labels_file)
    images_file, labels_file = display_path(images_file), display_path(labels_file)
    if images.ndim != 3:
        raise DataError(
            f"{images_file}: expected images of shape (N, rows, cols), found shape {images.shape}"
        )
    if images.dtype != np.uint8:
        raise DataError(f"{images_file}: expected uint8 pixels (type 0x08), found {images.dtype}")
    if len(images) == 0:
        raise DataError(f"{images_file}: holds no images")
    if 0 in images.shape:
        raise DataError(f"{images_file}: images have no pixels: shape {images.shape}")
    if labels.ndim != 1:
        raise DataError(f"{labels_file}: expected labels of shape (N,), found shape {labels.shape}")
    if labels.dtype != np.uint8:
        raise DataError(f"{labels_file}: expected uint8 labels (type 0x08), found {labels.dtype}")
    if len(labels) != len(images):
        raise DataError(
            f"{labels_file}: {len(labels)} labels, but {images_file} holds {len(images)} images"
        )
    return images, labels


def _float_dtype(dtype, method):
    """Return ``dtype`` as a numpy dtype, or raise TypeError naming ``method`` if not floating."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"{method}() needs a floating dtype, got {dtype}")
    return dtype


def _check_n_classes(n_classes):
    """Return ``n_classes`` as an int, or raise DataError when it is outside 2..MAX_CLASSES."""
    n_classes = operator.index(n_classes)
    if not 2 <= n_classes <= MAX_CLASSES:
        raise DataError(f"n_classes must be 2 to {MAX_CLASSES}, got {n_classes}")
    return n_classes


def _check_labels(labels, n_classes, where):
    """Raise DataError naming ``where`` when a label lies outside ``0 .. n_classes-1``."""
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        bad = int(np.flatnonzero((labels < 0) | (labels >= n_classes))[0])
        raise DataError(
            f"{where}: label {labels[bad]} at index {bad} is outside the class range "
            f"0..{n_classes - 1}"
        )
