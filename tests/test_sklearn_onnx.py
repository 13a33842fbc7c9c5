"""skl2onnx converts jitnet's estimators with its own MLP converters (registered on import):
the ONNX graph predicts what the estimator predicts."""

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
skl2onnx = pytest.importorskip("skl2onnx")
ort = pytest.importorskip("onnxruntime")

from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from jitnet.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


def _data(n=120, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.rand(n, 9) * (rng.rand(n, 9) < 0.6)
    return X, (X[:, :3] * [1, 2, 3]).argmax(axis=1)


def _fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


def _run(model, X):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X})


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
@pytest.mark.parametrize("labels", ["multiclass", "binary", "strings"])
def test_a_classifier_converts_and_predicts_the_same(activation, labels):
    X, y = _data()
    if labels == "binary":
        y = y % 2
    elif labels == "strings":
        y = np.array(["ant", "bee", "cat"])[y]
    clf = _fit(MLPClassifier(hidden_layer_sizes=(11, 5), activation=activation,
                             learning_rate_init=0.01, max_iter=5, random_state=1), X, y)
    X32 = X.astype(np.float32)
    model = skl2onnx.to_onnx(clf, X32[:1], options={"zipmap": False})
    label, proba = _run(model, X32)
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=1e-5)
    assert (label == clf.predict(X)).mean() >= 0.99  # float32 may flip a near tie


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
@pytest.mark.parametrize("problem", ["one output", "three outputs", "poisson"])
def test_a_regressor_converts_and_predicts_the_same(problem, activation):
    X, y = _data()
    target = {"one output": X[:, :2] @ [1.0, -2.0] + 0.3, "three outputs": 2.0 * X[:, :3],
              "poisson": np.random.RandomState(1).poisson(np.exp(2 * X[:, 0]))}[problem]
    reg = _fit(MLPRegressor(hidden_layer_sizes=(8, 6), activation=activation,
                            loss="poisson" if problem == "poisson" else "squared_error",
                            learning_rate_init=0.002, max_iter=3, random_state=2), X, target)
    (out,) = _run(skl2onnx.to_onnx(reg, X[:1]), X)  # float64 in, float64 graph
    assert out.shape == (len(X), reg.n_outputs_)
    np.testing.assert_allclose(out, reg.predict(X).reshape(out.shape), rtol=1e-12, atol=1e-12)
    (out32,) = _run(skl2onnx.to_onnx(reg, X[:1].astype(np.float32)), X.astype(np.float32))
    np.testing.assert_allclose(out32, out, rtol=1e-5, atol=1e-5)


def test_a_broken_weight_changes_the_graph():
    X, _ = _data()
    reg = _fit(MLPRegressor(hidden_layer_sizes=(8,), max_iter=2, learning_rate_init=0.002,
                            random_state=2), X, X[:, 0])
    (out,) = _run(skl2onnx.to_onnx(reg, X[:1]), X)
    # A broken weight changes the graph's answer: the graph reads the fitted weights.
    reg.coefs_[0][0, 0] += 1.0
    (changed,) = _run(skl2onnx.to_onnx(reg, X[:1]), X)
    assert np.abs(changed.ravel() - out.ravel()).max() > 1e-3
