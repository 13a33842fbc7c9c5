"""ONNX export: the exported graph, run by ONNX Runtime, against the network's own predict/classify.

Every activation x loss x depth (1-3 hidden layers) x dtype on the 10,000 MNIST test images:
labels equal, outputs within 1e-5 (float32) and 1e-12 (float64). Then the graph's structure and
metadata, the builder's errors, the ``export`` command and its one-line errors, and a Hypothesis
property over random small networks. Skipped when onnx or onnxruntime is not installed.
"""

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import jitnet  # noqa: E402
from jitnet import Network  # noqa: E402
from jitnet.cli.main import cli  # noqa: E402
from jitnet.io import onnx_export  # noqa: E402
from jitnet.io.errors import MissingDependencyError  # noqa: E402
from jitnet.training import save_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}
ACTIVATIONS = ("sigmoid", "tanh", "scaled_tanh", "relu")
LOSSES = ("squared", "cross_entropy")
HIDDEN = {1: [24], 2: [24, 16], 3: [24, 16, 12]}
HIDDEN_OPS = {"sigmoid": ["Sigmoid"], "tanh": ["Tanh"], "relu": ["Relu"],
              "scaled_tanh": ["Mul", "Tanh", "Mul"]}


@pytest.fixture(scope="module")
def mnist():
    return jitnet.load_mnist()


def trained(mnist, activation, loss, depth, dtype):
    """A network trained on 600 images for 2 epochs: far from its initial weights, and with
    outputs that differ from image to image (test error 20-80%)."""
    train, _ = mnist
    net = Network([784, *HIDDEN[depth], 10], activation=activation, loss=loss, dtype=dtype,
                  seed=depth, init="glorot")
    net.train(train.images[:600], train.labels[:600], rate=0.5 if activation == "sigmoid" else 0.05,
              epochs=2)
    return net


def session(model):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def run(model, X):
    """(outputs, labels) of the graph on X."""
    return session(model).run(None, {"input": X})


def op_types(model):
    return [node.op_type for node in model.graph.node]


# -- the graph against the network, on the test set --------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_graph_matches_predict_on_the_test_set(mnist, activation, loss, depth, dtype):
    _, test = mnist
    net = trained(mnist, activation, loss, depth, dtype)
    model = net.to_onnx()
    outputs, labels = run(model, test.images.astype(dtype))

    expected = net.predict(test.images)
    assert outputs.dtype == np.dtype(dtype) and outputs.shape == (10_000, 10)
    assert labels.dtype == np.int64 and labels.shape == (10_000,)
    np.testing.assert_array_equal(labels, net.classify(test.images))
    np.testing.assert_allclose(outputs, expected, rtol=0, atol=TOLERANCE[dtype])
    assert len(np.unique(labels)) > 1  # the networks are not constant

    # What the graph holds: a Mul for 1/255, a Gemm per layer, the activations by name.
    expected_ops = ["Mul"]
    for _ in range(depth):
        expected_ops += ["Gemm", *HIDDEN_OPS[activation]]
    final = "softmax" if loss == "cross_entropy" else net.output_activation
    expected_ops += ["Gemm", *HIDDEN_OPS.get(final, ["Softmax"]), "ArgMax"]
    assert op_types(model) == expected_ops
    assert [o.name for o in model.graph.output] == [
        "probabilities" if loss == "cross_entropy" else "outputs", "label"]


def test_a_wrong_scale_is_caught(mnist):
    """The comparison above can fail: a graph that forgets the 1/255 does not match."""
    _, test = mnist
    net = trained(mnist, "sigmoid", "squared", 1, "float64")
    outputs, _ = run(net.to_onnx(scale=1.0), test.images[:200].astype(np.float64))
    assert np.abs(outputs - net.predict(test.images[:200])).max() > 1e-3


def test_dynamic_batch_and_stored_input_scale(mnist):
    _, test = mnist
    net = trained(mnist, "tanh", "cross_entropy", 1, "float32")
    net.input_scale = 1.0  # a raw-pixel model: no Mul, the graph takes the values as they are
    model = net.to_onnx()
    assert "Mul" not in op_types(model)
    s = session(model)
    for n in (1, 7):
        X = test.images[:n].astype(np.float32)
        outputs, labels = s.run(None, {"input": X})
        np.testing.assert_allclose(outputs, net.predict(X, scale=1.0), rtol=0, atol=1e-5)
        np.testing.assert_array_equal(labels, net.classify(X, scale=1.0))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and dims[1].dim_value == 784


