"""Exported tabular models: standardisation in the graph, class names as labels."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import jitnet  # noqa: E402


def run(model, X):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": X})


def table_network(dtype, seed=0, constant_column=True):
    """A network trained on raw features of very different ranges, standardised."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(300, 6)) * [1, 10, 100, 1000, 0.01, 5] + [0, 50, -300, 1e4, 1, 7]
    if constant_column:
        X[:, 4] = 3.0  # constant in training: standardised to 0 whatever its value
    y = (X[:, 0] + X[:, 1] / 10 > 0).astype(int) + (X[:, 2] > -300)
    net = jitnet.Network([6, 8, 3], activation="tanh", loss="cross_entropy", dtype=dtype,
                         seed=seed)
    net.standardization = (X.mean(axis=0), X.std(axis=0))
    net.class_names = ["low", "middle", "high"]
    net.train(X, y, rate=0.05, epochs=3)
    X_new = rng.normal(size=(200, 6)) * [1, 10, 100, 1000, 0.01, 5] + [0, 50, -300, 1e4, 2, 7]
    return net, X_new


@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-12), ("float32", 1e-5)])
def test_standardisation_and_class_names_travel_in_the_graph(dtype, tolerance):
    net, X = table_network(dtype)
    model = net.to_onnx()
    assert [n.op_type for n in model.graph.node][:2] == ["Sub", "Mul"]
    outputs, labels = run(model, X.astype(dtype))
    assert np.abs(outputs - net.predict(X)).max() <= tolerance
    names = np.array(net.class_names)[net.classify(X)]
    assert list(labels) == list(names)
    assert len(set(labels)) > 1


def test_without_standardisation_the_graph_would_be_wrong():
    net, X = table_network("float64")
    plain = jitnet.Network([6, 8, 3], activation="tanh", loss="cross_entropy")
    plain.set_weights(net.get_weights())
    plain.input_scale = 1.0
    outputs, _ = run(plain.to_onnx(), X)
    assert np.abs(outputs - net.predict(X)).max() > 1e-3


def test_a_committee_of_standardising_members(tmp_path):
    members = [table_network("float64", seed=k)[0] for k in range(3)]
    _, X = table_network("float64", seed=9)
    committee = jitnet.Committee(members)
    outputs, labels = run(committee.to_onnx(), X)
    assert np.abs(outputs - committee.predict(X)).max() <= 1e-12
    assert list(labels) == list(np.array(committee.class_names)[committee.classify(X)])
