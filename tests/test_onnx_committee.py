"""A committee exported as one ONNX graph: every member on the same input, outputs averaged."""

import numpy as np
import pytest
from click.testing import CliRunner

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import jitnet  # noqa: E402
from jitnet.cli.main import cli  # noqa: E402


def committee(mnist, dtypes, loss="cross_entropy"):
    train, _ = mnist
    nets = []
    # Squared-error members share their output activation only when their units are alike.
    activations = ("relu", "tanh", "scaled_tanh") if loss == "cross_entropy" else ("sigmoid",) * 3
    for k, (activation, dtype) in enumerate(zip(activations, dtypes)):
        net = jitnet.Network([784, 12 + 3 * k, 10], activation=activation, loss=loss,
                             dtype=dtype, seed=k)
        net.train(train.images[:400], train.labels[:400], rate=0.05, epochs=2)
        nets.append(net)
    return jitnet.Committee(nets)


def run(path, X):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": X})


@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-12), ("float32", 1e-5)])
@pytest.mark.parametrize("loss", ["cross_entropy", "squared"])
def test_the_graph_averages_like_the_committee(tmp_path, mnist, dtype, tolerance, loss):
    members = committee(mnist, [dtype] * 3, loss)
    _, test = mnist
    model = members.to_onnx(tmp_path / "committee.onnx", metadata={"test_error": 0.5})
    onnx.checker.check_model(model, full_check=True)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["committee"] == "3 members, mean" and props["test_error"] == "0.5"
    outputs, labels = run(tmp_path / "committee.onnx", test.images.astype(dtype))
    expected = members.predict(test.images)
    assert outputs.dtype == np.dtype(dtype)
    assert np.abs(outputs - expected).max() <= tolerance
    assert np.array_equal(labels, members.classify(test.images))
    # A committee is not its first member: the average must differ from every member alone.
    for net in members:
        assert np.abs(net.predict(test.images[:200]) - expected[:200]).max() > 1e-3


def test_members_of_different_dtypes_export_in_float64(tmp_path, mnist):
    members = committee(mnist, ["float32", "float64", "float32"])
    _, test = mnist
    members.to_onnx(tmp_path / "c.onnx")
    outputs, labels = run(tmp_path / "c.onnx", test.images[:2000].astype(np.float64))
    assert outputs.dtype == np.float64
    # float32 members run in float64 in the graph: agreement to float32 rounding.
    assert np.abs(outputs - members.predict(test.images[:2000])).max() < 1e-5


def test_export_command_takes_a_committee_folder(tmp_path, mnist):
    members = committee(mnist, ["float64"] * 3)
    members.save(tmp_path / "c")
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "c"), str(tmp_path / "c.onnx")])
    assert result.exit_code == 0, result.output
    assert "committee of 3" in result.output
    _, test = mnist
    _, labels = run(tmp_path / "c.onnx", test.images.astype(np.float64))
    assert np.array_equal(labels, members.classify(test.images))
