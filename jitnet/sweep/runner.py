"""Run a sweep's trials on Dask distributed: a LocalCluster by default, any cluster by address.

Every trial is one ``client.submit(run_trial, options, folder, pure=False, retries=2, key=...)``;
``as_completed`` collects them. A task that raises is retried twice (``retries``). When a worker
dies mid-trial, the scheduler runs the trial again on another worker (up to
``distributed.scheduler.allowed-failures`` times; a nanny restarts the dead one), and the trial
continues from its last checkpoint. Dask is imported only here and only when a sweep runs.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from jitnet.sweep.results import finish, sort_records
from jitnet.sweep.trial import (
    SweepError,
    blank_result,
    read_result,
    run_trial,
    trial_dtypes,
    trial_key,
    warm_up,
)

#: A space larger than this needs ``yes=True`` (``--yes``).
MAX_TRIALS = 100
#: How long to wait for a scheduler given by address before saying it cannot be reached.
CONNECT_TIMEOUT = "5s"
INSTALL_HINT = 'the sweep runs on Dask distributed: pip install "jitnet[sweep]"'


class SweepInterrupted(Exception):
    """Ctrl-C during a sweep, after its futures were cancelled and its cluster closed.

    Attributes
    ----------
    out_dir : pathlib.Path
    done, total : int
        Trials done (finished or failed, this run and before) and trials in the sweep.
    """

    def __init__(self, out_dir, done, total, noun="trials"):
        super().__init__(
            f"interrupted with {done} of {total} {noun} done; run the same command with the "
            f"same output folder ({out_dir}) to continue: done {noun} are skipped, unfinished "
            f"ones resume from their checkpoints"
        )
        self.out_dir, self.done, self.total = Path(out_dir), done, total


@dataclass
class SweepProgress:
    """Where a sweep stands; passed to the reporter after every change.

    ``eta_seconds`` is None until a trial of this run has finished.
    """

    total: int
    done: int
    running: int
    failed: int
    skipped: int
    best_val_error: float | None
    elapsed_seconds: float
    eta_seconds: float | None


class SweepReporter:
    """Receives what a sweep has to say; the default one says nothing.

    :func:`run_sweep` calls only these three methods, so any object that has them will do.
    """

    def message(self, text):
        """A diagnostic line (cluster started, trials skipped, kernels ready, ...)."""

    def progress(self, progress):
        """Counts after the trials were submitted (a :class:`SweepProgress`)."""

    def trial_done(self, record, progress):
        """One trial finished or failed: its result record and the new counts."""


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise SweepError(INSTALL_HINT) from None
    return distributed


def _local_workers():
    """One worker per core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _connect(distributed, scheduler, workers, reporter):
    """A Client and the LocalCluster it owns (None for a cluster given by address)."""
    if scheduler is not None:
        if workers is not None:
            raise SweepError("--workers sizes a local cluster; with --scheduler the cluster "
                             "has the workers it has")
        _, _, port = scheduler.rpartition("://")[2].rpartition(":")
        if not port.isdigit():  # distributed itself trips an internal assertion on some of these
            raise SweepError(f"--scheduler {scheduler}: not a scheduler address, e.g. "
                             f"tcp://HOST:8786 (no port number)")
        try:
            client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
        except OSError as exc:  # TimeoutError and ConnectionRefusedError are OSErrors
            raise SweepError(
                f"--scheduler {scheduler}: cannot connect ({' '.join(str(exc).split())})"
            ) from None
        except (ValueError, TypeError) as exc:
            raise SweepError(
                f"--scheduler {scheduler}: not a scheduler address, e.g. tcp://HOST:8786 "
                f"({' '.join(str(exc).split())})"
            ) from None
        reporter.message(f"connected to {scheduler}: {len(client.nthreads())} workers")
        return client, None
    n = workers or _local_workers()
    # One single-threaded process per worker: a trial is one core's per-sample SGD, and
    # separate processes keep Numba's and numpy's threads off each other.
    cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.ERROR,
                                       preload=["jitnet.sweep._worker"])
    try:
        client = distributed.Client(cluster)
    except BaseException:
        cluster.close()
        raise
    reporter.message(f"local Dask cluster: {n} single-thread worker process"
                     + ("es" if n != 1 else ""))
    return client, cluster


