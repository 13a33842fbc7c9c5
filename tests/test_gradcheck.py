"""Gradient check (tutorial Eq. 6) on every engine, its failure reports, the three tutorial bugs."""

import numpy as np
import pytest

import jitnet
from jitnet.evaluation.gradcheck import (
    ATOL,
    RTOL,
    RTOL_FLOAT32,
    GradientCheckResult,
    format_report,
    gradient_check,
    run_gradcheck,
)
from jitnet.reference import make_network

ENGINES = ["object", "vectorized", "jit"]
SHAPES = [[5, 4, 3], [6, 5, 4, 2], [4, 5, 4, 3, 3]]  # 1, 2 and 3 hidden layers


def random_case(sizes, seed, scale=1.0):
    """Weights ~ N(0, scale) (bigger than the default init: the sigmoids work off their linear
    middle), an input in [0, 1) and 0.1/0.9 targets."""
    rng = np.random.default_rng(seed)
    pairs = [
        (rng.normal(0, scale, (n_out, n_in)), rng.normal(0, scale, n_out))
        for n_in, n_out in zip(sizes[:-1], sizes[1:])
    ]
    x = rng.random(sizes[0])
    t = np.where(rng.random(sizes[-1]) < 0.5, 0.1, 0.9)
    return pairs, x, t


def built(engine, sizes, seed=0, scale=1.0):
    net = make_network(sizes, engine, seed=seed)
    pairs, x, t = random_case(sizes, seed, scale)
    net.set_weights(pairs)
    return net, x, t


def assert_same_weights(before, after):
    assert len(before) == len(after)
    for (W, b), (W2, b2) in zip(before, after):
        assert W.tobytes() == W2.tobytes() and b.tobytes() == b2.tobytes()


class Double:
    """A test double around a real engine that lets a test break one thing."""

    def __init__(self, net):
        self.net = net
        self.sizes = net.sizes
        self.predict_calls = 0

    def get_weights(self):
        return self.net.get_weights()

    def set_weights(self, pairs):
        self.net.set_weights(pairs)

    def predict(self, x):
        self.predict_calls += 1
        return self.net.predict(x)

    def gradient(self, x, t):
        return self.net.gradient(x, t)


# --- it passes on correct engines -----------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("sizes", SHAPES, ids=["1hidden", "2hidden", "3hidden"])
@pytest.mark.parametrize("scale", [None, 1.0], ids=["init", "N(0,1)"])
def test_passes_on_every_engine(engine, sizes, scale):
    if scale is None:  # the engine's own seeded initial weights
        net = make_network(sizes, engine, seed=3)
        _, x, t = random_case(sizes, 3)
    else:
        net, x, t = built(engine, sizes, seed=3, scale=scale)
    before = net.get_weights()
    result = gradient_check(net, x, t)
    assert result.passed, format_report(result)
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    assert result.n_params == len(result.expected) == len(result.actual) == n_params
    assert result.max_abs_error < 1e-9
    big = np.abs(result.expected) > 1e-4  # tiny gradients are judged by atol alone
    assert result.rel_error[big].max() < 1e-7
    assert np.abs(result.expected).max() > 1e-3  # not a vacuous pass on zero gradients
    assert_same_weights(before, net.get_weights())


@pytest.mark.parametrize("engine", ENGINES)
def test_run_gradcheck(engine):
    result = run_gradcheck([8, 5, 3], engine=engine, seed=4)
    assert isinstance(result, GradientCheckResult) and result.passed
    assert result.n_params == 8 * 5 + 5 + 5 * 3 + 3
    again = run_gradcheck([8, 5, 3], engine=engine, seed=4)
    assert again.expected.tobytes() == result.expected.tobytes()


def test_run_gradcheck_draws_the_tutorial_targets(monkeypatch):
    import jitnet.evaluation.gradcheck as gradcheck
    from jitnet.data.datasets import TARGET_OFF, TARGET_ON

    seen = []
    monkeypatch.setattr(gradcheck, "gradient_check", lambda net, x, t, epsilon: seen.append(t))
    run_gradcheck([4, 3, 12], engine="jit", seed=1)
    assert set(seen[0].tolist()) == {TARGET_OFF, TARGET_ON}


def test_run_gradcheck_refuses_unknown_engine():
    with pytest.raises(ValueError, match="unknown engine"):
        run_gradcheck([3, 2], engine="torch")


def test_exported_from_the_package():
    assert jitnet.gradient_check is gradient_check
    assert jitnet.GradientCheckResult is GradientCheckResult


