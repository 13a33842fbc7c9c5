"""Keras-style ``.npz`` archives of labelled samples: ``x_train``, ``y_train`` and optionally
``x_test``, ``y_test`` (``X_train``, ``X_test`` are accepted too), as ``np.savez`` writes them
and as ``keras.datasets`` ships MNIST and Fashion-MNIST.

Read through :class:`jitnet.io.npzfile.NpzArchive`, which never loads pickles and checks every
array's declared size against the file before reading it; the arrays' shapes and types are
checked against each other from their headers, before any data is read. Shapes: ``x``
``(N, rows, cols)`` images (``(N, rows, cols, 1)`` is taken as ``(N, rows, cols)``) or
``(N, n_features)`` rows; ``y`` ``(N,)`` (or ``(N, 1)``) labels of any kind.
"""

from jitnet.io.errors import DataError
from jitnet.io.npzfile import NpzArchive

__all__ = ["read_archive"]

_NAMES = {"x_train": ("x_train", "X_train"), "y_train": ("y_train", "Y_train"),
          "x_test": ("x_test", "X_test"), "y_test": ("y_test", "Y_test")}


def _find(headers, key):
    found = [name for name in _NAMES[key] if name in headers]
    return found[0] if found else None


def _sample_shape(shape):
    """One sample's shape, a grey channel of 1 dropped."""
    return shape[1:3] if len(shape) == 4 else shape[1:]


def _check_x(header, name, fail):
    shape, kind = header.shape, header.dtype.kind
    if kind not in "biuf":
        fail(f"{name} holds {header.dtype}, not numbers")
    if len(shape) == 4 and shape[3] != 1:
        fail(f"{name} holds images with {shape[3]} channels, shape {shape}; jitnet trains on "
             "grey images (N, rows, cols) or feature rows (N, n_features)")
    if not 2 <= len(shape) <= 4:
        fail(f"{name} has shape {shape}; expected images (N, rows, cols) or feature rows "
             "(N, n_features)")
    if shape[0] == 0:
        fail(f"{name} holds no samples")
    if 0 in shape:
        fail(f"{name} has shape {shape}: samples without values")


def _check_y(header, name, n, x_name, fail):
    shape, kind = header.shape, header.dtype.kind
    if kind not in "biufUS":
        fail(f"{name} holds {header.dtype}, not class labels (numbers, text or booleans)")
    if shape not in ((n,), (n, 1)):
        fail(f"{name} has shape {shape}; expected one label per sample of {x_name}: ({n},)")


def read_archive(path):
    """The training and (when present) test arrays of a Keras-style ``.npz``.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        ``x_train``, ``y_train`` (labels flattened to (N,)), and ``x_test``, ``y_test`` (None
        when the archive holds no test set). ``(N, rows, cols, 1)`` images come back as
        ``(N, rows, cols)``.

    Raises
    ------
    DataError
        One line naming the file: not a readable ``.npz`` (see
        :class:`~jitnet.io.npzfile.NpzArchive`: damaged, pickled, claiming more than it holds),
        no ``x_train``/``y_train``, a test set with only one of its two arrays, shapes that do
        not fit together (sample counts, the test samples' shape), or types that are not
        numbers (``x``) or class labels (``y``).
    """
    with NpzArchive(path, DataError) as archive:
        headers = archive.headers

        def fail(problem):
            raise archive.error(problem) from None

        names = {key: _find(headers, key) for key in _NAMES}
        for key in ("x_train", "y_train"):
            if names[key] is None:
                held = ", ".join(list(headers)[:8]) or "nothing"
                fail(f"no {key} (or {_NAMES[key][1]}) array; a Keras-style .npz holds x_train, "
                     f"y_train and optionally x_test, y_test (it holds {held})")
        if (names["x_test"] is None) != (names["y_test"] is None):
            have, lack = ("x_test", "y_test") if names["y_test"] is None else ("y_test", "x_test")
            fail(f"holds {have} but no {lack}")
        splits = ("train", "test") if names["x_test"] else ("train",)
        for split in splits:
            x, y = names[f"x_{split}"], names[f"y_{split}"]
            _check_x(headers[x], x, fail)
            _check_y(headers[y], y, headers[x].shape[0], x, fail)
        if len(splits) == 2:
            train_shape, test_shape = (_sample_shape(headers[names[f"x_{split}"]].shape)
                                       for split in splits)
            if test_shape != train_shape:
                fail(f"{names['x_test']} samples have shape {test_shape}, but "
                     f"{names['x_train']} samples {train_shape}")
        arrays = {key: None for key in _NAMES}
        for key, name in names.items():
            if name is not None and (key.endswith("train") or len(splits) == 2):
                array = archive.read(name)
                if key.startswith("y"):
                    array = array.reshape(-1)
                elif array.ndim == 4:
                    array = array[..., 0]
                arrays[key] = array
    return arrays
