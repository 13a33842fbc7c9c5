"""``train --threads 2`` for the recipes with momentum and distortions: the same weights on every
run, and a run stopped and resumed equals one run straight through."""

import numpy as np

from jitnet.training import load_checkpoint

SMALL = ["--epochs", "2", "--eval-every", "1", "--train-limit", "1000", "--validation", "200",
         "--test-limit", "200", "--quiet"]


def invoke(*args):
    from click.testing import CliRunner

    from jitnet.cli.main import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def final(runs, name):
    return load_checkpoint(runs / name / "checkpoint.npz")


def test_momentum_and_distortion_resume_equals_straight(tmp_path, many_cores):
    """--momentum 0.9 --distort elastic on 2 threads: a run stopped after epoch 1 (velocity in
    its checkpoint) and resumed gives bitwise the straight run's weights and velocity."""
    runs = tmp_path / "runs"
    args = ["--hidden", "24", "--momentum", "0.9", "--rate", "0.03", "--distort", "elastic",
            "--elastic-sigma", "4", "--elastic-alpha", "34", "--threads", 2, "--runs-dir", runs]
    straight = invoke("train", *SMALL, *args, "--name", "straight")
    assert straight.exit_code == 0, straight.output
    stopped = invoke("train", *[a if a != "2" else "1" for a in SMALL], *args, "--name", "c")
    assert stopped.exit_code == 0, stopped.output
    resumed = invoke("train", "--resume", runs / "c", "--epochs", 2, "--quiet")
    assert resumed.exit_code == 0, resumed.output
    a, c = final(runs, "straight"), final(runs, "c")
    assert a.epoch == c.epoch == 2 and a.config.threads == 2 and a.config.momentum == 0.9
    assert np.array_equal(a.net.params, c.net.params)
    assert np.array_equal(a.net.velocity, c.net.velocity)
    assert np.abs(a.net.velocity).max() > 0


def test_simard2003_on_two_threads_is_reproducible(tmp_path, many_cores):
    """--recipe simard2003 (784-800-10 float32 relu, elastic distortion) --threads 2 on a
    subset: bitwise the same model twice."""
    runs = tmp_path / "runs"
    for name in "ab":
        result = invoke("train", "--recipe", "simard2003", *SMALL, "--threads", 2,
                        "--runs-dir", runs, "--name", name)
        assert result.exit_code == 0, result.output
    a, b = final(runs, "a"), final(runs, "b")
    assert a.config.hidden == (800,) and a.config.distort == "elastic" and a.epoch == 2
    assert np.array_equal(a.net.params, b.net.params)