@pytest.mark.parametrize("engine", ENGINES)
def test_result_layout_and_report(engine):
    sizes = [3, 2, 2]
    net, x, t = built(engine, sizes, seed=1)
    result = gradient_check(net, x, t)
    # parameters layer by layer, W row-major then b
    assert list(result.layer) == [0] * 8 + [1] * 6
    assert list(result.kind) == ["W"] * 6 + ["b"] * 2 + ["W"] * 4 + ["b"] * 2
    assert result.index[:3] == [(0, 0), (0, 1), (0, 2)] and result.index[6] == (0,)
    grads = net.gradient(x, t)
    flat = np.concatenate([np.concatenate([dW.ravel(), db]) for dW, db in grads])
    assert np.array_equal(result.actual, flat)
    assert result.max_abs_error == np.abs(result.expected - result.actual).max()
    assert (result.rtol, result.atol, result.epsilon) == (RTOL, ATOL, 1e-4)
    worst = result.worst(3)
    assert len(worst) == 3 and worst[0].name.startswith(("W", "b"))
    ratios = [e.abs_error / (ATOL + RTOL * max(abs(e.expected), abs(e.actual))) for e in worst]
    assert ratios == sorted(ratios, reverse=True)
    assert len(result.worst(100)) == result.n_params
    assert repr(result).startswith("GradientCheckResult(passed=True, n_params=14")
    report = format_report(result, top=4)
    lines = report.splitlines()
    assert len(lines) == 1 + 4 + 1
    assert lines[0].split() == ["param", "expected", "actual", "abs", "err", "rel", "err"]
    assert all(line.endswith(" ok") for line in lines[1:5])
    assert lines[-1].startswith("gradient check passed: 14 parameters, max abs error ")
    assert len({len(line) for line in lines[1:5]}) == 1  # aligned columns
    assert len(lines[0]) < len(lines[1])  # the header has no trailing blanks
    assert format_report(result, top=0).startswith("gradient check passed")


def test_float32_engines_get_looser_default_tolerances():
    net, x, t = built("vectorized", [3, 2, 2], seed=1)
    double = Double(net)
    double.dtype = np.dtype(np.float32)
    assert gradient_check(double, x, t).rtol == RTOL_FLOAT32
    assert gradient_check(double, x, t, rtol=1e-3, atol=0).rtol == 1e-3


def test_epsilon_must_be_positive():
    net, x, t = built("vectorized", [3, 2, 2], seed=1)
    with pytest.raises(ValueError, match="epsilon"):
        gradient_check(net, x, t, epsilon=0)


# --- it fails on wrong gradients ------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("where", [(0, "W", (1, 2)), (1, "b", (0,))])
def test_reports_a_deliberately_wrong_entry(engine, where):
    layer, kind, index = where
    net, x, t = built(engine, [4, 3, 2], seed=2)
    double = Double(net)
    good = net.gradient(x, t)

    def wrong_gradient(x, t):
        grads = [(dW.copy(), db.copy()) for dW, db in good]
        target = grads[layer][0 if kind == "W" else 1]
        target[index] *= 1 + 1e-4  # a small error, still far beyond the tolerance
        return grads

    double.gradient = wrong_gradient
    result = gradient_check(double, x, t)
    assert not result.passed and not result
    assert result.n_failed == 1
    worst = result.worst(1)[0]
    assert (worst.layer, worst.kind, worst.index) == (layer, kind, index)
    assert worst.rel_error == pytest.approx(1e-4, rel=1e-2)
    report = format_report(result)
    assert report.splitlines()[-1].startswith(
        "gradient check FAILED: 1 of 23 parameters out of tolerance, max abs error"
    )
    assert report.splitlines()[1].startswith(worst.name) and report.splitlines()[1].endswith("FAIL")
    assert "passed=False" in repr(result)


@pytest.mark.parametrize("engine", ENGINES)
def test_nan_gradient_fails(engine):
    net, x, t = built(engine, [3, 2, 2], seed=1)
    double = Double(net)
    good = net.gradient(x, t)
    double.gradient = lambda x, t: [(good[0][0], np.full(2, np.nan)), good[1]]
    result = gradient_check(double, x, t)
    assert not result.passed and result.n_failed == 2
    assert result.worst(1)[0].kind == "b"


def test_gradient_of_the_wrong_shape_is_an_error():
    net, x, t = built("vectorized", [3, 2, 2], seed=1)
    double = Double(net)
    good = net.gradient(x, t)
    double.gradient = lambda x, t: [(good[0][0].T, good[0][1]), good[1]]
    with pytest.raises(ValueError, match="shape"):
        gradient_check(double, x, t)


