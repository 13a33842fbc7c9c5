"""The engine's scikit-learn step (jitnet.engine.extras): the outputs with their own losses, the
identity unit, Nesterov's momentum and weight decay (l2), against a plain numpy reference that
updates every weight at every sample -- the engine lets first-layer rows at zero input lag."""

import numpy as np
import pytest
from scipy.special import expit

import jitnet
from jitnet.engine.checks import check_l2

#: Largest difference allowed between the engine and the reference (float64).
TOL = 1e-12

OUTPUT_UNITS = {"cross_entropy": "softmax", "binary_cross_entropy": "logistic",
                "squared_error": "identity", "poisson": "exp"}


def _f(z, name):
    return {"identity": z, "tanh": np.tanh(z), "sigmoid": expit(z), "relu": np.maximum(z, 0),
            "logistic": expit(z), "exp": np.exp(z),
            "softmax": np.exp(z - z.max()) / np.exp(z - z.max()).sum()}[name]


def _f_prime(a, name):
    return {"identity": np.ones_like(a), "tanh": 1 - a * a, "sigmoid": a * (1 - a),
            "relu": (a > 0).astype(float)}[name]


def _loss(y, t, loss):
    if loss == "cross_entropy":
        return -np.sum(t * np.log(y))
    if loss == "binary_cross_entropy":
        p = np.clip(y, np.finfo(float).eps, 1 - np.finfo(float).eps)
        return -np.sum(t * np.log(p) + (1 - t) * np.log(1 - p))
    if loss == "squared_error":
        return 0.5 * np.mean((t - y) ** 2)
    return np.sum(np.where(t > 0, t * np.log(np.where(t > 0, t, 1) / y), 0) - t + y)


def reference_epoch(pairs, X, T, rate, hidden, loss, mu, nesterov, l2):
    """One epoch of the step written out for every weight: (pairs, velocities, mean loss)."""
    W = [w.copy() for w, _ in pairs]
    b = [bb.copy() for _, bb in pairs]
    vW = [np.zeros_like(w) for w in W]
    vb = [np.zeros_like(bb) for bb in b]
    total = 0.0
    for x, t, lam in zip(X, T, l2):
        a = [x]
        for l in range(len(W)):
            a.append(_f(W[l] @ a[-1] + b[l], hidden if l < len(W) - 1 else OUTPUT_UNITS[loss]))
        total += _loss(a[-1], t, loss) + 0.5 * lam * sum(np.sum(w * w) for w in W)
        deltas = [t - a[-1]]
        for l in range(len(W) - 1, 0, -1):
            deltas.insert(0, (W[l].T @ deltas[0]) * _f_prime(a[l], hidden))
        for l in range(len(W)):
            for p, v, step in ((W[l], vW[l], rate * np.outer(deltas[l], a[l]) - rate * lam * W[l]),
                               (b[l], vb[l], rate * deltas[l])):
                v_before = v.copy()
                v *= mu
                v += step
                p += v + (mu * (v - v_before) if nesterov else 0)
    return list(zip(W, b)), total / len(X)


def _problem(loss, n=60, n_in=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, n_in)) * (rng.random((n, n_in)) < 0.4)  # rows at zero input lag
    if loss == "cross_entropy":
        T = np.eye(3)[rng.integers(0, 3, n)]
    elif loss == "binary_cross_entropy":
        T = (rng.random((n, 3)) < 0.5).astype(float)
    elif loss == "poisson":
        T = rng.poisson(1.5, (n, 3)).astype(float)
    else:
        T = rng.normal(size=(n, 3))
    return X, T


@pytest.mark.parametrize("loss", list(OUTPUT_UNITS))
@pytest.mark.parametrize("hidden", ["identity", "tanh"])
@pytest.mark.parametrize("mu, nesterov", [(0.0, False), (0.8, False), (0.8, True)])
@pytest.mark.parametrize("l2", ["none", "same", "per sample"])
def test_engine_step_matches_the_reference(loss, hidden, mu, nesterov, l2):
    X, T = _problem(loss)
    net = jitnet.Network([12, 7, 5, 3], activation=hidden, loss=loss, seed=1,
                         init="uniform:0.3")
    strengths = {"none": np.zeros(len(X)), "same": np.full(len(X), 0.05),
                 "per sample": np.random.default_rng(2).uniform(0.01, 0.1, len(X))}[l2]
    expected, expected_loss = reference_epoch(net.get_weights(), X, T, 0.05, hidden, loss, mu,
                                              nesterov, strengths)
    got_loss = net.train_epoch(X, T, 0.05, momentum=mu, nesterov=nesterov,
                               l2=strengths if l2 == "per sample" else strengths[0])
    assert got_loss == pytest.approx(expected_loss, abs=TOL)
    for (W, b), (W_ref, b_ref) in zip(net.get_weights(), expected):
        assert np.abs(W - W_ref).max() < TOL and np.abs(b - b_ref).max() < TOL


