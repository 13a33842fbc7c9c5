"""The epoch driver behind :meth:`jitnet.Network.train_epoch` and :meth:`~jitnet.Network.train`:
what is set up around the compiled epoch (momentum's tables, a distortion's draws, threads),
the Python loop over chunks and epochs, and the divergence check.

Each function takes the network it trains as its first argument and changes its ``params`` (and
momentum's velocity) in place; the arguments are documented on the methods. A call that raises
:class:`TrainingDiverged` first puts back the parameters and velocity the network had when the
call began (one copy per call).
"""

import math
from contextlib import contextmanager

import numpy as np

from jitnet.engine import epochs as epoch_kernels
from jitnet.engine import extras as extra_kernels
from jitnet.engine import inputs, kernels, parallel
from jitnet.engine.buffers import Extras
from jitnet.engine.checks import (
    check_count, check_fraction, check_l2, check_order, check_positive, check_seed,
)
from jitnet.engine.distortion import DistortionPlan
from jitnet.engine.buffers import aligned_zeros as _aligned_zeros
from jitnet.engine.schedules import make_schedule

MOMENTUM_TABLE = 1 << 22  # most samples at zero input that momentum's catch-up tables cover


class TrainingDiverged(ValueError):
    """The loss or the parameters stopped being finite during an epoch (the rate is too large);
    the network is left as it was before the call."""


def train_epoch(net, X, targets, rate=0.3, order=None, scale=None, progress=None, momentum=0.0,
                distortion=None, draws=None, threads=1, nesterov=False, l2=0.0):
    """One pass of per-sample SGD over ``X`` in ``order``; the mean loss
    (:meth:`jitnet.Network.train_epoch`)."""
    threads = parallel.check_threads(threads, net.sizes)
    X, scale, _ = inputs.samples(net, X, scale)
    n = X.shape[0]
    T = inputs.targets(net, targets, n)
    eta = check_positive("rate", rate, net.dtype)
    mu = check_fraction("momentum", momentum)
    order = check_order(order, n)
    l2 = check_l2(l2, n)
    draws = inputs.draws(net, distortion, draws, order.size)
    distorter = None if draws is None else _distorter(net, distortion, draws)
    with _restored_on_divergence(net):
        return run_epoch(net, X, T, eta, scale, order, progress, mu, distorter, threads,
                         bool(nesterov), l2)


def train(net, X, targets, rate=0.3, epochs=1, shuffle=False, seed=None, scale=None,
          schedule="constant", momentum=0.0, distort=None, image_shape=None, threads=1):
    """``epochs`` passes of per-sample SGD; the mean loss of each (:meth:`jitnet.Network.train`)."""
    epochs = check_count("epochs", epochs)
    threads = parallel.check_threads(threads, net.sizes)
    X, scale, _ = inputs.samples(net, X, scale)
    n = X.shape[0]
    T = inputs.targets(net, targets, n)
    plan = make_schedule(schedule, check_positive("rate", rate, net.dtype))
    mu = check_fraction("momentum", momentum)
    seed = check_seed(seed)
    rng = np.random.default_rng(seed)
    distortion = None
    if distort is not None:
        distortion = DistortionPlan(distort, inputs.image_shape(net, image_shape),
                                    seed=np.random.SeedSequence(seed, spawn_key=(2,)))
    in_file_order = np.arange(n, dtype=np.int64)
    losses = []
    with _restored_on_divergence(net):
        for epoch in range(epochs):
            eta = check_positive(f"rate of epoch {epoch}", plan.rate_at(epoch), net.dtype)
            order = rng.permutation(n) if shuffle else in_file_order
            distorter = None
            if distortion is not None:
                draws = inputs.draws(net, distortion, distortion.draw_epoch(rng, n), n)
                distorter = _distorter(net, distortion, draws)
            losses.append(run_epoch(net, X, T, eta, scale, order, mu=mu, distorter=distorter,
                                    threads=threads))
    return losses


@contextmanager
def _restored_on_divergence(net):
    """Put back ``net``'s parameters and velocity as they are now if the block diverges."""
    params = net.params.copy()
    velocity = net.velocity
    if velocity is not None:
        velocity = _aligned_zeros(velocity.size, velocity.dtype)
        velocity[...] = net.velocity
    try:
        yield
    except TrainingDiverged:
        net.params[...] = params
        net._velocity = velocity
        raise


def _distorter(net, plan, draws):
    """The kernels' distortion state for one epoch: the plan's bank and scratch, and ``draws``."""
    rows, cols = plan.image_shape
    work, index = plan.scratch()
    return kernels.Distorter(rows, cols, draws, plan.bank, work, index,
                             _aligned_zeros(net.n_inputs, net.dtype))


def _momentum(net, mu, n_samples):
    """The kernels' momentum state for one epoch of n_samples (mu = 0: off, no buffers)."""
    dtype = net.dtype
    if mu == 0.0:
        net._velocity = None
        empty = np.zeros(0, dtype)
        return kernels.Momentum(dtype.type(0.0), empty, np.zeros(0, np.int64),
                                np.zeros(1, np.int64), empty, empty)
    if net._velocity is None:
        net._velocity = _aligned_zeros(net.params.size, dtype)
    # A row can wait at most n_samples samples; past the gap where mu^d underflows to 0
    # the tables would stop changing (see the kernels' momentum section). Tables longer
    # than MOMENTUM_TABLE are cut there: mu^d is then below 1e-18 for mu <= 0.99999.
    underflow = int(math.log(5e-324) / math.log(mu)) + 2 if mu > 0 else 1
    longest = min(n_samples, underflow, MOMENTUM_TABLE)
    decay = mu ** np.arange(longest + 1, dtype=np.float64)
    gain = np.concatenate([[0.0], np.cumsum(decay[1:])])
    return kernels.Momentum(
        dtype.type(mu), net._velocity, np.full(net.n_inputs, -1, np.int64),
        np.zeros(1, np.int64), decay.astype(dtype), gain.astype(dtype),
    )