def plan(space, out_dir, random=None):
    """The sweep's distinct trials: a list of ``(key, options, folder)``.

    Raises
    ------
    SweepError
        An empty space or a trial ``train`` would refuse (checked before any cluster starts).
    """
    out_dir = Path(out_dir).absolute()
    jobs, seen = [], set()
    for options in space.trials(random):
        key = trial_key(options)
        if key not in seen:
            seen.add(key)
            jobs.append((key, options, out_dir / "trials" / key))
    return jobs


def _count_threads(client):
    try:
        return sum(client.nthreads().values())
    except Exception:  # a scheduler lost mid-sweep: progress is only an estimate anyway
        return 0


def execute(client, jobs, function, reporter, records=None, total=None):
    """Submit ``function(options, folder)`` for each job and collect the results as they come.

    Parameters
    ----------
    client : distributed.Client
    jobs : list of (key, options, folder)
    function : callable
        :func:`run_trial`, or a stand-in (``bench/sweep.py`` times the path with a trivial one).
    reporter : SweepReporter
    records : list of dict, optional
        Records of trials done before this run (they count as done and for the best error); the
        new records are appended to it as they arrive, so a caller interrupted midway has them.
    total : int, optional
        Trials in the sweep; default ``len(jobs) + len(records)``.

    Returns
    -------
    list of dict
        ``records``, extended by one record per job in completion order.
    """
    import distributed

    records = [] if records is None else records
    skipped = len(records)
    total = len(jobs) + skipped if total is None else total
    token = uuid.uuid4().hex[:8]  # a scheduler shared by several sweeps keeps their tasks apart
    futures = {}
    try:
        for job in jobs:
            key, options, folder = job
            futures[client.submit(function, options, str(folder), pure=False, retries=2,
                                  key=f"trial-{key}-{token}")] = job
        start = time.perf_counter()

        def progress():
            finished = [r["val_error"] for r in records
                        if r["status"] == "finished" and r["val_error"] is not None]
            elapsed = time.perf_counter() - start
            pending, ran = total - len(records), len(records) - skipped
            return SweepProgress(
                total=total, done=len(records), running=min(pending, _count_threads(client)),
                failed=sum(r["status"] != "finished" for r in records), skipped=skipped,
                best_val_error=min(finished, default=None), elapsed_seconds=elapsed,
                eta_seconds=pending * elapsed / ran if ran else None,
            )

        reporter.progress(progress())
        for future in distributed.as_completed(list(futures)):
            key, options, folder = futures[future]
            if future.status == "finished":
                record = future.result()
            else:  # an exception after the retries, a worker lost too often, a cancelled task
                exc = future.exception() if future.status == "error" else None
                error = f"{type(exc).__name__}: {exc}" if exc is not None else future.status
                record = blank_result(options, folder, "error", " ".join(error.split()))
            records.append(record)
            reporter.trial_done(record, progress())
    except BaseException:
        # Ctrl-C, or a reporter that raised: the tasks not yet run are dropped. (Tasks already
        # running finish on their workers unless the cluster is closed, as a local one is.)
        client.cancel(list(futures))
        raise
    return records


