"""Training on samples distorted inside the compiled epoch: the kernel trains on exactly the
distorted images, the identity distortion changes nothing, a seed reproduces a run, and a
distorted run (with momentum) killed and resumed ends bitwise equal to an uninterrupted one."""

import signal
import subprocess

import numpy as np
import pytest

import helpers
from helpers import CtrlCAt, child_env, cli_command, wait_for_checkpoint
from jitnet.engine import distort_kernels as dk
from jitnet.engine.distortion import Distortion, DistortionPlan
from jitnet.engine.network import Network
from jitnet.training import TrainingInterrupted, load_checkpoint, resume_training

ELASTIC_AFFINE = Distortion(elastic_sigma=4.0, elastic_alpha=34.0, rotate=15.0, scale_x=0.15,
                            scale_y=0.15, shear=15.0, translate=1.0)
N = 600


@pytest.fixture(scope="module")
def data(mnist):
    return mnist[0].images[:N], mnist[0].labels[:N]


def epoch_pair(data, distortion, dtype="float64", momentum=0.0, loss="squared", progress=None):
    """The same epoch trained plainly and through the distorted kernel with ``distortion``'s
    draws; returns (plain network, distorted network, draws, order, plan)."""
    X, y = data
    plain = Network([784, 12, 10], dtype=dtype, seed=1, loss=loss)
    distorted = plain.copy()
    order = np.random.default_rng(2).permutation(N)
    plan = DistortionPlan(distortion, (28, 28), seed=3, bank_size=8)
    draws = plan.draw_epoch(np.random.default_rng(4), N)
    plain.train_epoch(X, y, 0.2, order=order, momentum=momentum)
    distorted.train_epoch(X, y, 0.2, order=order, momentum=momentum, distortion=plan,
                          draws=draws, progress=progress)
    return plain, distorted, draws, order, plan


@pytest.mark.parametrize("dtype, momentum, loss", [
    ("float64", 0.0, "squared"), ("float32", 0.0, "cross_entropy"),
    ("float64", 0.5, "cross_entropy"), ("float32", 0.9, "squared")])
def test_the_identity_distortion_trains_bitwise_like_no_distortion(data, dtype, momentum, loss):
    plain, distorted, _, _, _ = epoch_pair(data, Distortion(), dtype, momentum, loss,
                                           progress=lambda n: None)
    assert np.array_equal(plain.params, distorted.params)
    if momentum:
        assert np.array_equal(plain.velocity, distorted.velocity)


def test_the_kernel_trains_on_exactly_the_distorted_images(data):
    plain, distorted, draws, order, plan = epoch_pair(data, ELASTIC_AFFINE)
    assert not np.array_equal(plain.params, distorted.params)
    # The same images distorted beforehand (float64, scaled), then trained on in that order.
    X, y = data
    images = np.empty((N, 784))
    dk._distort_batch(X, order, 28, 28, 1 / 255, draws, plan.bank, *plan.scratch(), images)
    assert not np.allclose(images, X[order] / 255, atol=0.1)
    reference = Network([784, 12, 10], seed=1)
    reference.train_epoch(images, y[order], 0.2, scale=1.0)
    assert np.array_equal(reference.params, distorted.params)


def test_chunked_epochs_distort_each_sample_with_its_own_draw(data):
    _, whole, _, _, _ = epoch_pair(data, ELASTIC_AFFINE)
    _, chunked, _, _, _ = epoch_pair(data, ELASTIC_AFFINE, progress=lambda n: None)
    assert np.array_equal(whole.params, chunked.params)


def test_train_with_a_distortion_is_reproducible_from_its_seed(data):
    X, y = data
    nets = [Network([784, 12, 10], seed=0) for _ in range(3)]
    for net, seed in zip(nets, (7, 7, 8)):
        net.train(X, y, 0.2, epochs=2, shuffle=True, seed=seed, distort=ELASTIC_AFFINE)
    assert np.array_equal(nets[0].params, nets[1].params)
    assert not np.array_equal(nets[0].params, nets[2].params)
    plain = Network([784, 12, 10], seed=0)
    plain.train(X, y, 0.2, epochs=2, shuffle=True, seed=7)
    assert not np.array_equal(plain.params, nets[0].params)
    identity = Network([784, 12, 10], seed=0)
    identity.train(X, y, 0.2, epochs=1, shuffle=True, seed=7, distort=Distortion())
    first = Network([784, 12, 10], seed=0)
    first.train(X, y, 0.2, epochs=1, shuffle=True, seed=7)
    assert np.array_equal(identity.params, first.params)


