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
from helpers import velocity_pairs
from jitnet.engine.network import ModelFileError, Network, TrainingDiverged
from jitnet.engine import training
from jitnet.engine.components import ACTIVATIONS

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


# Rounding, bounded. A whole epoch cannot be compared with the exact (float64) oracle at one
# fixed tolerance: each sample multiplies the rounding errors already in a weight by about
# rate * |x|^2 * |f''| (over 1000 for raw 0-255 inputs at scale 1), so after six samples float32
# and the oracle differ by more than 10, and float64 by more than 1e-10, both rounding honestly.
# So the epoch is replayed one call per sample, and each step, taken from the engine's own
# weights (and velocity), must agree with the oracle's step from the same values within twice
# the first-order bound of the rounding one step can make in the network's dtype (step_bounds;
# twice: first order), and in float64 within four times (the float64 oracle rounds as much as
# the engine; its BLAS sums in an order that can change with the arrays' alignment). Without
# momentum the epoch is its chain of steps, bitwise; with momentum
# it catches the first layer's rows up lazily, rounding otherwise than the chain: in float64 it
# must agree with the chain to 1e-10 (measured: 1e-13 at most), and float32, the same code,
# is not compared.

U32, U64 = 2.0**-24, 2.0**-53  # unit roundoffs: a rounded result is within u * |result|
SUBNORMAL = {U32: 2.0**-149, U64: 2.0**-1074}  # ... or within this, where it underflows
# Per activation: sup |f'(z)|, sup |f''(z)|, and sup |d f'/da| (the kernels compute f' from a).
SLOPES = {"sigmoid": (0.25, 0.0963, 1.0), "tanh": (1.0, 0.7699, 2.0),
          "scaled_tanh": (1.1440, 0.5874, 1.3334), "relu": (1.0, 0.0, 0.0)}
ULPS = 8  # error allowed to an activation, the softmax or the kernels' exp, in units of u


def step_bounds(pairs, x, t, rate, hidden, output, momentum, velocity, u):
    """How far one SGD step from ``pairs`` (as float64) on the scaled sample x with target t,
    computed with unit roundoff u, may land from the exact step.

    Model: a dot product of n terms errs by (n + 2) u times the sum of its terms' magnitudes
    (any summation order, the scaling of x and the bias included); an activation by ULPS u of
    its value plus sup|f'| times its input's error; f' by sup|f''| and sup|df'/da| times the
    errors of z and a (relu: fully, when the kink lies within z's error); each product or sum
    by a few u of its value; errors propagate through |W|. First order in u, except that a
    product of two computed factors keeps the product of their errors: a saturated unit's
    slope is 0 exactly but a few u as computed, and meets an error term of the same size.
    Results that underflow err by the smallest subnormal instead. Returns ([(bound W, bound b)
    per layer], [(bound of the velocity's W, b) per layer], bound of the loss).
    """
    last, tiny = len(pairs) - 1, SUBNORMAL[u]
    a, e_a, zs, e_zs = [x], [2 * u * np.abs(x) + tiny], [], []
    for l, (W, b) in enumerate(pairs):
        f = output if l == last else hidden
        z = W @ a[-1] + b
        e_z = ((W.shape[1] + 2) * u * (np.abs(W) @ (np.abs(a[-1]) + e_a[-1]) + np.abs(b))
               + np.abs(W) @ e_a[-1])
        y = oracle.activate(z, f)
        spread = e_z.max() if f == "softmax" else SLOPES[f][0] * e_z
        zs.append(z), e_zs.append(e_z), a.append(y), e_a.append(spread + ULPS * u * np.abs(y))

    def slope_error(l, f):  # error of f'(z) of layer l
        if f == "relu":
            return (np.abs(zs[l]) <= e_zs[l]).astype(np.float64)
        return SLOPES[f][1] * e_zs[l] + SLOPES[f][2] * e_a[l + 1] + 4 * u

    y, e_y = a[-1], e_a[-1] + u * np.abs(t)  # the target, too, is rounded to the dtype
    if output == "softmax":
        delta = t - y
        e_delta = e_y + u * np.abs(delta)
        e_loss = np.abs(t) @ (2 * e_zs[-1].max() + ULPS * u * (1 + np.abs(zs[-1])))
    else:
        slope = oracle.derivative(zs[-1], output)
        delta = slope * (t - y)
        e_slope = slope_error(last, output)
        e_delta = ((np.abs(slope) + e_slope) * e_y + e_slope * np.abs(t - y)
                   + 3 * u * np.abs(delta))
        e_loss = np.abs(t - y) @ e_y
    deltas, e_deltas = [delta], [e_delta]
    for l in range(last, 0, -1):
        W = pairs[l][0]
        back = W.T @ deltas[0]
        e_back = ((W.shape[0] + 2) * u * (np.abs(W.T) @ (np.abs(deltas[0]) + e_deltas[0]))
                  + np.abs(W.T) @ e_deltas[0])
        slope, e_slope = oracle.derivative(zs[l - 1], hidden), slope_error(l - 1, hidden)
        deltas.insert(0, slope * back)
        e_deltas.insert(0, (np.abs(slope) + e_slope) * e_back + e_slope * np.abs(back)
                        + 2 * u * np.abs(slope * back))
    bounds, velocity_bounds = [], []
    for (W, b), (vW, vb), delta, e_delta, x_l, e_x in zip(pairs, velocity, deltas, e_deltas,
                                                           a, e_a):
        moves = []
        for old, step, e_step in ((vW, rate * np.outer(delta, x_l),
                                   rate * (np.outer(e_delta, np.abs(x_l))
                                           + np.outer(np.abs(delta) + e_delta, e_x))),
                                  (vb, rate * delta, rate * e_delta)):
            new = momentum * old + step  # the velocity; without momentum the step itself
            moves.append((new, e_step + 4 * u * (np.abs(step) + momentum * np.abs(old))
                          + (u * np.abs(new) + tiny if momentum else 0.0) + 4 * tiny))
        velocity_bounds.append(tuple(e for _, e in moves))
        bounds.append(tuple(u * np.abs(p + new) + e for p, (new, e) in zip((W, b), moves)))
    return bounds, velocity_bounds, e_loss + 4 * u * oracle.loss(zs[-1], y, t, output)