def test_file_metadata_and_version(tmp_path, mnist):
    net = trained(mnist, "relu", "cross_entropy", 2, "float32")
    path = tmp_path / "m.onnx"
    model = net.to_onnx(path, metadata={"test_error": 0.0156})
    onnx.checker.check_model(str(path), full_check=True)
    loaded = onnx.load(str(path))
    assert loaded.SerializeToString() == model.SerializeToString()
    assert loaded.ir_version == onnx_export.IR_VERSION == 8
    assert [(o.domain, o.version) for o in loaded.opset_import] == [("", 17)]
    props = {p.key: p.value for p in loaded.metadata_props}
    assert props == {"jitnet_version": jitnet.__version__, "sizes": "[784, 24, 16, 10]",
                     "activation": "relu", "output_activation": "softmax", "loss": "cross_entropy",
                     "dtype": "float32", "input_scale": repr(1 / 255), "test_error": "0.0156"}
    assert loaded.producer_name == "jitnet" and loaded.producer_version == jitnet.__version__
    W = onnx.numpy_helper.to_array(next(t for t in loaded.graph.initializer if t.name == "W1"))
    np.testing.assert_array_equal(W, net.weights[0])  # (n_out, n_in), unpadded, unchanged


def test_class_names_make_string_labels(mnist):
    _, test = mnist
    net = trained(mnist, "sigmoid", "squared", 1, "float64")
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    outputs, labels = run(net.to_onnx(class_names=names), test.images[:500].astype(np.float64))
    assert list(labels) == [names[k] for k in net.classify(test.images[:500])]
    np.testing.assert_allclose(outputs, net.predict(test.images[:500]), rtol=0, atol=1e-12)


# -- the builder's own checks ------------------------------------------------------------------


LAYERS = [(np.ones((3, 4)), np.zeros(3)), (np.ones((2, 3)), np.zeros(2))]


@pytest.mark.parametrize("change, message", [
    (dict(dtype="int32"), "dtype must be float32 or float64"),
    (dict(hidden="swish"), "hidden activation must be one of"),
    (dict(hidden="softmax"), "softmax is an output activation only"),
    (dict(hidden="scaled_tanh"), "the scaled tanh needs its constants"),
    (dict(input_scale=0.0), "input_scale must be a positive finite number"),
    (dict(input_scale=float("inf")), "input_scale must be a positive finite number"),
    (dict(layers=[]), "at least one layer"),
    (dict(layers=[LAYERS[0], (np.ones((2, 4)), np.zeros(2))]), "layer 2: W must be (n_out, 3)"),
    (dict(layers=[(np.ones((3, 4)), np.zeros(4))]), "layer 1: W must be"),
    (dict(layers=[(np.full((3, 4), np.nan), np.zeros(3))]), "not all finite"),
    (dict(class_names=["a", "b", "c"]), "class_names must be 2 distinct names"),
    (dict(class_names=["a", "a"]), "class_names must be 2 distinct names"),
])
def test_builder_refuses_what_is_not_a_network(change, message):
    arguments = dict(layers=LAYERS, hidden="sigmoid", output="sigmoid", dtype="float64")
    arguments.update(change)
    with pytest.raises(ValueError, match=re.escape(message)):
        onnx_export.build_model(arguments.pop("layers"), arguments.pop("hidden"),
                                arguments.pop("output"), **arguments)


class Recorder:
    """A converter's container (skl2onnx's interface): what emit_network adds, by name."""

    def __init__(self):
        self.initializers, self.nodes, self.taken = {}, [], set()

    def add_initializer(self, name, onnx_type, shape, content):
        self.initializers[name] = (onnx_type, list(shape))

    def add_node(self, op_type, inputs, outputs, name=None, **attrs):
        self.nodes.append((op_type, inputs, outputs))

    def unique(self, name):
        while name in self.taken:
            name += "_"
        self.taken.add(name)
        return name


def test_emit_network_into_a_converter_container():
    recorder = Recorder()
    recorder.taken.update({"W1", "z1"})  # names another converter already used
    onnx_export.emit_network(recorder, LAYERS, "scaled_tanh", "softmax", "X", "probs", "lab",
                             dtype="float32", input_scale=0.5, scaled_tanh=(1.7159, 2 / 3),
                             unique=recorder.unique)
    assert [n[0] for n in recorder.nodes] == ["Mul", "Gemm", "Mul", "Tanh", "Mul", "Gemm",
                                              "Softmax", "ArgMax"]
    assert recorder.nodes[0][1][0] == "X" and recorder.nodes[-1][2] == ["lab"]
    assert recorder.nodes[1][1][1] == "W1_" and recorder.nodes[1][2] == ["z1_"]
    assert recorder.initializers["W1_"] == (onnx.TensorProto.FLOAT, [3, 4])
    assert recorder.initializers["scaled_tanh_slope"] == (onnx.TensorProto.FLOAT, [])


def test_missing_onnx_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(MissingDependencyError, match=r'pip install "jitnet\[onnx\]"'):
        Network([4, 3, 2], seed=0).to_onnx()


