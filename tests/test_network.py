"""The JIT engine's own contract: layout, files, input checks, gradients, MNIST accuracy.

Agreement with the reference implementations lives in test_equivalence.py.
"""

import numpy as np
import pytest

from jitnet.engine.compile import compile_kernels
from jitnet.engine.network import ACTIVATIONS, ModelFileError, Network

TOL = 1e-10


def random_data(sizes, n=50, seed=0, sparsity=0.5):
    rng = np.random.default_rng(seed)
    X = rng.random((n, sizes[0]))
    X[rng.random(X.shape) < sparsity] = 0.0
    labels = rng.integers(0, sizes[-1], n)
    return X, labels


def numpy_sgd(pairs, X, T, rate):
    """Plain numpy per-sample SGD on (W, b) pairs: the tutorial's Eq. 1-5, for comparison."""
    Ws = [W.copy() for W, _ in pairs]
    bs = [b.copy() for _, b in pairs]
    for x, t in zip(X, T):
        a = [x]
        for W, b in zip(Ws, bs):
            a.append(1.0 / (1.0 + np.exp(-(W @ a[-1] + b))))
        delta = [None] * len(Ws)
        delta[-1] = a[-1] * (1 - a[-1]) * (t - a[-1])
        for l in range(len(Ws) - 1, 0, -1):
            delta[l - 1] = a[l] * (1 - a[l]) * (Ws[l].T @ delta[l])
        for l in range(len(Ws)):
            Ws[l] += rate * np.outer(delta[l], a[l])
            bs[l] += rate * delta[l]
    return list(zip(Ws, bs))


# -- layout -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_views_share_the_flat_buffer(dtype):
    net = Network([7, 5, 3], dtype=dtype, seed=1)
    assert net.weights[0].shape == (5, 7) and net.weights[1].shape == (3, 5)
    assert net.biases[0].shape == (5,) and net.biases[1].shape == (3,)
    for array in net.weights + net.biases:
        assert np.shares_memory(array, net.params)
        assert array.dtype == np.dtype(dtype)
    before = net.predict(np.ones(7))
    net.weights[0][2, 3] += 1.0
    net.biases[1][0] -= 1.0
    assert not np.allclose(before, net.predict(np.ones(7)))
    assert net.params.ctypes.data % 64 == 0
    assert net.n_params == 7 * 5 + 5 + 5 * 3 + 3


def test_initial_weights_are_seeded_uniform():
    a, b = Network([50, 20, 10], seed=4), Network([50, 20, 10], seed=4)
    c = Network([50, 20, 10], seed=5)
    assert np.array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)
    values = np.concatenate([np.ravel(x) for pair in a.get_weights() for x in pair])
    assert values.min() >= -0.1 and values.max() < 0.1 and values.std() > 0.05


def test_set_weights_round_trip_and_checks():
    net = Network([4, 3, 2], seed=0)
    pairs = [(W + 1.0, b - 1.0) for W, b in net.get_weights()]
    net.set_weights(pairs)
    for (W, b), (W2, b2) in zip(pairs, net.get_weights()):
        assert np.array_equal(W, W2) and np.array_equal(b, b2)
    with pytest.raises(ValueError, match="expected 2"):
        net.set_weights(pairs[:1])
    with pytest.raises(ValueError, match="layer 1"):
        net.set_weights([pairs[0], (np.zeros((3, 2)), np.zeros(2))])
    with pytest.raises(ValueError, match="NaN"):
        net.set_weights([(np.full((3, 4), np.nan), np.zeros(3)), pairs[1]])


def test_repr():
    assert repr(Network([784, 300, 10])) == (
        "Network(sizes=[784, 300, 10], activation='sigmoid', dtype=float64)"
    )


# -- training -----------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", [[6, 4, 3], [9, 7, 5, 2], [5, 4, 4, 4, 3]])
def test_training_matches_plain_numpy(sizes):
    X, labels = random_data(sizes, n=100)
    net = Network(sizes, seed=2)
    T = np.where(np.eye(sizes[-1])[labels] > 0, 0.9, 0.1)
    expected = numpy_sgd(net.get_weights(), X, T, 0.5)
    net.train(X, labels, rate=0.5)
    for (W, b), (W2, b2) in zip(expected, net.get_weights()):
        np.testing.assert_allclose(W2, W, rtol=0, atol=TOL)
        np.testing.assert_allclose(b2, b, rtol=0, atol=TOL)


def test_uint8_inputs_are_scaled_inside_the_kernel():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (40, 16)).astype(np.uint8)
    images[images < 128] = 0
    labels = rng.integers(0, 3, 40)
    a, b = Network([16, 5, 3], seed=0), Network([16, 5, 3], seed=0)
    loss_a = a.train_epoch(images, labels)
    loss_b = b.train_epoch(images / 255.0, labels)
    assert loss_a == pytest.approx(loss_b, abs=1e-12)
    np.testing.assert_allclose(a.params, b.params, rtol=0, atol=TOL)
    np.testing.assert_allclose(a.predict(images), b.predict(images / 255.0), atol=TOL)
    # An explicit scale (e.g. the tutorial's raw pixels) is honoured.
    c, d = Network([16, 5, 3], seed=0), Network([16, 5, 3], seed=0)
    c.train_epoch(images, labels, scale=1.0)
    d.train_epoch(images.astype(np.float64), labels, scale=1.0)
    np.testing.assert_allclose(c.params, d.params, rtol=0, atol=TOL)


