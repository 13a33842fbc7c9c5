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

TOL = 1e-10


def data(sizes, n=30, seed=0, sparsity=0.5):
    rng = np.random.default_rng(seed)
    X = rng.random((n, sizes[0]))
    X[rng.random(X.shape) < sparsity] = 0.0
    return X, rng.integers(0, sizes[-1], n)


def tutorial_targets(labels, n_out):
    return np.where(np.eye(n_out)[labels] > 0, 0.9, 0.1)


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
    return sizes, dtype, X, targets, rate, scale, order


def expected_training(net, X, targets, rate, scale, order):
    """What train_epoch must give, from the oracle on float64 copies."""
    X = np.asarray(X, np.float64) * scale
    T = tutorial_targets(targets, net.n_outputs) if targets.ndim == 1 else targets
    order = np.arange(len(X)) if order is None else order
    pairs, _, mean_loss = oracle.sgd(net.get_weights(), X[order], T[order], rate,
                                     net.activation, net.activation)
    return pairs, mean_loss


# float32 rounding cannot be compared with the float64 oracle over a whole epoch: with raw 0-255
# inputs at scale 1 a weight's rounding error is multiplied by about rate * |x|^2 * |f''| (>1000)
# per sample, so after six samples float32 and float64 can differ by more than 10 (both rounding
# honestly). Each float32 step is instead checked from the engine's own weights against a
# first-order bound of the rounding that one step can make (below), and the epoch against the
# chain of its steps, bitwise.

U32 = 2.0**-24  # float32's unit roundoff: a rounded result is within U32 * |result|
# Per activation: sup |f'(z)|, sup |f''(z)|, and sup |d f'/da| (the kernels compute f' from a).
SLOPES = {"sigmoid": (0.25, 0.0963, 1.0), "tanh": (1.0, 0.7699, 2.0),
          "scaled_tanh": (1.1440, 0.5874, 1.3334), "relu": (1.0, 0.0, 0.0)}
ULPS = 8  # error allowed to an activation, the softmax or the kernels' exp, in units of U32


def float32_step_bounds(pairs, x, t, rate, hidden="sigmoid", output="sigmoid"):
    """How far one float32 SGD step from ``pairs`` (float32 values, as float64) on the scaled
    sample x with target t may land from the exact step, to first order in U32.

    Model: a dot product of n terms errs by (n + 2) U32 times the sum of its terms' magnitudes
    (any summation order, the scaling of x and the bias included); an activation by ULPS U32 of
    its value plus sup|f'| times its input's error; f' by sup|f''| and sup|df'/da| times the
    errors of z and a (relu: fully, when the kink lies within z's error); each product or sum
    by a few U32 of its value; errors propagate through |W|. Returns ([(bound W, bound b) per
    layer], bound of the loss).
    """
    last = len(pairs) - 1
    a, e_a, zs, e_zs = [x], [2 * U32 * np.abs(x)], [], []
    for l, (W, b) in enumerate(pairs):
        f = output if l == last else hidden
        z = W @ a[-1] + b
        e_z = ((W.shape[1] + 2) * U32 * (np.abs(W) @ np.abs(a[-1]) + np.abs(b))
               + np.abs(W) @ e_a[-1])
        y = oracle.activate(z, f)
        spread = e_z.max() if f == "softmax" else SLOPES[f][0] * e_z
        zs.append(z), e_zs.append(e_z), a.append(y), e_a.append(spread + ULPS * U32 * np.abs(y))

    def slope_error(l, f):  # error of f'(z) of layer l
        if f == "relu":
            return (np.abs(zs[l]) <= e_zs[l]).astype(np.float64)
        return SLOPES[f][1] * e_zs[l] + SLOPES[f][2] * e_a[l + 1] + 4 * U32

    y, e_y, e_t = a[-1], e_a[-1] + U32 * np.abs(t), U32 * np.abs(t)
    if output == "softmax":
        delta = t - y
        e_delta = e_y + U32 * np.abs(delta)
        loss_bound = np.abs(t) @ (2 * e_zs[-1].max() + ULPS * U32 * (1 + np.abs(zs[-1])))
    else:
        slope = oracle.derivative(zs[-1], output)
        delta = slope * (t - y)
        e_delta = (np.abs(slope) * e_y + slope_error(last, output) * np.abs(t - y)
                   + 3 * U32 * np.abs(delta))
        loss_bound = np.abs(t - y) @ (e_y + e_t) + 4 * U32 * np.sum((t - y) ** 2)
    deltas, e_deltas = [delta], [e_delta]
    for l in range(last, 0, -1):
        W = pairs[l][0]
        back = W.T @ deltas[0]
        e_back = (W.shape[0] + 2) * U32 * (np.abs(W.T) @ np.abs(deltas[0])) + np.abs(W.T) @ e_deltas[0]
        slope = oracle.derivative(zs[l - 1], hidden)
        deltas.insert(0, slope * back)
        e_deltas.insert(0, np.abs(slope) * e_back + slope_error(l - 1, hidden) * np.abs(back)
                        + 2 * U32 * np.abs(slope * back))
    bounds = []
    for (W, b), delta, e_delta, x_l, e_x in zip(pairs, deltas, e_deltas, a, e_a):
        step = rate * np.outer(np.abs(delta), np.abs(x_l))
        bound_W = (U32 * np.abs(W + rate * np.outer(delta, x_l)) + 4 * U32 * step
                   + rate * (np.outer(e_delta, np.abs(x_l)) + np.outer(np.abs(delta), e_x)))
        bound_b = U32 * np.abs(b + rate * delta) + rate * e_delta + 4 * U32 * rate * np.abs(delta)
        bounds.append((bound_W, bound_b))
    return bounds, loss_bound + 4 * U32 * oracle.loss(zs[-1], y, t, output)


