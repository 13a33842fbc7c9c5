"""Smoke tests of the benchmarks (bench/compare.py, bench/scaling.py): a handful of samples each,
small networks, no timing asserted anywhere."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jitnet import bench

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 784 inputs and 10 classes are fixed by MNIST; a small hidden layer keeps the object version fast.
SMALL = ["--sizes", "784,16,10", "--validate-samples", "5", "--repeats", "3"]
TINY_RUN = SMALL + ["--samples", "200", "--eager-samples", "20", "--object-samples", "2",
                    "--no-frameworks", "--no-cold-compile"]


def _load_scaling():
    spec = importlib.util.spec_from_file_location("bench_scaling",
                                                  os.path.join(ROOT, "bench", "scaling.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compare_validates_times_and_writes_results(tmp_path, capsys):
    assert bench.main(TINY_RUN + ["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "µs/sample" in out and "jit compile:" in out and "machine:" in out
    assert "MISMATCH" not in out

    record = json.loads((tmp_path / "compare-latest.json").read_text())
    engines = [(row["engine"], row["dtype"]) for row in record["rows"]]
    assert engines == [("object (tutorial)", "float64"), ("vectorized (numpy)", "float64"),
                       ("jitnet", "float64"), ("jitnet", "float32")]
    assert [row["samples"] for row in record["rows"]] == [2, 20, 200, 200]
    for row in record["rows"]:
        assert len(row["times_s"]) == 3 and row["us_per_sample"] > 0
        assert row["epoch"] == "extrapolated" and row["validated"]
    assert record["rows"][0]["x_vs_object"] == pytest.approx(1.0)
    assert record["rows"][1]["x_vs_vectorized"] == pytest.approx(1.0)
    checks = {(c["key"]): c for c in record["validation"]}
    assert checks["object"]["moved"] > 1e-6
    assert checks["jit64"]["max_diff"] <= 1e-10 and checks["vectorized"]["max_diff"] <= 1e-10
    assert record["config"]["sizes"] == [784, 16, 10]

    markdown = (tmp_path / "compare-latest.md").read_text()
    assert "| engine | dtype |" in markdown and "Reproduce: `python bench/compare.py" in markdown
    assert len(list(tmp_path.glob("compare-20*.json"))) == 1


def test_compare_refuses_to_time_when_an_engine_disagrees(tmp_path, capsys, monkeypatch):
    # A vectorized reference that silently does not train must stop the benchmark before timing.
    monkeypatch.setattr("jitnet.reference.vectorized.Network.train",
                        lambda self, labels, data_set, rate, iteration: None)

    def no_timing(*args, **kwargs):
        raise AssertionError("timed although validation failed")

    monkeypatch.setattr(bench, "time_engine", no_timing)
    assert bench.main(TINY_RUN + ["--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "validation FAILED" in out and "vectorized" in out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, message",
    [(["--sizes", "10,5,3"], "must start with 784"),
     (["--sizes", "784,x,10"], "comma-separated"),
     (["--repeats", "2"], "--repeats")],
)
def test_compare_usage_errors_exit_2(tmp_path, capsys, args, message):
    assert bench.main(args + ["--no-frameworks", "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_compare_script_runs_from_the_repository_root():
    done = subprocess.run([sys.executable, "bench/compare.py", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout and "--samples" in done.stdout


def test_max_difference_sees_every_layer():
    pairs = [(np.zeros((3, 4)), np.zeros(3)), (np.zeros((2, 3)), np.zeros(2))]
    other = [(W.copy(), b.copy()) for W, b in pairs]
    assert bench.max_difference(pairs, other) == 0
    other[1][1][1] = -0.5
    assert bench.max_difference(pairs, other) == 0.5


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_framework_engines_match_the_object_version(framework):
    pytest.importorskip(framework)
    train, _ = __import__("jitnet").load_mnist()
    data = bench.Samples(train[:10])
    sizes = [784, 8, 10]
    init = __import__("jitnet").Network(sizes, seed=1).get_weights()
    limits = bench.ThreadLimits()
    try:
        if framework == "torch":
            build = lambda: bench.TorchEngine(init, data, limits)  # noqa: E731
        else:
            build = lambda: bench.JaxEngine(init, data, False)  # noqa: E731
        builders = {"object": (lambda: bench.ObjectEngine(init, data), True),
                    framework: (build, False)}
        checks = bench.validate(builders, 5, init)
    finally:
        limits.restore()
    assert checks[0]["ok"]
    assert checks[1]["max_diff"] < bench.TOL_FLOAT32


def test_operation_counts_by_hand():
    scaling = _load_scaling()
    # 4-3-2, two non-zero inputs: first layer 2*3, second 3*2, biases 3+2.
    counts = scaling.operation_counts([4, 3, 2], nnz=2, itemsize=8)
    forward, backward, update = 6 + 6 + 5, 6, 6 + 6 + 5
    assert counts["macs"] == forward + backward + update
    assert counts["touched_bytes"] == 8 * (6 + 6 + 5)
    assert counts["traffic_bytes"] == 8 * (forward + backward + 2 * update)


def test_scaling_runs_and_writes_results(tmp_path, capsys):
    scaling = _load_scaling()
    args = ["--quick", "--hidden", "8,16", "--densities", "0.1,1", "--repeats", "3",
            "--seconds", "0.002", "--out", str(tmp_path)]
    assert scaling.main(args) == 0
    out = capsys.readouterr().out
    assert "cost against hidden size" in out and "cost against input density" in out
    record = json.loads((tmp_path / "scaling-quick-latest.json").read_text())
    assert [(r["sizes"][1], r["dtype"]) for r in record["hidden"]] == [
        (8, "float32"), (8, "float64"), (16, "float32"), (16, "float64")]
    assert [r["density"] for r in record["density"]] == [0.1, 0.1, 1.0, 1.0]
    dense = record["density"][-1]
    assert dense["nnz"] == 784  # every synthetic pixel non-zero at density 1
    assert dense["macs"] == scaling.operation_counts(dense["sizes"], 784, 8)["macs"]
    for row in record["hidden"] + record["density"]:
        assert row["us_per_sample"] > 0 and len(row["times_s"]) == 3
    assert "W1 fits" in (tmp_path / "scaling-quick-latest.md").read_text()


def test_first_layer_size_counts_the_row_padding():
    scaling = _load_scaling()
    # 300 float32 weights are 1,200 bytes: 19 cache lines, 1,216 bytes per input row.
    assert scaling.first_layer_size([784, 300, 10], 4) == 784 * 1216
    assert scaling.first_layer_size([784, 300, 10], 8) == 784 * 2432
    assert scaling.first_layer_size([4, 3, 2], 8) == 4 * 64
    assert scaling.cache_level(1000, {"L1": 1024, "L2": 4096}) == "L1"


def test_one_machine_description_for_benchmarks_and_training_reports():
    from jitnet import _machine, training

    assert bench.machine_info is _machine.machine_info is training.machine_info
    info = bench.machine_info()
    assert {"cpu", "cpu_count", "caches", "platform", "numpy", "numba", "jitnet"} <= set(info)
    assert info["cpu"] in bench.machine_line(info)


def test_synthetic_images_have_the_requested_density():
    scaling = _load_scaling()
    X = scaling.synthetic_images(2000, 784, 0.25, np.random.default_rng(0))
    assert X.dtype == np.uint8
    assert np.count_nonzero(X) / X.size == pytest.approx(0.25, abs=0.01)
