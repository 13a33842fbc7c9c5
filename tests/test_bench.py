"""Smoke tests of the benchmark harness (bench/harness, bench/compare.py, bench/scaling.py): a
handful of samples, small networks, no timing asserted anywhere."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The harness is not part of the package: import it from the source tree's bench/ folder.
sys.path.insert(0, os.path.join(ROOT, "bench"))

import compare  # noqa: E402
import scaling  # noqa: E402
from harness import engines, roofline, timing, validation  # noqa: E402
from harness.results import machine_line  # noqa: E402

import jitnet  # noqa: E402

# 784 inputs and 10 classes are fixed by MNIST; a small hidden layer keeps the object version fast.
TINY_RUN = ["--sizes", "784,16,10", "--validate-samples", "5", "--repeats", "3",
            "--samples", "200", "--eager-samples", "20", "--object-samples", "2",
            "--no-frameworks", "--no-cold-compile"]


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    """Every test runs from an empty directory, so no result can land in the source tree."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def small():
    """A 784-8-10 start, the first MNIST samples, and the object version's weights after 5."""
    train, _ = jitnet.load_mnist()
    samples = engines.Samples(train[:10])
    init = jitnet.Network([784, 8, 10], seed=1).get_weights()
    reference = engines.ObjectEngine(init, samples)
    reference.stage(5)
    reference.run()
    return init, samples, reference.weights()


# -- compare.py ------------------------------------------------------------------------------------


