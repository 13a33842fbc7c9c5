"""The tutorial's two reference implementations: a hand-computed step, and their agreement.

The hand-computed step is also checked against the JIT engine, so that a formula shared by
mistake between the references and the engine cannot pass unnoticed.
"""

import io
import math

import numpy as np
import pytest

import jitnet
from jitnet.reference import make_network, objects, vectorized

REFERENCES = {"object": objects.Network, "vectorized": vectorized.Network}
ALL_ENGINES = [*REFERENCES, "jit"]
TOL = 1e-10  # float64 agreement between implementations whose sums run in different orders


def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


# --- a 2-2-1 network, one step, computed by hand -------------------------------------------------

W0 = [[0.1, 0.2], [0.3, -0.4]]
B0 = [0.05, -0.05]
W1 = [[0.5, -0.6]]
B1 = [0.1]
X = [1.0, 0.5]
T = [0.9]
ETA = 0.5


def hand_step():
    """Forward, deltas (Eq. 3, 4, from the old weights) and the updated weights (Eq. 5), by hand."""
    z_h = [W0[j][0] * X[0] + W0[j][1] * X[1] + B0[j] for j in range(2)]  # 0.25 and 0.05
    a_h = [sigmoid(z) for z in z_h]
    y = sigmoid(W1[0][0] * a_h[0] + W1[0][1] * a_h[1] + B1[0])
    delta_o = y * (1 - y) * (T[0] - y)
    delta_h = [a_h[j] * (1 - a_h[j]) * W1[0][j] * delta_o for j in range(2)]
    new_W1 = [[W1[0][j] + ETA * delta_o * a_h[j] for j in range(2)]]
    new_B1 = [B1[0] + ETA * delta_o]
    new_W0 = [[W0[j][i] + ETA * delta_h[j] * X[i] for i in range(2)] for j in range(2)]
    new_B0 = [B0[j] + ETA * delta_h[j] for j in range(2)]
    return dict(a_h=a_h, y=y, delta_o=delta_o, delta_h=delta_h,
                W0=new_W0, B0=new_B0, W1=new_W1, B1=new_B1)


def tiny(engine):
    if engine == "jit":
        net = jitnet.Network([2, 2, 1], dtype="float64", seed=0)
    else:
        net = REFERENCES[engine]([2, 2, 1], seed=0)
    net.set_weights([(np.array(W0), np.array(B0)), (np.array(W1), np.array(B1))])
    return net


def test_hand_values_are_what_they_claim():
    h = hand_step()
    # pinned once, so that a wrong formula in hand_step itself shows up
    assert h["a_h"][0] == pytest.approx(0.5621765008857981, abs=1e-15)
    assert h["a_h"][1] == pytest.approx(0.5124973964842103, abs=1e-15)
    assert h["y"] == pytest.approx(0.5183891550750991, abs=1e-15)
    assert h["delta_o"] == pytest.approx(0.09527366531699243, abs=1e-15)


@pytest.mark.parametrize("engine", ALL_ENGINES)
def test_hand_computed_forward(engine):
    h = hand_step()
    net = tiny(engine)
    y = net.predict(X)
    assert isinstance(y, np.ndarray) and y.shape == (1,)
    assert y[0] == pytest.approx(h["y"], abs=1e-15)