def test_order_shuffle_and_chunked_progress():
    X, labels = random_data([8, 6, 4], n=2500)
    base = Network([8, 6, 4], seed=0)
    order = np.random.default_rng(9).permutation(len(X))
    one_call, chunked = base.copy(), base.copy()
    loss_one = one_call.train_epoch(X, labels, 0.3, order=order)
    seen = []
    loss_chunked = chunked.train_epoch(X, labels, 0.3, order=order, progress=seen.append)
    assert np.array_equal(one_call.params, chunked.params)  # same arithmetic, bitwise
    assert loss_one == pytest.approx(loss_chunked, rel=1e-12)
    assert seen[-1] == len(X) and seen == sorted(seen) and len(seen) > 1
    in_file_order = base.copy()
    in_file_order.train_epoch(X, labels, 0.3)
    assert not np.array_equal(in_file_order.params, one_call.params)
    # train(shuffle=True, seed) is reproducible and equals train_epoch over its permutations.
    s1, s2 = base.copy(), base.copy()
    s1.train(X, labels, 0.3, epochs=2, shuffle=True, seed=5)
    rng = np.random.default_rng(5)
    for _ in range(2):
        s2.train_epoch(X, labels, 0.3, order=rng.permutation(len(X)))
    assert np.array_equal(s1.params, s2.params)


def test_loss_is_the_mean_squared_error_before_each_update():
    X, labels = random_data([5, 4, 3], n=1)
    net = Network([5, 4, 3], seed=0)
    t = np.full(3, 0.1)
    t[labels[0]] = 0.9
    y = net.predict(X[0])
    assert net.train_epoch(X, labels) == pytest.approx(0.5 * np.sum((t - y) ** 2), rel=1e-12)


# -- gradient -----------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
@pytest.mark.parametrize("sizes", [[5, 3], [6, 4, 3], [7, 5, 4, 2], [4, 6, 5, 4, 3]])
def test_gradient_agrees_with_central_differences(sizes, activation):
    rng = np.random.default_rng(len(sizes))
    net = Network(sizes, activation=activation, seed=1)
    for W, b in zip(net.weights, net.biases):
        W[...] = rng.normal(0, 1, W.shape)
        b[...] = rng.normal(0, 1, b.shape)
    x, t = rng.random(sizes[0]), rng.random(sizes[-1])

    def error():
        return 0.5 * np.sum((t - net.predict(x)) ** 2)

    grads = net.gradient(x, t)
    eps = 1e-5
    for (dW, db), W, b in zip(grads, net.weights, net.biases):
        for array, grad in ((W, dW), (b, db)):
            assert grad.shape == array.shape
            for index in np.ndindex(array.shape):
                old = array[index]
                array[index] = old + eps
                e_plus = error()
                array[index] = old - eps
                e_minus = error()
                array[index] = old
                assert grad[index] == pytest.approx((e_plus - e_minus) / (2 * eps), abs=1e-8)


def test_gradient_is_the_negative_of_the_update_direction():
    x, labels = random_data([6, 4, 3], n=1, sparsity=0.0)
    net = Network([6, 4, 3], seed=0)
    grads = net.gradient(x[0], labels[0])  # a label becomes the 0.9/0.1 target
    before = net.get_weights()
    net.train_epoch(x, labels, rate=0.01)
    for (W0, b0), (W1, b1), (dW, db) in zip(before, net.get_weights(), grads):
        # The last layer sees exactly -rate * gradient; earlier ones too (deltas use old weights).
        np.testing.assert_allclose(W1 - W0, -0.01 * dW, atol=1e-15)
        np.testing.assert_allclose(b1 - b0, -0.01 * db, atol=1e-15)


# -- files --------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_save_load_round_trip(tmp_path, dtype):
    net = Network([10, 7, 4, 3], activation="tanh", dtype=dtype, seed=3)
    path = tmp_path / "model.npz"
    net.save(path)
    loaded = Network.load(path)
    assert loaded.sizes == net.sizes and loaded.activation == "tanh"
    assert loaded.dtype == net.dtype
    assert np.array_equal(loaded.params, net.params)
    assert not [p for p in tmp_path.iterdir() if p.name != "model.npz"]  # no temporary left


def test_load_refuses_bad_files(tmp_path):
    net = Network([4, 3, 2], seed=0)
    with pytest.raises(ModelFileError, match="missing.npz: no such file"):
        Network.load(tmp_path / "missing.npz")
    good = tmp_path / "good.npz"
    net.save(good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ModelFileError, match="truncated.npz"):
        Network.load(truncated)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(3))
    with pytest.raises(ModelFileError, match="foreign.npz: not a jitnet model"):
        Network.load(foreign)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="text.npz"):
        Network.load(text)
    arrays = net.to_arrays()
    arrays["W1"] = np.zeros((5, 5))
    with pytest.raises(ModelFileError, match="mismatch.npz: parameters do not fit"):
        Network.from_arrays(arrays, source="mismatch.npz")
    arrays = net.to_arrays()
    arrays["sizes"] = np.array([4, 0, 2])
    with pytest.raises(ModelFileError, match="bad-sizes: invalid model configuration"):
        Network.from_arrays(arrays, source="bad-sizes")


