"""jitnet.sweep on Dask clusters: run_sweep's own LocalCluster (through the command), a shared
LocalCluster (interrupt and resume, a worker killed mid-trial), and a cluster started the way a
user starts one: a ``dask scheduler`` process and two ``dask worker`` processes on 127.0.0.1.

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
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from jitnet.sweep import (
    SweepInterrupted,
    SweepReporter,
    parse_space,
    run_sweep,
    trial_key,
)
from jitnet.sweep.command import sweep_command

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[1]
TINY = {"epochs": "2", "train_limit": "2000", "test_limit": "1000", "validation": "500"}


def model_arrays(path):
    """The network arrays of a model file (not its description, which names its paths)."""
    with np.load(path) as f:
        return {k: f[k] for k in f.files if k != "jitnet_train_info"}


def same_arrays(a, b):
    return sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)


def run_alone(argv):
    """Run ``python argv...`` in a new process of this tree, as a user running a trial alone
    would. (A new process, like the workers, loads the kernels from Numba's cache: kernels
    compiled in the process itself may differ in the last bits, see warm_up.)"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def cluster():
    """Two single-thread worker processes, as run_sweep's own LocalCluster has."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as local:
        yield local


# -- on Dask ----------------------------------------------------------------------------------


def test_command_on_a_local_cluster(tmp_path):
    """The default path: run_sweep's own LocalCluster with 2 workers; 3 trials finish, 3 fail."""
    out = tmp_path / "sweep"
    args = ["--out", str(out), "--workers", "2", "--hidden", "16,24,32", "--train-limit",
            "2000,400", *(f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()
                          if k != "train_limit")]
    result = CliRunner().invoke(sweep_command, args)
    assert result.exit_code == 0, result.output
    assert "local Dask cluster: 2 single-thread worker processes" in result.stderr
    assert "trials 6/6  running 0  failed 3" in result.stderr

    data = json.loads((out / "results.json").read_text())
    trials = data["trials"]
    assert data["params"] == ["hidden", "train_limit"]
    finished = [t for t in trials if t["status"] == "finished"]
    assert len(finished) == 3 and all(t["options"]["train_limit"] == 2000 for t in finished)
    assert [t["val_error"] for t in finished] == sorted(t["val_error"] for t in finished)
    assert [t["status"] for t in trials[3:]] == ["failed"] * 3
    assert all("holds out every sample" in t["error"] for t in trials[3:])
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["#", "hidden", "train_limit", "val"]
    assert [line.split()[1] for line in lines[1:7]] == \
        [str(t["options"]["hidden"][0]) for t in trials]
    assert (out / "results.csv").read_text().count("\n") == 7
    assert "| 1 |" in (out / "results.md").read_text()
    for t in finished:
        assert (out / "trials" / t["key"] / "model.npz").exists()

    # The best trial's command, run alone by `train`, gives the same model bit for bit.
    program, script, *argv = shlex.split(data["best_command"])
    assert (program, script) == ("python", "cli.py")
    run_alone([str(ROOT / script), *argv, "--runs-dir", str(tmp_path), "--name", "alone",
               "--quiet"])
    assert same_arrays(model_arrays(tmp_path / "alone" / "model.npz"),
                       model_arrays(out / "trials" / trials[0]["key"] / "model.npz"))


class _StopAfter(SweepReporter):
    """Raises KeyboardInterrupt (as Ctrl-C would) after ``n`` trials are done."""

    def __init__(self, n):
        self.n, self.done = n, []

    def trial_done(self, record, progress):
        self.done.append(record["key"])
        if len(self.done) == self.n:
            raise KeyboardInterrupt


def test_interrupted_sweep_resumes_without_rerunning(tmp_path, cluster):
    space = parse_space({"hidden": "16,24,32,40", **TINY})
    address = cluster.scheduler_address
    with pytest.raises(SweepInterrupted, match="1 of 4 trials done|2 of 4|3 of 4") as info:
        run_sweep(space, tmp_path, scheduler=address, reporter=_StopAfter(1))
    assert info.value.total == 4
    partial = json.loads((tmp_path / "results.json").read_text())["trials"]
    assert 1 <= len(partial) == info.value.done
    # On a cluster the sweep did not start, a cancelled trial that was already running finishes
    # on its worker (and keeps its result): wait for the workers to be idle.
    with distributed.Client(address) as client:
        deadline = time.monotonic() + 30
        while any(client.processing().values()) and time.monotonic() < deadline:
            time.sleep(0.05)
    done = [key for key in (trial_key(t) for t in space.trials())
            if (tmp_path / "trials" / key / "result.json").exists()]
    assert {t["key"] for t in partial} <= set(done)
    stamps = {key: (tmp_path / "trials" / key / "result.json").stat().st_mtime_ns
              for key in done}

    class Counting(SweepReporter):
        ran = []

        def trial_done(self, record, progress):
            self.ran.append(record["key"])

    result = run_sweep(space, tmp_path, scheduler=address, reporter=Counting())
    assert result.skipped == len(done) and result.ran == 4 - len(done)
    assert not set(Counting.ran) & set(stamps)
    assert all(r["status"] == "finished" for r in result.records)
    for key, stamp in stamps.items():
        assert (tmp_path / "trials" / key / "result.json").stat().st_mtime_ns == stamp


