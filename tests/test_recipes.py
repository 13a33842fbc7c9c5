"""Training recipes beyond the tutorial: activations, cross-entropy, initial weights, momentum,
schedules -- each checked against the independent float64 oracle (tests/oracle.py) and by the
gradient check, plus their bad-input errors and model files."""

import itertools
import pickle

import numpy as np
import pytest

import oracle
from helpers import sgd_problem, velocity_pairs
from jitnet.engine import kernels
from jitnet.evaluation.gradcheck import format_report, gradient_check, run_gradcheck
from jitnet.engine.network import ModelFileError, Network, TrainingDiverged
from jitnet.engine.components import ACTIVATIONS
from jitnet.engine.schedules import Schedule, make_schedule

TOL = 1e-10
N_SAMPLES = 200
LOSSES = ["squared", "cross_entropy"]
SHAPES = {1: [12, 7, 4], 2: [10, 7, 5, 3], 3: [9, 6, 5, 4, 3]}


def problem(sizes, loss, seed, sparsity=0.0, init_limit=0.5):
    """N_SAMPLES inputs in [0, 1) (a fraction ``sparsity`` zero), targets for the loss (0.1/0.9
    vectors, or random distributions for cross-entropy), initial weights
    uniform(-init_limit, init_limit)."""
    return sgd_problem(sizes, loss, seed, sparsity, init_limit, n=N_SAMPLES)


def max_difference(pairs_a, pairs_b):
    return max(max(np.abs(W - W2).max(), np.abs(b - b2).max())
               for (W, b), (W2, b2) in zip(pairs_a, pairs_b))


CASES = [
    pytest.param(activation, loss, momentum, depth, 0.0,
                 id=f"{activation}-{loss}-{'mom' if momentum else 'sgd'}-{depth}hidden")
    for activation, loss, momentum, depth in itertools.product(
        ACTIVATIONS, LOSSES, [0.0, 0.9], [1, 2, 3])
] + [
    pytest.param("relu", "cross_entropy", 0.9, 1, 0.85, id="relu-cross_entropy-mom-sparse"),
    pytest.param("sigmoid", "squared", 0.9, 1, 0.85, id="sigmoid-squared-mom-sparse"),
    pytest.param("tanh", "squared", 0.0, 2, 0.85, id="tanh-squared-sgd-sparse"),
]


@pytest.mark.parametrize("activation, loss, momentum, depth, sparsity", CASES)
def test_training_matches_the_oracle(activation, loss, momentum, depth, sparsity):
    sizes = SHAPES[depth]
    X, T, init = problem(sizes, loss, seed=depth, sparsity=sparsity)
    if sparsity:
        X[:, 3] = 0.0  # an input that is never on: its row moves by momentum alone
    rate = 0.02 if momentum else 0.2
    net = Network(sizes, activation=activation, loss=loss, dtype="float64")
    net.set_weights(init)
    output = net.output_activation
    expected, velocity, mean_loss = oracle.sgd(init, X, T, rate, activation, output, momentum)
    loss_value = net.train_epoch(X, T, rate, momentum=momentum)
    assert max_difference(init, expected) > 1e-2  # training moved the weights
    assert max_difference(expected, net.get_weights()) <= TOL
    assert loss_value == pytest.approx(mean_loss, rel=1e-12)
    if momentum:
        assert max_difference(velocity, velocity_pairs(net)) <= TOL
    else:
        assert net.velocity is None


def test_long_gaps_past_the_end_of_the_momentum_tables():
    """A small momentum: the tables end where mu^d underflows (d = 81 for mu = 1e-4), and the
    inputs here stay zero for longer; those rows read the tables' last entries."""
    sizes = SHAPES[1]
    X, T, init = problem(sizes, "squared", seed=4, sparsity=0.9)
    X[:150, 5] = 0.0
    X[150, 5] = 0.7
    expected, velocity, _ = oracle.sgd(init, X, T, 0.2, "tanh", "tanh", 1e-4)
    net = Network(sizes, activation="tanh")
    net.set_weights(init)
    net.train_epoch(X, T, 0.2, momentum=1e-4)
    assert max_difference(expected, net.get_weights()) <= TOL
    assert max_difference(velocity, velocity_pairs(net)) <= TOL