# -- bad input is refused before any kernel runs ------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(sizes=[784]), "at least two layers"),
        (dict(sizes=[784, 0, 10]), "positive integers"),
        (dict(sizes=[784, -3, 10]), "positive integers"),
        (dict(sizes=[784, 2.5, 10]), "positive integers"),
        (dict(sizes="abc"), "must be integers"),
        (dict(sizes=[4, 2], dtype="float16"), "dtype"),
        (dict(sizes=[4, 2], activation="swish"), "activation"),
    ],
)
def test_bad_configuration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Network(**kwargs)


def test_bad_training_inputs():
    net = Network([4, 3, 2], seed=0)
    params = net.params.copy()
    X = np.random.default_rng(0).random((5, 4))
    labels = np.array([0, 1, 0, 1, 1])
    cases = [
        (dict(X=X[:, :3], targets=labels), r"shape \(N, 4\)"),
        (dict(X=X, targets=labels[:4]), r"shape \(5,\)"),
        (dict(X=X, targets=np.zeros((5, 3))), r"shape \(5, 2\)"),
        (dict(X=np.where(X > 0.5, np.nan, X), targets=labels), "NaN or inf"),
        (dict(X=np.where(X > 0.5, np.inf, X), targets=labels), "NaN or inf"),
        (dict(X=X, targets=np.full((5, 2), np.nan)), "NaN or inf"),
        (dict(X=X, targets=np.array([0, 1, 2, 0, 1])), r"class labels must lie in \[0, 1\]"),
        (dict(X=X, targets=np.array([0, -1, 0, 0, 1])), r"\[0, 1\]"),
        (dict(X=X, targets=labels, rate=0), "rate"),
        (dict(X=X, targets=labels, rate=-0.3), "rate"),
        (dict(X=X, targets=labels, rate=float("nan")), "rate"),
        (dict(X=X, targets=labels, order=np.array([0, 9])), "order"),
        (dict(X=X, targets=labels, scale=0), "scale"),
        (dict(X=X.astype(str), targets=labels), "numeric"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            net.train_epoch(**kwargs)
    assert np.array_equal(net.params, params)  # nothing ran
    with pytest.raises(ValueError, match="labels"):
        net.evaluate(X, np.array([0, 1, 5, 0, 1]))
    with pytest.raises(ValueError, match=r"shape"):
        net.predict(np.zeros(5))
    with pytest.raises(ValueError, match="one sample"):
        net.gradient(X, labels)


def test_compile_kernels_reports_seconds():
    seconds = compile_kernels("float32")
    assert 0 < seconds < 300  # seconds, not a speed: a cold compile takes ~7 s on an idle core


# -- MNIST --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_epoch_errors(mnist):
    """Test errors after one epoch; the bounds below are wide against any CPU's rounding (a
    float64 run perturbed by 1e-12, or float32 by 1e-6, classifies every test image the same)."""
    train, test = mnist
    errors = {}
    for dtype in ("float64", "float32"):
        net = Network([784, 300, 10], dtype=dtype, seed=0)
        net.train_epoch(train.images, train.labels, rate=0.3)
        errors[dtype] = net.evaluate(test.images, test.labels)
    return errors


def test_one_mnist_epoch_reaches_the_tutorial_accuracy(one_epoch_errors):
    assert 0.01 < one_epoch_errors["float64"] <= 0.05


def test_float32_matches_float64_after_one_epoch(one_epoch_errors):
    assert abs(one_epoch_errors["float32"] - one_epoch_errors["float64"]) <= 0.003


def test_to_arrays_returns_copies_and_files_are_readable(tmp_path):
    net = Network([5, 4, 3, 2], seed=0)
    arrays = net.to_arrays()
    for key, value in arrays.items():
        if key[0] in "Wb" and key[1:].isdigit():
            assert not np.shares_memory(value, net.params), key
    path = tmp_path / "model.npz"
    net.save(path)
    import os
    import stat

    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_activation_matches_libm_over_the_whole_range(activation):
    from jitnet.engine import kernels

    z = np.concatenate([np.linspace(-800, 800, 20001), [-1e300, -745.2, 0.0, 745.2, 1e300]])
    with np.errstate(over="ignore"):  # e^745 is inf, and 1 / inf the right limit 0
        expected = 1.0 / (1.0 + np.exp(-z)) if activation == "sigmoid" else np.tanh(z)
    a = z.copy()
    kernels._activate(a, np.zeros(z.size, np.int64), a[:0], ACTIVATIONS[activation])
    assert np.isfinite(a).all()
    np.testing.assert_allclose(a, expected, rtol=2e-15, atol=1e-300)
