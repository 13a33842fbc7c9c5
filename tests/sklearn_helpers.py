"""What the scikit-learn estimator tests share: small problems, the two libraries' estimators
with the same parameters, and the comparison of two trainings."""

import warnings

import numpy as np
import pytest
from sklearn import neural_network
from sklearn.exceptions import ConvergenceWarning

from jitnet.sklearn import MLPClassifier, MLPRegressor

#: Largest difference allowed between a weight trained by scikit-learn and by jitnet (float64);
#: measured differences are below 2e-15 (the order of one sum differs).
TOL = 1e-9


def _data(n=300, n_features=20, n_classes=4, seed=0):
    """Inputs with about half their entries 0 (so that first-layer rows lag, as an image's do)
    and labels that depend on them (so that the network learns and the losses fall)."""
    rng = np.random.RandomState(seed)
    X = rng.rand(n, n_features) * (rng.rand(n, n_features) < 0.5)
    y = (X[:, :n_classes] * np.arange(1, n_classes + 1)).argmax(axis=1)
    return X, y


#: Each kind of problem: (estimator, output units) and its targets from (X, y).
PROBLEMS = {
    "multiclass": ("classifier", lambda X, y: y),
    "binary": ("classifier", lambda X, y: y % 2),
    "multilabel": ("classifier", lambda X, y: np.eye(4, dtype=int)[y][:, :3] | (X[:, 4:7] > 0.5)),
    "regression": ("regressor", lambda X, y: X[:, :2] @ [1.0, -2.0] + 0.3),
    "regression, 3 outputs": ("regressor", lambda X, y: 2.0 * X[:, :3]),
    "poisson": ("regressor", lambda X, y: np.random.RandomState(1).poisson(np.exp(2 * X[:, 0]))),
}


def _problem(name, **params):
    """(X, targets, scikit-learn's estimator, jitnet's) of one kind of problem."""
    kind, targets = PROBLEMS[name]
    X, y = _data()
    if name == "poisson":  # exp outputs: a smaller rate, or the first epoch can overflow
        params = dict(loss="poisson", **{"learning_rate_init": 0.002, **params})
    return (X, targets(X, y)) + _both(kind, **params)


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