def test_the_oracle_comparison_has_teeth():
    """A wrong momentum or a wrong output rule in the engine fails the comparison above."""
    sizes = SHAPES[1]
    X, T, init = problem(sizes, "squared", seed=1)
    expected, _, _ = oracle.sgd(init, X, T, 0.02, "relu", "sigmoid", 0.9)
    for kwargs, activation in [(dict(momentum=0.89), "relu"), (dict(momentum=0.9), "tanh")]:
        net = Network(sizes, activation=activation)
        net.set_weights(init)
        net.train_epoch(X, T, 0.02, **kwargs)
        assert max_difference(expected, net.get_weights()) > 1e3 * TOL


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_momentum_chunked_resumed_and_pickled_runs_are_bitwise_equal(dtype):
    sizes = [30, 9, 10]
    X, T, init = problem(sizes, "cross_entropy", seed=5, sparsity=0.8)
    X = np.tile(X, (12, 1))  # 2400 samples: several progress chunks
    T = np.tile(T, (12, 1))
    order = np.random.default_rng(0).permutation(len(X))
    base = Network(sizes, activation="relu", loss="cross_entropy", dtype=dtype)
    base.set_weights(init)
    whole, chunked = base.copy(), base.copy()
    for _ in range(2):
        whole.train_epoch(X, T, 0.01, order=order, momentum=0.9)
    seen = []
    chunked.train_epoch(X, T, 0.01, order=order, momentum=0.9, progress=seen.append)
    resumed = pickle.loads(pickle.dumps(chunked))  # velocity travels with the network
    resumed.train_epoch(X, T, 0.01, order=order, momentum=0.9, progress=seen.append)
    assert len(seen) > 2
    assert whole.params.tobytes() == resumed.params.tobytes()
    assert whole.velocity.tobytes() == resumed.velocity.tobytes()
    saved = whole.velocity.copy()
    fresh = base.copy()
    fresh.params[...] = whole.params
    fresh.velocity = saved  # what a checkpoint restores
    assert fresh.velocity.tobytes() == saved.tobytes() and fresh.velocity.ctypes.data % 64 == 0
    whole.train_epoch(X, T, 0.01, order=order, momentum=0.9)
    fresh.train_epoch(X, T, 0.01, order=order, momentum=0.9)
    assert whole.params.tobytes() == fresh.params.tobytes()


def test_momentum_zero_is_plain_sgd_bitwise_and_drops_the_velocity():
    sizes = [12, 7, 4]
    X, T, init = problem(sizes, "squared", seed=2, sparsity=0.5)
    a, b = Network(sizes), Network(sizes)
    a.set_weights(init)
    b.set_weights(init)
    a.train_epoch(X, T, 0.2)
    b.train_epoch(X, T, 0.2, momentum=0.0)
    assert a.params.tobytes() == b.params.tobytes() and b.velocity is None
    b.train_epoch(X, T, 0.02, momentum=0.5)
    assert b.velocity is not None
    b.train_epoch(X, T, 0.02)
    assert b.velocity is None


# -- the gradient check, for every activation and loss ------------------------------------------


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("sizes", [[5, 4, 3], [6, 5, 4, 3]], ids=["1hidden", "2hidden"])
def test_gradient_check_passes_for_every_recipe(activation, loss, sizes):
    rng = np.random.default_rng(7)
    net = Network(sizes, activation=activation, loss=loss, seed=7)
    net.set_weights([(rng.normal(0, 1, W.shape), rng.normal(0, 1, b.shape))
                     for W, b in net.get_weights()])
    x = rng.random(sizes[0])
    t = np.eye(sizes[-1])[1] if loss == "cross_entropy" else np.where(rng.random(sizes[-1]) < 0.5,
                                                                      0.1, 0.9)
    result = gradient_check(net, x, t)
    assert result.passed, format_report(result)
    assert np.abs(result.expected).max() > 1e-3
    # A deliberately wrong gradient fails.
    good = net.gradient(x, t)

    class Wrong:
        loss, sizes = net.loss, net.sizes
        get_weights, set_weights, predict = net.get_weights, net.set_weights, net.predict

        @staticmethod
        def gradient(x, t):
            grads = [(dW.copy(), db.copy()) for dW, db in good]
            grads[-1][1][0] += 1e-5 + 1e-4 * abs(grads[-1][1][0])
            return grads

    assert not gradient_check(Wrong(), x, t).passed


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_run_gradcheck_builds_each_recipe(activation):
    assert run_gradcheck([6, 4, 3], activation=activation, loss="cross_entropy", seed=3).passed
    with pytest.raises(ValueError, match="implements only"):
        run_gradcheck([6, 4, 3], engine="vectorized", activation=activation, loss="cross_entropy")


# -- the activations themselves -----------------------------------------------------------------