def test_a_broken_reference_would_be_caught():
    # The comparison above can fail: without its decay the reference drifts away.
    X, T = _problem("squared_error")
    net = jitnet.Network([12, 7, 3], activation="tanh", loss="squared_error", seed=1)
    expected, _ = reference_epoch(net.get_weights(), X, T, 0.05, "tanh", "squared_error", 0.8,
                                  True, np.zeros(len(X)))
    net.train_epoch(X, T, 0.05, momentum=0.8, nesterov=True, l2=0.05)
    assert np.abs(net.get_weights()[0][0] - expected[0][0]).max() > 1e-4


def test_chunks_and_one_call_train_the_same_with_decay():
    X, T = _problem("binary_cross_entropy", n=300)
    nets = [jitnet.Network([12, 7, 3], loss="binary_cross_entropy", seed=3) for _ in range(2)]
    losses = [nets[0].train_epoch(X, T, 0.05, momentum=0.9, nesterov=True, l2=0.01),
              nets[1].train_epoch(X, T, 0.05, momentum=0.9, nesterov=True, l2=0.01,
                                  progress=lambda done: None)]
    assert losses[0] == losses[1]
    assert np.array_equal(nets[0].params, nets[1].params)


def test_new_units_and_losses_by_name():
    net = jitnet.Network([4, 3, 2], activation="identity", loss="poisson", seed=0)
    assert (net.activation, net.output_activation) == ("identity", "exp")
    assert jitnet.Network([4, 3, 1], loss="binary_cross_entropy").output_activation == "logistic"
    assert jitnet.Network([4, 3, 2], loss="squared_error").output_activation == "identity"
    # The tutorial's squared error keeps a squashing output under identity hidden units.
    assert jitnet.Network([4, 3, 2], activation="identity").output_activation == "sigmoid"
    again = jitnet.Network.from_arrays(net.to_arrays())
    assert np.array_equal(again.predict(np.ones((2, 4))), net.predict(np.ones((2, 4))))


@pytest.mark.parametrize("l2, message", [
    (-1.0, "l2 must be finite and >= 0"),
    (np.inf, "l2 must be finite and >= 0"),
    ("a", "l2 must be a number >= 0 or 5 of them"),
    (np.ones(4), "l2 must be a number >= 0 or 5 of them"),
    (np.array([0.1, 0.0, 0.1, 0.1, 0.1]), "l2 must be > 0 for every sample, or 0 for all"),
])
def test_l2_is_checked(l2, message):
    with pytest.raises(ValueError, match=message):
        check_l2(l2, 5)
    assert check_l2(0.0, 5) is None and check_l2(np.zeros(5), 5) is None
    assert np.array_equal(check_l2(0.5, 3), [0.5, 0.5, 0.5])


@pytest.mark.parametrize("loss", ["binary_cross_entropy", "squared_error", "poisson"])
@pytest.mark.parametrize("hidden", ["identity", "tanh"])
def test_gradient_check_passes_for_every_loss(loss, hidden):
    # gradient() is -delta a: the gradient of the loss each output trains (for squared_error
    # of the sum over the outputs, which scikit-learn trains while it reports the mean).
    X, T = _problem(loss, n=1)
    net = jitnet.Network([12, 6, 3], activation=hidden, loss=loss, seed=4)
    result = jitnet.gradient_check(net, X[0], T[0])
    assert result.passed, result.worst(3)


@pytest.mark.parametrize("loss", ["binary_cross_entropy", "squared_error", "poisson"])
def test_onnx_graphs_of_the_new_units_compute_predict(loss):
    onnxruntime = pytest.importorskip("onnxruntime")
    X, _ = _problem(loss, n=20)
    net = jitnet.Network([12, 6, 3], activation="identity", loss=loss, seed=5)
    model = net.to_onnx(scale=1.0)
    session = onnxruntime.InferenceSession(model.SerializeToString())
    outputs = session.run(["outputs"], {"input": X})[0]
    assert np.abs(outputs - net.predict(X, scale=1.0)).max() < 1e-12
