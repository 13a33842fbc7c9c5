"""The epoch loop: train, evaluate, keep the best model, stop, checkpoint (resumed by
:mod:`jitnet.training.resume`).

Every epoch is one record, appended to the run's ``log.jsonl`` and kept in the checkpoint::

    {"epoch": 3, "loss": 0.0123, "rate": 0.3, "seconds": 0.61, "samples_per_second": 81967.2,
     "elapsed_seconds": 9.8}

and, when the epoch ends with an evaluation, also ``val_error`` (or ``test_error`` with
``validation=0``), ``eval_seconds`` and ``improved``.
"""

import dataclasses
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jitnet.engine.distortion import Distortion, DistortionPlan
from jitnet.engine.compile import compile_kernels
from jitnet.engine.network import Network
from jitnet.engine.schedules import make_schedule
from jitnet.training import runs
from jitnet.training.checkpoint import TrainState, save_checkpoint, save_model
from jitnet.training.data import (
    check_config, load_splits, model_data_info, network_sizes, preprocessed, preprocessing,
    taking_raw_images,
)
from jitnet.training.errors import RunDiverged, TrainingError, TrainingInterrupted, one_line
from jitnet.training.report import Reporter, build_report, describe_run

# The shuffling generator gets its own stream, distinct from the one that draws the weights; the
# bank of elastic displacement fields a third. Each epoch's distortions are drawn from the
# shuffling generator after its permutation, so its saved state makes a resume exact.
_SHUFFLE_SPAWN_KEY = (1,)
_BANK_SPAWN_KEY = (2,)
#: A compile (or cache load) that has not finished after this many seconds is a cold compile.
COMPILE_NOTICE_SECONDS = 1.0


@dataclass
class TrainResult:
    """What :func:`run_training` and :func:`resume_training` return.

    Attributes
    ----------
    state : TrainState
        The final state (also in the final checkpoint).
    test_error : float
        Test error of the best model, a fraction in [0, 1].
    compile_seconds : float
    run_dir : pathlib.Path
    report : dict
        The JSON report (also in ``run_dir/report.json``).
    """

    state: TrainState
    test_error: float
    compile_seconds: float
    run_dir: Path
    report: dict

    @property
    def stop_reason(self):
        """``"patience"`` (the stopping rule) or ``"epochs"`` (the epoch limit)."""
        return self.state.stop_reason

    @property
    def model_path(self):
        return self.run_dir / runs.MODEL_NAME

    @property
    def checkpoint_path(self):
        return self.run_dir / runs.CHECKPOINT_NAME


def stopping_update(best_error, bad_evals, error):
    """The stopping rule's bookkeeping for one evaluation.

    An error below the best so far is an improvement and resets the count; an error above it
    counts against ``patience``; an error equal to it leaves the count as it is. With patience 1
    this is the tutorial's rule, "stop when the error is higher than at the previous
    evaluation", since every evaluation that does not stop the run is then the best so far.

    Returns
    -------
    improved : bool
    bad_evals : int
        The new count; training stops when it reaches ``patience``.
    """
    if best_error is None or error < best_error:
        return True, 0
    if error > best_error:
        return False, bad_evals + 1
    return False, bad_evals


def distortion_plan(config, image_shape):
    """The run's :class:`DistortionPlan`, built from its seed (None when ``distort`` is none or
    every part is 0: an identity distortion trains exactly like none and draws nothing)."""
    distortion = config.distortion
    if distortion is None or distortion.is_identity:
        return None
    seed = np.random.SeedSequence(config.seed, spawn_key=_BANK_SPAWN_KEY)
    return DistortionPlan(distortion, image_shape, seed=seed)


