"""The engine's robustness: copies and pickles, threads, read-only configuration, the input-scale
policy, checks after the cast to the network's dtype, divergence, argument errors, and Hypothesis
properties of the public Network API ("the documented ValueError or a correct result")."""

import copy
import pickle
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import oracle
from jitnet.network import ModelFileError, Network, TrainingDiverged
from jitnet.recipes import ACTIVATIONS

TUTORIAL = {"activation": "sigmoid", "loss": "squared"}

TOL = 1e-10


def data(sizes, n=30, seed=0, sparsity=0.5):
    rng = np.random.default_rng(seed)
    X = rng.random((n, sizes[0]))
    X[rng.random(X.shape) < sparsity] = 0.0
    return X, rng.integers(0, sizes[-1], n)


def assert_views_of_params(net):
    for array in net.weights + net.biases:
        assert np.shares_memory(array, net.params)
    assert net.params.ctypes.data % 64 == 0


# -- copies and pickles keep weights/biases as views of params --------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "clone",
    [copy.deepcopy, copy.copy, lambda net: pickle.loads(pickle.dumps(net)), Network.copy],
    ids=["deepcopy", "copy", "pickle", "Network.copy"],
)
def test_clones_are_independent_and_keep_their_views(clone, dtype):
    net = Network([6, 5, 3], activation="tanh", dtype=dtype, seed=1)
    other = clone(net)
    assert other.params.tobytes() == net.params.tobytes()
    assert (other.sizes, other.activation, other.dtype) == (net.sizes, net.activation, net.dtype)
    assert not np.shares_memory(other.params, net.params)
    assert_views_of_params(other)
    X, labels = data([6, 5, 3])
    other.train_epoch(X, labels, 0.5)
    before = net.params.copy()
    assert not np.array_equal(other.params, before)  # training the clone moved its weights ...
    assert np.array_equal(net.params, before)  # ... and not the original's
    other.weights[0][0, 0] = 7.0
    assert other.params[0] == 7.0  # writing a view still writes the network


def test_padding_of_the_first_layer_stays_zero():
    net = Network([9, 5, 3], dtype="float32", seed=0)  # rows of 5 padded to 16 floats
    X, labels = data([9, 5, 3], n=200, sparsity=0.2)
    net.train(X, labels, rate=0.5, epochs=2)
    stride = net.params[: 9 * 16].reshape(9, 16)
    assert np.all(stride[:, 5:] == 0) and np.any(stride[:, :5] != 0)


# -- threads ----------------------------------------------------------------------------------


def test_concurrent_inference_on_one_network_is_correct():
    """Kernels release the GIL; each call has its own scratch, so threads never share one."""
    net = Network([64, 40, 10], seed=0)
    rng = np.random.default_rng(0)
    inputs = [rng.random((400, 64)) for _ in range(6)]
    expected = [(net.classify(X), net.predict(X)) for X in inputs]
    failures = []

    def work(k):
        for _ in range(20):
            classes, outputs = net.classify(inputs[k]), net.predict(inputs[k])
            if not (np.array_equal(classes, expected[k][0])
                    and np.array_equal(outputs, expected[k][1])):
                failures.append(k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


# -- configuration the kernels rely on cannot be changed --------------------------------------


def test_configuration_is_read_only():
    net = Network([5, 4, 3], seed=0)
    X = np.random.default_rng(0).random((4, 5))
    y = net.predict(X)
    net.sizes[0] = 2_000_000  # a copy: the network does not see it
    assert net.sizes == [5, 4, 3]
    np.testing.assert_array_equal(net.predict(X), y)
    for name, value in [("sizes", [9, 9]), ("params", np.zeros(3)), ("dtype", np.float32),
                        ("activation", "tanh"), ("weights", ()), ("biases", ())]:
        with pytest.raises(AttributeError):
            setattr(net, name, value)
    for array in net._layout[:4]:
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 10**6


# -- which inputs are scaled, and how ---------------------------------------------------------


def test_only_uint8_images_are_scaled_by_default():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (20, 8)).astype(np.uint8)
    labels = rng.integers(0, 3, 20)
    base = Network([8, 5, 3], seed=0)
    reference = base.copy()
    reference.train_epoch(images, labels)  # uint8: 1/255 by default
    for dtype in (np.int64, np.uint16, np.int32):
        with pytest.raises(ValueError, match="scale="):
            base.copy().train_epoch(images.astype(dtype), labels)
        with pytest.raises(ValueError, match="scale="):
            base.predict(images.astype(dtype))
        net = base.copy()
        net.train_epoch(images.astype(dtype), labels, scale=1 / 255)
        np.testing.assert_allclose(net.params, reference.params, rtol=0, atol=TOL)
    with pytest.raises(ValueError, match="raw 0-255 pixels"):
        base.copy().train_epoch(images.astype(np.float64), labels)
    with pytest.raises(ValueError, match="raw 0-255 pixels"):
        base.evaluate(images.astype(np.float32), labels)
    net = base.copy()
    net.train_epoch(images.astype(np.float64), labels, scale=1 / 255)
    np.testing.assert_allclose(net.params, reference.params, rtol=0, atol=TOL)
    # Inputs that are not 0-255 whole numbers are taken as they are.
    net.train_epoch(images / 255.0, labels)
    net.train_epoch(images.astype(np.float64) - 128.0, labels)
    net.train_epoch(images > 128, labels)  # booleans: 0 and 1