def _extras(net, mu, n_samples, eta, nesterov, l2):
    """The kernels' state of Nesterov's momentum and weight decay for one epoch of n_samples at
    rate eta, and the momentum state it goes with; (momentum, None) when neither is on.
    ``l2``: None or the (N,) penalty strengths (:mod:`jitnet.engine.extras`)."""
    if l2 is None and not (nesterov and mu > 0.0):
        return _momentum(net, mu, n_samples), None
    dtype = net.dtype
    momentum = _momentum(net, mu, n_samples)
    if mu == 0.0:  # decay alone: a velocity for the epoch (the last step), not kept
        velocity = _aligned_zeros(net.params.size, dtype)
    else:
        velocity = net._velocity
    every = l2 is not None and bool((l2 != l2[0]).any())
    if l2 is None:
        longest = momentum.decay.size - 1
    else:  # decay moves a lagging row for as long as it lags; ``every``: no row lags
        longest = 1 if every else n_samples
        if longest > MOMENTUM_TABLE:
            raise ValueError(f"l2 trains at most {MOMENTUM_TABLE} samples per call")
    h = float(eta) * (float(l2.min()) if l2 is not None else 0.0)
    mu_n = mu if nesterov else 0.0
    tables = [np.zeros(longest + 1) for _ in range(4)]
    # A, one sample at zero input: v <- mu v - h w; w <- w + v (+ mu (v_new - v), Nesterov)
    extra_kernels._lag_tables(1.0 - h - mu_n * h, mu * (mu if nesterov else 1.0), -h, mu,
                              *tables)
    shrink, gain, pull, decay = (table.astype(dtype) for table in tables)
    stats = np.zeros(8)
    if l2 is not None:
        first = slice(0, net._layout.b_off[0])
        w0 = net.params[first].astype(np.float64)
        v0 = velocity[first].astype(np.float64)
        stats[:3] = np.dot(w0, w0), np.dot(w0, v0), np.dot(v0, v0)
        stats[3] = sum(float(np.dot(W.ravel(), W.ravel())) for W in
                       (W.astype(np.float64) for W in net.weights[1:]))
    momentum = momentum._replace(mu=dtype.type(mu), velocity=velocity,
                                 last=np.full(net.n_inputs, -1, np.int64),
                                 decay=decay, gain=gain)
    l2 = np.zeros(0, dtype) if l2 is None else l2.astype(dtype)  # h = eta l2 in the dtype
    extras = Extras(bool(nesterov), l2, every, shrink, pull, stats)
    return momentum, extras


def run_epoch(net, X, T, eta, scale, order, progress=None, mu=0.0, distorter=None, threads=1,
              nesterov=False, l2=None):
    """The compiled epoch on inputs already checked and converted; returns the mean loss, or
    raises TrainingDiverged (leaving the diverged parameters: the callers put theirs back)."""
    if order.size == 0:
        return 0.0
    momentum, extras = _extras(net, mu, order.size, eta, nesterov, l2)
    args = (net.params, net._layout, net._scratch(), X, T)
    units = net._units()
    team = None
    if threads > 1:
        team = parallel.Team(net.params, net._layout, net._scratch, threads)

    def run(start, stop):
        part = order[start:stop]
        drawn = None if distorter is None else \
            distorter._replace(draws=distorter.draws[start:stop])
        if team is not None:
            return team.train(X, T, part, scale, eta, *units,
                              epoch_kernels._lagging(momentum, extras), drawn, extras)
        if drawn is None:
            return epoch_kernels._train_epoch(*args, part, scale, eta, *units, momentum, extras)
        return epoch_kernels._train_epoch_distorted(*args, part, scale, eta, *units, momentum,
                                                    drawn, extras)

    try:
        if progress is None:
            total = run(0, order.size)
        else:
            total = 0.0
            # Each multi-threaded call starts the ranks' threads: fewer, longer chunks.
            chunk = max(1000, order.size // 100) if team is None else max(5000, order.size // 20)
            for start in range(0, order.size, chunk):
                stop = min(start + chunk, order.size)
                total += run(start, stop)
                progress(stop)
    finally:  # also on Ctrl-C in progress(): leave every weight and velocity up to date
        if mu > 0.0 or extras is not None:
            epoch_kernels._finish_momentum_epoch(net.params, net._layout, momentum, extras)
    loss = total / order.size
    if not np.isfinite(loss):
        raise TrainingDiverged(f"training diverged: loss is {loss}; try a smaller rate")
    bad = np.count_nonzero(~np.isfinite(net.params))
    if bad:
        raise TrainingDiverged(
            f"training diverged: {bad} of {net.n_params} parameters are not finite "
            f"(loss {loss:.3g}); try a smaller rate"
        )
    return loss