def run_training(config, run_dir, *, splits=None, reporter=None):
    """Train a new run described by ``config``, keeping its files in ``run_dir``.

    Parameters
    ----------
    config : TrainConfig
    run_dir : str or os.PathLike
        The run folder: created when missing; refused unless empty.
    splits : Splits, optional
        From :func:`prepare_data`; default: ``load_splits(config)``.
    reporter : Reporter, optional
        Receives progress; the loop itself never prints.

    Returns
    -------
    TrainResult

    Raises
    ------
    TrainingError
        The data does not fit ``config``, or ``run_dir`` is not empty (nothing is created).
    RunDiverged
        The loss became NaN or infinite; the last good epoch is checkpointed.
    TrainingInterrupted
        On KeyboardInterrupt, after checkpointing the last completed epoch.
    OSError
        A file of the run could not be written (its ``filename`` says which).
    """
    splits = load_splits(config) if splits is None else splits
    check_config(config, splits)
    net = new_network(config, splits)
    return start_run(config, runs.claim_run_dir(run_dir), splits, net, reporter)


def new_network(config, splits):
    """The run's initial network; a TrainingError (one line) when it cannot be built, before
    any file is written."""
    sizes = network_sizes(config, splits.info)
    try:
        net = Network(sizes, activation=config.activation, dtype=config.dtype,
                      seed=config.seed, loss=config.loss, init=config.init)
    except (MemoryError, ValueError, OverflowError) as exc:  # sizes beyond memory or numpy
        raise TrainingError(f"cannot build a {'-'.join(map(str, sizes))} network: "
                            f"{one_line(exc) or 'not enough memory'}") from None
    # How the data's raw samples become inputs, and what the outputs mean, travel with every
    # copy of the network: its checkpoints and model files take raw samples as the data has them.
    net.input_scale = splits.info.get("input_scale")
    net.standardization = splits.standardization
    net.class_names = splits.info.get("class_names")
    return net


def start_run(config, run_dir, splits, net, reporter=None):
    """:func:`run_training` from epoch 0 with ``net`` in ``run_dir``, whose files it writes
    anew (checked and claimed by the caller)."""
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=_SHUFFLE_SPAWN_KEY))
    runs.write_config(run_dir, config, splits.info)
    state = TrainState(config=config, data=dict(splits.info), epoch=0,
                       rng_state=rng.bit_generator.state, net=net.copy())
    return _Run(state, splits, run_dir, reporter).train(net, rng)


def _let_signals_in(n_done):
    """A progress callback that does nothing: with one, the engine returns to Python between
    chunks of samples, where Ctrl-C (or a SIGTERM turned into KeyboardInterrupt) lands."""


def _compile_distorted(dtype, x_dtype):
    """Compile (or load) the distorted epoch's kernel, on a 2x2-image network."""
    net = Network([4, 3, 2], dtype=dtype, seed=0)
    plan = DistortionPlan(Distortion(elastic_sigma=1.0, elastic_alpha=1.0), (2, 2), seed=0)
    X = np.ones((2, 4), x_dtype)
    net.train_epoch(X, [0, 1], 0.1, distortion=plan, draws=plan.draw_epoch(
        np.random.default_rng(0), 2))


def _compile_threads(dtype, x_dtype, threads):
    """Compile (or load) the multi-threaded epoch's kernel, on a tiny network."""
    net = Network([4, max(threads, 2), 2], dtype=dtype, seed=0)
    net.train_epoch(np.ones((2, 4), x_dtype), [0, 1], 0.1, threads=threads)


def _compile(dtype, x_dtype, reporter, distorted=False, threads=1):
    """compile_kernels (and the distorted or multi-threaded epoch's kernel), saying so when it takes long enough
    to be a first (cold) compile; returns the seconds spent."""
    notice = threading.Timer(COMPILE_NOTICE_SECONDS, reporter.message,
                             ["compiling kernels (first run only, about a minute)..."])
    notice.daemon = True
    notice.start()
    try:
        seconds = float(compile_kernels(np.dtype(dtype), x_dtype=x_dtype))
        if distorted:
            start = time.perf_counter()
            _compile_distorted(np.dtype(dtype), x_dtype)
            seconds += time.perf_counter() - start
        if threads > 1:
            start = time.perf_counter()
            _compile_threads(np.dtype(dtype), x_dtype, threads)
            seconds += time.perf_counter() - start
        return seconds
    finally:
        notice.cancel()