# -- numbers are checked after the cast to the network's dtype --------------------------------


def test_values_are_checked_in_the_network_dtype(tmp_path):
    net = Network([4, 3, 2], dtype="float32", seed=0)
    before = net.params.copy()
    X, labels = data([4, 3, 2], n=5)
    for rate in (1e39, 1e-50):
        with pytest.raises(ValueError, match="rate .* in float32"):
            net.train_epoch(X, labels, rate)
    with pytest.raises(ValueError, match="scale"):
        net.train_epoch(X, labels, 0.1, scale=1e-50)
    with pytest.raises(ValueError, match="beyond float32"):
        net.train_epoch(X * 1e30, labels, 0.1, scale=1e10)
    with pytest.raises(ValueError, match="targets contain NaN or inf"):
        net.train_epoch(X, np.full((5, 2), 1e39), 0.1)
    pairs = [(W.astype(np.float64), b.astype(np.float64)) for W, b in net.get_weights()]
    pairs[0][0][0, 0] = 1e39
    with pytest.raises(ValueError, match="finite in float32"):
        net.set_weights(pairs)
    assert np.array_equal(net.params, before)
    arrays = net.to_arrays()
    arrays["W0"] = arrays["W0"].astype(np.float64)
    arrays["W0"][0, 0] = 1e39
    np.savez(tmp_path / "big.npz", **arrays)
    with pytest.raises(ModelFileError, match="big.npz: parameters do not fit"):
        Network.load(tmp_path / "big.npz")
    Network([4, 3, 2], dtype="float64").set_weights(pairs)  # fine in float64


# -- divergence -------------------------------------------------------------------------------


def test_divergence_raises_a_clear_error():
    """Huge output weights of opposite sign keep the output unsaturated while the hidden error
    terms reach 2.5e35: one update at rate 1e4 overflows the first layer (4 weights, 2 biases)."""
    net = Network([2, 2, 1], dtype="float32", seed=0)
    net.set_weights([(np.zeros((2, 2)), np.zeros(2)), (np.array([[1e37, -1e37]]), np.zeros(1))])
    with pytest.raises(TrainingDiverged, match=r"^training diverged: 6 of 9 parameters are not "
                       r"finite \(loss 0.08\); try a smaller rate$"):
        net.train_epoch(np.ones((1, 2)), [0], 1e4)
    assert issubclass(TrainingDiverged, ValueError)
    net = Network([2, 2, 1], dtype="float32", seed=0)
    assert np.isfinite(net.train_epoch(np.ones((1, 2)), [0], 1e4))  # the same rate is fine here


