"""jitnet.sklearn's estimators as scikit-learn objects: predictions, pickling, clone, Pipeline and
GridSearchCV, feature names, and the settings they refuse (one line each)."""

import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from jitnet.sklearn import MLPClassifier  # noqa: E402
from sklearn_helpers import _both, _data, _fit_quietly, assert_same_training  # noqa: E402


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


@pytest.mark.parametrize("target", ["multiclass", "binary", "multilabel"])
def test_predictions_and_probabilities_match_scikit_learns(target):
    X, y = _data()
    t = {"multiclass": y, "binary": y % 2, "multilabel": np.eye(4, dtype=int)[y]}[target]
    sk, jn = _both(max_iter=3, momentum=0.5)
    _fit_quietly(sk, X, t)
    _fit_quietly(jn, X, t)
    np.testing.assert_allclose(jn.predict_proba(X), sk.predict_proba(X), atol=1e-12)
    np.testing.assert_allclose(jn.predict_log_proba(X), sk.predict_log_proba(X), atol=1e-9)
    assert np.array_equal(jn.predict(X), sk.predict(X))
    assert jn.score(X, t) == sk.score(X, t)
    assert jn.predict_proba(X).shape == (len(y), 4 if target != "binary" else 2)


def test_regressor_predicts_as_scikit_learn():
    X, y = _data()
    t = 2.0 * X[:, :3]
    sk, jn = _both("regressor", max_iter=3)
    _fit_quietly(sk, X, t)
    _fit_quietly(jn, X, t)
    np.testing.assert_allclose(jn.predict(X), sk.predict(X), atol=1e-12)
    assert jn.score(X, t) == pytest.approx(sk.score(X, t), abs=1e-12)
    assert jn.predict(X[:5]).shape == (5, 3)


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


def test_poisson_needs_counts():
    X, y = _data()
    with pytest.raises(ValueError, match="loss='poisson' needs targets y >= 0"):
        _both("regressor", loss="poisson")[1].fit(X, X[:, 0] - 0.5)


def test_threads_train_plain_sgd_close_to_one_thread():
    X, y = _data()
    one = _fit_quietly(_both(max_iter=2, momentum=0.0)[1], X, y)
    two = _fit_quietly(_both(max_iter=2, momentum=0.0, threads=2)[1], X, y)
    assert np.abs(one.coefs_[0] - two.coefs_[0]).max() < 1e-12
