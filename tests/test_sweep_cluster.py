"""A sweep on a Dask cluster started the way a user starts one: a ``dask scheduler`` process and two
``dask worker`` processes on 127.0.0.1, the sweep joining it by address."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jitnet.sweep import parse_space, run_sweep, trial_key

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[1]


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