@pytest.mark.parametrize("code, reference, rtol", [
    (kernels.TANH, np.tanh, 1e-15),  # a few ulp
    (kernels.SCALED_TANH, lambda z: 1.7159 * np.tanh(2.0 * z / 3.0), 2e-15),
])
def test_vectorised_tanh_matches_libm_over_the_whole_range(code, reference, rtol):
    z = np.concatenate([np.linspace(-40, 40, 40001), np.geomspace(1e-300, 1e3, 2000),
                        -np.geomspace(1e-300, 1e3, 2000), [0.0, -0.0, 1e300, -1e300, 800.0]])
    a = z.copy()
    kernels._activate(a, np.zeros(z.size, np.int64), a[:0], code)
    np.testing.assert_allclose(a, reference(z), rtol=rtol, atol=0)
    assert np.all(np.abs(a) <= (1.7159 if code == kernels.SCALED_TANH else 1.0))


def test_softmax_cross_entropy_is_finite_when_saturated():
    net = Network([2, 3], loss="cross_entropy", seed=0)
    net.set_weights([(np.array([[1e3, 0], [-1e3, 0], [0, 0]]), np.zeros(3))])
    x = np.array([1.0, 0.0])
    y = net.predict(x)
    assert y[1] < 1e-300 and y[0] == 1.0  # saturated: log y[1] from y would be about -708
    loss = net.train_epoch(x[None], [1], 1e-6)
    assert loss == pytest.approx(2e3, rel=1e-12)  # -log y1 = logsumexp(z) - z1 = 1000 + 1000
    np.testing.assert_allclose(net.predict(np.array([0.3, 0.7])).sum(), 1.0, rtol=1e-15)


def test_a_non_finite_loss_is_caught():
    """Outputs that overflow float32 make z - max(z) = inf - inf: the loss is NaN."""
    net = Network([2, 2], loss="cross_entropy", dtype="float32", seed=0)
    net.set_weights([(np.array([[3e38, 3e38], [0.0, 0.0]]), np.zeros(2))])
    with pytest.raises(TrainingDiverged, match=r"^training diverged: loss is nan; try a smaller"):
        net.train_epoch(np.ones((1, 2)), [1], 0.1)


# -- initial weights ------------------------------------------------------------------------------


def test_initial_weights():
    tutorial = Network([50, 40, 10], seed=4)
    assert tutorial.params.tobytes() == Network([50, 40, 10], seed=4, init="uniform:0.1").params.tobytes()
    ciresan = Network([50, 40, 10], seed=4, init="uniform:0.05")
    np.testing.assert_allclose(ciresan.params, tutorial.params / 2, rtol=1e-15)
    for init, spread in [("glorot", lambda i, o: 6 / (i + o)), ("lecun", lambda i, o: 3 / i),
                         ("he", lambda i, o: 6 / i)]:
        net = Network([400, 300, 10], seed=0, init=init)
        for W, b in zip(net.weights, net.biases):
            limit = np.sqrt(spread(W.shape[1], W.shape[0]))
            assert np.all(b == 0) and np.abs(W).max() <= limit
            assert W.var() == pytest.approx(limit**2 / 3, rel=0.05)


# -- schedules ------------------------------------------------------------------------------------


def test_schedules():
    assert make_schedule("constant", 0.3).rate_at(7) == 0.3
    exponential = make_schedule("exponential:0.94", 0.02)
    assert exponential.rate_at(0) == 0.02 and exponential.rate_at(3) == pytest.approx(0.02 * 0.94**3)
    step = make_schedule("step:0.5:10", 0.4)
    assert [step.rate_at(e) for e in (0, 9, 10, 25)] == [0.4, 0.4, 0.2, 0.1]
    assert make_schedule(step.spec, 0.4) == step and isinstance(step, Schedule)


def test_train_follows_the_schedule_epoch_by_epoch():
    sizes = [12, 7, 4]
    X, T, init = problem(sizes, "squared", seed=3)
    a, b = Network(sizes), Network(sizes)
    a.set_weights(init)
    b.set_weights(init)
    a.train(X, T, rate=0.3, epochs=3, schedule="exponential:0.5", momentum=0.5)
    for rate in (0.3, 0.15, 0.075):
        b.train_epoch(X, T, rate, momentum=0.5)
    assert a.params.tobytes() == b.params.tobytes()


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    (dict(activation="softmax"), "activation must be one of"),
    (dict(loss="hinge"), "loss must be one of"),
    (dict(init="xavier"), "init must be one of"),
    (dict(init="uniform:-1"), "uniform:A"),
    (dict(init="uniform:x"), "uniform:A"),
    (dict(sizes=[4, 1], loss="cross_entropy"), "at least 2 outputs"),
])
def test_bad_recipes(kwargs, message):
    kwargs = {"sizes": [4, 3, 2], **kwargs}
    with pytest.raises(ValueError, match=message):
        Network(**kwargs)


