"""A test set carved out of one labelled file: stratified (each class keeps its share) and seeded.

The samples are put in one random order drawn from the seed, and the first ``round(fraction *
n_k)`` samples of each class ``k`` in that order go to the test set (never all of a class: at
least one stays for training). Both parts keep that random order, so that a validation hold-out
taken from the end of the training part is a random sample of it, even when the file is sorted
by class. The same labels, fraction and seed always give the same parts.
"""

import numpy as np

__all__ = ["SPLIT_SPAWN_KEY", "stratified_split"]

#: The split draws from its own stream of the run's seed (the weights, the shuffling and the
#: distortions' fields have theirs).
SPLIT_SPAWN_KEY = (3,)


def stratified_split(labels, fraction, seed):
    """Indices of the training and the test part.

    Parameters
    ----------
    labels : array_like of int, (N,)
        Class indices ``0 .. K-1``.
    fraction : float
        The share of each class that goes to the test part, in (0, 1).
    seed : int
        Seeds ``np.random.SeedSequence(seed, spawn_key=SPLIT_SPAWN_KEY)``.

    Returns
    -------
    train, test : ndarray of int64
        Disjoint indices covering ``0 .. N-1``, each in the random order described above.
    """
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=SPLIT_SPAWN_KEY))
    order = rng.permutation(len(labels))
    shuffled = labels[order]
    counts = np.bincount(shuffled)
    wanted = np.minimum(np.floor(counts * fraction + 0.5), np.maximum(counts - 1, 0))
    # Each sample's rank among the samples of its class, in the random order.
    by_class = np.argsort(shuffled, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(labels), np.int64)
    rank[by_class] = np.arange(len(labels)) - np.repeat(starts, counts)
    to_test = rank < wanted[shuffled]
    return order[~to_test], order[to_test]
