"""The training methods of :class:`jitnet.Network`: one epoch, several epochs, and what they
set up around the compiled epoch (momentum's tables, a distortion's draws, threads).

A mixin only to keep ``network.py`` to one screenful of concerns; every method documented here
is a method of ``Network``.
"""

import math

import numpy as np

from jitnet.engine import epochs, kernels, parallel
from jitnet.engine.buffers import aligned_zeros
from jitnet.engine.checks import (
    check_count,
    check_fraction,
    check_inputs,
    check_labels,
    check_order,
    check_positive,
    check_seed,
    check_target_rows,
    input_scale,
)
from jitnet.engine.distort_kernels import FIELD_I, FIELD_J, N_DRAW
from jitnet.engine.distortion import DistortionPlan
from jitnet.engine.components import check_distributions, label_targets
from jitnet.engine.schedules import make_schedule

MOMENTUM_TABLE = 1 << 22  # most samples at zero input that momentum's catch-up tables cover
class TrainingDiverged(ValueError):
    """The loss or the parameters stopped being finite during an epoch (the rate is too large)."""


class TrainingMethods:
    """``train_epoch``, ``train`` and the input checks of :class:`jitnet.Network` (see there)."""

    # -- input checks, done once per call at the boundary ---------------------------------

    def _inputs(self, X, scale, name="X"):
        """(X as the kernels take it, its scale, whether X was one sample)."""
        X, single = check_inputs(X, self.n_inputs, name)
        if scale is None:
            scale = self._input_scale
        X, scale = input_scale(X, scale, self._dtype, name)
        return X, scale, single

    def _labels(self, labels, n, name="labels"):
        return check_labels(labels, n, self.n_outputs, name)

    def targets(self, labels):
        """Target vectors (N, n_out) for integer labels (N,), as this network's loss wants them:
        0.9 at the label and 0.1 elsewhere for ``squared``, one-hot 1/0 for ``cross_entropy``."""
        labels = np.asarray(labels)
        if labels.ndim != 1:
            raise ValueError(f"labels must be a 1-D array of class labels, got shape {labels.shape}")
        return label_targets(self._labels(labels, labels.shape[0]), self.n_outputs, self._loss,
                             self._dtype)

    def _targets(self, targets, n):
        """(N, n_out) targets in the network's dtype; (N,) labels become target vectors."""
        targets = np.asarray(targets)
        if targets.ndim == 1:
            labels = self._labels(targets, n, "targets")
            return label_targets(labels, self.n_outputs, self._loss, self._dtype)
        T = check_target_rows(targets, n, self.n_outputs, self._dtype)
        return check_distributions(T) if self._loss == "cross_entropy" else T


    # -- training -------------------------------------------------------------------------

    def train_epoch(self, X, targets, rate=0.3, order=None, scale=None, progress=None,
                    momentum=0.0, distortion=None, draws=None, threads=1):
        """One pass of per-sample SGD (w += rate * delta * x) over ``X`` in ``order``.

        Parameters
        ----------
        X : ndarray, (N, n_in)
            uint8 images (scaled by 1/255 inside the kernel, never copied) or float inputs.
            Other integer types need an explicit ``scale``; so do float inputs that look like
            raw 0-255 pixels (whole numbers, largest above 1): see ``scale``.
        targets : ndarray, (N, n_out) or (N,)
            Target vectors, or integer labels (see :meth:`targets`).
        rate : float
            Learning rate eta > 0 (finite in the network's dtype).
        order : ndarray of int, (M,), optional
            Sample indices in the order to visit them; default file order.
        scale : float, optional
            Input factor; default :attr:`input_scale`, and when that is None 1/255 for uint8
            and 1 for float inputs.
        progress : callable, optional
            Called as ``progress(n_done)`` between chunks of samples (plain Python, so a
            Ctrl-C lands there); without it the epoch is one compiled call. Chunked or not,
            the weights come out bitwise the same.
        momentum : float
            Classical momentum mu in [0, 1): ``v = mu v + rate delta x; w += v``, with the
            velocity kept in :attr:`velocity` across epochs. 0 (default) is plain SGD.
        distortion : jitnet.DistortionPlan, optional
            Train on distorted samples: inside the compiled epoch each visited sample is
            distorted afresh into a one-sample buffer, then trained on (the data set is never
            copied). The plan's image shape must hold ``n_in`` pixels. Needs ``draws``.
        draws : ndarray, (M, N_DRAW)
            ``distortion.draw_epoch(rng, M)`` for the M samples of ``order``: row k distorts the
            k-th sample visited. Draws of the identity (a ``Distortion()`` with every part 0)
            give bitwise the weights of an undistorted epoch.
        threads : int
            Threads sharing every sample's work (model parallel, :mod:`jitnet.engine.parallel`): 1,
            the default, runs the serial kernel. With N > 1 the weights are bitwise the same on
            every run with N threads and agree with the serial ones to rounding (the order of
            one sum differs). At most the first hidden layer's units and the usable cores;
            plain SGD only (no momentum, no distortion).

        Returns
        -------
        float
            Mean loss over the samples, each measured before its update.

        Raises
        ------
        TrainingDiverged
            When the mean loss or a parameter is not finite after the epoch.
        """
        threads = parallel.check_threads(threads, self.sizes)
        X, scale, _ = self._inputs(X, scale)
        n = X.shape[0]
        T = self._targets(targets, n)
        eta = check_positive("rate", rate, self._dtype)
        mu = check_fraction("momentum", momentum)
        order = check_order(order, n)
        distorter = self._distorter(distortion, draws, order.size)
        return self._run_epoch(X, T, eta, scale, order, progress, mu, distorter, threads)

    def _distorter(self, plan, draws, n_visits):
        """The kernels' distortion state for one epoch of n_visits samples (None: undistorted),
        after checking the plan against the network and the draws against the plan."""
        if plan is None:
            if draws is not None:
                raise ValueError("draws need a distortion (the plan they were drawn from)")
            return None
        if not isinstance(plan, DistortionPlan):
            raise ValueError(f"distortion must be a jitnet.DistortionPlan, got "
                             f"{type(plan).__name__}")
        rows, cols = plan.image_shape
        if rows * cols != self.n_inputs:
            raise ValueError(f"distortion is for {rows}x{cols} images ({rows * cols} pixels); "
                             f"the network has {self.n_inputs} inputs")
        if draws is None:
            raise ValueError("a distortion needs draws: distortion.draw_epoch(rng, len(order))")
        draws = np.ascontiguousarray(draws, dtype=np.float64)
        if draws.shape != (n_visits, N_DRAW) or not np.isfinite(draws).all():
            raise ValueError(f"draws must be {n_visits} rows of {N_DRAW} finite numbers (one per "
                             f"sample visited), got shape {draws.shape}")
        n_fields = plan.bank.shape[0]
        if n_fields:  # the kernel indexes the bank with these: never out of bounds
            fields = draws[:, [FIELD_I, FIELD_J]]
            if (fields != np.floor(fields)).any() or fields.min(initial=0) < 0 or \
                    fields.max(initial=0) >= n_fields:
                raise ValueError(f"draws name fields outside the plan's bank of {n_fields}")
        work, index = plan.scratch()
        return kernels.Distorter(rows, cols, draws, plan.bank, work, index,
                                 aligned_zeros(self.n_inputs, self._dtype))

    def _image_shape(self, image_shape):
        """(rows, cols) of the images to distort: as given, or square when n_in is a square."""
        if image_shape is not None:
            return image_shape
        side = math.isqrt(self.n_inputs)
        if side * side != self.n_inputs:
            raise ValueError(f"distort needs image_shape=(rows, cols) for {self.n_inputs} inputs "
                             f"(not a square number)")
        return (side, side)

    def _momentum(self, mu, n_samples):
        """The kernels' momentum state for one epoch of n_samples (mu = 0: off, no buffers)."""
        dtype = self._dtype
        if mu == 0.0:
            self._velocity = None
            empty = np.zeros(0, dtype)
            return kernels.Momentum(dtype.type(0.0), empty, np.zeros(0, np.int64),
                                    np.zeros(1, np.int64), empty, empty)
        if self._velocity is None:
            self._velocity = aligned_zeros(self._params.size, dtype)
        # A row can wait at most n_samples samples; past the gap where mu^d underflows to 0
        # the tables would stop changing (see the kernels' momentum section). Tables longer
        # than MOMENTUM_TABLE are cut there: mu^d is then below 1e-18 for mu <= 0.99999.
        underflow = int(math.log(5e-324) / math.log(mu)) + 2 if mu > 0 else 1
        longest = min(n_samples, underflow, MOMENTUM_TABLE)
        decay = mu ** np.arange(longest + 1, dtype=np.float64)
        gain = np.concatenate([[0.0], np.cumsum(decay[1:])])
        return kernels.Momentum(
            dtype.type(mu), self._velocity, np.full(self._sizes[0], -1, np.int64),
            np.zeros(1, np.int64), decay.astype(dtype), gain.astype(dtype),
        )

    def _run_epoch(self, X, T, eta, scale, order, progress=None, mu=0.0, distorter=None,
                   threads=1):
        """The compiled epoch on inputs already checked and converted; returns the mean loss."""
        if order.size == 0:
            return 0.0
        if threads > 1 and (mu > 0.0 or distorter is not None):
            raise ValueError(f"threads={threads} trains plain SGD; momentum and distortions "
                             "train on one thread (threads=1)")
        momentum = self._momentum(mu, order.size)
        args = (self._params, self._layout, self._scratch(), X, T)
        units = self._units()
        team = None
        if threads > 1:
            team = parallel.Team(self._params, self._layout, self._scratch, threads)

        def run(start, stop):
            part = order[start:stop]
            if team is not None:
                return team.train(X, T, part, scale, eta, *units)
            if distorter is None:
                return epochs._train_epoch(*args, part, scale, eta, *units, momentum)
            return epochs._train_epoch_distorted(
                *args, part, scale, eta, *units, momentum,
                distorter._replace(draws=distorter.draws[start:stop]))

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
            if mu > 0.0:
                epochs._finish_momentum_epoch(self._params, self._layout, momentum)
        loss = total / order.size
        if not np.isfinite(loss):
            raise TrainingDiverged(f"training diverged: loss is {loss}; try a smaller rate")
        bad = np.count_nonzero(~np.isfinite(self._params))
        if bad:
            raise TrainingDiverged(
                f"training diverged: {bad} of {self.n_params} parameters are not finite "
                f"(loss {loss:.3g}); try a smaller rate"
            )
        return loss

    def train(self, X, targets, rate=0.3, epochs=1, shuffle=False, seed=None, scale=None,
              schedule="constant", momentum=0.0, distort=None, image_shape=None, threads=1):
        """Run ``epochs`` passes of per-sample SGD; returns the mean loss of each epoch.

        Inputs are checked once; each epoch is one compiled call (see :meth:`train_epoch`). With
        ``shuffle=True`` each epoch visits the samples in a fresh permutation drawn from
        ``np.random.default_rng(seed)``; otherwise in file order. ``schedule`` sets the rate of
        each epoch from ``rate`` (see :mod:`jitnet.engine.schedules`: ``constant``,
        ``exponential:GAMMA``, ``step:FACTOR:EVERY``); epochs count from 0 in every call.

        ``distort`` (a :class:`jitnet.Distortion`) trains every epoch on freshly distorted
        samples of ``image_shape`` (rows, cols) images (default: square): the field bank is
        built once from ``seed``, and each epoch's draws come from the shuffling generator
        after its permutation, so the same int seed gives bitwise the same weights.
        """
        epochs = check_count("epochs", epochs)
        threads = parallel.check_threads(threads, self.sizes)
        X, scale, _ = self._inputs(X, scale)
        n = X.shape[0]
        T = self._targets(targets, n)
        plan = make_schedule(schedule, check_positive("rate", rate, self._dtype))
        mu = check_fraction("momentum", momentum)
        seed = check_seed(seed)
        rng = np.random.default_rng(seed)
        distortion = None
        if distort is not None:
            distortion = DistortionPlan(distort, self._image_shape(image_shape),
                                        seed=np.random.SeedSequence(seed, spawn_key=(2,)))
        in_file_order = np.arange(n, dtype=np.int64)
        losses = []
        for epoch in range(epochs):
            eta = check_positive(f"rate of epoch {epoch}", plan.rate_at(epoch), self._dtype)
            order = rng.permutation(n) if shuffle else in_file_order
            distorter = None
            if distortion is not None:
                distorter = self._distorter(distortion, distortion.draw_epoch(rng, n), n)
            losses.append(self._run_epoch(X, T, eta, scale, order, mu=mu, distorter=distorter,
                                          threads=threads))
        return losses