def assert_float32_epoch(net, loss, sizes, X, targets, rate, scale, order):
    """The float32 epoch ``net`` ran (mean loss ``loss``) is its samples' steps run one call
    each, bitwise, and each step agrees with the oracle's from the same weights within twice
    :func:`float32_step_bounds` (twice: the bound is first order)."""
    X = np.asarray(X)
    used_scale = scale if scale is not None else (1 / 255 if X.dtype == np.uint8 else 1.0)
    T = tutorial_targets(targets, sizes[-1]) if targets.ndim == 1 else targets
    replay = Network(sizes, dtype="float32", seed=0)
    order = np.arange(len(X)) if order is None else np.asarray(order)
    step_losses = []
    for i in order:
        before = [(W.astype(np.float64), b.astype(np.float64)) for W, b in replay.get_weights()]
        step_losses.append(replay.train_epoch(X, targets, rate, order=np.array([i]), scale=scale))
        x = X[i].astype(np.float64) * used_scale
        units = (replay.activation, replay.output_activation)
        exact, _, exact_loss = oracle.sgd(before, x[None], T[i : i + 1], float(rate), *units)
        bounds, loss_bound = float32_step_bounds(before, x, T[i], float(rate), *units)
        for got, want, bound in zip(replay.get_weights(), exact, bounds):
            for name, g, w, e in zip("Wb", got, want, bound):
                excess = np.abs(g - w) - 2 * e
                assert excess.max() <= 0, f"{name}: off by {np.abs(g - w).max():.3g}"
        assert abs(step_losses[-1] - exact_loss) <= 2 * loss_bound
    assert replay.params.tobytes() == net.params.tobytes()
    assert loss == pytest.approx(np.mean(step_losses) if step_losses else 0.0, rel=1e-6)


def check_training(problem):
    """The property: train_epoch gives the documented error or the oracle's weights."""
    sizes, dtype, X, targets, rate, scale, order = problem
    net = Network(sizes, dtype=dtype, seed=0)
    before = net.params.copy()
    try:
        loss = net.train_epoch(X, targets, rate, order=order, scale=scale)
    except ValueError as error:
        assert str(error) and "\n" not in str(error)
        if not isinstance(error, TrainingDiverged):
            assert np.array_equal(net.params, before)  # refused before any kernel ran
        return
    # Accepted: the result is the oracle's.
    if dtype == "float32":
        assert_float32_epoch(net, loss, sizes, X, np.asarray(targets), rate, scale, order)
        return
    X = np.asarray(X)
    used_scale = scale if scale is not None else (1 / 255 if X.dtype == np.uint8 else 1.0)
    if X.size and np.abs(X.astype(np.float64)).max() * used_scale > 1e6:
        # The kernels' exp stops at |z| = 709: the 1e-308 slope they leave a saturated sigmoid,
        # times an input of 1e300, is a visible step the exact oracle does not take.
        assert np.isfinite(net.params).all() and np.isfinite(loss)
        return
    start = Network(sizes, dtype=dtype, seed=0)
    pairs, mean_loss = expected_training(start, X, np.asarray(targets), float(rate),
                                         float(used_scale), order)
    for (W, b), (W2, b2) in zip(pairs, net.get_weights()):
        np.testing.assert_allclose(W2, W, rtol=TOL, atol=TOL)
        np.testing.assert_allclose(b2, b, rtol=TOL, atol=TOL)
    assert loss == pytest.approx(mean_loss, rel=TOL, abs=TOL)


RAW_1_5 = ([1, 5], "float32", np.array([[163], [130], [69], [78], [10], [19]], np.uint8),
           np.array([0, 0, 4, 3, 4, 2]), 1.0, 1.0, None)  # float32 off by 1.1e-2 after 6 samples


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
@example(([3, 2], "float32", np.full((2, 3), 255.0), np.array([0, 1]), 0.3, None, None))
@example(([3, 2], "float32", np.ones((2, 3), np.int64), np.array([0, 1]), 1e39, 1.0, None))
@example(RAW_1_5)
def test_train_epoch_gives_the_documented_error_or_the_right_weights(problem):
    check_training(problem)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("problem", [
    RAW_1_5,
    ([4, 3, 2], None, np.arange(24, dtype=np.uint8).reshape(6, 4) * 10, np.arange(6) % 2, 0.3,
     None, None),
], ids=["raw-pixels", "scaled"])
def test_the_training_check_fails_on_a_step_a_thousandth_too_long(monkeypatch, problem, dtype):
    problem = (problem[0], dtype, *problem[2:])
    check_training(problem)  # the real engine passes ...
    run_epoch = Network._run_epoch

    def too_long(self, X, T, eta, *rest, **kwargs):
        return run_epoch(self, X, T, eta * 1.001, *rest, **kwargs)

    monkeypatch.setattr(Network, "_run_epoch", too_long)
    with pytest.raises(AssertionError):  # ... and one that steps 0.1% too far does not
        check_training(problem)


@settings(max_examples=100, deadline=None)
@given(problems())
def test_inference_gives_the_documented_error_or_consistent_results(problem):
    sizes, dtype, X, targets, _, scale, _ = problem
    net = Network(sizes, dtype=dtype, seed=0)
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
