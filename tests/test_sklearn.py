"""jitnet.sklearn against scikit-learn itself: the same parameters and random_state must give the
same weights (float64, within TOL), the same bookkeeping and the same messages."""

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn_helpers import (  # noqa: E402
    PROBLEMS, TOL, _both, _data, _fit_quietly, _problem, assert_same_training,
)


#: The settings of the grid below: alpha x momentum (classical, Nesterov) x shuffle x schedule.
MOMENTA = [(0.0, False), (0.9, False), (0.9, True)]
SETTINGS = [dict(alpha=alpha, momentum=mu, nesterovs_momentum=nesterov, shuffle=shuffle,
                 learning_rate=schedule)
            for alpha in (0.0, 1e-2) for mu, nesterov in MOMENTA for shuffle in (False, True)
            for schedule in ("constant", "invscaling", "adaptive")]
ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]


@pytest.mark.parametrize("problem", ["multiclass", "regression"])
@pytest.mark.parametrize("setting", range(len(SETTINGS)))
def test_every_setting_gives_scikit_learns_weights(problem, setting):
    X, t, sk, jn = _problem(problem, max_iter=2, activation="tanh", **SETTINGS[setting])
    _fit_quietly(sk, X, t)
    _fit_quietly(jn, X, t)
    assert_same_training(sk, jn)
    if SETTINGS[setting]["momentum"]:
        for a, b in zip(sk._optimizer.velocities, jn._optimizer.velocities):
            assert np.abs(a - b).max() <= TOL


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_problem_and_activation_gives_scikit_learns_weights(problem, activation):
    # Each pair with one setting of the grid, a different one for each pair.
    index = 7 * (list(PROBLEMS).index(problem) * len(ACTIVATIONS) + ACTIVATIONS.index(activation))
    X, t, sk, jn = _problem(problem, max_iter=2, activation=activation,
                            **SETTINGS[index % len(SETTINGS)])
    _fit_quietly(sk, X, t)
    _fit_quietly(jn, X, t)
    assert_same_training(sk, jn)
    assert jn.out_activation_ == {"multiclass": "softmax", "binary": "logistic",
                                  "multilabel": "logistic", "poisson": "exp"}.get(problem,
                                                                                  "identity")


def test_a_different_seed_gives_different_weights():
    # The comparison above can fail: another random_state changes the first weights.
    X, y = _data()
    sk, _ = _both(max_iter=2)
    _, jn = _both(max_iter=2, random_state=4)
    _fit_quietly(sk, X, y)
    _fit_quietly(jn, X, y)
    assert np.abs(sk.coefs_[0] - jn.coefs_[0]).max() > 1e-3


def test_random_state_instances_and_one_hidden_layer():
    X, y = _data()
    sk, jn = _both(max_iter=2, hidden_layer_sizes=12, random_state=np.random.RandomState(7),
                   shuffle=True)
    jn.set_params(random_state=np.random.RandomState(7))
    _fit_quietly(sk, X, y)
    _fit_quietly(jn, X, y)
    assert_same_training(sk, jn)


@pytest.mark.parametrize("learning_rate", ["constant", "adaptive"])
def test_tol_stops_and_adaptive_divides_the_rate_as_scikit_learn(learning_rate):
    # A large tol: the loss "stalls" after a few epochs, so the stopping rule and the adaptive
    # rate (divided by 5, then stopping at 1e-6) decide how many epochs run.
    X, y = _data(n=120)
    sk, jn = _both(learning_rate=learning_rate, tol=0.05, n_iter_no_change=2, max_iter=40,
                   learning_rate_init=0.002, momentum=0.5, shuffle=True)
    _fit_quietly(sk, X, y)
    _fit_quietly(jn, X, y)
    assert_same_training(sk, jn)
    assert sk.n_iter_ < 40  # the rule did stop training


def test_early_stopping_splits_scores_and_keeps_the_best_weights():
    X, y = _data(n=200)
    sk, jn = _both(early_stopping=True, validation_fraction=0.2, n_iter_no_change=3,
                   max_iter=12, tol=0.0, learning_rate_init=0.05, shuffle=True)
    _fit_quietly(sk, X, y)
    _fit_quietly(jn, X, y)
    assert_same_training(sk, jn)
    assert len(jn.validation_scores_) == jn.n_iter_


def test_verbose_prints_scikit_learns_lines(capsys):
    X, y = _data(n=60)
    sk, jn = _both(verbose=True, max_iter=6, tol=0.5, n_iter_no_change=1,
                   learning_rate="adaptive")
    _fit_quietly(sk, X, y)
    expected = capsys.readouterr().out
    _fit_quietly(jn, X, y)
    printed = capsys.readouterr().out
    assert "Iteration 1, loss = " in expected and "Setting learning rate to" in expected
    # Same lines; the losses printed to 8 decimals agree to the last digit but one.
    assert [line[:30] for line in printed.splitlines()] == \
        [line[:30] for line in expected.splitlines()]


def test_partial_fit_carries_velocities_and_rate_like_scikit_learn():
    X, y = _data()
    sk, jn = _both(momentum=0.9, learning_rate="invscaling", shuffle=True)
    classes = np.unique(y)
    for start in (0, 100, 200, 0):
        part = slice(start, start + 100)
        sk.partial_fit(X[part], y[part], classes=classes)
        jn.partial_fit(X[part], y[part], classes=classes)
    assert_same_training(sk, jn)
    assert jn.n_iter_ == 1 and jn.t_ == 400


@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("alpha", [0.0, 1e-2])
@pytest.mark.parametrize("varying", [False, True])
def test_sample_weight_as_scikit_learn_weighs_one_sample(early_stopping, alpha, varying):
    # One sample per update: scikit-learn divides the sample's gradient by its weight, so that
    # the weights divide alpha and change the validation split and score. Weights that differ
    # between samples make every first-layer row train at every sample (no lazy rows).
    X, y = _data(n=200)
    weight = np.random.RandomState(5).uniform(0.5, 3.0, len(y)) if varying else np.full(200, 2.)
    sk, jn = _both(max_iter=4, shuffle=True, momentum=0.9, nesterovs_momentum=True, alpha=alpha,
                   early_stopping=early_stopping, tol=0.0)
    _fit_quietly(sk, X, y, sample_weight=weight)
    _fit_quietly(jn, X, y, sample_weight=weight)
    assert_same_training(sk, jn)


def test_a_sample_of_weight_zero_is_not_trained_on():
    # scikit-learn ends such a fit with NaN weights (0/0); jitnet skips the sample.
    X, y = _data()
    weight = np.ones(len(y))
    weight[::7] = 0.0
    kept = weight > 0
    a = _fit_quietly(_both(max_iter=2, shuffle=False)[1], X, y, sample_weight=weight)
    b = _fit_quietly(_both(max_iter=2, shuffle=False)[1], X[kept], y[kept])
    assert all(np.array_equal(p, q) for p, q in zip(a.coefs_, b.coefs_))
    with pytest.raises(ValueError, match="weight.*zero"):
        _both()[1].fit(X, y, sample_weight=np.zeros(len(y)))
    with pytest.raises(ValueError, match="[Nn]egative"):
        _both()[1].fit(X, y, sample_weight=-weight)
