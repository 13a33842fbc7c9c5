"""jitnet.evaluation.metrics: confusion matrix, precision/recall, text table and top-k, against hand counts."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jitnet.evaluation.metrics import confusion_matrix, format_confusion, precision_recall, top_k

# A 3-class example counted by hand:
#   true 0: predicted 0, 0, 1, 1   true 1: predicted 1, 1   true 2: predicted 2, 0, 2
LABELS = [0, 0, 0, 0, 1, 1, 2, 2, 2]
PREDICTED = [0, 0, 1, 1, 1, 1, 2, 0, 2]
MATRIX = [[2, 2, 0],
          [0, 2, 0],
          [1, 0, 2]]


def test_confusion_matrix_by_hand():
    matrix = confusion_matrix(LABELS, PREDICTED, 3)
    assert matrix.dtype == np.int64
    assert matrix.tolist() == MATRIX
    assert matrix.sum() == len(LABELS)


def test_precision_recall_by_hand():
    precision, recall = precision_recall(MATRIX)
    # precision: of those predicted k, the fraction truly k (columns); recall: rows
    np.testing.assert_allclose(precision, [2 / 3, 2 / 4, 2 / 2])
    np.testing.assert_allclose(recall, [2 / 4, 2 / 2, 2 / 3])


def test_precision_is_nan_for_a_class_never_predicted_and_recall_for_an_absent_class():
    precision, recall = precision_recall([[3, 0, 0], [1, 0, 0], [0, 0, 0]])
    assert np.isnan(precision[1]) and np.isnan(precision[2])
    assert np.isnan(recall[2]) and recall[1] == 0.0 and recall[0] == 1.0


@pytest.mark.parametrize("seed, n, n_classes", [(0, 1000, 10), (1, 37, 3), (2, 0, 4), (3, 500, 47)])
def test_confusion_matrix_matches_counting_pairs(seed, n, n_classes):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    predicted = np.where(rng.random(n) < 0.8, labels, rng.integers(0, n_classes, n))
    matrix = confusion_matrix(labels, predicted, n_classes)
    expected = np.zeros((n_classes, n_classes), np.int64)
    for t, p in zip(labels, predicted):
        expected[t, p] += 1
    np.testing.assert_array_equal(matrix, expected)


def test_confusion_matrix_of_mnist_labels_sums_to_the_samples():
    from jitnet import load_mnist

    labels = load_mnist()[1].labels
    predicted = (labels.astype(np.int64) + (np.arange(len(labels)) % 7 == 0)) % 10
    matrix = confusion_matrix(labels, predicted, 10)
    assert matrix.sum() == len(labels) == 10000
    assert list(matrix.sum(axis=1)) == list(np.bincount(labels, minlength=10))
    assert np.trace(matrix) == int((predicted == labels).sum())


@pytest.mark.parametrize("labels, predicted, message", [
    ([0, 1, 3], [0, 1, 2], "labels must lie in"),
    ([0, 1, 2], [0, -1, 2], "predicted must lie in"),
    ([0, 1], [0, 1, 2], "2 labels but 3 predictions"),
    ([0.5, 1, 2], [0, 1, 2], "integer class labels"),
    ([[0, 1]], [[0, 1]], "1-D"),
])
def test_confusion_matrix_rejects_bad_input(labels, predicted, message):
    with pytest.raises(ValueError, match=message):
        confusion_matrix(labels, predicted, 3)


def test_confusion_matrix_accepts_integral_floats():
    assert confusion_matrix([0.0, 2.0], [2, 2], 3).tolist() == [[0, 0, 1], [0, 0, 0], [0, 0, 1]]


def test_format_confusion_rows_are_aligned_and_hold_the_counts():
    matrix = np.array([[1234, 5], [0, 7]])
    text = format_confusion(matrix)
    lines = text.splitlines()
    assert lines[0] == "true \\ predicted"
    rows = lines[2:]
    assert len({len(line) for line in lines[1:]}) == 1  # header and rows aligned
    assert [line.split() for line in rows] == [["0", "1,234", "5"], ["1", "0", "7"]]


def test_format_confusion_with_rates():
    lines = format_confusion(MATRIX, rates=True).splitlines()
    assert lines[1].split()[-1] == "recall"
    assert lines[2].split()[-1] == "50.0%" and lines[3].split()[-1] == "100.0%"
    assert lines[-1].split() == ["prec", "66.7%", "50.0%", "100.0%"]
    assert format_confusion([[0, 0], [0, 2]], rates=True).splitlines()[-1].split()[1] == "-"


def test_top_k_orders_and_breaks_ties_by_class():
    classes, scores = top_k([0.1, 0.5, 0.2, 0.5], 3)
    assert classes.tolist() == [1, 3, 2]
    np.testing.assert_allclose(scores, [0.5, 0.5, 0.2])
    classes, scores = top_k(np.array([[0.2, 0.7, 0.1], [0.6, 0.1, 0.3]]), 2)
    assert classes.tolist() == [[1, 0], [0, 2]]
    np.testing.assert_allclose(scores, [[0.7, 0.2], [0.6, 0.3]])


def test_top_k_of_unsigned_scores():
    assert top_k(np.array([3, 200, 7], np.uint8), 2)[0].tolist() == [1, 2]


@pytest.mark.parametrize("k", [0, 4])
def test_top_k_rejects_k_out_of_range(k):
    with pytest.raises(ValueError, match="k must be between 1 and 3"):
        top_k([0.2, 0.3, 0.5], k)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12).flatmap(lambda n: st.tuples(
    st.just(n),
    st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=200),
)))
def test_confusion_matrix_margins(case):
    n, pairs = case
    labels = np.array([t for t, _ in pairs], np.int64)
    predicted = np.array([p for _, p in pairs], np.int64)
    matrix = confusion_matrix(labels, predicted, n)
    assert matrix.shape == (n, n) and matrix.sum() == len(pairs)
    np.testing.assert_array_equal(matrix.sum(axis=1), np.bincount(labels, minlength=n))
    np.testing.assert_array_equal(matrix.sum(axis=0), np.bincount(predicted, minlength=n))
    assert np.trace(matrix) == int((labels == predicted).sum())
    precision, recall = precision_recall(matrix)
    for k in range(n):
        if (labels == k).any():
            assert recall[k] == pytest.approx(((labels == k) & (predicted == k)).sum()
                                              / (labels == k).sum())
        else:
            assert np.isnan(recall[k])
