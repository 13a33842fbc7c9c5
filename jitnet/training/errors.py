"""What can go wrong in a run, as exceptions the command line turns into one line each."""

from pathlib import Path


def one_line(text):
    """``text`` with every run of whitespace, newlines included, as one space."""
    return " ".join(str(text).split())


class TrainingError(ValueError):
    """A problem the user can fix (options that do not fit the data, a run folder in the way);
    the message is one line."""


class CheckpointError(TrainingError):
    """A checkpoint or model file that is missing, damaged, not jitnet's, or not for this run;
    the message is one line that names the file."""


class RunDiverged(TrainingError):
    """The loss stopped being a finite number; the last good state is saved.

    Attributes
    ----------
    epoch : int
        The epoch that diverged.
    checkpoint : pathlib.Path
        Holds the state after the last good epoch, ``epoch - 1``.
    """

    def __init__(self, epoch, reason, rate, checkpoint):
        super().__init__(
            f"training diverged in epoch {epoch} ({one_line(reason)}); the state after epoch "
            f"{epoch - 1} is kept in {checkpoint}; try a smaller --rate than {rate:g}"
        )
        self.epoch = epoch
        self.checkpoint = Path(checkpoint)


class TrainingInterrupted(Exception):
    """Raised after a KeyboardInterrupt (Ctrl-C, or a signal the caller turned into one), once
    the state of the last completed epoch is saved.

    Attributes
    ----------
    run_dir : pathlib.Path
        The run folder; ``resume_training(run_dir)`` continues the run.
    epoch : int
        The last completed epoch, the one the checkpoint describes.
    """

    def __init__(self, run_dir, epoch):
        super().__init__(f"interrupted; the state after epoch {epoch} is saved in {run_dir}")
        self.run_dir = Path(run_dir)
        self.epoch = epoch