class _Run:
    """One session of a run: the committed state, the data and where the files go."""

    def __init__(self, state, splits, run_dir, reporter):
        self.state = state  # always the end of a completed epoch
        self.config = state.config
        # Trained on preprocessed images (once, here); the model files carry the preprocessing.
        self.splits = preprocessed(self.config, splits)
        self.preprocessing = preprocessing(self.config, splits.train.image_shape)
        self.run_dir = Path(run_dir)
        self.reporter = reporter or Reporter()
        self.best_written = None  # the best epoch whose model this session has written
        self.compile_seconds = 0.0
        self.elapsed_base = state.elapsed_seconds
        self.session_start = time.perf_counter()
        self.schedule = make_schedule(self.config.schedule_spec, self.config.rate)
        self.plan = None  # the DistortionPlan, built when training starts

    def elapsed(self):
        return self.elapsed_base + time.perf_counter() - self.session_start

    def train(self, net, rng):
        """Epochs until the stopping rule or the epoch limit, then the final files."""
        config, splits = self.config, self.splits
        try:
            self.reporter.message(
                f"{describe_run(config, net)}; {len(splits.train):,} training samples, "
                f"{config.stopping_set} set of {len(splits.val):,}, "
                f"{'shuffled' if config.shuffle else 'file order'}, seed {config.seed}"
                + (", raw pixels" if config.raw_pixels else "") + f"; run folder {self.run_dir}"
            )
            self.plan = distortion_plan(config, splits.train.image_shape)
            x_dtype = splits.train.images.dtype if splits.standardization is None else \
                np.dtype(config.dtype)  # standardized inputs are in the network's type
            self.compile_seconds = _compile(config.dtype, x_dtype,
                                            self.reporter, self.plan is not None,
                                            config.threads)
            self.reporter.message(f"kernels ready in {self.compile_seconds:.2f} s")
            # Built once in the network's dtype: each epoch's call then converts nothing.
            targets = net.targets(splits.train.labels)
            while self.state.epoch < config.epochs and self.state.bad_evals < config.patience:
                self.epoch(net, rng, targets)
            return self.finish()
        except KeyboardInterrupt:
            self.save_on_stop("interrupted")
            raise TrainingInterrupted(self.run_dir, self.state.epoch) from None

    def epoch(self, net, rng, targets):
        """Train one epoch, evaluate when due, commit, log and save."""
        config, train = self.config, self.splits.train
        epoch = self.state.epoch + 1
        order = rng.permutation(len(train)) if config.shuffle else None
        draws = None if self.plan is None else self.plan.draw_epoch(rng, len(train))
        progress = self.reporter.epoch_start(epoch, config.epochs, len(train)) or _let_signals_in
        rate = self.schedule.rate_at(epoch - 1)  # from the absolute epoch: exact on resume
        start = time.perf_counter()
        try:
            loss = float(net.train_epoch(train.images, targets, rate=rate, order=order,
                                         scale=self.splits.scale, progress=progress,
                                         momentum=config.momentum, distortion=self.plan,
                                         draws=draws, threads=config.threads))
        except ValueError as exc:  # the engine's own divergence error is a ValueError
            self.diverged(epoch, exc)
        if not math.isfinite(loss):
            self.diverged(epoch, f"mean loss {loss}")
        seconds = time.perf_counter() - start
        record = {"epoch": epoch, "loss": loss, "rate": rate, "seconds": seconds,
                  "samples_per_second": len(train) / seconds if seconds > 0 else 0.0,
                  "elapsed_seconds": self.elapsed()}
        evaluated = epoch % config.eval_every == 0 or epoch == config.epochs
        bad_evals = self.evaluate(net, record) if evaluated else self.state.bad_evals
        self.commit(net, rng, record, bad_evals)
        # Files before the reporter (a closed stdout must not cost the epoch), the checkpoint
        # before the model (a model that cannot be written must not cost the run).
        runs.append_log(self.run_dir, record)
        if config.checkpoint_every and epoch % config.checkpoint_every == 0:
            save_checkpoint(self.run_dir / runs.CHECKPOINT_NAME, self.state)
        if evaluated and record["improved"]:
            self.save_best()
        self.reporter.epoch_end(record)
        if evaluated:
            self.reporter.on_evaluation(self.state)

    def evaluate(self, net, record):
        """Measure the stopping rule's error into ``record``; return the new count of
        evaluations above the best."""
        val = self.splits.val
        start = time.perf_counter()
        error = float(net.evaluate(val.images, val.labels, scale=self.splits.scale))
        record[self.config.error_key] = error
        record["eval_seconds"] = time.perf_counter() - start
        record["improved"], bad_evals = stopping_update(
            self.state.best_error, self.state.bad_evals, error)
        return bad_evals

    def commit(self, net, rng, record, bad_evals):
        """Make the end of this epoch the state that checkpoints and interrupts save."""
        state = self.state
        snapshot = net.copy()
        improved = record.get("improved", False)
        self.state = dataclasses.replace(
            state,
            epoch=record["epoch"],
            rng_state=rng.bit_generator.state,
            net=snapshot,
            best=snapshot if improved else state.best,
            best_epoch=record["epoch"] if improved else state.best_epoch,
            best_error=record[self.config.error_key] if improved else state.best_error,
            bad_evals=bad_evals,
            records=state.records + [record],
            train_seconds=state.train_seconds + record["seconds"],
            eval_seconds=state.eval_seconds + record.get("eval_seconds", 0.0),
            elapsed_seconds=self.elapsed(),
        )

    def model_info(self, epoch, error):
        data = self.splits.info
        info = {"input_scale": data.get("input_scale", self.config.input_scale),
                "config": self.config.to_dict(), "sizes": list(self.state.net.sizes),
                "epoch": epoch, **model_data_info(data)}
        if error is not None:
            info[self.config.error_key] = error
        return info

    def save_model(self, net, info):
        net = taking_raw_images(net, self.preprocessing)
        save_model(self.run_dir / runs.MODEL_NAME, net, info)
        if self.config.output:
            save_model(self.config.output, net, info)

    def save_best(self):
        state = self.state
        self.save_model(state.best, self.model_info(state.best_epoch, state.best_error))
        self.best_written = state.best_epoch

    def write_report(self, status, test_error):
        files = {"run_dir": self.run_dir}
        files.update({name: self.run_dir / filename for name, filename in (
            ("config", runs.CONFIG_NAME), ("log", runs.LOG_NAME), ("report", runs.REPORT_NAME),
            ("checkpoint", runs.CHECKPOINT_NAME), ("model", runs.MODEL_NAME))})
        for name in ("output", "report_copy"):
            path = self.config.output if name == "output" else self.config.report
            if path:
                files[name] = path
        report = build_report(self.state, status, test_error, self.compile_seconds, files)
        runs.write_json(self.run_dir / runs.REPORT_NAME, report)
        if self.config.report:
            runs.write_json(self.config.report, report)
        return report

    def save_on_stop(self, status):
        """Checkpoint the committed state, its best model and a report with ``status``."""
        save_checkpoint(self.run_dir / runs.CHECKPOINT_NAME, self.state)
        if self.state.best is not None and self.best_written != self.state.best_epoch:
            self.save_best()
        self.write_report(status, None)

    def diverged(self, epoch, reason):
        self.save_on_stop("diverged")
        raise RunDiverged(epoch, reason, self.config.rate, self.run_dir / runs.CHECKPOINT_NAME)

    def finish(self):
        """The final checkpoint, best model, test error and report."""
        config = self.config
        stop_reason = "patience" if self.state.bad_evals >= config.patience else "epochs"
        self.state = dataclasses.replace(self.state, stop_reason=stop_reason)
        save_checkpoint(self.run_dir / runs.CHECKPOINT_NAME, self.state)
        best = self.state.best
        if best is None:
            # A resumed run whose --epochs equals the epochs of a checkpoint saved before any
            # evaluation: the final network stands in for the best.
            best = self.state.net
            self.save_model(best, self.model_info(self.state.epoch, None))
        elif self.best_written != self.state.best_epoch:
            self.save_best()
        test = self.splits.test
        test_error = float(best.evaluate(test.images, test.labels, scale=self.splits.scale))
        report = self.write_report("finished", test_error)
        return TrainResult(self.state, test_error, self.compile_seconds, self.run_dir, report)
