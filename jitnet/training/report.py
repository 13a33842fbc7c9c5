"""What a run says while it runs (a reporter) and when it ends (the JSON report)."""

from jitnet.training.machine import machine_info
from jitnet.training.data import network_sizes


class Reporter:
    """Receives what a run has to say; this one says nothing.

    The loop calls only these methods, so any object that has them will do (the command line's
    reporter draws a progress bar and prints lines; a sweep's may log to a file). The loop itself
    never prints.
    """

    def message(self, text):
        """A diagnostic line (data, compile time, checkpoint written, ...)."""

    def epoch_start(self, epoch, epochs, n_samples):
        """Epoch ``epoch`` of ``epochs`` starts; return a callable ``progress(n_done)`` that the
        engine calls between chunks of samples, or None."""
        return None

    def epoch_end(self, record):
        """An epoch ended: its record (see :func:`jitnet.training.run_training`); it holds
        ``val_error`` or ``test_error`` when the epoch ended with an evaluation."""

    def on_evaluation(self, state):
        """After an evaluation, once the state is committed (and checkpointed when due):
        ``state.history`` holds every evaluation so far, this one last. A place to draw a
        learning curve."""


def describe_run(config, net):
    """The run's recipe in words: network, loss, rate and schedule, momentum, distortion."""
    rate = f"rate {config.rate:g}"
    if config.schedule == "exponential":
        rate += f" x{config.decay:g} per epoch"
    elif config.schedule == "step":
        rate += f" x{config.decay:g} every {config.step_every} epochs"
    parts = [f"network {'-'.join(map(str, net.sizes))} {net.activation}/{net.output_activation}"
             f" {config.loss.replace('_', '-')} {config.dtype}", f"init {config.init}", rate]
    if config.momentum:
        parts.append(f"momentum {config.momentum:g}")
    if config.distortion is not None and not config.distortion.is_identity:
        parts.append(f"distorted: {config.distortion}")
    if config.recipe:
        parts.append(f"recipe {config.recipe}")
    if config.standardize:
        parts.append("standardized inputs")
    if net.class_names is not None:
        shown = ", ".join(net.class_names[:4]) + (", ..." if len(net.class_names) > 4 else "")
        parts.append(f"classes {shown}")
    return ", ".join(parts)


def format_evaluation(record, epochs, error_key="val_error"):
    """One line per evaluation.

    Example: ``epoch 10/40  loss 0.0123  val error 1.91%  212,000 samples/s  4.8 s``.
    """
    width = len(str(epochs))
    label = error_key.replace("_", " ")
    return (
        f"epoch {record['epoch']:>{width}}/{epochs}  loss {record['loss']:.4f}  "
        f"{label} {100 * record[error_key]:.2f}%  "
        f"{record['samples_per_second']:,.0f} samples/s  {record['elapsed_seconds']:.1f} s"
    )


def format_epoch(record, epochs):
    """One line per epoch without evaluation, for logs:
    ``epoch  3/40  loss 0.0123  212,000 samples/s  1.8 s``."""
    width = len(str(epochs))
    return (
        f"epoch {record['epoch']:>{width}}/{epochs}  loss {record['loss']:.4f}  "
        f"{record['samples_per_second']:,.0f} samples/s  {record['elapsed_seconds']:.1f} s"
    )


def build_report(state, status, test_error, compile_seconds, files):
    """The JSON report of a run.

    Parameters
    ----------
    state : TrainState
    status : {"finished", "interrupted", "diverged"}
    test_error : float or None
        Test error of the best model (None unless finished).
    compile_seconds : float
    files : dict
        Paths of the run's files, by kind.
    """
    epochs_done = state.epoch
    n_train = state.data["n_train"]
    train_seconds = state.train_seconds
    return {
        "status": status,
        "config": state.config.to_dict(),
        "sizes": network_sizes(state.config, state.data),
        "output_activation": state.net.output_activation,
        "data": state.data,
        "stopping_set": state.config.stopping_set,
        "epochs_completed": epochs_done,
        "stop_reason": state.stop_reason,
        "best_epoch": state.best_epoch,
        "best_error": state.best_error,
        "test_error": test_error,
        "history": state.history,
        "epoch_losses": state.losses,
        "seconds_per_epoch": train_seconds / epochs_done if epochs_done else None,
        "samples_per_second": epochs_done * n_train / train_seconds if train_seconds else None,
        "compile_seconds": compile_seconds,
        "train_seconds": train_seconds,
        "eval_seconds": state.eval_seconds,
        "elapsed_seconds": state.elapsed_seconds,
        "files": {kind: str(path) for kind, path in files.items()},
        "machine": machine_info(),
    }
