"""The command line: ``python cli.py COMMAND`` or ``jitnet COMMAND``.

Commands
--------
train      The tutorial's MNIST experiment, with checkpoints, resume and a JSON report.
evaluate   Error rate and confusion matrix of a saved model.
predict    One test image as text art, with the model's outputs.
gradcheck  Back-propagated gradients against central differences (tutorial Eq. 6).
bench      The speed comparison of ``bench/compare.py``; arguments are passed through.

Results go to stdout, progress and diagnostics to stderr. Errors a user can cause end in one line
``Error: ...`` and exit code 2; Ctrl-C ends any command with one line and exit code 130 (during
``train``, after saving a checkpoint). Heavy modules (numpy, numba, the engine) are imported inside
the commands, so ``--help`` is fast.
"""

import math
import os
import sys
import time
from pathlib import Path

import click
from click.exceptions import NoArgsIsHelpError

from jitnet import __version__

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
SHIPPED = "shipped MNIST"
TEXT_ART_RAMP = " .:-=+*#%@"


class CliError(click.ClickException):
    """A user-caused error: printed as one line, exit code 2."""

    exit_code = EXIT_USAGE


def _one_line(text):
    return " ".join(str(text).split())


class JitnetGroup(click.Group):
    """A click group whose errors are one line on stderr (no usage block, never a traceback)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as exc:  # no command: the help, as click itself shows it
            exc.show()
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            message = _one_line(exc.format_message())
            ctx = getattr(exc, "ctx", None)
            if isinstance(exc, click.UsageError) and ctx is not None:
                message += f" (see '{ctx.command_path} --help')"
            click.echo(f"Error: {message}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort as exc:
            if isinstance(exc.__cause__, KeyboardInterrupt):  # Ctrl-C: click printed a newline
                click.echo("interrupted", err=True)
                sys.exit(EXIT_INTERRUPTED)
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


class IntListType(click.ParamType):
    """A comma-separated list of positive integers, e.g. ``500,150``."""

    name = "N[,N...]"

    def __init__(self, min_items=1, what="sizes"):
        self.min_items = min_items
        self.what = what

    def convert(self, value, param, ctx):
        if isinstance(value, (tuple, list)):
            items = list(value)
        else:
            text = str(value).strip()
            parts = [p.strip() for p in text.split(",")]
            try:
                items = [int(p) for p in parts]
            except ValueError:
                self.fail(
                    f"{value!r} is not a comma-separated list of positive integers", param, ctx
                )
        bad = [n for n in items if n < 1]
        if bad:
            self.fail(
                f"{self.what} must be positive integers, got {bad[0]} in {value!r}", param, ctx
            )
        if len(items) < self.min_items:
            self.fail(
                f"needs at least {self.min_items} {self.what} (e.g. 8,5,3), got {value!r}",
                param, ctx,
            )
        return tuple(items)


class PositiveFloat(click.ParamType):
    """A finite float > 0."""

    name = "FLOAT"

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not (math.isfinite(number) and number > 0):
            self.fail(f"must be a positive number, got {value}", param, ctx)
        return number


def _resume_command(checkpoint):
    """How to resume: ``jitnet train --resume PATH`` for the console script, else via cli.py."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    name = os.path.basename(argv0)
    if name == "cli.py":
        prog = f"python {argv0}"
    elif name in ("jitnet", "jitnet.exe"):
        prog = "jitnet"
    else:
        prog = "python cli.py"
    return f"{prog} train --resume {checkpoint}"


def _load_data(data):
    """``jitnet.load_mnist`` with data errors turned into one-line CLI errors."""
    from jitnet.datasets import load_mnist
    from jitnet.idx import DataError

    try:
        return load_mnist(None if data is None else str(data))
    except DataError as exc:
        raise CliError(_one_line(exc)) from None
    except OSError as exc:
        raise CliError(_one_line(f"cannot read the data in {data}: {exc}")) from None


