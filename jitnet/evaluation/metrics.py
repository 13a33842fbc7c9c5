"""Classification metrics on predicted labels and outputs: numpy only, no plotting.

Shapes: ``labels, predicted: (N,)`` integer classes in ``0 .. n_classes-1``; a confusion
``matrix: (n_classes, n_classes)`` with true classes as rows and predicted classes as columns;
``probabilities: (n_classes,)`` or ``(N, n_classes)``.
"""

import operator

import numpy as np

__all__ = ["confusion_matrix", "precision_recall", "format_confusion", "top_k"]


def _classes(values, name, n_classes):
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {values.shape}")
    if values.size and values.dtype.kind not in "iu":
        if values.dtype.kind == "b" or not np.all(np.mod(values, 1) == 0):
            raise ValueError(f"{name} must be integer class labels, got dtype {values.dtype}")
    values = values.astype(np.int64)
    if values.size and (values.min() < 0 or values.max() >= n_classes):
        raise ValueError(f"{name} must lie in [0, {n_classes - 1}], "
                         f"got values from {values.min()} to {values.max()}")
    return values


def confusion_matrix(labels, predicted, n_classes):
    """Counts of (true, predicted) pairs.

    Parameters
    ----------
    labels, predicted : array_like of int, (N,)
        True and predicted classes, each in ``0 .. n_classes-1``.
    n_classes : int

    Returns
    -------
    ndarray of int64, (n_classes, n_classes)
        ``matrix[i, j]`` is the number of samples of class ``i`` predicted as ``j``; the matrix
        sums to N, its rows to the class counts and its trace to the number right.

    Raises
    ------
    ValueError
        Lengths differ, values are not integer classes or lie outside ``0 .. n_classes-1``.
    """
    n_classes = operator.index(n_classes)
    if n_classes < 1:
        raise ValueError(f"n_classes must be positive, got {n_classes}")
    labels = _classes(labels, "labels", n_classes)
    predicted = _classes(predicted, "predicted", n_classes)
    if labels.shape != predicted.shape:
        raise ValueError(f"{len(labels)} labels but {len(predicted)} predictions")
    counts = np.bincount(labels * n_classes + predicted, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes).astype(np.int64)


def _matrix(matrix):
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"a confusion matrix must be square, got shape {matrix.shape}")
    if matrix.dtype.kind not in "iuf" or np.any(matrix < 0) or not np.all(np.isfinite(matrix)):
        raise ValueError("a confusion matrix must hold non-negative counts")
    return matrix


def precision_recall(matrix):
    """Per-class precision and recall of a confusion matrix.

    Parameters
    ----------
    matrix : array_like, (n_classes, n_classes)
        Rows are true classes, columns predicted ones (as :func:`confusion_matrix` makes).

    Returns
    -------
    precision : ndarray of float64, (n_classes,)
        Of the samples predicted as class ``k``, the fraction that are ``k``:
        ``matrix[k, k] / matrix[:, k].sum()``; NaN for a class never predicted.
    recall : ndarray of float64, (n_classes,)
        Of the samples of class ``k``, the fraction predicted as ``k``:
        ``matrix[k, k] / matrix[k, :].sum()``; NaN for a class with no samples.
    """
    matrix = _matrix(matrix).astype(np.float64)
    right = np.diag(matrix)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(matrix.sum(axis=0) > 0, right / matrix.sum(axis=0), np.nan)
        recall = np.where(matrix.sum(axis=1) > 0, right / matrix.sum(axis=1), np.nan)
    return precision, recall


def _percent(value):
    return "-" if np.isnan(value) else f"{100 * value:.1f}%"


def format_confusion(matrix, rates=False, class_names=None):
    """A confusion matrix as aligned text.

    Parameters
    ----------
    matrix : array_like of int, (n_classes, n_classes)
    rates : bool
        Also show each class's recall at the end of its row and each class's precision in a last
        line (``-`` where undefined).
    class_names : sequence of str, optional
        Row and column headings (columns cut to 12 characters); default the class indices.

    Returns
    -------
    str
        A heading ``true \\ predicted``, a header of predicted classes, then one line per true
        class: the class, then its counts (thousands separated by commas).
    """
    matrix = _matrix(matrix)
    n = matrix.shape[0]
    names = [str(k) for k in range(n)] if class_names is None else [str(c) for c in class_names]
    if len(names) != n:
        raise ValueError(f"{len(names)} class names for {n} classes")
    heads = [name[:12] for name in names]
    width = max(len(f"{int(matrix.max()):,}"), *map(len, heads), 3)
    if rates:
        width = max(width, 6)  # "100.0%"
    left = max(4, *map(len, names))
    header = " " * (left + 2) + " ".join(f"{h:>{width}}" for h in heads)
    lines = ["true \\ predicted", header + ("   recall" if rates else "")]
    precision, recall = precision_recall(matrix) if rates else (None, None)
    for i in range(n):
        row = f"{names[i]:>{left}}  " + " ".join(f"{int(v):>{width},}" for v in matrix[i])
        lines.append(row + (f"  {_percent(recall[i]):>7}" if rates else ""))
    if rates:
        lines.append(f"{'prec':<{left}}  " + " ".join(f"{_percent(p):>{width}}"
                                                       for p in precision))
    return "\n".join(lines)


def top_k(probabilities, k):
    """The ``k`` most likely classes and their scores, most likely first.

    Parameters
    ----------
    probabilities : array_like, (n_classes,) or (N, n_classes)
        Scores per class (outputs, or :func:`jitnet.data.images.probabilities`).
    k : int
        1 to n_classes.

    Returns
    -------
    classes : ndarray of int64, (k,) or (N, k)
        Ties go to the lower class index, as ``argmax`` does.
    scores : ndarray, (k,) or (N, k)
        ``probabilities`` at those classes.
    """
    scores = np.asarray(probabilities)
    if scores.ndim not in (1, 2) or scores.shape[-1] == 0:
        raise ValueError(
            f"probabilities must have shape (n_classes,) or (N, n_classes), got {scores.shape}"
        )
    k = operator.index(k)
    if not 1 <= k <= scores.shape[-1]:
        raise ValueError(f"k must be between 1 and {scores.shape[-1]}, got {k}")
    # A stable sort of the negated scores keeps equal scores in class order.
    key = -scores.astype(np.float64) if scores.dtype.kind in "ub" else -scores
    classes = np.argsort(key, axis=-1, kind="stable")[..., :k].astype(np.int64)
    return classes, np.take_along_axis(scores, classes, axis=-1)
