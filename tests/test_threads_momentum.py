"""Every core for every recipe: ``threads > 1`` with momentum (classical and Nesterov's),
distortions and weight decay agrees with one thread to rounding and repeats itself bitwise."""

import numpy as np
import pytest

from jitnet import Distortion
from jitnet.engine.network import Network

TOL = 1e-9  # float64 weights against the serial kernel after 200 samples
DISTORT = Distortion(rotate=10.0, elastic_sigma=2.0, elastic_alpha=3.0)


def sparse_data(sizes, n=200, seed=1, density=0.3):
    """uint8 images with about ``density`` of the inputs non-zero, and labels."""
    rng = np.random.default_rng(seed)
    X = rng.integers(1, 256, (n, sizes[0]))
    X[rng.random(X.shape) >= density] = 0
    return X.astype(np.uint8), rng.integers(0, sizes[-1], n)


def trained(sizes, threads, X, labels, activation="sigmoid", loss="squared", rate=0.2,
            momentum=0.0, distort=None, start_factor=1.0, **kwargs):
    """A network after one epoch of ``Network.train`` (6 x 6 images when distorted)."""
    net = Network(sizes, activation=activation, loss=loss, seed=0)
    net.params[:] *= start_factor
    losses = net.train(X, labels, rate, momentum=momentum, distort=distort, image_shape=(6, 6),
                       seed=2, threads=threads, **kwargs)
    return net, losses[0]


@pytest.mark.parametrize("loss", ["squared", "cross_entropy"])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "scaled_tanh", "relu"])
@pytest.mark.parametrize("sizes", [[36, 24, 5], [36, 20, 12, 4]])
def test_every_recipe_agrees_with_serial(sizes, activation, loss, many_cores):
    """2 threads follow one thread with momentum 0.9, on distorted samples, and both, for every
    hidden activation and both losses, 1 and 2 hidden layers; velocities too; two runs
    bitwise equal. (The rate is scaled by 1 - momentum: the same step size as plain SGD.)"""
    X, labels = sparse_data(sizes)
    base = 0.05 if activation == "relu" else 0.2
    for momentum, distort in [(0.9, None), (0.0, DISTORT), (0.9, DISTORT)]:
        args = dict(activation=activation, loss=loss, rate=base * (1 - momentum),
                    momentum=momentum, distort=distort)
        serial, serial_loss = trained(sizes, 1, X, labels, **args)
        team, team_loss = trained(sizes, 2, X, labels, **args)
        assert np.abs(serial.params - team.params).max() < TOL, (momentum, distort)
        assert abs(serial_loss - team_loss) < TOL * max(1.0, abs(serial_loss))
        if momentum:
            assert np.abs(serial.velocity - team.velocity).max() < TOL
            assert np.abs(serial.velocity).max() > 1e-4  # a velocity worth comparing
        start = Network(sizes, activation=activation, loss=loss, seed=0).params
        assert np.abs(serial.params - start).max() > 1e-3  # the samples moved the weights
        again, again_loss = trained(sizes, 2, X, labels, **args)
        assert np.array_equal(team.params, again.params) and again_loss == team_loss
        if momentum:
            assert np.array_equal(team.velocity, again.velocity)


def test_distortion_changes_what_is_trained(many_cores):
    """The team trains on the distorted samples (a broken draw would train on the originals)."""
    sizes = [36, 24, 5]
    X, labels = sparse_data(sizes)
    plain, _ = trained(sizes, 2, X, labels)
    distorted, _ = trained(sizes, 2, X, labels, distort=DISTORT)
    assert np.abs(plain.params - distorted.params).max() > 1e-3


@pytest.mark.parametrize("activation", ["tanh", "scaled_tanh"])
def test_chaotic_momentum_judged_by_the_serial_runs_own_sensitivity(activation, many_cores):
    """tanh units with momentum 0.9 at rate 0.2 amplify rounding: there the team may differ
    from one thread by at most a few times as much as one thread differs from itself started
    1e-15 apart; after the first 20 samples they still agree to 1e-12."""
    sizes = [36, 24, 5]
    X, labels = sparse_data(sizes)
    args = dict(activation=activation, loss="squared", rate=0.2, momentum=0.9)
    serial, _ = trained(sizes, 1, X, labels, **args)
    nudged, _ = trained(sizes, 1, X, labels, start_factor=1 + 1e-15, **args)
    team, _ = trained(sizes, 2, X, labels, **args)
    sensitivity = np.abs(serial.params - nudged.params).max()
    assert sensitivity > 0
    assert np.abs(serial.params - team.params).max() <= 50 * sensitivity
    early = [trained(sizes, threads, X[:20], labels[:20], **args)[0] for threads in (1, 2)]
    assert np.abs(early[0].params - early[1].params).max() < 1e-12


