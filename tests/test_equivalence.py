"""The three engines compute the same thing: object reference, vectorized reference, JIT engine.

From the same initial weights (loaded with ``set_weights``), the forward pass, the loss, each
layer's gradient and then a 200-sample training run at rate 0.3 in file order must agree within
``TOL`` in float64. The object version is the reference; the others are compared with it.
"""

import numpy as np
import pytest

import jitnet
from helpers import sgd_problem
from jitnet.reference import objects, vectorized

TOL = 1e-10
RATE = 0.3
N_SAMPLES = 200


def make_engines(sizes, init):
    nets = {
        "object": objects.Network(sizes, seed=0),
        "vectorized": vectorized.Network(sizes, seed=0),
        "jit": jitnet.Network(sizes, dtype="float64", seed=0),
    }
    for net in nets.values():
        net.set_weights(init)
    return nets


def train(engine, net, X, T):
    if engine == "jit":
        net.train(X, T, rate=RATE, epochs=1)
    else:
        net.train(T, X, RATE, 1)  # the tutorial's signature: labels first, iteration = epochs


CASES = {
    "20-8-4": ([20, 8, 4], 0.0),
    "12-7-5-3": ([12, 7, 5, 3], 0.0),
    "10-6-5-4-2": ([10, 6, 5, 4, 2], 0.0),
    "30-9-10-sparse": ([30, 9, 10], 0.8),  # mostly zero inputs, as MNIST's
}


@pytest.fixture(params=list(CASES), scope="module")
def case(request):
    sizes, sparsity = CASES[request.param]
    # 200 samples, 0.1/0.9 targets, initial weights uniform(-0.5, 0.5): larger than the engines'
    # own, so that training moves the sigmoids off their linear middle.
    X, T, init = sgd_problem(sizes, seed=len(request.param), sparsity=sparsity, n=N_SAMPLES)
    return sizes, X, T, init


@pytest.fixture(scope="module")
def mnist_case(mnist):
    part = mnist[0][:N_SAMPLES]
    X, T = part.inputs(), part.targets()
    assert X.shape == (N_SAMPLES, 784) and T.shape == (N_SAMPLES, 10) and X.dtype == np.float64
    sizes = [784, 16, 10]
    init = vectorized.Network(sizes, seed=11).get_weights()  # the tutorial's uniform(-0.1, 0.1)
    return sizes, X, T, init, part


def assert_layers_close(ref_pairs, comp_pairs, what, engine):
    assert len(ref_pairs) == len(comp_pairs)
    for layer, ((W, b), (W2, b2)) in enumerate(zip(ref_pairs, comp_pairs)):
        np.testing.assert_allclose(W2, W, rtol=0, atol=TOL, err_msg=f"{engine} {what} W{layer}")
        np.testing.assert_allclose(b2, b, rtol=0, atol=TOL, err_msg=f"{engine} {what} b{layer}")


def loss(y, t):
    return 0.5 * float(np.sum((t - y) ** 2))


def test_forward_and_loss_agree(case):
    sizes, X, T, init = case
    nets = make_engines(sizes, init)
    for x, t in zip(X[:5], T[:5]):
        y_ref = nets["object"].predict(x)
        for engine in ("vectorized", "jit"):
            y = nets[engine].predict(x)
            assert y.shape == (sizes[-1],)
            np.testing.assert_allclose(y, y_ref, rtol=0, atol=TOL, err_msg=f"{engine} forward")
            assert abs(loss(y, t) - loss(y_ref, t)) < TOL


def test_gradients_agree_layer_by_layer(case):
    sizes, X, T, init = case
    nets = make_engines(sizes, init)
    for x, t in zip(X[:3], T[:3]):
        ref = nets["object"].gradient(x, t)
        for engine in ("vectorized", "jit"):
            assert_layers_close(ref, nets[engine].gradient(x, t), "gradient", engine)
        assert max(np.abs(dW).max() for dW, _ in ref) > 1e-4  # not comparing zeros


def assert_trained_alike(sizes, X, T, init, every):
    """Each engine trains one epoch from ``init``; the weights, and the outputs on every
    ``every``-th sample, agree with the object version's. Returns its weights."""
    nets = make_engines(sizes, init)
    for engine, net in nets.items():
        train(engine, net, X, T)
    ref = nets["object"].get_weights()
    for engine in ("vectorized", "jit"):
        assert_layers_close(ref, nets[engine].get_weights(), "trained weights", engine)
    for x in X[::every]:
        y_ref = nets["object"].predict(x)
        for engine in ("vectorized", "jit"):
            np.testing.assert_allclose(nets[engine].predict(x), y_ref, rtol=0, atol=TOL)
    return ref


def test_training_agrees(case):
    sizes, X, T, init = case
    ref = assert_trained_alike(sizes, X, T, init, every=20)
    moved = max(np.abs(W - W0).max() for (W, _), (W0, _) in zip(ref, init))
    assert moved > 1e-2  # training did change the weights


def test_training_on_mnist_agrees(mnist_case):
    sizes, X, T, init, _ = mnist_case
    ref = assert_trained_alike(sizes, X, T, init, every=25)
    assert np.abs(ref[1][0] - init[1][0]).max() > 1e-2


def test_jit_on_uint8_images_agrees_with_the_references(mnist_case):
    """The JIT engine's own MNIST path: uint8 pixels scaled inside the kernel."""
    sizes, X, T, init, part = mnist_case
    ref = vectorized.Network(sizes)
    ref.set_weights(init)
    ref.train(T, X, RATE, 1)
    net = jitnet.Network(sizes, dtype="float64")
    net.set_weights(init)
    net.train(part.images, T, rate=RATE, epochs=1)
    assert_layers_close(ref.get_weights(), net.get_weights(), "trained weights", "jit uint8")


def test_seeded_initial_weights_match_between_vectorized_and_jit():
    """Both draw W then b per layer, uniform(-0.1, 0.1), from np.random.default_rng(seed)."""
    sizes = [7, 5, 3]
    for (W, b), (W2, b2) in zip(
        vectorized.Network(sizes, seed=42).get_weights(),
        jitnet.Network(sizes, seed=42).get_weights(),
    ):
        assert np.array_equal(W, W2) and np.array_equal(b, b2)


@pytest.mark.parametrize("fault", ["rate", "one weight", "one sample"])
def test_a_wrong_jit_update_would_be_caught(case, fault):
    """The comparison has teeth: a slightly wrong JIT engine fails it, a correct one passes."""
    sizes, X, T, init = case
    ref = objects.Network(sizes, seed=0)
    ref.set_weights(init)
    train("object", ref, X, T)
    good = jitnet.Network(sizes, dtype="float64", seed=0)
    good.set_weights(init)
    good.train(X, T, rate=RATE)
    assert_layers_close(ref.get_weights(), good.get_weights(), "weights", "jit")
    bad = jitnet.Network(sizes, dtype="float64", seed=0)
    bad.set_weights(init)
    if fault == "rate":
        bad.train(X, T, rate=RATE * (1 + 1e-6))
    elif fault == "one weight":
        bad.weights[-1][0, 0] += 1e-8  # before training: every later update sees it
        bad.train(X, T, rate=RATE)
    else:
        bad.train(X[1:], T[1:], rate=RATE)  # the first sample skipped
    with pytest.raises(AssertionError):
        assert_layers_close(ref.get_weights(), bad.get_weights(), "weights", "jit")