@click.group(cls=JitnetGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="jitnet")
def cli():
    """Fully connected sigmoid networks trained by per-sample SGD, compiled with Numba.

    Start with `train`: the back-propagation tutorial's MNIST experiment (784-300-10, rate 0.3,
    targets 0.9/0.1) in about a minute.
    """


# ------------------------------------------------------------------------------------------------
# train
# ------------------------------------------------------------------------------------------------


class _ClickReporter:
    """Evaluation lines on stdout; diagnostics and (on a terminal) a progress bar on stderr."""

    def __init__(self, bar=None):
        self.bar = sys.stderr.isatty() if bar is None else bar
        self._last = 0.0
        self._drawn = False

    def message(self, text):
        click.echo(text, err=True)

    def evaluation(self, line, record):
        click.echo(line)

    def epoch_progress(self, epoch, epochs, n_samples):
        if not self.bar:
            return None
        width = 30
        start = time.perf_counter()

        def progress(n_done):
            now = time.perf_counter()
            if now - self._last < 0.1 and n_done < n_samples:
                return
            self._last = now
            filled = width * n_done // max(n_samples, 1)
            rate = n_done / (now - start) if now > start else 0.0
            sys.stderr.write(
                f"\repoch {epoch}/{epochs} [{'#' * filled}{'-' * (width - filled)}] "
                f"{100 * n_done // max(n_samples, 1):3d}%  {rate:,.0f} samples/s "
            )
            sys.stderr.flush()
            self._drawn = True

        return progress

    def epoch_done(self, epoch):
        if self._drawn:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()
            self._drawn = False


@cli.command()
@click.option("--hidden", type=IntListType(what="hidden sizes"), default="300", show_default=True,
              help="Hidden layer sizes; a comma-separated list gives several layers "
                   "(e.g. 500,150).")
@click.option("--rate", type=PositiveFloat(), default=0.3, show_default=True,
              help="Learning rate (the tutorial's eta), a positive number.")
@click.option("--epochs", type=click.IntRange(min=1), default=40, show_default=True,
              help="The most epochs to run; the stopping rule may end training earlier "
                   "(with --resume, a larger value extends the run; see --resume).")
@click.option("--eval-every", type=click.IntRange(min=1), default=10, show_default=True,
              help="Evaluate every this many epochs (the tutorial's cadence is 10) and after "
                   "the last.")
@click.option("--patience", type=click.IntRange(min=1), default=1, show_default=True,
              help="Stop after this many consecutive evaluations with an error above the best so "
                   "far; 1 is the tutorial's rule (stop when the error rises).")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64",
              show_default=True, help="Precision of the weights and the arithmetic.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the initial weights, uniform(-0.1, 0.1), and of the shuffling.")
@click.option("--shuffle/--no-shuffle", default=True, show_default=True,
              help="Visit the training samples in a fresh random order every epoch "
                   "(the tutorial used file order).")
@click.option("--validation", type=click.IntRange(min=0), default=10000, show_default=True,
              help="Hold out the last N training samples for the stopping rule; 0 stops on the "
                   "test error, as the tutorial did.")
@click.option("--raw-pixels", is_flag=True, default=False, show_default=True,
              help="Feed raw 0-255 pixels like the tutorial instead of scaling them to [0, 1] "
                   "(this saturates the sigmoids).")
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, show_default=SHIPPED,
              help="Directory holding a dataset in MNIST's four-file IDX layout.")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=Path),
              default="checkpoints", show_default=True,
              help="Directory of checkpoint.npz and (unless --output) model.npz; with --resume "
                   "the resumed checkpoint's directory is the default.")
@click.option("--checkpoint-every", type=click.IntRange(min=0), default=10, show_default=True,
              help="Save a checkpoint every this many epochs (0: only at the end and on Ctrl-C).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              show_default="CHECKPOINT_DIR/model.npz",
              help="Where to save the best model (lowest validation error).")