def test_compare_validates_times_and_writes_results(tmp_path, capsys):
    assert compare.main(TINY_RUN + ["--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "µs/sample" in out and "jit kernels ready" in out and "machine:" in out
    assert "MISMATCH" not in out

    record = json.loads((tmp_path / "out" / "compare-latest.json").read_text())
    rows = record["rows"]
    assert [(r["engine"], r["dtype"]) for r in rows] == [
        ("object (tutorial)", "float64"), ("vectorized (numpy)", "float64"),
        ("jitnet", "float64"), ("jitnet", "float32")]
    assert [r["samples"] for r in rows] == [2, 20, 200, 200]
    for row in rows:
        assert len(row["times_s"]) == 3 and row["us_per_sample"] > 0
        assert row["epoch"] == "extrapolated" and row["validated"]
    assert rows[0]["x_vs_object"] == pytest.approx(1.0)
    assert rows[1]["x_vs_vectorized"] == pytest.approx(1.0)
    checks = {c["key"]: c for c in record["validation"]}
    assert checks["object"]["moved"] > 1e-6
    assert checks["jit64"]["max_diff"] <= 1e-10 and checks["vectorized"]["max_diff"] <= 1e-10
    assert 0 < checks["jit32"]["max_diff"] <= 1e-4
    assert record["config"]["sizes"] == [784, 16, 10] and record["compile"]["cold"] is None
    assert record["command"].startswith("python bench/compare.py --sizes 784,16,10")

    markdown = (tmp_path / "out" / "compare-latest.md").read_text()
    assert "| engine | dtype |" in markdown and "Reproduce: `python bench/compare.py" in markdown
    assert len(list((tmp_path / "out").glob("compare-20*.json"))) == 1


def test_compare_refuses_to_time_when_an_engine_disagrees(tmp_path, capsys, monkeypatch):
    # A vectorized reference that silently does not train must stop the benchmark before timing.
    monkeypatch.setattr("jitnet.reference.vectorized.Network.train",
                        lambda self, labels, data_set, rate, iteration: None)

    def no_timing(*args, **kwargs):
        raise AssertionError("timed although validation failed")

    monkeypatch.setattr(compare, "time_engine", no_timing)
    assert compare.main(TINY_RUN + ["--out", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "validation FAILED for vectorized (numpy) float64" in out
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args, message",
    [(["--sizes", "10,5,3"], "must start with 784"),
     (["--sizes", "784,x,10"], "comma-separated"),
     (["--sizes", "784"], "at least 2"),
     (["--repeats", "2"], "--repeats"),
     (["--no-such-option"], "--no-such-option")],
)
def test_compare_errors_end_in_one_line_and_exit_2(tmp_path, capsys, args, message):
    assert compare.main(args + ["--no-frameworks", "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]
    assert "Usage:" not in captured.err and captured.out == ""
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("script", ["compare.py", "scaling.py"])
def test_scripts_run_from_any_directory(tmp_path, script):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # jitnet from the tree
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", script), "--help"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout and "--out" in done.stdout


def test_cold_compile_failure_is_one_line(monkeypatch):
    monkeypatch.setattr(sys, "executable", shutil.which("false") or "/bin/false")
    with pytest.raises(timing.BenchError, match="cold compile of the float64 kernels failed"):
        timing.compile_cold(["float64"])


# -- `jitnet bench` ---------------------------------------------------------------------------------


def test_jitnet_bench_runs_the_checkouts_script():
    from click.testing import CliRunner

    from jitnet.cli.main import cli

    result = CliRunner().invoke(cli, ["bench", "--help"], prog_name="jitnet")
    assert result.exit_code == 0, result.output
    assert "Usage: jitnet bench" in result.output


def test_jitnet_bench_without_a_source_tree_says_how_to_get_it(monkeypatch):
    from click.testing import CliRunner

    from jitnet.cli import main as cli_module

    real_is_file = Path.is_file
    monkeypatch.setattr(Path, "is_file", lambda p: False if p.name == "compare.py" else real_is_file(p))
    result = CliRunner().invoke(cli_module.cli, ["bench"], prog_name="jitnet")
    assert result.exit_code == 2
    assert "bench/ folder" in result.output and "python bench/compare.py" in result.output


# -- validation ------------------------------------------------------------------------------------


def _damaged(pairs, layer, part, how):
    pairs = [(W.copy(), b.copy()) for W, b in pairs]
    array = pairs[layer][part]
    if how == "nan":
        array.flat[-1] = np.nan
    elif how == "inf":
        array.flat[0] = np.inf
    elif how == "nudge":  # one weight off by far more than float64 rounding
        array.flat[array.size // 2] += 1e-7
    elif how == "shape":
        pairs[layer] = (pairs[layer][0][:-1], pairs[layer][1][:-1])
    elif how == "missing layer":
        pairs = pairs[:-1]
    return pairs


class FixedEngine(engines.Engine):
    """An engine whose training leaves the given weights."""

    def __init__(self, weights, dtype="float64"):
        self.name, self.dtype, self._weights = "fixed", dtype, weights

    def stage(self, n):
        pass

    def run(self):
        pass

    def weights(self):
        return self._weights


DAMAGES = [(layer, part, how) for how in ("nan", "inf", "nudge", "shape")
           for layer, part in ((0, 0), (0, 1), (1, 0), (1, 1))] + [(1, 0, "missing layer")]


@pytest.mark.parametrize("layer, part, how", DAMAGES)
def test_validation_fails_on_any_damaged_weight(small, layer, part, how):
    init, samples, reference = small
    builders = {"object": (lambda: engines.ObjectEngine(init, samples), True),
                "exact": (lambda: FixedEngine(reference), True),
                "damaged": (lambda: FixedEngine(_damaged(reference, layer, part, how)), True)}
    checks = validation.validate(builders, 5, init)
    assert [c["ok"] for c in checks] == [True, True, False]
    assert checks[1]["max_diff"] == 0
    assert [c["key"] for c in validation.failures(checks)] == ["damaged"]
    assert "MISMATCH" in validation.validation_lines(checks, 5)[3]


@pytest.mark.parametrize("layer, part", [(0, 0), (1, 1)])
def test_validation_fails_when_the_reference_is_nan_or_did_not_move(small, layer, part):
    init, samples, reference = small
    for weights in (_damaged(reference, layer, part, "nan"), init):
        checks = validation.validate({"object": (lambda: FixedEngine(weights), True)}, 5, init)
        assert not checks[0]["ok"]
        assert "FAILED" in validation.validation_lines(checks, 5)[1]


def test_max_difference_sees_every_layer_and_every_nan():
    pairs = [(np.zeros((3, 4)), np.zeros(3)), (np.zeros((2, 3)), np.zeros(2))]
    other = [(W.copy(), b.copy()) for W, b in pairs]
    assert validation.max_difference(pairs, other) == 0
    other[1][1][1] = -0.5
    assert validation.max_difference(pairs, other) == 0.5
    other[1][0][0, 0] = 2.0
    assert validation.max_difference(pairs, other) == 2.0
    other[1][1][0] = np.nan  # after larger differences, in the last array
    assert math.isnan(validation.max_difference(pairs, other))
    assert validation.max_difference(pairs, pairs[:1]) == math.inf


def test_float32_engines_get_the_loose_tolerance(small):
    init, samples, reference = small
    near = [(W + 1e-6, b) for W, b in reference]
    builders = {"object": (lambda: engines.ObjectEngine(init, samples), True),
                "f32": (lambda: FixedEngine(near, "float32"), True),
                "f64": (lambda: FixedEngine(near, "float64"), True)}
    checks = validation.validate(builders, 5, init)
    assert [c["tolerance"] for c in checks] == [None, validation.TOL_FLOAT32,
                                                validation.TOL_FLOAT64]
    assert [c["ok"] for c in checks] == [True, True, False]


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_framework_engines_match_the_object_version(small, framework):
    pytest.importorskip(framework)
    init, samples, _ = small
    with timing.one_thread() as blas:
        builders, _ = engines.engine_builders(init, samples, blas)
        checks = validation.validate({"object": builders["object"],
                                      framework: builders[framework]}, 5, init)
    assert checks[0]["ok"]
    assert checks[1]["max_diff"] < validation.TOL_FLOAT32


def test_missing_frameworks_are_skipped_with_a_note(small, monkeypatch):
    init, samples, _ = small
    monkeypatch.setattr(engines, "_importable", lambda name: False)
    builders, notes = engines.engine_builders(init, samples, 1)
    assert list(builders) == ["object", "vectorized", "jit64", "jit32"]
    assert [b[1] for b in builders.values()] == [True] * 4
    assert any("pip install torch" in n for n in notes)
    assert any("pip install jax" in n for n in notes)
    _, notes = engines.engine_builders(init, samples, 1, frameworks=False)
    assert notes == ["PyTorch and JAX left out (--no-frameworks)."]


# -- threads and machine ---------------------------------------------------------------------------


def test_one_thread_limits_numba_and_blas_and_restores_them():
    import numba

    before = numba.get_num_threads()
    with timing.one_thread() as blas:
        assert numba.get_num_threads() == 1
        assert blas in (1, None) and timing.blas_threads() == blas
    assert numba.get_num_threads() == before


def test_machine_line_names_the_cpu_and_cores():
    from jitnet.training.machine import machine_info

    info = machine_info()
    line = machine_line(info)
    assert line.startswith(f"{info['cpu']}, {info['cpu_count']} cores")
    assert f"numpy {np.__version__}" in line


# -- scaling.py ------------------------------------------------------------------------------------


def test_operation_counts_by_hand():
    # 4-3-2, two non-zero inputs: first layer 2*3, second 3*2, biases 3+2.
    counts = roofline.operation_counts([4, 3, 2], nnz=2, itemsize=8)
    forward, backward, update = 6 + 6 + 5, 6, 6 + 6 + 5
    assert counts["macs"] == forward + backward + update
    assert counts["touched_bytes"] == 8 * (6 + 6 + 5)
    assert counts["traffic_bytes"] == 8 * (forward + backward + 2 * update)


def test_first_layer_size_counts_the_row_padding():
    # 300 float32 weights are 1,200 bytes: 19 cache lines, 1,216 bytes per input row.
    assert roofline.first_layer_size([784, 300, 10], 4) == 784 * 1216
    assert roofline.first_layer_size([784, 300, 10], 8) == 784 * 2432
    assert roofline.first_layer_size([4, 3, 2], 8) == 4 * 64
    assert roofline.cache_level(1000, {"L1": 1024, "L2": 4096}) == "L1"
    assert roofline.cache_level(5000, {"L1": 1024, "L2": 4096}) == "memory"


def test_synthetic_images_have_the_requested_density():
    X = scaling.synthetic_images(2000, 784, 0.25, np.random.default_rng(0))
    assert X.dtype == np.uint8
    assert np.count_nonzero(X) / X.size == pytest.approx(0.25, abs=0.01)


def test_scaling_runs_and_writes_results(tmp_path, capsys):
    args = ["--quick", "--hidden", "8,16", "--densities", "0.1,1", "--repeats", "3",
            "--seconds", "0.002", "--out", str(tmp_path / "out")]
    assert scaling.main(args) == 0
    out = capsys.readouterr().out
    assert "cost against hidden size" in out and "cost against input density" in out
    record = json.loads((tmp_path / "out" / "scaling-quick-latest.json").read_text())
    assert [(r["sizes"][1], r["dtype"]) for r in record["hidden"]] == [
        (8, "float32"), (8, "float64"), (16, "float32"), (16, "float64")]
    assert [r["density"] for r in record["density"]] == [0.1, 0.1, 1.0, 1.0]
    dense = record["density"][-1]
    assert dense["nnz"] == 784  # every synthetic pixel non-zero at density 1
    assert dense["macs"] == roofline.operation_counts(dense["sizes"], 784, 8)["macs"]
    assert 140 < record["hidden"][0]["nnz"] < 160  # MNIST: about 150 of 784 pixels non-zero
    for row in record["hidden"] + record["density"]:
        assert row["us_per_sample"] > 0 and len(row["times_s"]) == 3
    markdown = (tmp_path / "out" / "scaling-quick-latest.md").read_text()
    assert "W1 fits" in markdown and "weight GB/s (model)" in markdown


@pytest.mark.parametrize("args, message",
                         [(["--densities", "0.5,2"], "(0, 1]"),
                          (["--densities", "a"], "comma-separated"),
                          (["--dtypes", "float16"], "float32, float64")])
def test_scaling_errors_end_in_one_line(capsys, args, message):
    assert scaling.main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]