@pytest.mark.parametrize("change, words", [
    (dict(draws=np.zeros((N - 1, dk.N_DRAW))), "draws must be 600 rows"),
    (dict(draws=np.full((N, dk.N_DRAW), np.nan)), "finite"),
    (dict(field=8), "outside the plan's bank of 8"),
    (dict(field=-1), "outside the plan's bank"),
    (dict(field=0.5), "outside the plan's bank"),
    (dict(draws=None), "needs draws"),
    (dict(distortion=None), "draws need a distortion"),
    (dict(distortion="elastic"), "must be a jitnet.DistortionPlan"),
    (dict(distortion=DistortionPlan(Distortion(), (27, 27))), "27x27 images"),
])
def test_bad_distortion_arguments_are_refused_before_the_kernel(data, change, words):
    X, y = data
    net = Network([784, 12, 10], seed=1)
    before = net.params.copy()
    plan = DistortionPlan(ELASTIC_AFFINE, (28, 28), seed=3, bank_size=8)
    kwargs = dict(distortion=plan, draws=plan.draw_epoch(np.random.default_rng(0), N))
    if "field" in change:
        kwargs["draws"][5, dk.FIELD_J] = change.pop("field")
    kwargs.update(change)
    with pytest.raises(ValueError, match=words):
        net.train_epoch(X, y, 0.2, **kwargs)
    assert np.array_equal(net.params, before)
    with pytest.raises(ValueError, match="image_shape"):
        Network([10, 3, 2]).train(np.zeros((2, 10)), [0, 1], distort=ELASTIC_AFFINE)


# -- the training loop -------------------------------------------------------------------------

SMALL = dict(hidden=(12,), epochs=4, eval_every=1, validation=300, train_limit=1500,
             test_limit=400, checkpoint_every=1, patience=100, distort="both",
             momentum=0.5, schedule="exponential", decay=0.8, loss="cross_entropy")


def run_small(mnist, run_dir, reporter=None, **changes):
    return helpers.run_small(SMALL, mnist, run_dir, reporter, **changes)


def test_a_distorted_run_with_momentum_resumes_bitwise(mnist, tmp_path):
    straight = run_small(mnist, tmp_path / "a")
    again = run_small(mnist, tmp_path / "b")
    assert np.array_equal(straight.state.net.params, again.state.net.params)
    with pytest.raises(TrainingInterrupted):
        run_small(mnist, tmp_path / "c", reporter=CtrlCAt(3))
    saved = load_checkpoint(tmp_path / "c" / "checkpoint.npz")
    assert saved.epoch == 2 and saved.net.velocity is not None
    resumed = resume_training(tmp_path / "c", data=mnist)
    assert np.array_equal(straight.state.net.params, resumed.state.net.params)
    assert np.array_equal(straight.state.net.velocity, resumed.state.net.velocity)
    assert straight.state.losses == resumed.state.losses
    assert [r["rate"] for r in resumed.state.records] == [0.3 * 0.8 ** e for e in range(4)]
    plain = run_small(mnist, tmp_path / "d", distort="none", epochs=1)
    assert straight.state.losses[0] != plain.state.losses[0]
    # Every parameter of a distortion at 0: no distortion at all (nothing drawn).
    identity = run_small(mnist, tmp_path / "e", distort="affine", rotate=0, scale=0, shear=0,
                         epochs=2)
    assert identity.state.losses == run_small(mnist, tmp_path / "f", distort="none",
                                              epochs=2).state.losses


def test_sigkill_during_a_distorted_momentum_run_then_resume_is_bitwise(mnist, tmp_path):
    """A real process killed with SIGKILL, resumed from the command line."""
    options = dict(SMALL, hidden=(32,), epochs=6, train_limit=8000, validation=1000,
                   test_limit=500)
    straight = run_small(mnist, tmp_path / "straight", **options)
    args = ["--hidden", "32", "--epochs", "6", "--eval-every", "1", "--validation", "1000",
            "--train-limit", "8000", "--test-limit", "500", "--checkpoint-every", "1",
            "--patience", "100", "--distort", "both", "--momentum", "0.5", "--schedule",
            "exponential", "--decay", "0.8", "--loss", "cross-entropy", "--name", "run"]
    env = child_env()
    killed = cli_command(pictures=False, hold_epoch=6) + ["train"]  # it cannot end first
    proc = subprocess.Popen(killed + args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "runs" / "run" / "checkpoint.npz"
    try:
        wait_for_checkpoint(checkpoint, 2, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert 2 <= load_checkpoint(checkpoint).epoch < 6
    resume = cli_command(pictures=False) + ["train", "--resume", str(tmp_path / "runs" / "run")]
    done = subprocess.run(resume, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    resumed = load_checkpoint(checkpoint)
    assert resumed.epoch == 6
    assert np.array_equal(resumed.net.params, straight.state.net.params)
    assert np.array_equal(resumed.net.velocity, straight.state.net.velocity)
    assert resumed.losses == straight.state.losses