@click.option("--resume", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, show_default=True,
              help="Continue the run saved in this checkpoint; only --epochs (not below the "
                   "epochs it completed), --eval-every, --patience, --data, --checkpoint-dir, "
                   "--checkpoint-every, --output and --report may differ from the saved run "
                   "(a finished run extended by --epochs keeps its evaluation after the old "
                   "last epoch in its history).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              show_default=True,
              help="Write a JSON report: configuration, every evaluation, test_error, timings, "
                   "machine.")
@click.option("--train-limit", type=click.IntRange(min=1), default=None, show_default="all",
              help="Use only the first N training samples (before the hold-out), for quick runs "
                   "and tests.")
@click.option("--test-limit", type=click.IntRange(min=1), default=None, show_default="all",
              help="Use only the first N test samples, for quick runs and tests.")
@click.pass_context
def train(ctx, resume, **options):
    """Train on MNIST the way the tutorial did, keep the best model, report its test error.

    Defaults reproduce the tutorial's 784-300-10 sigmoid network (rate 0.3, targets 0.9/0.1,
    weights uniform(-0.1, 0.1)) with two differences: pixels are scaled to [0, 1] (--raw-pixels
    restores the tutorial's raw pixels) and samples are shuffled every epoch (--no-shuffle).
    Every --eval-every epochs the error on the held-out --validation samples is printed; training
    stops when it has risen --patience times in a row, or after --epochs. The best model is saved
    and its test error reported. Ctrl-C saves a checkpoint that --resume continues exactly.
    """
    from jitnet import training

    # Every option but --resume is a TrainConfig field; a --resume run takes only those given
    # on the command line (see training.resume_config).
    fields = training.RESUME_FIXED + training.RESUME_OVERRIDABLE
    given = {
        name: _field_value(name, options[name])
        for name in fields
        if ctx.get_parameter_source(name)
        in (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)
    }
    try:
        if resume is not None:
            state = training.load_checkpoint(resume)
            config = training.resume_config(state, given, resume)
        else:
            state = None
            config = training.TrainConfig(
                **{name: _field_value(name, options[name]) for name in fields}
            )
        # Before the data is loaded and any training time spent: where the run will write.
        training.prepare_output(config)
        if state is None and config.checkpoint_path.exists():
            click.echo(
                f"note: {config.checkpoint_path} exists and will be replaced by this new run "
                f"(continue it instead with: {_resume_command(config.checkpoint_path)})",
                err=True,
            )
        train_set, test_set = _load_data(config.data)
        splits = training.prepare_data(config, train_set, test_set)
        if state is not None:
            training.check_resume_data(state, splits, resume)
        result = training.run_training(config, splits, resume=state, reporter=_ClickReporter())
    except training.TrainingInterrupted as stop:
        click.echo(
            f"\ninterrupted: saved the state after epoch {stop.epoch} to {stop.checkpoint}",
            err=True,
        )
        click.echo(f"resume with: {_resume_command(stop.checkpoint)}", err=True)
        ctx.exit(EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        click.echo("\ninterrupted", err=True)
        ctx.exit(EXIT_INTERRUPTED)
    except training.TrainingError as exc:
        raise CliError(_one_line(exc)) from None
    except OSError as exc:  # a file that could not be written after all (disk full, ...)
        where = f" {exc.filename}" if exc.filename else ""
        raise CliError(_one_line(f"cannot write{where}: {exc.strerror or exc}")) from None

    _print_summary(result, splits)


def _field_value(name, value):
    """A click value as a TrainConfig field: paths become strings, and the paths a checkpoint
    keeps (--data, --output, --report) absolute, so that a run resumed from another directory
    reads and writes the same files."""
    if value is None:
        return None
    if name == "data":
        return str(Path(value).resolve())
    if name in ("output", "report"):
        return os.path.abspath(value)
    if isinstance(value, Path):
        return str(value)
    return value


def _print_summary(result, splits):
    state = result.state
    config = state.config
    label = splits.label
    if result.stop_reason == "patience" and config.patience == 1:
        why = f"the {label} error rose (patience 1, the tutorial's rule)"
    elif result.stop_reason == "patience":
        why = f"the {label} error stayed above its best for {config.patience} evaluations"
    else:
        why = f"the epoch limit ({config.epochs})"
    click.echo(f"stopped after epoch {state.epoch}: {why}")
    if state.best_epoch is None:  # resumed and stopped before any evaluation
        best = f"no evaluation yet, final network after epoch {state.epoch}"
    elif splits.val_is_test:  # the stopping error is the test error: say it once
        best = f"best epoch {state.best_epoch}"
    else:
        best = f"best epoch {state.best_epoch}  {label} error {100 * state.best_error:.2f}%"
    click.echo(f"{best}  test error {100 * result.test_error:.2f}% on {len(splits.test):,} images")
    spe = result.report["seconds_per_epoch"]
    sps = result.report["samples_per_second"]
    if spe is not None:
        click.echo(
            f"{spe:.2f} s per epoch  {sps:,.0f} samples/s  "
            f"compile {result.compile_seconds:.2f} s  total {state.elapsed_seconds:.1f} s"
        )
    click.echo(f"model       {result.model_path}")
    click.echo(f"checkpoint  {result.checkpoint_path}")
    if config.report:
        click.echo(f"report      {config.report}")


# ------------------------------------------------------------------------------------------------
# evaluate and predict
# ------------------------------------------------------------------------------------------------


def _load_model_and_split(model, data, split):
    from jitnet import training

    try:
        net, info = training.load_model(model)
    except training.TrainingError as exc:
        raise CliError(_one_line(exc)) from None
    train_set, test_set = _load_data(data)
    dataset = test_set if split == "test" else train_set
    if dataset.images.shape[1] != net.n_inputs:
        raise CliError(
            f"model {model} takes {net.n_inputs} inputs but the {split} images have "
            f"{dataset.images.shape[1]} pixels"
        )
    if dataset.n_classes > net.n_outputs:
        raise CliError(
            f"model {model} has {net.n_outputs} outputs but the data has "
            f"{dataset.n_classes} classes"
        )
    return net, info, dataset


_model_argument = click.argument(
    "model", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
_data_option = click.option(
    "--data", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
    show_default=SHIPPED, help="Directory holding a dataset in MNIST's four-file IDX layout.",
)
_split_option = click.option(
    "--split", type=click.Choice(["test", "train"]), default="test", show_default=True,
    help="Which of the dataset's two sets to use.",
)


def confusion_matrix(labels, predicted, n_classes):
    """Counts of (true, predicted) pairs.

    Parameters
    ----------
    labels, predicted : ndarray of int, (N,)
    n_classes : int

    Returns
    -------
    ndarray of int64, (n_classes, n_classes)
        Rows are true labels, columns predicted ones.
    """
    import numpy as np

    matrix = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(matrix, (np.asarray(labels, np.int64), np.asarray(predicted, np.int64)), 1)
    return matrix


def format_confusion(matrix):
    """The matrix as aligned text with a header row of predicted labels and a true-label column."""
    n = matrix.shape[0]
    width = max(len(f"{int(matrix.max()):,}"), len(str(n - 1)), 3)
    lines = ["true \\ predicted"]
    lines.append("      " + " ".join(f"{j:>{width}}" for j in range(n)))
    for i in range(n):
        lines.append(f"{i:>4}  " + " ".join(f"{int(v):>{width},}" for v in matrix[i]))
    return "\n".join(lines)


@cli.command()
@_model_argument
@_data_option
@_split_option
def evaluate(model, data, split):
    """Error rate and 10x10 confusion matrix of MODEL (a model.npz or checkpoint.npz).

    Inputs are scaled the way the model was trained (raw pixels for a --raw-pixels model).
    """
    net, info, dataset = _load_model_and_split(model, data, split)
    scale = info.get("input_scale")
    predicted = net.classify(dataset.images, scale=scale)
    labels = dataset.labels
    wrong = int((predicted != labels).sum())
    n = len(dataset)
    matrix = confusion_matrix(labels, predicted, net.n_outputs)
    sizes = "-".join(str(s) for s in net.sizes)
    where = SHIPPED if data is None else str(data)
    click.echo(f"model {model}: {sizes} {net.activation} {net.dtype.name}")
    click.echo(f"data  {where}, {split} set, {n:,} images")
    click.echo(f"error rate {100 * wrong / n:.2f}%  ({wrong:,} of {n:,} wrong)")
    click.echo()
    click.echo(format_confusion(matrix))


def text_art(image, shape, ramp=TEXT_ART_RAMP):
    """An image as text: a line per pixel row, two ``ramp`` characters per pixel (dark to bright).

    Parameters
    ----------
    image : ndarray of uint8, (rows*cols,)
    shape : (int, int)
    ramp : str
        Characters from background (0) to ink (255).

    Returns
    -------
    str
        ``rows`` lines of ``2*cols`` characters.
    """
    import numpy as np

    rows, cols = shape
    levels = (np.asarray(image, np.int64).reshape(rows, cols) * len(ramp)) // 256
    return "\n".join("".join(ramp[v] * 2 for v in row).rstrip() for row in levels)


@cli.command()
@_model_argument
@click.option("--index", type=click.IntRange(min=0), required=True,
              help="Which image of the set to show (0-based).")
@_data_option
@_split_option
def predict(model, index, data, split):
    """Show one image as text art with the true label, the predicted digit and the outputs."""
    import numpy as np

    net, info, dataset = _load_model_and_split(model, data, split)
    if index >= len(dataset):
        raise CliError(
            f"--index {index} is out of range: the {split} set has {len(dataset):,} images"
        )
    image = dataset.images[index]
    outputs = net.predict(image, scale=info.get("input_scale"))
    predicted = int(np.argmax(outputs))
    true = int(dataset.labels[index])
    click.echo(f"{split} image {index} ({dataset.image_shape[0]}x{dataset.image_shape[1]})")
    click.echo(text_art(image, dataset.image_shape))
    click.echo(f"true label  {true}")
    click.echo(f"predicted   {predicted}  ({'correct' if predicted == true else 'wrong'})")
    click.echo("outputs")
    for k, y in enumerate(outputs):
        click.echo(f"  {k}  {float(y):.4f}{'  <' if k == predicted else ''}")


# ------------------------------------------------------------------------------------------------
# gradcheck and bench
# ------------------------------------------------------------------------------------------------


@cli.command()
@click.option("--sizes", type=IntListType(min_items=2, what="layer sizes"), default="8,5,3",
              show_default=True, help="Layer sizes of the random network to check, inputs first.")
@click.option("--engine", type=click.Choice(["object", "vectorized", "jit"]), default="jit",
              show_default=True, help="Which implementation's back-propagation to check.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the weights, the input and the targets.")
@click.option("--epsilon", type=PositiveFloat(), default=1e-4, show_default=True,
              help="Step of the central differences.")
@click.option("--top", type=click.IntRange(min=0), default=5, show_default=True,
              help="How many of the worst parameters to list.")
@click.pass_context
def gradcheck(ctx, sizes, engine, seed, epsilon, top):
    """Compare back-propagated gradients with central differences (tutorial Eq. 6).

    Exits with 1 when a gradient is out of tolerance.
    """
    from jitnet.gradcheck import format_report, run_gradcheck

    try:
        result = run_gradcheck(list(sizes), engine=engine, seed=seed, epsilon=epsilon)
    except ValueError as exc:
        raise CliError(_one_line(exc)) from None
    click.echo(format_report(result, top=top))
    ctx.exit(0 if result.passed else 1)


@cli.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def bench(ctx, args):
    """Speed comparison of the engines (bench/compare.py); arguments pass through, try --help."""
    try:
        from jitnet.bench import main as bench_main
    except ImportError as exc:
        raise CliError(f"the benchmark is not available: {_one_line(exc)}") from None

    ctx.exit(int(bench_main(list(args)) or 0))


def main():
    """Entry point of ``python cli.py`` and the ``jitnet`` console script."""
    cli(prog_name="cli.py" if sys.argv and sys.argv[0].endswith("cli.py") else "jitnet")


if __name__ == "__main__":
    main()