def as_float64(pairs):
    return [(W.astype(np.float64), b.astype(np.float64)) for W, b in pairs]


def assert_within(got_pairs, want_pairs, bound_pairs, what):
    for l, (got, want, bound) in enumerate(zip(got_pairs, want_pairs, bound_pairs)):
        for name, g, w, e in zip("Wb", got, want, bound):
            off = np.abs(np.asarray(g, np.float64) - w)
            # Equal is always within: a bound can overflow to nan where a huge rate saturates.
            within = (off <= e) | (np.asarray(g, np.float64) == w)
            assert within.all(), f"{what} {name}{l}: off by {off.max():.3g}"


def assert_epoch_is_right(net, loss, problem):
    """The epoch ``net`` ran (mean loss ``loss``) is its samples' steps run one call each, and
    every such step is the oracle's from the same weights and velocity, to rounding."""
    sizes, dtype, recipe, X, targets, rate, scale, order, momentum = problem
    X, targets = np.asarray(X), np.asarray(targets)
    used_scale = scale if scale is not None else (1 / 255 if X.dtype == np.uint8 else 1.0)
    u, margin = (U64, 4) if dtype == "float64" else (U32, 2)
    replay = Network(sizes, dtype=dtype, seed=0, **recipe)
    T = replay.targets(targets) if targets.ndim == 1 else targets
    units = (replay.activation, replay.output_activation)
    order = np.arange(len(X)) if order is None else np.asarray(order)
    step_losses = []
    for i in order:
        before, velocity = as_float64(replay.get_weights()), velocity_pairs(replay)
        step_losses.append(replay.train_epoch(X, targets, rate, order=np.array([i]),
                                              scale=scale, momentum=momentum))
        x = X[i].astype(np.float64) * used_scale
        exact, exact_velocity, exact_loss = oracle.sgd(
            before, x[None], T[i : i + 1], float(rate), *units, momentum, velocity)
        with np.errstate(over="ignore", invalid="ignore"):  # inputs of 1e30: bounds of inf
            bounds, velocity_bounds, loss_bound = step_bounds(
                before, x, T[i], float(rate), *units, momentum, velocity, u)
        allowed = [(margin * eW, margin * eb) for eW, eb in bounds]
        assert_within(replay.get_weights(), exact, allowed, "weight")
        if momentum:
            allowed = [(margin * eW, margin * eb) for eW, eb in velocity_bounds]
            assert_within(velocity_pairs(replay), exact_velocity, allowed, "velocity")
        off = abs(step_losses[-1] - exact_loss)
        assert off == 0 or off <= margin * loss_bound + SUBNORMAL[u], f"loss: off by {off:.3g}"
    mean = np.mean(step_losses) if step_losses else 0.0
    if not momentum:
        assert replay.params.tobytes() == net.params.tobytes(), "the epoch is not its steps"
        assert loss == pytest.approx(mean, rel=1e-6 if dtype == "float32" else TOL)
    elif dtype == "float64":
        np.testing.assert_allclose(net.params, replay.params, rtol=TOL, atol=TOL)
        assert loss == pytest.approx(mean, rel=TOL, abs=TOL)