def run_sweep(space, out_dir, scheduler=None, workers=None, random=None, yes=False,
              reporter=None, max_trials=MAX_TRIALS):
    """Run every trial of ``space`` on Dask and write the results to ``out_dir``.

    Parameters
    ----------
    space : Space
        From :func:`parse_space`.
    out_dir : str or os.PathLike
        The sweep's folder: ``trials/<key>/`` per trial, ``results.{csv,json,md}``, the plot. On
        a cluster given by address, every worker must see it at the same path (a shared
        filesystem).
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); None starts a LocalCluster.
    workers : int, optional
        Worker processes of the LocalCluster (default: one per core).
    random : int, optional
        Draw this many configurations instead of the grid (default: ``space.random``).
    yes : bool
        Run a space of more than ``max_trials`` trials.
    reporter : SweepReporter, optional
    max_trials : int

    Returns
    -------
    SweepResult

    Raises
    ------
    SweepError
        Dask missing, a bad space, too many trials without ``yes``, an unreachable scheduler,
        workers that cannot run jitnet; all before any trial runs.
    SweepInterrupted
        On Ctrl-C, after cancelling the futures and closing the client (and the local cluster);
        the results done so far are written.
    """
    reporter = reporter or SweepReporter()
    _import_distributed()  # Dask missing: said before anything else
    out_dir = Path(out_dir).absolute()
    jobs = plan(space, out_dir, random)
    if not jobs:
        raise SweepError("the search space is empty")
    if len(jobs) < space.size(random):
        reporter.message(f"{space.size(random)} trials in the space, {len(jobs)} distinct "
                         f"(the same options twice are one trial)")
    if len(jobs) > max_trials and not yes:
        raise SweepError(f"the search space has {len(jobs)} trials (more than {max_trials}): "
                         f"pass --yes to run them all, or narrow it")
    params = space.swept(random)

    def interrupted(records):
        finish(out_dir, sort_records(records), params, reporter)

    records, skipped = run_jobs(jobs, out_dir, scheduler, workers, reporter,
                                on_interrupt=interrupted)
    return finish(out_dir, sort_records(records), params, reporter,
                  ran=len(records) - skipped, skipped=skipped)


def run_jobs(jobs, out_dir, scheduler=None, workers=None, reporter=None, on_interrupt=None,
             noun="trials"):
    """Run the jobs whose folders hold no result yet, on Dask; the sweep's and the committee's
    common part.

    Parameters
    ----------
    jobs : list of (key, options, folder)
        From :func:`plan`, or a committee's members.
    out_dir : pathlib.Path
        Created if missing.
    scheduler, workers, reporter
        As for :func:`run_sweep`.
    on_interrupt : callable, optional
        Called with the records so far on Ctrl-C, before SweepInterrupted is raised.
    noun : str
        What a job is, for the interrupt's message (``trials``, ``members``).

    Returns
    -------
    records : list of dict
        The results found done (first), then those of this run in completion order.
    skipped : int
        How many were found done.
    """
    reporter = reporter or SweepReporter()
    distributed = _import_distributed()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SweepError(f"--out {out_dir}: cannot create it ({exc.strerror or exc})") from None
    done = [r for r in (read_result(folder, key) for key, _, folder in jobs) if r is not None]
    done_keys = {r["key"] for r in done}
    todo = [job for job in jobs if job[0] not in done_keys]
    if done:
        reporter.message(f"{len(done)} of {len(jobs)} {noun} already done in {out_dir}: skipped")
    records = list(done)
    try:
        if todo:
            _run(distributed, todo, records, len(jobs), scheduler, workers, reporter)
    except KeyboardInterrupt:
        if on_interrupt is not None:
            on_interrupt(records)
        raise SweepInterrupted(out_dir, len(records), len(jobs), noun) from None
    return records, len(done)


def _run(distributed, todo, records, total, scheduler, workers, reporter):
    client, cluster = _connect(distributed, scheduler, workers, reporter)
    try:
        if not client.nthreads():
            reporter.message("the cluster has no workers yet: the trials wait for them")
        dtypes = trial_dtypes([options for _, options, _ in todo])
        # Compile once, on one worker: the kernels land in Numba's on-disk cache beside their
        # source, from which every other worker of that installation then loads them.
        try:
            seconds = client.submit(warm_up, dtypes, pure=False).result()
        except Exception as exc:
            raise SweepError(f"the Dask workers cannot run jitnet: {type(exc).__name__}: "
                             f"{' '.join(str(exc).split())}") from None
        reporter.message(f"kernels for {', '.join(dtypes)} ready in {seconds:.1f} s "
                         f"(compiled or loaded from Numba's cache)")
        execute(client, todo, run_trial, reporter, records=records, total=total)
    except KeyboardInterrupt:
        # A local worker in the middle of a trial stops when the cluster closes (after up to 4 s);
        # its checkpoint holds its last completed epoch. A remote worker cannot be stopped
        # from here: it finishes the trial it has and keeps the result.
        reporter.message("interrupted: cancelling the trials and closing the local cluster"
                         if cluster is not None else
                         "interrupted: trials not started are cancelled; those already running "
                         "on the cluster finish there and keep their results")
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
