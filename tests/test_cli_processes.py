"""The command line as a real process: kill -9, Ctrl-C and SIGTERM during training, then resume to
the bitwise result of an uninterrupted run; a reader that goes away (``| head``)."""

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO, assert_same_state, child_env, cli_command, wait_for_checkpoint
from jitnet.engine.network import Network
from jitnet.training import load_checkpoint, load_model

# Big enough that an epoch takes a noticeable time (~0.1-0.2 s), small enough to stay quick.
REAL = ["--hidden", "64", "--epochs", "14", "--eval-every", "1", "--checkpoint-every", "1",
        "--patience", "100", "--train-limit", "20000", "--validation", "2000",
        "--test-limit", "1000"]


def run_cli(*args, cwd, hold_epoch=None, **kwargs):
    """``python cli.py ARGS`` in ``cwd``, with this checkout's jitnet, without pictures; held in
    epoch ``hold_epoch`` until a signal ends it (see helpers.cli_command)."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    # A test run started in the background (nohup, `&` in a script) ignores SIGINT, and a child
    # inherits that; give the child the default disposition, so that Python turns it into Ctrl-C.
    return subprocess.Popen([*cli_command(pictures=False, hold_epoch=hold_epoch),
                             *map(str, args)], cwd=cwd, env=child_env(), stderr=subprocess.PIPE,
                            text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                            **kwargs)


def finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("straight")
    rc, out, err = finish(run_cli("train", *REAL, "--name", "run", cwd=cwd))
    assert rc == 0, err
    return cwd / "runs" / "run"


def assert_same_run(dir_a, dir_b):
    a, b = load_checkpoint(dir_a / "checkpoint.npz"), load_checkpoint(dir_b / "checkpoint.npz")
    assert a.epoch == 14
    assert_same_state(a, b)
    assert np.array_equal(load_model(dir_a)[0].params, load_model(dir_b)[0].params)
    assert (dir_a / "log.jsonl").read_text().count("\n") == 14
    assert (dir_b / "log.jsonl").read_text().count("\n") == 14


def stop_during_training(tmp_path, signum):
    """Start a run, send ``signum`` once a checkpoint after epoch 2 exists; return (rc, stderr,
    run folder). The signal lands wherever the run is then (in a kernel, between epochs, in a
    write); the run holds in its last epoch, so that it cannot end first on a busy machine."""
    run = tmp_path / "runs" / "run"
    proc = run_cli("train", *REAL, "--name", "run", cwd=tmp_path, hold_epoch=14)
    try:
        wait_for_checkpoint(run / "checkpoint.npz", 2, proc)
        proc.send_signal(signum)
        rc, out, err = finish(proc, timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return rc, err, run


def test_sigkill_then_resume_ends_bitwise_equal(straight_run, tmp_path):
    rc, err, run = stop_during_training(tmp_path, signal.SIGKILL)
    assert rc == -signal.SIGKILL
    # Whatever the kill interrupted, the checkpoint on disk is complete and not the last epoch.
    saved = load_checkpoint(run / "checkpoint.npz").epoch
    assert 2 <= saved < 14
    stale = run / ".tmp-x8f2checkpoint.npz"  # as a kill during a write leaves one
    stale.write_bytes(b"half a checkpoint")
    rc, out, err = finish(run_cli("train", "--resume", run, cwd=tmp_path))
    assert rc == 0, err
    assert f"resuming after epoch {saved}" in err
    assert out.splitlines()[0].startswith(f"epoch {saved + 1:>2}/14")
    assert not stale.exists()
    assert_same_run(straight_run, run)


@pytest.mark.parametrize("signum, word", [(signal.SIGINT, "interrupted"),
                                          (signal.SIGTERM, "terminated")])
def test_sigint_and_sigterm_save_and_resume_ends_bitwise_equal(straight_run, tmp_path, signum,
                                                               word):
    rc, err, run = stop_during_training(tmp_path, signum)
    assert rc == 128 + signum, err
    assert "Traceback" not in err
    saved = load_checkpoint(run / "checkpoint.npz").epoch
    assert f"{word}: saved the state after epoch {saved} in {Path('runs/run')}" in err
    command = err.strip().splitlines()[-1].removeprefix("resume with: ")
    assert shlex.split(command) == [sys.executable, str(REPO / "cli.py"), "train", "--resume",
                                    str(Path("runs/run"))]
    assert (run / "report.json").exists()
    proc = subprocess.Popen(command, shell=True, cwd=tmp_path, env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # the command as printed
    rc, out, err = finish(proc)
    assert rc == 0, err
    assert_same_run(straight_run, run)


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path):
    model = tmp_path / "m.npz"
    Network([784, 5, 10], seed=0).save(model)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the command writes anything
    try:
        proc = run_cli("evaluate", model, cwd=tmp_path, stdout=write_end)
    finally:
        os.close(write_end)
    rc, _, err = finish(proc)
    assert (rc, err) == (141, "")


def test_train_whose_reader_goes_away_ends_quietly_keeping_its_checkpoint(tmp_path):
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = run_cli("train", "--hidden", "8", "--epochs", "3", "--eval-every", "2",
                       "--checkpoint-every", "1", "--train-limit", "1500", "--validation", "300",
                       "--name", "run", cwd=tmp_path, stdout=write_end)
    finally:
        os.close(write_end)
    rc, _, err = finish(proc)
    assert rc == 141 and "Traceback" not in err and "Error" not in err, err
    # The first evaluation line (epoch 2) could not be written; epoch 2's checkpoint was.
    assert load_checkpoint(tmp_path / "runs" / "run" / "checkpoint.npz").epoch == 2