def test_killed_worker_trial_resumes_with_the_same_result(tmp_path, cluster):
    """SIGKILL the worker running a trial after its first checkpoint: the trial is run again
    on a worker, continues from the checkpoint, and ends with the weights of a run alone."""
    options = {"hidden": "48", "epochs": "20", "eval_every": "5", "patience": "100",
               "train_limit": "8000", "test_limit": "1000", "validation": "500"}
    space = parse_space(options)
    (trial,) = space.trials()
    key = trial_key(trial)
    checkpoint = tmp_path / "sweep" / "trials" / key / "checkpoint.npz"
    killed = []

    def kill_when_checkpointed():
        with distributed.Client(cluster.scheduler_address) as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not killed:
                if checkpoint.exists():
                    for address, keys in client.processing().items():
                        if any(str(k).startswith(f"trial-{key}") for k in keys):
                            pid = client.run(os.getpid, workers=[address])[address]
                            os.kill(pid, signal.SIGKILL)
                            killed.append(pid)
                time.sleep(0.01)

    monitor = threading.Thread(target=kill_when_checkpointed)
    monitor.start()
    result = run_sweep(space, tmp_path / "sweep", scheduler=cluster.scheduler_address)
    monitor.join()
    assert killed, "the trial ended before a worker could be killed"
    (record,) = result.records
    assert record["status"] == "finished" and record["resumed_from"] >= 1

    code = "import json, sys; from jitnet.sweep import run_trial; " \
           "print(json.dumps(run_trial(json.loads(sys.argv[1]), sys.argv[2])))"
    alone = json.loads(run_alone(["-c", code, json.dumps(trial), str(tmp_path / "alone")]))
    assert alone["resumed_from"] is None
    assert record["val_error"] == alone["val_error"]
    assert record["test_error"] == alone["test_error"]
    assert same_arrays(model_arrays(tmp_path / "sweep" / "trials" / key / "model.npz"),
                       model_arrays(tmp_path / "alone" / "model.npz"))
    with distributed.Client(cluster.scheduler_address) as client:
        client.wait_for_workers(2, timeout=30)


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


@pytest.fixture
def dask_cluster(tmp_path):
    """The address of a scheduler with two single-thread workers that import this tree."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    scheduler_file = tmp_path / "scheduler.json"
    log = open(tmp_path / "cluster.log", "w")
    processes = [_start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                         "--no-dashboard", "--scheduler-file", str(scheduler_file)], log, env)]
    try:
        deadline = time.monotonic() + 30
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert scheduler_file.exists(), (tmp_path / "cluster.log").read_text()
        for _ in range(2):
            processes.append(_start(
                ["distributed.cli.dask_worker", "--scheduler-file", str(scheduler_file),
                 "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"], log, env))
        address = json.loads(scheduler_file.read_text())["address"]
        with distributed.Client(address, timeout="10s") as client:
            client.wait_for_workers(2, timeout=30)
        yield address
    finally:
        for process in reversed(processes):
            _stop(process)
        log.close()


def test_sweep_on_a_running_cluster(tmp_path, dask_cluster):
    space = parse_space({"hidden": "16,32", "rate": "0.5", "epochs": "1", "train_limit": "2000",
                         "test_limit": "1000", "validation": "500"})
    messages = []

    class Reporter:
        def message(self, text):
            messages.append(text)

        def progress(self, progress):
            pass

        def trial_done(self, record, progress):
            pass

    result = run_sweep(space, tmp_path / "sweep", scheduler=dask_cluster, reporter=Reporter())
    assert f"connected to {dask_cluster}: 2 workers" in messages
    assert [r["status"] for r in result.records] == ["finished", "finished"]
    assert sorted(r["options"]["hidden"] for r in result.records) == [[16], [32]]
    for options in space.trials():
        folder = tmp_path / "sweep" / "trials" / trial_key(options)
        assert json.loads((folder / "result.json").read_text())["status"] == "finished"
        assert (folder / "model.npz").exists()
    # The sweep leaves a cluster it did not start running.
    with distributed.Client(dask_cluster) as client:
        assert len(client.nthreads()) == 2
