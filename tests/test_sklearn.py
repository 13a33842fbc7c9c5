"""jitnet.sklearn against scikit-learn itself: the same parameters and random_state must give the
same weights (float64, within TOL), the same bookkeeping and the same messages."""

import pickle
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn import neural_network  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from jitnet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

#: Largest difference allowed between a weight trained by scikit-learn and by jitnet (float64);
#: measured differences are below 2e-15 (the order of one sum differs).
TOL = 1e-9


def _data(n=300, n_features=20, n_classes=4, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.rand(n, n_features)
    # Labels that depend on X, so that the network learns and the losses fall.
    y = (X[:, :n_classes] * np.arange(1, n_classes + 1)).argmax(axis=1)
    return X, y


def _both(kind="classifier", **params):
    """(scikit-learn's estimator, jitnet's) with the same parameters."""
    sk, jn = {"classifier": (neural_network.MLPClassifier, MLPClassifier),
              "regressor": (neural_network.MLPRegressor, MLPRegressor)}[kind]
    base = dict(solver="sgd", batch_size=1, alpha=0.0, nesterovs_momentum=False,
                learning_rate_init=0.01, random_state=3, hidden_layer_sizes=(15, 7))
    base.update(params)
    own = {k: base.pop(k) for k in ("dtype", "threads") if k in base}  # jitnet's own
    return sk(**base), jn(**base, **own)


def _fit_quietly(estimator, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(*args, **kwargs)


def assert_same_training(sk, jn, tol=TOL):
    """Weights, losses and every counter scikit-learn keeps, compared by name."""
    assert jn.n_iter_ == sk.n_iter_
    assert jn.t_ == sk.t_
    assert jn.out_activation_ == sk.out_activation_
    assert jn.n_layers_ == sk.n_layers_ and jn.n_outputs_ == sk.n_outputs_
    for name in ("coefs_", "intercepts_"):
        for layer, (a, b) in enumerate(zip(getattr(sk, name), getattr(jn, name))):
            assert a.shape == b.shape, f"{name}[{layer}]"
            assert np.abs(a - b).max() <= tol, f"{name}[{layer}] differs by {np.abs(a - b).max()}"
    np.testing.assert_allclose(jn.loss_curve_, sk.loss_curve_, rtol=0, atol=tol)
    assert abs(jn.loss_ - sk.loss_) <= tol
    if sk.validation_scores_ is None:
        assert jn.validation_scores_ is None
        assert abs(jn.best_loss_ - sk.best_loss_) <= tol
    else:
        np.testing.assert_allclose(jn.validation_scores_, sk.validation_scores_, atol=tol)
        assert jn.best_validation_score_ == pytest.approx(sk.best_validation_score_, abs=tol)
    assert jn._no_improvement_count == sk._no_improvement_count
    assert jn._optimizer.learning_rate == pytest.approx(sk._optimizer.learning_rate, rel=1e-12)


@pytest.mark.parametrize("activation", ["logistic", "tanh", "relu"])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "adaptive"])
def test_two_epochs_give_scikit_learns_weights(activation, momentum, shuffle, learning_rate):
    X, y = _data()
    sk, jn = _both(activation=activation, momentum=momentum, shuffle=shuffle,
                   learning_rate=learning_rate, max_iter=2)
    _fit_quietly(sk, X, y)
    _fit_quietly(jn, X, y)
    assert_same_training(sk, jn)
    if momentum:
        for a, b in zip(sk._optimizer.velocities, jn._optimizer.velocities):
            assert np.abs(a - b).max() <= TOL


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
def test_sample_weight_as_scikit_learn_weighs_one_sample(early_stopping):
    # One sample per update: scikit-learn divides the sample's gradient by its weight, so that
    # (with alpha=0) the weights only change the validation split and score.
    X, y = _data(n=200)
    weight = np.random.RandomState(5).uniform(0.5, 3.0, len(y))
    sk, jn = _both(max_iter=4, shuffle=True, momentum=0.5, early_stopping=early_stopping,
                   tol=0.0)
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


def test_partial_fit_needs_classes_on_the_first_call():
    X, y = _data()
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        _both()[1].partial_fit(X, y)


def test_warm_start_uses_coefs_set_by_the_user():
    X, y = _data()
    sk, jn = _both(max_iter=1, warm_start=True)
    _fit_quietly(sk, X, y)
    _fit_quietly(jn, X, y)
    rng = np.random.RandomState(11)
    for est in (sk, jn):  # the same user weights into both
        est.coefs_ = [rng.uniform(-0.3, 0.3, c.shape) for c in sk.coefs_]
        rng = np.random.RandomState(11)
    _fit_quietly(sk, X, y)
    _fit_quietly(jn, X, y)
    assert_same_training(sk, jn)
    assert len(jn.loss_curve_) == 2