@pytest.mark.parametrize("engine", ALL_ENGINES)
def test_hand_computed_gradient(engine):
    h = hand_step()
    (gW0, gb0), (gW1, gb1) = tiny(engine).gradient(X, T)
    # +dE/dw = -delta * x
    np.testing.assert_allclose(gb1, [-h["delta_o"]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(gW1, [[-h["delta_o"] * a for a in h["a_h"]]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(gb0, [-d for d in h["delta_h"]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(gW0, [[-d * x for x in X] for d in h["delta_h"]], rtol=0, atol=1e-15)


@pytest.mark.parametrize("engine", ALL_ENGINES)
def test_hand_computed_training_step(engine):
    h = hand_step()
    net = tiny(engine)
    if engine == "jit":
        loss = net.train_epoch(np.array([X]), np.array([T]), ETA)
        assert loss == pytest.approx(0.5 * (T[0] - h["y"]) ** 2, abs=1e-15)
    else:
        net.train_one_sample(T, X, ETA)
    (nW0, nb0), (nW1, nb1) = net.get_weights()
    np.testing.assert_allclose(nW1, h["W1"], rtol=0, atol=1e-15)
    np.testing.assert_allclose(nb1, h["B1"], rtol=0, atol=1e-15)
    np.testing.assert_allclose(nW0, h["W0"], rtol=0, atol=1e-15)
    np.testing.assert_allclose(nb0, h["B0"], rtol=0, atol=1e-15)


def test_hand_computed_deltas_live_in_the_nodes():
    h = hand_step()
    net = tiny("object")
    net.train_one_sample(T, X, ETA)
    assert net.layers[2].nodes[0].delta == pytest.approx(h["delta_o"], abs=1e-15)
    for j in range(2):
        assert net.layers[1].nodes[j].delta == pytest.approx(h["delta_h"][j], abs=1e-15)
    assert net.layers[1].nodes[0].output == pytest.approx(h["a_h"][0], abs=1e-15)


def test_hand_computed_deltas_live_in_the_layers():
    h = hand_step()
    net = tiny("vectorized")
    net.train_one_sample(T, X, ETA)
    np.testing.assert_allclose(net.layers[1].b_grad, [h["delta_o"]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(net.layers[0].b_grad, h["delta_h"], rtol=0, atol=1e-15)


@pytest.mark.parametrize("engine", REFERENCES)
def test_get_gradient_is_delta_times_x_and_changes_nothing(engine):
    h = hand_step()
    net = tiny(engine)
    before = net.get_weights()
    (gW0, gb0), (gW1, gb1) = net.get_gradient(T, X)  # label first, tutorial's sign
    np.testing.assert_allclose(gb1, [h["delta_o"]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(gW0, [[d * x for x in X] for d in h["delta_h"]], rtol=0, atol=1e-15)
    for (W, b), (W2, b2) in zip(before, net.get_weights()):
        assert np.array_equal(W, W2) and np.array_equal(b, b2)


# --- construction, parameters, checking -----------------------------------------------------------


@pytest.mark.parametrize("engine", REFERENCES)
def test_seeded_initial_weights(engine):
    a, b, c = (REFERENCES[engine]([5, 4, 3], seed=s) for s in (7, 7, 8))
    for (Wa, ba), (Wb, bb), (Wc, bc) in zip(a.get_weights(), b.get_weights(), c.get_weights()):
        assert np.array_equal(Wa, Wb) and np.array_equal(ba, bb)
        assert not np.array_equal(Wa, Wc)
        assert np.all(np.abs(Wa) <= 0.1) and np.all(np.abs(ba) <= 0.1)
        assert Wa.std() > 0.02 and np.all(ba != 0)  # biases are drawn too, like the weights


@pytest.mark.parametrize("engine", REFERENCES)
def test_weights_round_trip_and_are_copies(engine):
    net = REFERENCES[engine]([4, 3, 2], seed=1)
    rng = np.random.default_rng(0)
    pairs = [
        (rng.normal(size=(3, 4)), rng.normal(size=3)),
        (rng.normal(size=(2, 3)), rng.normal(size=2)),
    ]
    net.set_weights(pairs)
    got = net.get_weights()
    for (W, b), (W2, b2) in zip(pairs, got):
        assert W2.dtype == np.float64 and W2.shape == W.shape and b2.shape == b.shape
        assert np.array_equal(W, W2) and np.array_equal(b, b2)
    pairs[0][0][0, 0] = 99.0  # the network took a copy
    got[0][0][0, 1] = 99.0  # and gave one
    assert net.get_weights()[0][0][0, 0] != 99.0 and net.get_weights()[0][0][0, 1] != 99.0


@pytest.mark.parametrize("engine", REFERENCES)
@pytest.mark.parametrize(
    "pairs",
    [
        [(np.zeros((3, 4)), np.zeros(3))],  # too few layers
        [(np.zeros((4, 3)), np.zeros(3)), (np.zeros((2, 3)), np.zeros(2))],  # W transposed
        [(np.zeros((3, 4)), np.zeros(2)), (np.zeros((2, 3)), np.zeros(2))],  # b too short
        [(np.zeros((3, 4)), np.full(3, np.nan)), (np.zeros((2, 3)), np.zeros(2))],  # NaN
    ],
)
def test_set_weights_refuses_bad_pairs(engine, pairs):
    net = REFERENCES[engine]([4, 3, 2], seed=1)
    before = net.get_weights()
    with pytest.raises(ValueError, match="layer|pairs"):
        net.set_weights(pairs)
    for (W, b), (W2, b2) in zip(before, net.get_weights()):
        assert np.array_equal(W, W2) and np.array_equal(b, b2)


@pytest.mark.parametrize("engine", REFERENCES)
@pytest.mark.parametrize("sizes", [[3], [3, 0, 2], [3, -1], "ab"])
def test_bad_sizes(engine, sizes):
    with pytest.raises(ValueError):
        REFERENCES[engine](sizes)


@pytest.mark.parametrize("engine", REFERENCES)
def test_wrong_sample_or_label_length_is_refused(engine):
    net = REFERENCES[engine]([4, 3, 2], seed=1)
    with pytest.raises(ValueError, match="shape"):
        net.predict(np.zeros(3))
    with pytest.raises(ValueError, match="shape"):
        net.train_one_sample(np.zeros(3), np.zeros(4), 0.3)
    with pytest.raises(ValueError, match="shape"):
        net.train(np.zeros((5, 2)), np.zeros((5, 5)), 0.3, 1)
    with pytest.raises(ValueError, match="samples"):
        net.train(np.zeros((4, 2)), np.zeros((5, 4)), 0.3, 1)


def test_object_version_computes_in_python_floats():
    net = objects.Network([3, 2, 2], seed=0)
    net.train_one_sample(np.array([0.9, 0.1]), np.array([0.2, 0.4, 0.6]), 0.3)
    for conn in net.connections:
        assert type(conn.weight) is float and type(conn.gradient) is float
    for layer in net.layers:
        for node in layer.nodes:
            assert type(node.output) is float and type(node.delta) is float


def test_object_version_structure():
    net = objects.Network([3, 2, 2], seed=0)
    assert [len(layer.nodes) for layer in net.layers] == [4, 3, 3]  # each with its bias node
    assert all(isinstance(layer.nodes[-1], objects.ConstNode) for layer in net.layers)
    assert len(net.connections) == (3 + 1) * 2 + (2 + 1) * 2
    assert net.predict([1, 2, 3]).shape == (2,)
    assert net.layers[1].nodes[-1].output == 1.0  # the bias node stays 1 after a forward pass
    with pytest.raises(TypeError):
        net.layers[0].nodes[-1].set_output(0.5)


def test_object_version_is_readable():
    net = tiny("object")
    net.predict(X)
    conn = net.layers[1].nodes[0].upstream[1]  # from input node 1 to hidden node 0
    assert str(conn) == "(0-1)->(1-0) = 0.2"
    bias = net.layers[1].nodes[1].upstream[-1]
    assert str(bias) == "(0-2)->(1-1) = -0.05"
    node_text = str(net.layers[1].nodes[0])
    assert node_text.startswith("node 1-0: output 0.562177")
    assert "(1-0)->(2-0) = 0.5" in node_text and "(0-0)->(1-0) = 0.1" in node_text
    assert str(net.layers[0].nodes[-1]).startswith("const node 0-2: output 1")
    assert str(net.layers[2]).splitlines()[0] == "layer 2"
    assert "Network(sizes=[2, 2, 1]" in repr(net)
    out = io.StringIO()
    net.dump(file=out)
    text = out.getvalue()
    assert text.count("node ") == 3 + 3 + 2 and "(1-2)->(2-0) = 0.1" in text
    out = io.StringIO()
    net.connections.dump(file=out)
    assert len(out.getvalue().splitlines()) == len(net.connections) == 9


def test_vectorized_dump_and_repr():
    net = tiny("vectorized")
    out = io.StringIO()
    net.dump(file=out)
    assert out.getvalue().count("W:") == 2
    assert repr(net) == "Network(sizes=[2, 2, 1], engine='vectorized')"
    act = vectorized.SigmoidActivator()
    y = act.forward(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_array_equal(y, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(act.backward(y), [0.0, 0.25, 0.0])


def test_object_sigmoid_saturates_without_overflow():
    assert objects.sigmoid(-1000.0) == 0.0 and objects.sigmoid(1000.0) == 1.0


def test_make_network_names_engines():
    assert isinstance(make_network([3, 2], "object"), objects.Network)
    assert isinstance(make_network([3, 2], "vectorized"), vectorized.Network)
    with pytest.raises(ValueError, match="unknown engine"):
        make_network([3, 2], "torch")


# --- the two references agree ---------------------------------------------------------------------


def random_problem(sizes, n, seed):
    rng = np.random.default_rng(seed)
    X = rng.random((n, sizes[0]))
    T = np.where(rng.random((n, sizes[-1])) < 0.5, 0.1, 0.9)
    init = [
        (rng.uniform(-0.5, 0.5, (n_out, n_in)), rng.uniform(-0.5, 0.5, n_out))
        for n_in, n_out in zip(sizes[:-1], sizes[1:])
    ]
    return X, T, init


@pytest.mark.parametrize("sizes", [[20, 8, 4], [6, 5, 4, 3]])
def test_object_and_vectorized_agree_after_training(sizes):
    X, T, init = random_problem(sizes, 200, seed=3)
    nets = {}
    for engine, cls in REFERENCES.items():
        net = cls(sizes, seed=0)
        net.set_weights(init)
        net.train(T, X, 0.3, 1)
        nets[engine] = net
    ref, comp = nets["object"], nets["vectorized"]
    trained = zip(ref.get_weights(), comp.get_weights(), init)
    for layer, ((W, b), (W2, b2), (W0_, _)) in enumerate(trained):
        np.testing.assert_allclose(W2, W, rtol=0, atol=TOL, err_msg=f"W{layer}")
        np.testing.assert_allclose(b2, b, rtol=0, atol=TOL, err_msg=f"b{layer}")
        assert np.abs(W - W0_).max() > 1e-3  # training did move the weights
    for x in X[:20]:
        np.testing.assert_allclose(comp.predict(x), ref.predict(x), rtol=0, atol=TOL)


@pytest.mark.parametrize("engine", REFERENCES)
def test_train_is_train_one_sample_in_file_order(engine):
    sizes = [5, 4, 3]
    X, T, init = random_problem(sizes, 10, seed=4)
    a, b = REFERENCES[engine](sizes), REFERENCES[engine](sizes)
    a.set_weights(init)
    b.set_weights(init)
    a.train(T, X, 0.3, 2)
    for _ in range(2):
        for t, x in zip(T, X):
            b.train_one_sample(t, x, 0.3)
    for (W, bb), (W2, bb2) in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(W, W2) and np.array_equal(bb, bb2)


@pytest.mark.parametrize("engine", REFERENCES)
def test_training_lowers_the_error(engine):
    sizes = [4, 6, 2]
    X, T, init = random_problem(sizes, 40, seed=5)
    T = np.where((X[:, :2] > 0.5), 0.9, 0.1)  # a learnable rule
    net = REFERENCES[engine](sizes, seed=2)

    def loss():
        return sum(0.5 * np.sum((t - net.predict(x)) ** 2) for x, t in zip(X, T))

    before = loss()
    net.train(T, X, 0.5, 30)
    assert loss() < 0.7 * before
