"""jitnet.sweep on Dask clusters: run_sweep's own LocalCluster (through the command), and a
cluster started the way a user starts one -- a ``dask scheduler`` process and two ``dask worker``
processes on 127.0.0.1, shared by the tests of this module -- for a sweep on a running cluster,
an interrupt and resume, and a worker killed mid-trial.

The trials are tiny (2,000 training images of which 500 held out, 1,000 test images, 16-40 hidden
units, 1-2 epochs); the kill test's one trial is longer, so that a worker can be killed in the
middle of it.
"""

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers import child_env, invoke, model_arrays, pictures_off, same_arrays
from jitnet.cli.main import cli
from jitnet.sweep import (
    SweepInterrupted,
    SweepReporter,
    parse_space,
    run_sweep,
    run_trial,
    trial_key,
)

distributed = pytest.importorskip("distributed")

TINY = {"epochs": "2", "train_limit": "2000", "test_limit": "1000", "validation": "500"}


def _start(args, log, env):
    # A session of its own, so that the whole group (a worker's nanny and its worker process)
    # can be stopped at the end.
    return subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)


def _stop(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler with two single-thread workers (each under a nanny, which restarts a killed
    worker) that import this tree: its address, and the file that holds a fresh trial in its
    last epoch while it exists (tests/sweep_worker_hold.py)."""
    folder = tmp_path_factory.mktemp("cluster")
    hold = folder / "hold"  # see tests/sweep_worker_hold.py
    env = child_env(JITNET_TEST_HOLD_FILE=str(hold))
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(Path(__file__).parent)])
    scheduler_file = folder / "scheduler.json"
    log = open(folder / "cluster.log", "w")
    processes = [_start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                         "--no-dashboard", "--scheduler-file", str(scheduler_file)], log, env)]
    try:
        for _ in range(2):  # the workers wait for the scheduler's file themselves
            processes.append(_start(
                ["distributed.cli.dask_worker", "--scheduler-file", str(scheduler_file),
                 "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard",
                 "--preload", "sweep_worker_hold"], log, env))
        deadline = time.monotonic() + 30
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert scheduler_file.exists(), (folder / "cluster.log").read_text()
        address = json.loads(scheduler_file.read_text())["address"]
        with distributed.Client(address, timeout="10s") as client:
            client.wait_for_workers(2, timeout=30)
        yield types.SimpleNamespace(address=address, hold=hold)
    finally:
        for process in reversed(processes):
            _stop(process)
        log.close()


# -- run_sweep's own LocalCluster -------------------------------------------------------------


def test_command_on_a_local_cluster(tmp_path):
    """The default path, through ``jitnet sweep``: run_sweep's own LocalCluster (one worker
    process: two would cost a second start; the running cluster below has two); 2 trials
    finish, 2 fail; the best trial's command, run by ``train``, gives its model."""
    out = tmp_path / "sweep"
    args = ["sweep", "--out", str(out), "--workers", "1", "--hidden", "16,24", "--train-limit",
            "2000,400", *(f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()
                          if k != "train_limit")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "local Dask cluster: 1 single-thread worker process\n" in result.stderr
    assert "trials 4/4  running 0  failed 2" in result.stderr

    data = json.loads((out / "results.json").read_text())
    trials = data["trials"]
    assert data["params"] == ["hidden", "train_limit"]
    finished = [t for t in trials if t["status"] == "finished"]
    assert len(finished) == 2 and all(t["options"]["train_limit"] == 2000 for t in finished)
    assert [t["val_error"] for t in finished] == sorted(t["val_error"] for t in finished)
    assert [t["status"] for t in trials[2:]] == ["failed"] * 2
    assert all("holds out every sample" in t["error"] for t in trials[2:])
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["#", "hidden", "train_limit", "val"]
    assert [line.split()[1] for line in lines[1:5]] == \
        [str(t["options"]["hidden"][0]) for t in trials]
    assert (out / "results.csv").read_text().count("\n") == 5
    assert "| 1 |" in (out / "results.md").read_text()
    for t in finished:
        assert (out / "trials" / t["key"] / "model.npz").exists()

    # The best trial's command, run alone by `train`, gives the same model bit for bit. (In
    # this process: compiled and cache-loaded kernels give the same weights.)
    program, script, command, *argv = shlex.split(data["best_command"])
    assert (program, script, command) == ("python", "cli.py", "train")
    with pictures_off():
        alone = invoke("train", *argv, "--runs-dir", tmp_path, "--name", "alone", "--quiet")
    assert alone.exit_code == 0, alone.output
    assert same_arrays(model_arrays(tmp_path / "alone" / "model.npz"),
                       model_arrays(out / "trials" / trials[0]["key"] / "model.npz"))


# -- a running cluster ------------------------------------------------------------------------


class _StopAfter(SweepReporter):
    """Raises KeyboardInterrupt (as Ctrl-C would) after ``n`` trials are done."""

    def __init__(self, n):
        self.n, self.done = n, []

    def trial_done(self, record, progress):
        self.done.append(record["key"])
        if len(self.done) == self.n:
            raise KeyboardInterrupt


class _Recorder(SweepReporter):
    def __init__(self):
        self.messages, self.ran = [], []

    def message(self, text):
        self.messages.append(text)

    def trial_done(self, record, progress):
        self.ran.append(record["key"])


def test_interrupted_sweep_on_a_running_cluster_resumes_without_rerunning(tmp_path, cluster):
    """Ctrl-C after one trial; a rerun skips the done trials and runs the rest; the sweep leaves
    the cluster it did not start running. (4 trials on 2 workers: at most 3 are done when the
    sweep stops, the one that stopped it and two still running, so the rerun has one to run.)"""
    space = parse_space({"hidden": "16,24,32,40", **TINY})
    with pytest.raises(SweepInterrupted, match="[123] of 4 trials done") as info:
        run_sweep(space, tmp_path, scheduler=cluster.address, reporter=_StopAfter(1))
    assert info.value.total == 4
    partial = json.loads((tmp_path / "results.json").read_text())["trials"]
    assert 1 <= len(partial) == info.value.done
    # On a cluster the sweep did not start, a cancelled trial that was already running finishes
    # on its worker (and keeps its result): wait for the workers to be idle.
    with distributed.Client(cluster.address) as client:
        deadline = time.monotonic() + 30
        while any(client.processing().values()) and time.monotonic() < deadline:
            time.sleep(0.05)
    done = [key for key in (trial_key(t) for t in space.trials())
            if (tmp_path / "trials" / key / "result.json").exists()]
    assert {t["key"] for t in partial} <= set(done)
    stamps = {key: (tmp_path / "trials" / key / "result.json").stat().st_mtime_ns
              for key in done}

    reporter = _Recorder()
    result = run_sweep(space, tmp_path, scheduler=cluster.address, reporter=reporter)
    assert f"connected to {cluster.address}: 2 workers" in reporter.messages
    assert result.skipped == len(done) and result.ran == 4 - len(done) >= 1
    assert not set(reporter.ran) & set(stamps)
    assert all(r["status"] == "finished" for r in result.records)
    assert sorted(r["options"]["hidden"] for r in result.records) == [[16], [24], [32], [40]]
    for key, stamp in stamps.items():
        assert (tmp_path / "trials" / key / "result.json").stat().st_mtime_ns == stamp
    for options in space.trials():
        assert (tmp_path / "trials" / trial_key(options) / "model.npz").exists()
    with distributed.Client(cluster.address) as client:
        assert len(client.nthreads()) == 2


def test_killed_worker_trial_resumes_with_the_same_result(tmp_path, cluster):
    """SIGKILL the worker running a trial after its first checkpoint: the trial is run again
    on a worker, continues from the checkpoint, and ends with the weights of a run alone. (The
    first run holds in its last epoch until the worker is killed: tests/sweep_worker_hold.py.)"""
    options = {"hidden": "48", "epochs": "20", "eval_every": "5", "patience": "100",
               "train_limit": "8000", "test_limit": "1000", "validation": "500"}
    space = parse_space(options)
    (trial,) = space.trials()
    key = trial_key(trial)
    checkpoint = tmp_path / "sweep" / "trials" / key / "checkpoint.npz"
    killed = []

    def kill_when_checkpointed():
        try:
            with distributed.Client(cluster.address) as client:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline and not killed:
                    if checkpoint.exists():
                        for address, keys in client.processing().items():
                            if any(str(k).startswith(f"trial-{key}") for k in keys):
                                pid = client.run(os.getpid, workers=[address])[address]
                                os.kill(pid, signal.SIGKILL)
                                killed.append(pid)
                    time.sleep(0.01)
        finally:
            cluster.hold.unlink(missing_ok=True)  # the rerun, or a run never killed, goes on

    cluster.hold.touch()
    monitor = threading.Thread(target=kill_when_checkpointed)
    monitor.start()
    try:
        result = run_sweep(space, tmp_path / "sweep", scheduler=cluster.address)
    finally:
        cluster.hold.unlink(missing_ok=True)
        monitor.join()
    assert killed, "no worker was killed"
    (record,) = result.records
    assert record["status"] == "finished" and record["resumed_from"] >= 1

    alone = run_trial(trial, tmp_path / "alone")
    assert alone["resumed_from"] is None
    assert record["val_error"] == alone["val_error"]
    assert record["test_error"] == alone["test_error"]
    assert same_arrays(model_arrays(tmp_path / "sweep" / "trials" / key / "model.npz"),
                       model_arrays(tmp_path / "alone" / "model.npz"))
    with distributed.Client(cluster.address) as client:  # the nanny has restarted the killed worker
        client.wait_for_workers(2, timeout=30)
