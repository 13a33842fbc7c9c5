"""Class labels of any kind -- integers with gaps, words, booleans -- as the class indices a
network is trained on, and the class names that say what each index means.

The classes of a labelled file are its distinct label values, in their natural order: numbers
ascending (``3, 7, 11``), text in code-point order (``"setosa", "versicolor"``), ``False``
before ``True``. Class ``k`` is the k-th of them and its name is the value as text (``"7"``,
``"setosa"``, ``"True"``); a whole number stored as a float (``7.0``) is the class ``"7"``. A
second file (a test file) is encoded by those names: its labels must be among them.

Shapes: ``values: (N,)``; ``codes: (N,)`` uint8 (uint16 beyond 256 classes).
"""

import numpy as np

from jitnet.io.errors import DataError

__all__ = ["MAX_CLASSES", "code_dtype", "encode_labels", "encode_with"]

#: The most classes a data set may have (class indices are stored as uint16).
MAX_CLASSES = 65536


def code_dtype(n_classes):
    """The smallest unsigned type that holds ``0 .. n_classes-1``: uint8, else uint16."""
    return np.dtype(np.uint8 if n_classes <= 256 else np.uint16)


def _distinct(values, where):
    """(distinct values as names, index of each value among them): the classes of ``values``."""
    values = np.asarray(values)
    if values.ndim != 1:
        raise DataError(f"{where}: labels must be one value per sample, got shape {values.shape}")
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values)
        if bad.any():
            raise DataError(f"{where}: label missing (NaN) at row {int(np.argmax(bad)) + 1}")
        bad = values != np.floor(values)
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"{where}: label {values[row]:g} at row {row + 1} is not a class: "
                            "labels must be whole numbers, words or true/false (jitnet "
                            "classifies; it does not fit numbers)")
        values = values.astype(np.int64)
    elif values.dtype.kind == "S":
        values = np.char.decode(values, "utf-8", "replace")
    elif values.dtype.kind == "O":
        values = values.astype(str)
    elif values.dtype.kind not in "biuU":
        raise DataError(f"{where}: labels of type {values.dtype} are not classes (whole numbers, "
                        "words or true/false)")
    distinct, inverse = np.unique(values, return_inverse=True)
    return [str(v) for v in distinct.tolist()], inverse.reshape(-1)


def encode_labels(values, where):
    """The classes of ``values`` and each value's class index.

    Parameters
    ----------
    values : array_like, (N,)
        Integers, whole floats, booleans or text.
    where : str
        Names the file (or column) in messages.

    Returns
    -------
    codes : ndarray of uint8 or uint16, (N,)
        The class of each value.
    names : tuple of str
        The class names in class order.

    Raises
    ------
    DataError
        One line naming ``where``: no labels, one class only, more than :data:`MAX_CLASSES`
        classes, a missing or fractional label, or labels of another type.
    """
    names, inverse = _distinct(values, where)
    if not names:
        raise DataError(f"{where}: no labels")
    if len(names) == 1:
        raise DataError(f"{where}: every label is {names[0]!r}: one class only; a classifier "
                        "needs at least two")
    if len(names) > MAX_CLASSES:
        raise DataError(f"{where}: {len(names):,} distinct labels, more than the "
                        f"{MAX_CLASSES:,} classes jitnet trains on")
    return inverse.astype(code_dtype(len(names))), tuple(names)


def encode_with(values, names, where):
    """The class index of each of ``values`` among the classes ``names`` (as
    :func:`encode_labels` named them); a DataError names the first label that is not one."""
    found, inverse = _distinct(values, where)
    index = {name: k for k, name in enumerate(names)}
    missing = [name for name in found if name not in index]
    if missing:
        row = int(np.argmax(inverse == found.index(missing[0])))
        shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
        raise DataError(f"{where}: class {missing[0]!r} (row {row + 1}) is not one of the "
                        f"{len(names)} classes of the training data ({shown})")
    lookup = np.array([index[name] for name in found], dtype=code_dtype(len(names)))
    return lookup[inverse]