@pytest.mark.parametrize("spec, message", [
    ("cosine", "schedule must be one of"), ("exponential:0", "GAMMA"),
    ("exponential:-0.5", "GAMMA"), ("exponential:1.5", "GAMMA"), ("exponential", "one of"),
    ("step:0.5:0", "EVERY"), ("step:0.5:1.5", "EVERY"), ("step:2:3", "FACTOR"), (0.9, "one of"),
])
def test_bad_schedules(spec, message):
    with pytest.raises(ValueError, match=message):
        make_schedule(spec, 0.1)
    net = Network([4, 3, 2], seed=0)
    with pytest.raises(ValueError, match=message):
        net.train(np.zeros((2, 4)), [0, 1], schedule=spec)


@pytest.mark.parametrize("momentum", [-0.1, 1.0, 1.5, float("nan"), "0.9", None])
def test_bad_momentum(momentum):
    net = Network([4, 3, 2], seed=0)
    with pytest.raises(ValueError, match="momentum"):
        net.train_epoch(np.zeros((2, 4)), [0, 1], 0.1, momentum=momentum)


def test_cross_entropy_targets_must_be_distributions():
    net = Network([4, 3, 2], loss="cross_entropy", seed=0)
    X = np.zeros((2, 4))
    for T in ([[0.9, 0.1], [0.1, 0.1]], [[1.5, -0.5], [0, 1]]):
        with pytest.raises(ValueError, match="must be distributions"):
            net.train_epoch(X, np.array(T), 0.1)
    net.train_epoch(X, np.array([[0.3, 0.7], [1.0, 0.0]]), 0.1)
    np.testing.assert_array_equal(net.targets([1, 0]), [[0, 1], [1, 0]])
    np.testing.assert_array_equal(Network([4, 3, 2]).targets([1]), [[0.1, 0.9]])


def test_bad_velocity():
    net = Network([4, 3, 2], seed=0)
    for velocity in (np.zeros(3), np.full(net.params.shape, np.nan)):
        with pytest.raises(ValueError, match="velocity"):
            net.velocity = velocity


# -- model files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("activation, loss", [("relu", "squared"), ("scaled_tanh", "cross_entropy"),
                                              ("tanh", "squared")])
def test_model_files_keep_the_recipe(tmp_path, activation, loss):
    net = Network([6, 5, 3], activation=activation, loss=loss, init="glorot", seed=1)
    net.save(tmp_path / "m.npz")
    loaded = Network.load(tmp_path / "m.npz")
    assert (loaded.activation, loaded.loss, loaded.init, loaded.output_activation) == (
        activation, loss, "glorot", net.output_activation)
    x = np.random.default_rng(0).random(6)
    assert loaded.predict(x).tobytes() == net.predict(x).tobytes()


def test_version_1_files_load_with_their_old_meaning(tmp_path):
    net = Network([6, 5, 3], activation="tanh", seed=1)
    arrays = {k: v for k, v in net.to_arrays().items()
              if k not in ("loss", "init", "output_activation")}
    arrays["format_version"] = np.array(1)
    np.savez(tmp_path / "v1.npz", **arrays)
    loaded = Network.load(tmp_path / "v1.npz")
    assert (loaded.loss, loaded.output_activation) == ("squared", "tanh")  # tanh on every layer
    x = np.random.default_rng(0).random(6)
    assert loaded.predict(x).tobytes() == net.predict(x).tobytes()
    arrays["activation"] = np.array("relu")
    with pytest.raises(ModelFileError, match="version 1"):
        Network.from_arrays(arrays, source="v1-relu")


@pytest.mark.parametrize("key, value, message", [
    ("activation", "swish", "activation must be one of"),
    ("loss", "hinge", "loss must be one of"),
    ("init", "orthogonal", "init must be one of"),
    ("output_activation", "relu", "output activation 'relu'"),
    ("output_activation", "softmax", "output activation 'softmax'"),
    ("format_version", 6, "format version 6"),  # 5 is the preprocessing's
])
def test_model_files_with_unknown_names_are_refused(key, value, message):
    arrays = Network([6, 5, 3], seed=1).to_arrays()
    arrays[key] = np.array(value)
    with pytest.raises(ModelFileError, match=f"bad.npz: .*{message}"):
        Network.from_arrays(arrays, source="bad.npz")