# -- arguments that are not numbers of the right kind -----------------------------------------


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(epochs=float("inf")), "epochs"),
        (dict(epochs=None), "epochs"),
        (dict(epochs=-1), "epochs"),
        (dict(epochs=2.5), "epochs"),
        (dict(epochs="3"), "epochs"),
        (dict(rate=None), "rate"),
        (dict(rate=1 + 2j), "rate"),
        (dict(rate=[0.1]), "rate"),
        (dict(rate="0.1"), "rate"),
        (dict(rate=True), "rate"),
        (dict(seed=2.5), "seed"),
        (dict(seed="x"), "seed"),
        (dict(seed=-1), "seed"),
        (dict(scale="x"), "scale"),
        (dict(scale=float("inf")), "scale"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, name):
    net = Network([4, 3, 2], seed=0)
    X, labels = data([4, 3, 2], n=5)
    with pytest.raises(ValueError, match=name):
        net.train(X, labels, **kwargs)


@pytest.mark.parametrize("seed", [2.5, "x", -1, [1, 2]])
def test_bad_seed_of_a_new_network(seed):
    with pytest.raises(ValueError, match="seed"):
        Network([4, 3, 2], seed=seed)


def test_whole_float_epochs_are_accepted():
    net = Network([4, 3, 2], seed=0)
    X, labels = data([4, 3, 2], n=5)
    assert len(net.train(X, labels, epochs=2.0)) == 2


# -- properties of the public API -------------------------------------------------------------

SMALL_SIZES = st.lists(st.integers(1, 6), min_size=2, max_size=4)
WEIRD_FLOATS = st.sampled_from(
    [0.0, 0.3, 1.0, -1.0, 255.0, 1e-50, 1e39, 1e300, np.nan, np.inf, -np.inf, 2.5]
)
X_DTYPES = st.sampled_from([np.uint8, np.int64, np.uint16, np.float32, np.float64, np.bool_])
DAMAGE = st.sampled_from([False, False, False, True])  # a quarter of the pieces get damaged
GOOD_RATES = st.floats(1e-3, 2.0)


