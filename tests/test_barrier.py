"""The barrier of the model-parallel epoch: it counts every arrival, waits for a rank that is
merely late, and gives up within its timeout, naming the rank that never came."""

import threading
import time

import numpy as np
import pytest

from jitnet.engine import parallel, sync
from jitnet.engine.buffers import aligned_zeros
from jitnet.engine.codes import SIGMOID
from jitnet.engine.network import Network


def sparse_data(sizes, n):
    rng = np.random.default_rng(1)
    X = rng.integers(1, 256, (n, sizes[0]))
    X[rng.random(X.shape) >= 0.3] = 0
    return X.astype(np.uint8), rng.integers(0, sizes[-1], n)


def finishes(fn, seconds=60):
    """Run fn on a daemon thread; what it returned or raised and how long it took, or a failure
    if it hangs."""
    outcome = {}

    def target():
        start = time.perf_counter()
        try:
            outcome["value"] = fn()
        except BaseException as error:  # noqa: BLE001
            outcome["error"] = error
        outcome["seconds"] = time.perf_counter() - start

    runner = threading.Thread(target=target, daemon=True)
    runner.start()
    runner.join(seconds)
    assert not runner.is_alive(), "hung"
    return outcome


def barrier_loops(ranks, n, timeout):
    """n barriers on each of ``ranks`` threads; (each rank's result, the sync array)."""
    counters = aligned_zeros(sync.sync_size(ranks), np.int64)
    sync._barrier_loop(counters, 0, 1, 1, 10**9)  # compiled or loaded before the clock runs
    counters[:] = 0
    results = [None] * ranks

    def run(rank):
        results[rank] = sync._barrier_loop(counters, rank, ranks, n, int(timeout * 1e9))

    workers = [threading.Thread(target=run, args=(r,)) for r in range(1, ranks)]
    for worker in workers:
        worker.start()
    run(0)
    for worker in workers:
        worker.join()
    return results, counters


def test_barrier_counts_every_arrival():
    # Three ranks on what may be fewer cores: waiting ranks yield their core, and the bound on
    # waiting is wall time, so losing the core for time slices does not make a rank give up.
    results, counters = barrier_loops(3, 2000, timeout=10.0)
    assert results == [True, True, True]
    assert counters[sync.COUNT] == 6000 and counters[sync.ABORT] == 0
    assert [counters[sync.ARRIVED + sync.LINE * r] for r in range(3)] == [2000] * 3


def test_a_rank_alone_gives_up_after_its_timeout_and_names_the_late_rank():
    barrier_loops(1, 1, timeout=0.3)  # compiled or loaded before the clock runs
    counters = aligned_zeros(sync.sync_size(3), np.int64)
    start = time.perf_counter()
    assert not sync._barrier(counters, 1, 3, 1, int(0.3e9))
    assert 0.3 <= time.perf_counter() - start < 5.0
    assert counters[sync.COUNT] == 1 and counters[sync.ABORT] == 1
    assert counters[sync.LATE] == 1  # rank 0 (stored plus one) had not arrived


def test_a_rank_that_never_arrives_is_given_up():
    """Rank 0 of a team of two, run alone: it stops within seconds, with NaN and the flags."""
    sizes = [10, 7, 3]
    net = Network(sizes, seed=0)
    X, labels = sparse_data(sizes, 5)
    T = net.targets(labels)
    team = parallel.Team(net.params, net._layout, net._scratch, 2, timeout=0.5)

    team._load(None, None, None)
    block = team.slabs[0]

    def rank_zero():
        return parallel._train_rank(
            net.params, block, block.w, net._layout, team.upper_layout, team.scratches[0],
            team.ranks[0], X, T, np.arange(5), 1 / 255, 0.3, SIGMOID, SIGMOID, None, None, None)

    finishes(rank_zero)  # compiled or loaded (it gives up there too)
    team.sync[:] = 0
    outcome = finishes(rank_zero)
    assert np.isnan(outcome["value"])
    assert 0.5 <= outcome["seconds"] < 5.0
    assert team.sync[sync.COUNT] == 1 and team.sync[sync.ABORT] == 1
    assert team.sync[sync.LATE] == 2  # rank 1, stored plus one


def stand_in_for_rank_one(monkeypatch, behaviour):
    """Replace rank 1's kernel call by ``behaviour(real, args)``; rank 0 runs the real one."""
    real = parallel._train_rank

    def train_rank(*args):
        return behaviour(real, args) if args[6].rank == 1 else real(*args)

    monkeypatch.setattr(parallel, "_train_rank", train_rank)


def test_the_team_says_which_rank_did_not_arrive(monkeypatch):
    def never_arrives(real, args):
        counters = args[6].sync
        deadline = time.monotonic() + 30
        while counters[sync.ABORT] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        return np.nan

    stand_in_for_rank_one(monkeypatch, never_arrives)
    sizes = [10, 7, 3]
    net = Network(sizes, seed=0)
    X, labels = sparse_data(sizes, 50)
    T = net.targets(labels)
    team = parallel.Team(net.params, net._layout, net._scratch, 2, timeout=0.5)
    outcome = finishes(lambda: team.train(X, T, np.arange(50), 1 / 255, 0.3, *net._units()))
    error = outcome.get("error")
    assert isinstance(error, RuntimeError)
    assert str(error).startswith("rank 1 of 2 did not reach the barrier within 0.5 s")
    assert outcome["seconds"] < 10.0


def test_a_late_rank_is_waited_for(monkeypatch):
    """A rank 0.3 s late (as a rank that lost its core would be) changes nothing."""
    def late(real, args):
        time.sleep(0.3)
        return real(*args)

    sizes = [30, 20, 4]
    X, labels = sparse_data(sizes, 200)
    expected = Network(sizes, seed=0)
    T = expected.targets(labels)
    on_time = parallel.Team(expected.params, expected._layout, expected._scratch, 2)
    on_time.train(X, T, np.arange(200), 1 / 255, 0.3, *expected._units())
    stand_in_for_rank_one(monkeypatch, late)
    net = Network(sizes, seed=0)
    team = parallel.Team(net.params, net._layout, net._scratch, 2, timeout=5.0)
    outcome = finishes(lambda: team.train(X, T, np.arange(200), 1 / 255, 0.3, *net._units()))
    assert "error" not in outcome and np.isfinite(outcome["value"])
    assert team.sync[sync.ABORT] == 0
    assert np.array_equal(net.params, expected.params)


def test_the_default_timeout_is_seconds_not_minutes():
    net = Network([10, 7, 3], seed=0)
    team = parallel.Team(net.params, net._layout, net._scratch, 2)
    assert team.timeout == sync.DEFAULT_TIMEOUT
    assert 1.0 <= sync.DEFAULT_TIMEOUT <= 60.0
    assert all(rank.timeout_ns == int(sync.DEFAULT_TIMEOUT * 1e9) for rank in team.ranks)


@pytest.mark.parametrize("ranks", [1, 2, 5])
def test_sync_gives_each_rank_its_own_cache_line(ranks):
    counters = aligned_zeros(sync.sync_size(ranks), np.int64)
    assert counters.ctypes.data % 64 == 0
    slots = [sync.ARRIVED + sync.LINE * r for r in range(ranks)]
    assert slots[-1] < counters.size
    assert len({slot * 8 // 64 for slot in slots + [sync.COUNT, sync.ABORT]}) == ranks + 2