# -- the command -------------------------------------------------------------------------------


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_user_error(result, *words):
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert result.stdout == ""
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture
def run_folder(tmp_path, mnist):
    """A finished run's folder, as far as export reads it: model.npz and report.json."""
    net = trained(mnist, "relu", "cross_entropy", 1, "float32")
    folder = tmp_path / "run"
    folder.mkdir()
    save_model(folder / "model.npz", net, {"input_scale": None})
    (folder / "report.json").write_text(json.dumps({"status": "finished", "test_error": 0.25}))
    return folder, net


def test_export_command(run_folder, mnist):
    folder, net = run_folder
    out = folder.parent / "out" / "model.onnx"
    result = invoke("export", folder, out)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {out}: 784-24-10 relu, probabilities and label, "
                                    "float32, opset 17, IR version 8")
    model = onnx.load(str(out))
    assert {p.key: p.value for p in model.metadata_props}["test_error"] == "0.25"
    _, test = mnist
    outputs, labels = run(model, test.images.astype(np.float32))
    np.testing.assert_array_equal(labels, net.classify(test.images))
    np.testing.assert_allclose(outputs, net.predict(test.images), rtol=0, atol=1e-5)

    # A model file that is not a run's model.npz has no known test error.
    alone = folder.parent / "alone.npz"
    net.save(alone)
    assert invoke("export", alone, folder.parent / "alone.onnx").exit_code == 0
    props = {p.key for p in onnx.load(str(folder.parent / "alone.onnx")).metadata_props}
    assert "test_error" not in props and "loss" in props


def test_export_errors_are_one_line(run_folder, tmp_path, monkeypatch):
    folder, _ = run_folder
    out = tmp_path / "m.onnx"
    assert_user_error(invoke("export", tmp_path / "missing.npz", out), "MODEL", "does not exist")
    (tmp_path / "junk.npz").write_bytes(b"not a model")
    assert_user_error(invoke("export", tmp_path / "junk.npz", out), "junk.npz")
    out.write_bytes(b"keep me")
    assert_user_error(invoke("export", folder, out), "exists", "--force")
    assert out.read_bytes() == b"keep me"
    assert invoke("export", folder, out, "--force").exit_code == 0
    assert onnx.load(str(out)).graph.node
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert_user_error(invoke("export", folder, tmp_path / "n.onnx"), 'pip install "jitnet[onnx]"')
    assert not (tmp_path / "n.onnx").exists()


# -- random small networks ---------------------------------------------------------------------


@st.composite
def small_networks(draw):
    sizes = [draw(st.integers(1, 12)),
             *draw(st.lists(st.integers(1, 10), min_size=1, max_size=3)),
             draw(st.integers(2, 6))]
    net = Network(sizes, activation=draw(st.sampled_from(ACTIVATIONS)),
                  loss=draw(st.sampled_from(LOSSES)), dtype=draw(st.sampled_from(list(TOLERANCE))),
                  seed=draw(st.integers(0, 2**32 - 1)), init=draw(st.sampled_from(
                      ["tutorial", "uniform:1.0", "he"])))
    scale = draw(st.sampled_from([None, 1.0, 0.25]))
    n = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if scale is None:  # pixels: uint8 for the network, the same values as floats for the graph
        X = rng.integers(0, 256, (n, sizes[0])).astype(np.uint8)
    else:
        X = rng.uniform(-2, 2, (n, sizes[0]))
    net.input_scale = scale
    return net, X


@settings(max_examples=40, deadline=None)
@given(small_networks())
def test_random_networks_agree(case):
    net, X = case
    outputs, labels = run(net.to_onnx(), X.astype(net.dtype))
    expected = net.predict(X)
    np.testing.assert_allclose(outputs, expected, rtol=0, atol=TOLERANCE[net.dtype.name])
    # Labels: equal wherever the two largest outputs are not a near-tie.
    top2 = np.sort(expected, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 2 * TOLERANCE[net.dtype.name]
    np.testing.assert_array_equal(labels[clear], net.classify(X)[clear])


# -- bench/inference.py ------------------------------------------------------------------------


def test_inference_bench_validates_times_and_writes_results(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import inference
    from harness.options import run_command

    assert run_command(inference.main, ["--quick", "--out", str(tmp_path)], "inference.py") == 0
    assert "jitnet rows/s" in capsys.readouterr().out
    record = json.loads((tmp_path / "inference-quick-latest.json").read_text())
    assert [(r["sizes"], r["dtype"], r["rows_per_call"]) for r in record["rows"]] == [
        (sizes, dtype, calls) for sizes in ([784, 300, 10], [784, 800, 10])
        for dtype in ("float32", "float64") for calls in (1000, 1)]
    for row in record["rows"]:
        assert len(row["jitnet"]["times_s"]) == 3 and row["ort"]["rows_per_s"] > 0
    assert "| sizes | dtype |" in (tmp_path / "inference-quick-latest.md").read_text()
