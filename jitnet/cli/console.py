"""The command line's reporter: what ``jitnet train`` shows while it runs.

* stdout: one line per evaluation (results), unless quiet;
* stderr on a terminal: a progress bar with samples/s and the time left in the epoch and in the
  run, redrawn at most ten times a second, and diagnostics;
* stderr elsewhere (a log file, a pipe): diagnostics and one line per epoch that has no
  evaluation line, so that a log holds every epoch once.

With ``quiet`` nothing is shown; the command's summary still is. Given a run folder, the
reporter also redraws its learning curve after evaluations (:mod:`jitnet.cli.pictures`).
"""

import sys
import time

from jitnet.training.report import format_epoch, format_evaluation

REDRAW_SECONDS = 0.1
BAR_WIDTH = 24


#: Times left beyond this many hours are shown as ``>99:59:59``: a bar line of fixed width.
MAX_HOURS = 100


def _duration(seconds):
    """``0:07``, ``12:30`` or ``1:02:03``; ``>99:59:59`` for longer (or not finite)."""
    if not seconds < MAX_HOURS * 3600:  # also NaN
        return f">{MAX_HOURS - 1}:59:59"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class ConsoleReporter:
    """A :class:`jitnet.training.Reporter` for a terminal or a log.

    Parameters
    ----------
    quiet : bool
        Show nothing.
    bar : bool, optional
        Draw a progress bar; default: when stderr is a terminal.
    out, err : file, optional
        Default ``sys.stdout`` and ``sys.stderr``, looked up when writing (tests replace them).
    pictures : str or os.PathLike, optional
        The run folder: draw ``learning_curve.png`` there after evaluations and, through
        :meth:`final_pictures`, the test set's pictures at the end (see
        :mod:`jitnet.cli.pictures`).
    """

    def __init__(self, quiet=False, bar=None, out=None, err=None, pictures=None):
        from jitnet.cli.pictures import RunPictures

        self.quiet = quiet
        self.pictures = None if pictures is None else RunPictures(pictures, self.message)
        self._out, self._err = out, err
        self.bar = not quiet and (self.err.isatty() if bar is None else bar)
        self.epochs = self.n_samples = 0
        self.drawn = False
        self.samples_done = 0  # in this session, for the run's time left
        self.seconds_done = 0.0

    @property
    def out(self):
        return self._out or sys.stdout

    @property
    def err(self):
        return self._err or sys.stderr

    def _clear_bar(self):
        if self.drawn:
            self.err.write("\r\x1b[2K")
            self.err.flush()
            self.drawn = False

    def message(self, text):
        if not self.quiet:
            self._clear_bar()
            print(text, file=self.err, flush=True)

    def epoch_start(self, epoch, epochs, n_samples):
        self.epochs, self.n_samples = epochs, n_samples
        if not self.bar:
            return None
        start = time.perf_counter()
        last = [0.0]

        def progress(n_done):
            now = time.perf_counter()
            if now - last[0] >= REDRAW_SECONDS or n_done >= n_samples:
                last[0] = now
                self._draw(epoch, epochs, n_samples, n_done, now - start)

        return progress

    def _draw(self, epoch, epochs, n_samples, n_done, seconds):
        rate = n_done / seconds if seconds > 0 else 0.0
        filled = BAR_WIDTH * n_done // max(n_samples, 1)
        line = (f"\repoch {epoch}/{epochs} [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] "
                f"{100 * n_done // max(n_samples, 1):3d}%  {rate:,.0f} samples/s")
        if rate > 0:
            left = (n_samples - n_done) / rate
            # The rest of the run at the session's average speed (evaluations not counted);
            # the stopping rule may end it sooner.
            done, spent = self.samples_done + n_done, self.seconds_done + seconds
            # Epochs capped: any count of them is a long time, never an overflow.
            epochs_left = min(epochs - epoch, 10**9)
            run_left = left + epochs_left * n_samples * spent / max(done, 1)
            line += f"  epoch {_duration(left)} left, run at most {_duration(run_left)}"
        self.err.write(line + "\x1b[K")
        self.err.flush()
        self.drawn = True

    def epoch_end(self, record):
        self._clear_bar()
        self.samples_done += self.n_samples
        self.seconds_done += record["seconds"]
        if self.quiet:
            return
        error_key = next((k for k in ("val_error", "test_error") if k in record), None)
        if error_key:
            print(format_evaluation(record, self.epochs, error_key), file=self.out, flush=True)
        elif not self.bar:
            print(format_epoch(record, self.epochs), file=self.err, flush=True)

    def on_evaluation(self, state):
        """Redraw the learning curve, unless the last redraw was too recent (the first also
        imports matplotlib, 0.4-1 s)."""
        if self.pictures is not None:
            self.pictures.curve(state)

    def final_pictures(self, result, test):
        """The pictures of a finished run: learning curve with the test error, confusion
        matrix and mistakes of the best model on ``test`` (a Dataset); about 1.5 s."""
        if self.pictures is not None:
            self.pictures.final(result, test)
