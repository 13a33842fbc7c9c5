"""The model-parallel epoch (``threads > 1``): reproducible, the serial algorithm to rounding,
refusals, and no hang when a rank fails."""

import threading
import types

import numpy as np
import pytest

from jitnet.engine import parallel
from jitnet.engine.network import Network

TOL = 1e-9  # float64 weights against the serial kernel after 200 samples


@pytest.fixture
def many_cores(monkeypatch):
    """Let tests run more ranks than this machine has cores (slower, never wrong)."""
    monkeypatch.setattr(parallel, "usable_cores", lambda: 8)


def sparse_data(sizes, n=200, seed=1, density=0.3, x_dtype=np.uint8):
    """uint8 images (or floats in [0, 1)) with about ``density`` of the inputs non-zero."""
    rng = np.random.default_rng(seed)
    X = rng.integers(1, 256, (n, sizes[0]))
    X[rng.random(X.shape) >= density] = 0
    X = X.astype(np.uint8) if x_dtype == np.uint8 else (X / 255).astype(x_dtype)
    return X, rng.integers(0, sizes[-1], n)


def trained(sizes, threads, X, labels, activation="sigmoid", dtype="float64", loss="squared",
            rate=0.3, **kwargs):
    net = Network(sizes, activation=activation, dtype=dtype, seed=0, loss=loss)
    mean_loss = net.train_epoch(X, labels, rate=rate, threads=threads, **kwargs)
    return net, mean_loss


SHAPES = [
    ([20, 7, 3], "sigmoid"),  # a hidden layer narrower than a cache line: an even split
    ([64, 40, 10], "tanh"),
    ([50, 33, 20, 6], "sigmoid"),
    ([30, 24, 9, 5, 4], "tanh"),
]


@pytest.mark.parametrize("sizes, activation", SHAPES)
@pytest.mark.parametrize("threads", [2, 3])
def test_float64_agrees_with_serial(sizes, activation, threads, many_cores):
    X, labels = sparse_data(sizes)
    serial, serial_loss = trained(sizes, 1, X, labels, activation)
    team, team_loss = trained(sizes, threads, X, labels, activation)
    assert np.abs(serial.params - team.params).max() < TOL
    assert abs(serial_loss - team_loss) < TOL
    assert np.abs(serial.params - Network(sizes, activation=activation, seed=0).params).max() > 0.01


ACTIVATIONS = ["sigmoid", "tanh", "scaled_tanh", "relu"]