@st.composite
def problems(draw):
    """A network and a training call: valid pieces, some of them then damaged."""
    sizes = draw(SMALL_SIZES)
    dtype = draw(st.sampled_from(["float64", "float32"]))
    recipe = {"activation": draw(st.sampled_from(list(ACTIVATIONS))),
              "loss": draw(st.sampled_from(["squared", "cross_entropy"] if sizes[-1] > 1
                                           else ["squared"]))}
    momentum = draw(st.sampled_from([0.0, 0.0, 0.5, 0.9]))
    if draw(DAMAGE):
        momentum = draw(st.sampled_from([1.0, -0.1, np.nan, None]))
    n = draw(st.integers(0, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x_dtype = draw(X_DTYPES)
    if x_dtype in (np.uint8, np.int64, np.uint16):
        X = rng.integers(0, 256, (n, sizes[0])).astype(x_dtype)
    else:
        X = rng.random((n, sizes[0])).astype(x_dtype)
    if n and draw(DAMAGE):
        X = X.astype(np.float64)
        X.flat[draw(st.integers(0, X.size - 1))] = draw(WEIRD_FLOATS)
    if draw(DAMAGE):
        X = X[:, :-1] if draw(st.booleans()) else X[:, None]  # wrong shape
    labels = rng.integers(0, sizes[-1], n)
    if draw(st.booleans()):
        targets = labels
        if n and draw(DAMAGE):
            targets = labels.copy()
            targets[0] = draw(st.sampled_from([-1, sizes[-1], 10**9]))
    else:
        targets = rng.random((n, sizes[-1]))
        if n and draw(DAMAGE):
            targets[0, 0] = draw(WEIRD_FLOATS)
    rate = draw(GOOD_RATES)
    if draw(DAMAGE):
        rate = draw(st.one_of(WEIRD_FLOATS, st.sampled_from([None, "0.1", [0.1], 1j, True])))
    scale = draw(st.one_of(st.none(), st.floats(1e-3, 2.0)))
    if draw(DAMAGE):
        scale = draw(WEIRD_FLOATS)
    order = None
    if draw(st.booleans()):
        order = rng.integers(0, max(n, 1) + draw(DAMAGE), 4)  # n: one index out of range
    return sizes, dtype, recipe, X, targets, rate, scale, order, momentum


def expected_training(net, X, targets, rate, scale, order, momentum):
    """What train_epoch must give, from the oracle on float64 copies."""
    X = np.asarray(X, np.float64) * scale
    T = net.targets(targets) if targets.ndim == 1 else targets
    order = np.arange(len(X)) if order is None else order
    pairs, _, mean_loss = oracle.sgd(net.get_weights(), X[order], T[order], rate,
                                     net.activation, net.output_activation, momentum)
    return pairs, mean_loss


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
@example(([3, 2], "float32", TUTORIAL, np.full((2, 3), 255.0), np.array([0, 1]), 0.3, None,
          None, 0.0))
@example(([3, 2], "float32", TUTORIAL, np.ones((2, 3), np.int64), np.array([0, 1]), 1e39, 1.0,
          None, 0.0))
@example(([3, 2], "float64", {"activation": "relu", "loss": "cross_entropy"},
          np.ones((2, 3)), np.array([[0.9, 0.1], [0.5, 0.6]]), 0.3, None, None, 0.9))
def test_train_epoch_gives_the_documented_error_or_the_right_weights(problem):
    sizes, dtype, recipe, X, targets, rate, scale, order, momentum = problem
    net = Network(sizes, dtype=dtype, seed=0, **recipe)
    before = net.params.copy()
    try:
        loss = net.train_epoch(X, targets, rate, order=order, scale=scale, momentum=momentum)
    except ValueError as error:
        assert str(error) and "\n" not in str(error)
        if not isinstance(error, TrainingDiverged):
            assert np.array_equal(net.params, before)  # refused before any kernel ran
        return
    # Accepted: the result is the oracle's (for inputs of sane size: beyond |z| = 709 the
    # kernels' exp clamps, and an input of 1e300 turns the 1e-308 left of a saturated
    # sigmoid's slope into a visible step), and always finite.
    assert np.isfinite(net.params).all() and np.isfinite(loss)
    X = np.asarray(X)
    used_scale = scale if scale is not None else (1 / 255 if X.dtype == np.uint8 else 1.0)
    if X.size and np.abs(X.astype(np.float64)).max() * used_scale > 1e6:
        return
    start = Network(sizes, dtype=dtype, seed=0, **recipe)
    pairs, mean_loss = expected_training(start, X, np.asarray(targets), float(rate),
                                         float(used_scale), order, momentum)
    tol = TOL if dtype == "float64" else 1e-3
    for (W, b), (W2, b2) in zip(pairs, net.get_weights()):
        np.testing.assert_allclose(W2, W, rtol=tol, atol=tol)
        np.testing.assert_allclose(b2, b, rtol=tol, atol=tol)
    assert loss == pytest.approx(mean_loss, rel=tol, abs=tol)


@settings(max_examples=100, deadline=None)
@given(problems())
def test_inference_gives_the_documented_error_or_consistent_results(problem):
    sizes, dtype, recipe, X, targets, _, scale, _, _ = problem
    net = Network(sizes, dtype=dtype, seed=0, **recipe)
    try:
        y = net.predict(X, scale=scale)
        classes = net.classify(X, scale=scale)
    except ValueError as error:
        assert str(error) and "\n" not in str(error)
        return
    assert y.shape == (len(X), sizes[-1]) and y.dtype == net.dtype and np.isfinite(y).all()
    np.testing.assert_array_equal(classes, np.argmax(y, axis=1))
    labels = np.asarray(targets)
    try:
        error_rate = net.evaluate(X, labels, scale=scale)
    except ValueError as error:
        assert str(error) and "\n" not in str(error)
        return
    assert error_rate == pytest.approx(np.mean(classes != labels))