# --- bug 1: get_gradient called with label and sample swapped -------------------------------------


@pytest.mark.parametrize("engine", ["object", "vectorized"])
def test_get_gradient_takes_label_first(engine):
    sizes = [3, 4, 2]  # n_in != n_out: a swap cannot go unnoticed
    net, x, t = built(engine, sizes, seed=5)
    assert not np.allclose(x[:2], t)
    result = gradient_check(net, x, t)
    tutorial = net.get_gradient(t, x)  # label first, delta * x = -dE/dw
    flat = np.concatenate([np.concatenate([gW.ravel(), gb]) for gW, gb in tutorial])
    np.testing.assert_allclose(-flat, result.expected, rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="shape"):
        net.get_gradient(x, t)  # swapped: a sample where the label belongs


@pytest.mark.parametrize("engine", ENGINES)
def test_a_swapped_gradient_is_caught_when_feature_differs_from_label(engine):
    sizes = [3, 4, 3]  # n_in == n_out: the swap runs, and only the values can tell
    net, x, t = built(engine, sizes, seed=6)
    double = Double(net)
    double.gradient = lambda x, t: net.gradient(t, x)  # the tutorial's bug
    assert not gradient_check(double, x, t).passed
    # the tutorial's own test used feature == label, which hides the swap:
    assert gradient_check(double, t, t).passed


# --- bug 2: weights left shifted by -epsilon after the check --------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_weights_are_bitwise_unchanged_after_the_check(engine):
    net, x, t = built(engine, [4, 3, 2], seed=7)
    before = net.get_weights()
    y_before = net.predict(x)
    gradient_check(net, x, t, epsilon=1e-3)
    assert_same_weights(before, net.get_weights())
    assert net.predict(x).tobytes() == y_before.tobytes()


@pytest.mark.parametrize("engine", ENGINES)
def test_weights_are_restored_when_the_check_raises(engine):
    net, x, t = built(engine, [4, 3, 2], seed=7)
    before = net.get_weights()
    double = Double(net)

    def predict_then_fail(x):
        double.predict_calls += 1
        if double.predict_calls == 7:  # in the middle of a perturbation
            raise KeyboardInterrupt
        return net.predict(x)

    double.predict = predict_then_fail
    with pytest.raises(KeyboardInterrupt):
        gradient_check(double, x, t)
    assert_same_weights(before, net.get_weights())


@pytest.mark.parametrize("engine", ENGINES)
def test_a_check_that_leaves_weights_shifted_is_detectable(engine):
    """What the bitwise assertion above catches: the tutorial's loop ended at w - epsilon."""
    net, x, t = built(engine, [4, 3, 2], seed=7)
    before = net.get_weights()
    shifted = net.get_weights()
    shifted[0][0][0, 0] -= 1e-4
    net.set_weights(shifted)
    with pytest.raises(AssertionError):
        assert_same_weights(before, net.get_weights())


# --- bug 3: the vectorized check compared values of opposite sign ---------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_expected_and_actual_have_the_same_sign(engine):
    net, x, t = built(engine, [5, 4, 3], seed=8)
    result = gradient_check(net, x, t)
    big = np.abs(result.expected) > 1e-4
    assert big.sum() > result.n_params // 2
    assert np.array_equal(np.sign(result.expected[big]), np.sign(result.actual[big]))
    np.testing.assert_allclose(result.actual, result.expected, rtol=1e-6, atol=1e-9)
    # the numerical gradient is +dE/dw: a step against it lowers the error
    k = int(np.argmax(np.abs(result.expected)))
    pairs = net.get_weights()
    param = pairs[result.layer[k]][0 if result.kind[k] == "W" else 1]
    param[result.index[k]] -= 1e-3 * result.expected[k]
    E = lambda net: 0.5 * np.sum((t - net.predict(x)) ** 2)  # noqa: E731
    E_before = E(net)
    net.set_weights(pairs)
    assert E(net) < E_before


@pytest.mark.parametrize("engine", ENGINES)
def test_the_tutorial_signed_gradient_fails_the_check(engine):
    net, x, t = built(engine, [5, 4, 3], seed=8)
    double = Double(net)
    double.gradient = lambda x, t: [(-dW, -db) for dW, db in net.gradient(x, t)]  # delta * x
    result = gradient_check(double, x, t)
    assert not result.passed
    big = np.abs(result.expected) > 1e-4
    assert np.all(np.sign(result.expected[big]) == -np.sign(result.actual[big]))