@pytest.mark.parametrize("loss", ["squared", "cross_entropy"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("sizes", [[40, 24, 5], [36, 20, 12, 4]])
def test_every_recipe_agrees_with_serial(sizes, activation, loss):
    """threads=2 follows the serial kernel for every hidden activation and both losses
    (softmax output with cross-entropy), 1 and 2 hidden layers, float64 and float32."""
    X, labels = sparse_data(sizes, seed=len(sizes))
    rate = 0.05 if activation == "relu" else 0.2
    for dtype, tol in [("float64", TOL), ("float32", 2e-4)]:
        serial, serial_loss = trained(sizes, 1, X, labels, activation, dtype, loss, rate)
        team, team_loss = trained(sizes, 2, X, labels, activation, dtype, loss, rate)
        assert team.output_activation == serial.output_activation
        assert np.abs(serial.params - team.params).max() < tol
        assert abs(serial_loss - team_loss) < tol * max(1.0, abs(serial_loss))
        start = Network(sizes, activation=activation, dtype=dtype, seed=0, loss=loss).params
        assert np.abs(serial.params - start).max() > 1e-3  # the samples moved the weights
        again, again_loss = trained(sizes, 2, X, labels, activation, dtype, loss, rate)
        assert np.array_equal(team.params, again.params) and again_loss == team_loss


def test_float_inputs_and_float32(many_cores):
    sizes = [40, 50, 10]
    X, labels = sparse_data(sizes, x_dtype=np.float64)
    serial, _ = trained(sizes, 1, X, labels)
    team, _ = trained(sizes, 2, X, labels)
    assert np.abs(serial.params - team.params).max() < TOL
    X32 = X.astype(np.float32)
    serial, _ = trained(sizes, 1, X32, labels, dtype="float32")
    team, _ = trained(sizes, 2, X32, labels, dtype="float32")
    assert np.abs(serial.params - team.params).max() < 1e-5


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sizes, threads", [([784, 100, 10], 2), ([50, 33, 20, 6], 3)])
def test_bitwise_reproducible(sizes, threads, dtype, many_cores):
    X, labels = sparse_data(sizes, n=300)
    first, loss1 = trained(sizes, threads, X, labels, dtype=dtype)
    second, loss2 = trained(sizes, threads, X, labels, dtype=dtype)
    assert np.array_equal(first.params, second.params) and loss1 == loss2


def test_train_with_shuffle_and_progress(many_cores):
    """train(threads=) over epochs, and train_epoch's chunks with progress, match serial."""
    sizes = [30, 20, 4]
    X, labels = sparse_data(sizes, n=2500)
    serial = Network(sizes, seed=0)
    team = Network(sizes, seed=0)
    serial.train(X, labels, epochs=2, shuffle=True, seed=5)
    team.train(X, labels, epochs=2, shuffle=True, seed=5, threads=2)
    assert np.abs(serial.params - team.params).max() < 1e-8
    X, labels = sparse_data(sizes, n=11000)
    done = []
    team.train_epoch(X, labels, progress=done.append, threads=2)
    serial.train_epoch(X, labels)
    assert done == [5000, 10000, 11000]  # 5,000-sample chunks with threads
    assert np.abs(serial.params - team.params).max() < 1e-8


def test_interrupt_between_chunks_leaves_whole_samples(many_cores):
    """A Ctrl-C in progress() stops after a chunk; the weights are those of its samples."""
    sizes = [30, 20, 4]
    X, labels = sparse_data(sizes, n=12000)
    team = Network(sizes, seed=0)

    def interrupt(n_done):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        team.train_epoch(X, labels, progress=interrupt, threads=2)
    serial = Network(sizes, seed=0)
    serial.train_epoch(X[:5000], labels[:5000])
    assert np.abs(serial.params - team.params).max() < 1e-8


def test_blocks_cover_the_layer_in_whole_lines():
    assert parallel.blocks(300, 2, 4) == [(0, 144), (144, 300)]
    assert parallel.blocks(300, 2, 8) == [(0, 152), (152, 300)]
    assert parallel.blocks(7, 3, 8) == [(0, 2), (2, 4), (4, 7)]
    for n, threads, itemsize in [(800, 3, 4), (17, 2, 8), (100, 7, 8), (9, 9, 4)]:
        bounds = parallel.blocks(n, threads, itemsize)
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(lo < hi for lo, hi in bounds)
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        if n >= threads * 64 // itemsize:
            assert all(lo % (64 // itemsize) == 0 for lo, _ in bounds)


@pytest.mark.parametrize(
    "threads, match",
    [(0, "whole number >= 1"), (-2, "whole number >= 1"), (1.5, "whole number"),
     (True, "whole number"), ("2", "whole number"), (None, "whole number"),
     (8, "more than the 7 units of the first hidden layer")],
)
def test_refused_thread_counts(threads, match, many_cores):
    net = Network([10, 7, 3], seed=0)
    X, labels = sparse_data([10, 7, 3], n=5)
    before = net.params.copy()
    with pytest.raises(ValueError, match=match):
        net.train_epoch(X, labels, threads=threads)
    with pytest.raises(ValueError, match=match):
        net.train(X, labels, threads=threads)
    assert np.array_equal(before, net.params)


def test_refused_without_hidden_layer_or_cores(monkeypatch):
    X, labels = sparse_data([10, 3], n=5)
    with pytest.raises(ValueError, match="needs a hidden layer"):
        Network([10, 3], seed=0).train_epoch(X, labels, threads=2)
    monkeypatch.setattr(parallel, "usable_cores", lambda: 1)
    with pytest.raises(ValueError, match="more than the 1 cores"):
        Network([10, 7, 3], seed=0).train_epoch(X, labels, threads=2)
    assert Network([10, 3], seed=0).train_epoch(X, labels, threads=1) > 0


class Refused(threading.Thread):
    """A thread that cannot start (as when the process is out of threads)."""

    started = []

    def start(self):
        Refused.started.append(self)
        raise RuntimeError("can't start new thread")


@pytest.fixture
def no_threads(monkeypatch):
    Refused.started = []
    monkeypatch.setattr(parallel, "threading", types.SimpleNamespace(Thread=Refused))
    return Refused.started


def test_bad_input_is_refused_before_any_thread_starts(many_cores, no_threads):
    net = Network([10, 7, 3], seed=0)
    X, labels = sparse_data([10, 7, 3], n=5)
    with pytest.raises(ValueError, match="X"):
        net.train_epoch(X[:, :9], labels, threads=2)
    with pytest.raises(ValueError, match="targets"):
        net.train_epoch(X, np.full((5, 3), np.nan), threads=2)
    with pytest.raises(ValueError, match="order"):
        net.train_epoch(X, labels, order=[0, 5], threads=2)
    assert no_threads == []


def finishes(fn, seconds=60):
    """Run fn on a daemon thread; what it returned or raised, or a failure if it hangs."""
    outcome = {}

    def target():
        try:
            outcome["value"] = fn()
        except BaseException as error:  # noqa: BLE001
            outcome["error"] = error

    runner = threading.Thread(target=target, daemon=True)
    runner.start()
    runner.join(seconds)
    assert not runner.is_alive(), "the epoch hung"
    return outcome


def test_a_failing_rank_releases_the_others(many_cores, monkeypatch):
    real = parallel._train_rank

    def rank_one_fails(*args):
        if args[6].rank == 1:
            raise MemoryError("rank 1 failed")
        return real(*args)

    monkeypatch.setattr(parallel, "_train_rank", rank_one_fails)
    net = Network([10, 7, 3], seed=0)
    X, labels = sparse_data([10, 7, 3], n=50)
    outcome = finishes(lambda: net.train_epoch(X, labels, threads=2))
    assert isinstance(outcome.get("error"), MemoryError)


def test_a_thread_that_cannot_start_is_reported(many_cores, no_threads):
    net = Network([10, 7, 3], seed=0)
    X, labels = sparse_data([10, 7, 3], n=50)
    before = net.params.copy()
    outcome = finishes(lambda: net.train_epoch(X, labels, threads=3))
    assert "can't start" in str(outcome.get("error")) and len(no_threads) == 1
    assert np.array_equal(before, net.params)


# -- the command line: train --threads ------------------------------------------------------------

SMALL = ["--hidden", "16", "--epochs", "2", "--eval-every", "1", "--train-limit", "1200",
         "--validation", "200", "--test-limit", "300", "--quiet"]


def invoke(*args):
    from click.testing import CliRunner

    from jitnet.cli.main import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def test_cli_threads_run_is_reproducible_and_resumes_exactly(tmp_path, many_cores):
    """--threads 2 is kept in the run's config and checkpoint; the same run twice, and a run
    stopped after epoch 1 then resumed, give bitwise the same model."""
    from jitnet.training import load_checkpoint

    runs = tmp_path / "runs"
    for name, epochs in [("a", 2), ("b", 2), ("c", 1)]:
        args = [a if a != "2" else str(epochs) for a in SMALL]
        result = invoke("train", *args, "--threads", 2, "--runs-dir", runs, "--name", name)
        assert result.exit_code == 0, result.output
    result = invoke("train", "--resume", runs / "c", "--epochs", 2, "--quiet")
    assert result.exit_code == 0, result.output
    states = [load_checkpoint(runs / name / "checkpoint.npz") for name in "abc"]
    assert all(state.config.threads == 2 and state.epoch == 2 for state in states)
    assert np.array_equal(states[0].net.params, states[1].net.params)
    assert np.array_equal(states[0].net.params, states[2].net.params)
    serial = invoke("train", *SMALL, "--runs-dir", runs, "--name", "serial")
    assert serial.exit_code == 0, serial.output
    one = load_checkpoint(runs / "serial" / "checkpoint.npz")
    assert one.config.threads == 1
    assert 0 < np.abs(one.net.params - states[0].net.params).max() < 1e-9


@pytest.mark.parametrize("args, words", [
    (["--hidden", "1"], "more than the 1 units"),
])
def test_cli_threads_refusals(tmp_path, args, words):
    result = invoke("train", *SMALL, *args, "--threads", 2, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and words in lines[0], lines
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