def test_predictions_and_probabilities_match_scikit_learns():
    X, y = _data()
    sk, jn = _both(max_iter=3, momentum=0.5)
    _fit_quietly(sk, X, y)
    _fit_quietly(jn, X, y)
    np.testing.assert_allclose(jn.predict_proba(X), sk.predict_proba(X), atol=1e-12)
    np.testing.assert_allclose(jn.predict_log_proba(X), sk.predict_log_proba(X), atol=1e-9)
    assert np.array_equal(jn.predict(X), sk.predict(X))
    assert jn.score(X, y) == sk.score(X, y)
    np.testing.assert_allclose(jn.predict_proba(X).sum(axis=1), 1.0, atol=1e-12)


def test_string_labels_and_feature_names():
    pd = pytest.importorskip("pandas")
    X, y = _data()
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    labels = np.array(["ant", "bee", "cat", "dog"])[y]
    jn = _fit_quietly(_both(max_iter=2)[1], frame, labels)
    assert list(jn.classes_) == ["ant", "bee", "cat", "dog"]
    assert list(jn.feature_names_in_) == list(frame.columns)
    assert set(jn.predict(frame)) <= set(jn.classes_)


def test_pickle_and_clone():
    X, y = _data()
    jn = _fit_quietly(_both(max_iter=2, momentum=0.9)[1], X, y)
    again = pickle.loads(pickle.dumps(jn))
    assert np.array_equal(again.predict_proba(X), jn.predict_proba(X))
    copy = clone(jn)
    assert copy.get_params() == jn.get_params() and not hasattr(copy, "coefs_")
    # A pickled estimator resumes training exactly where the original does.
    jn.partial_fit(X, y)
    again.partial_fit(X, y)
    assert all(np.array_equal(a, b) for a, b in zip(jn.coefs_, again.coefs_))


def test_float32_trains_close_to_float64():
    X, y = _data()
    a = _fit_quietly(_both(max_iter=2)[1], X, y)
    b = _fit_quietly(_both(max_iter=2, dtype="float32")[1], X, y)
    assert b.coefs_[0].dtype == np.float32
    assert np.abs(a.coefs_[0] - b.coefs_[0]).max() < 1e-4


# -- refusals: one line each, and the estimator stays unfitted ------------------------------


@pytest.mark.parametrize("params, fragment", [
    (dict(solver="adam"), "solver='adam' is not offered"),
    (dict(solver="lbfgs"), "solver='lbfgs' is not offered"),
    (dict(batch_size=32), "batch_size=32 is not offered"),
    (dict(batch_size="auto"), "batch_size='auto' is not offered"),
    (dict(momentum=1.0), "momentum=1 is not offered"),
    (dict(threads=2, momentum=0.5), "threads=2 trains plain SGD only"),
])
def test_refusals_in_one_line(params, fragment):
    X, y = _data()
    jn = _both(**params)[1]
    with pytest.raises(ValueError) as info:
        jn.fit(X, y)
    message = str(info.value)
    assert fragment in message and "\n" not in message
    assert message.startswith("MLPClassifier: ")
    assert not hasattr(jn, "coefs_") and not hasattr(jn, "classes_")


def test_scikit_learns_parameter_checks_apply():
    X, y = _data()
    with pytest.raises(ValueError, match="'learning_rate_init' parameter"):
        _both(learning_rate_init=-1.0)[1].fit(X, y)
    with pytest.raises(ValueError, match="'dtype' parameter"):
        _both(dtype="float16")[1].fit(X, y)


def test_gridsearch_over_a_pipeline_on_digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    pipe = Pipeline([("scale", StandardScaler()),
                     ("mlp", MLPClassifier(hidden_layer_sizes=(32,), alpha=0.0, momentum=0.0,
                                           learning_rate_init=0.01, max_iter=5,
                                           random_state=0))])
    search = GridSearchCV(pipe, {"mlp__activation": ["tanh", "relu"]}, cv=3, n_jobs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    assert search.best_score_ > 0.85
    again = pickle.loads(pickle.dumps(search.best_estimator_))
    assert np.array_equal(again.predict(X), search.best_estimator_.predict(X))


@pytest.mark.parametrize("params, fragment", [
    (dict(alpha=1e-4), "alpha=0.0001 (L2 penalty) is not supported yet"),
    (dict(momentum=0.9, nesterovs_momentum=True), "Nesterov's momentum is not supported yet"),
    (dict(activation="identity"), "activation='identity' is not supported yet"),
])
def test_settings_not_supported_yet_are_refused(params, fragment):
    X, y = _data()
    jn = _both(**params)[1]
    with pytest.raises(ValueError) as info:
        jn.fit(X, y)
    assert fragment in str(info.value)
    assert not hasattr(jn, "classes_")


def test_targets_not_supported_yet_are_refused():
    X, y = _data()
    for target, what in ((y % 2, "binary targets"), (np.eye(4, dtype=int)[y], "multilabel")):
        jn = _both()[1]
        with pytest.raises(ValueError, match=what):
            jn.fit(X, target)
        assert not hasattr(jn, "classes_")
    with pytest.raises(ValueError, match="regression targets are not supported yet"):
        _both("regressor")[1].fit(X, X[:, 0])