@pytest.mark.parametrize("options", [
    dict(momentum=0.9, nesterov=True),
    dict(momentum=0.9, l2=0.01),
    dict(momentum=0.5, nesterov=True, l2=0.003),
    dict(l2=0.01),
    dict(momentum=0.5, l2=np.linspace(0.001, 0.02, 200)),  # a strength per sample: no lag
])
@pytest.mark.parametrize("sizes", [[36, 24, 5], [36, 20, 12, 4]])
def test_nesterov_and_weight_decay_agree_with_serial(sizes, options, many_cores):
    """scikit-learn's step (Nesterov's momentum, weight decay and its penalty in the loss) on
    2 and 3 threads: the serial weights and loss to rounding, bitwise repeatable."""
    X, labels = sparse_data(sizes)
    runs = {}
    for threads in (1, 2, 2, 3):
        net = Network(sizes, activation="tanh", seed=0)
        loss = net.train_epoch(X, labels, 0.05, threads=threads, **options)
        runs.setdefault(threads, []).append((net.params.copy(), loss))
    serial, serial_loss = runs[1][0]
    for threads in (2, 3):
        params, loss = runs[threads][0]
        assert np.abs(params - serial).max() < TOL
        assert abs(loss - serial_loss) < TOL
    assert np.array_equal(runs[2][0][0], runs[2][1][0]) and runs[2][0][1] == runs[2][1][1]
    if "l2" in options:  # the penalty is in the loss: a team that dropped it would differ
        plain = Network(sizes, activation="tanh", seed=0)
        without = plain.train_epoch(X, labels, 0.05, momentum=options.get("momentum", 0.0),
                                    nesterov=options.get("nesterov", False))
        assert serial_loss - without > 1e-5  # >> TOL


def test_chunks_carry_velocity_lag_and_penalty_across_calls(many_cores):
    """An epoch in 5,000-sample chunks (progress) reads and writes the velocity, the rows'
    lag and the penalty's sums at every call: bitwise the weights of the epoch in one call,
    the serial ones to rounding."""
    sizes = [36, 20, 4]
    X, labels = sparse_data(sizes, n=11000)
    plan_seed = np.random.SeedSequence(3)
    from jitnet.engine.distortion import DistortionPlan

    plan = DistortionPlan(DISTORT, (6, 6), seed=plan_seed)
    draws = plan.draw_epoch(np.random.default_rng(4), len(X))
    options = dict(momentum=0.9, nesterov=True, l2=1e-4, distortion=plan, draws=draws)
    nets, losses, done = [], [], []
    for threads, progress in [(1, None), (2, None), (2, done.append)]:
        net = Network(sizes, seed=0)
        losses.append(net.train_epoch(X, labels, 0.02, threads=threads, progress=progress,
                                      **options))
        nets.append(net)
    assert done == [5000, 10000, 11000]
    assert np.array_equal(nets[1].params, nets[2].params)
    assert np.array_equal(nets[1].velocity, nets[2].velocity)
    assert np.abs(nets[0].params - nets[1].params).max() < 1e-8
    assert np.abs(nets[0].velocity - nets[1].velocity).max() < 1e-8
    assert abs(losses[0] - losses[2]) < 1e-9


def test_sklearn_estimator_with_momentum_and_alpha_on_two_threads(many_cores):
    """MLPClassifier(threads=2) with Nesterov's momentum and alpha: one thread's weights and
    loss curve to rounding."""
    pytest.importorskip("sklearn.neural_network")
    from jitnet.sklearn import MLPClassifier

    rng = np.random.default_rng(0)
    X = rng.random((150, 12))
    y = (X[:, 0] + X[:, 1] > 1).astype(int)
    fits = []
    for threads in (1, 2):
        clf = MLPClassifier(hidden_layer_sizes=(20,), solver="sgd", batch_size=1,
                            learning_rate_init=0.01, momentum=0.9, nesterovs_momentum=True,
                            alpha=1e-3, max_iter=3, shuffle=True, random_state=0,
                            threads=threads)
        with pytest.warns(Warning):  # max_iter reached before convergence
            fits.append(clf.fit(X, y))
    assert np.abs(fits[0].coefs_[0] - fits[1].coefs_[0]).max() < TOL
    assert np.allclose(fits[0].loss_curve_, fits[1].loss_curve_, rtol=0, atol=TOL)
