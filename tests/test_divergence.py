"""Nothing is lost on divergence: a train or train_epoch call that raises TrainingDiverged
leaves the network's parameters and momentum velocity exactly as they were before the call."""

import numpy as np
import pytest

from jitnet.engine import parallel, training
from jitnet.engine.network import Network, TrainingDiverged

X = np.ones((3, 2))
LABELS = np.array([0, 1, 0])
EXPLOSIVE = 1e30  # a rate whose second step overflows float32 by twenty orders of magnitude


def relu_net(hidden=3):
    """Every relu unit active (z = 0.3) and a non-zero error term for each: at EXPLOSIVE, the
    first step makes the hidden activations ~1e29 and the next outputs overflow; at 0.1 the
    network trains as usual."""
    net = Network([2, hidden, 2], activation="relu", loss="cross_entropy", dtype="float32",
                  seed=0)
    W1 = np.stack([np.linspace(0.1, 0.3, hidden), np.linspace(-0.1, 0.1, hidden)])
    net.set_weights([(np.full((hidden, 2), 0.1), np.full(hidden, 0.1)), (W1, np.zeros(2))])
    return net


def state(net):
    return net.params.tobytes(), None if net.velocity is None else net.velocity.tobytes()


def test_a_diverging_epoch_leaves_the_parameters_as_they_were():
    net = relu_net()
    before = state(net)
    with pytest.raises(TrainingDiverged):
        net.train_epoch(X, LABELS, EXPLOSIVE)
    assert state(net) == before
    assert np.isfinite(net.train_epoch(X, LABELS, 0.1))  # and it trains on from there
    assert state(net) != before


def test_a_call_that_diverges_in_a_later_epoch_puts_back_the_state_before_the_call(monkeypatch):
    """Epoch 0 trains at 0.1 (the weights change), epoch 1 at EXPLOSIVE diverges: the network is
    as it was before the call, not after epoch 0. (No schedule raises the rate: the rates are
    set where train hands each epoch to the compiled loop.)"""
    run_epoch, rates = training.run_epoch, [0.1, EXPLOSIVE]

    def rate_per_epoch(net, X, T, eta, *rest, **kwargs):
        return run_epoch(net, X, T, net.dtype.type(rates.pop(0)), *rest, **kwargs)

    monkeypatch.setattr(training, "run_epoch", rate_per_epoch)
    net = relu_net()
    before = state(net)
    with pytest.raises(TrainingDiverged):
        net.train(X, LABELS, 0.1, epochs=2, shuffle=True, seed=1)
    assert state(net) == before and not rates
    rates.append(0.1)
    net.train(X, LABELS, 0.1, epochs=1, shuffle=True, seed=1)
    assert state(net) != before  # epoch 0 alone does change the weights


@pytest.mark.parametrize("had_velocity", [False, True])
def test_momentum_keeps_its_velocity(had_velocity):
    net = relu_net()
    if had_velocity:
        net.train_epoch(X, LABELS, 0.1, momentum=0.5)
    before = state(net)
    assert (before[1] is not None) == had_velocity
    with pytest.raises(TrainingDiverged):
        net.train_epoch(X, LABELS, EXPLOSIVE, momentum=0.9, progress=lambda n: None)
    assert state(net) == before
    with pytest.raises(TrainingDiverged):  # an epoch without momentum would drop the velocity
        net.train(X, LABELS, EXPLOSIVE, epochs=2)
    assert state(net) == before


def test_a_non_finite_loss_also_puts_the_parameters_back():
    """Outputs that overflow float32 make z - max(z) = inf - inf: the loss is NaN."""
    net = Network([2, 2], loss="cross_entropy", dtype="float32", seed=0)
    net.set_weights([(np.array([[3e38, 3e38], [0.0, 0.0]]), np.zeros(2))])
    before = state(net)
    with pytest.raises(TrainingDiverged, match="loss is nan"):
        net.train_epoch(np.ones((1, 2)), [1], 0.1)
    assert state(net) == before


@pytest.mark.skipif(parallel.usable_cores() < 2, reason="threads=2 needs two cores")
def test_two_threads():
    net = relu_net(hidden=4)
    before = state(net)
    with pytest.raises(TrainingDiverged):
        net.train(X, LABELS, EXPLOSIVE, threads=2)
    assert state(net) == before
    with pytest.raises(TrainingDiverged):
        net.train_epoch(X, LABELS, EXPLOSIVE, threads=2, progress=lambda n: None)
    assert state(net) == before