def check_training(problem):
    """The property: train_epoch gives the documented error or the right weights."""
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
    # Accepted: finite, and right (for inputs of sane size: beyond |z| = 709 the kernels' exp
    # clamps, and an input of 1e300 turns the 1e-308 left of a saturated sigmoid's slope into
    # a visible step).
    assert np.isfinite(net.params).all() and np.isfinite(loss)
    X = np.asarray(X)
    used_scale = scale if scale is not None else (1 / 255 if X.dtype == np.uint8 else 1.0)
    if X.size and np.abs(X.astype(np.float64)).max() * used_scale > 1e6:
        return
    assert_epoch_is_right(net, loss, problem)


# sizes [1, 5], raw pixels at scale 1, rate 1: float32 ends 1.1e-2 from float64 after 6 samples
RAW_1_5 = ([1, 5], "float32", TUTORIAL, np.array([[163], [130], [69], [78], [10], [19]],
                                                 np.uint8),
           np.array([0, 0, 4, 3, 4, 2]), 1.0, 1.0, None, 0.0)
# float64, tanh, 4 steps on one raw-ish sample: 1.1e-9 from the whole-epoch oracle
RAW_TANH = ([4, 4], "float64", {"activation": "tanh", "loss": "squared"},
            np.array([[101, 62, 104, 172]], np.uint8),
            np.array([[0.28427673, 0.38764018, 0.12097464, 0.00120398]]), 1.4375, 1.25,
            np.array([0, 0, 0, 0]), 0.0)
SCALED = ([4, 3, 2], "float64", TUTORIAL, np.arange(24, dtype=np.uint8).reshape(6, 4) * 10,
          np.arange(6) % 2, 0.3, None, None, 0.0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
@example(([3, 2], "float32", TUTORIAL, np.full((2, 3), 255.0), np.array([0, 1]), 0.3, None,
          None, 0.0))
@example(([3, 2], "float32", TUTORIAL, np.ones((2, 3), np.int64), np.array([0, 1]), 1e39, 1.0,
          None, 0.0))
@example(([3, 2], "float64", {"activation": "relu", "loss": "cross_entropy"},
          np.ones((2, 3)), np.array([[0.9, 0.1], [0.5, 0.6]]), 0.3, None, None, 0.9))
@example(RAW_1_5)
@example(RAW_1_5[:-1] + (0.9,))
@example(RAW_TANH)
def test_train_epoch_gives_the_documented_error_or_the_right_weights(problem):
    check_training(problem)


@pytest.mark.parametrize("momentum", [0.0, 0.5])
@pytest.mark.parametrize("problem, dtype", [
    (RAW_1_5, "float32"), (RAW_1_5, "float64"), (SCALED, "float32"), (SCALED, "float64"),
    (RAW_TANH, "float64"),  # in float32 its units saturate: no step for an error to change
])
def test_the_training_check_fails_on_a_step_a_thousandth_too_long(monkeypatch, problem, dtype,
                                                                   momentum):
    problem = (problem[0], dtype, *problem[2:-1], momentum)
    check_training(problem)  # the real engine passes ...
    run_epoch = training.run_epoch

    def too_long(net, X, T, eta, *rest, **kwargs):
        return run_epoch(net, X, T, eta * 1.001, *rest, **kwargs)

    monkeypatch.setattr(training, "run_epoch", too_long)
    with pytest.raises(AssertionError):  # ... and one that steps 0.1% too far does not
        check_training(problem)


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
