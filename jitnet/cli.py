"""The command line: ``python cli.py COMMAND`` or ``jitnet COMMAND``.

Commands
--------
train      The tutorial's MNIST experiment in a run folder: checkpoints, resume, log, report.
evaluate   Error rate and confusion matrix of a saved model.
predict    One test image as text art, with the model's outputs.
gradcheck  Back-propagated gradients against central differences (tutorial Eq. 6).
bench      The speed comparison of ``bench/compare.py``; arguments are passed through.

Results go to stdout, progress and diagnostics to stderr. Errors a user can cause end in one line
``Error: ...`` and exit code 2; Ctrl-C ends any command with one line and exit code 130 (``train``
saves its state first, and treats SIGTERM the same way, exit code 143). When the reader of stdout
goes away (``jitnet evaluate ... | head``) a command ends silently with exit code 141, as a tool
killed by SIGPIPE does. Heavy modules (numpy, numba, the engine) and the ``train`` command
(``jitnet/_cli_train.py``) are imported only when used, so ``--help`` is fast.
"""

import importlib
import math
import os
import signal
import sys
from pathlib import Path

import click
from click.exceptions import NoArgsIsHelpError

from jitnet import __version__

EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # what a shell reports for a tool killed by SIGPIPE
SHIPPED = "shipped MNIST"
TEXT_ART_RAMP = " .:-=+*#%@"


class CliError(click.ClickException):
    """A user-caused error: printed as one line, exit code 2."""

    exit_code = EXIT_USAGE


def _stdout_to_devnull():
    """Point stdout at /dev/null, so that flushing what is left at exit cannot fail again."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (a test runner's buffer)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


class JitnetGroup(click.Group):
    """A click group whose errors are one line on stderr (no usage block, never a traceback),
    that ends quietly when its reader goes away (``jitnet evaluate ... | head``), and that loads
    the commands named in ``LAZY`` (module, attribute) only when they are asked for."""

    LAZY = {"train": ("jitnet._cli_train", "train")}

    def list_commands(self, ctx):
        return sorted([*super().list_commands(ctx), *self.LAZY])

    def get_command(self, ctx, name):
        if name in self.LAZY:
            module, attribute = self.LAZY[name]
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, name)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _stdout_to_devnull()
            raise click.exceptions.Exit(EXIT_BROKEN_PIPE) from None

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as exc:  # no command: the help, as click itself shows it
            exc.show()
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            message = exc.format_message()
            ctx = getattr(exc, "ctx", None)
            if isinstance(exc, click.UsageError) and ctx is not None:
                message += f" (see '{ctx.command_path} --help')"
            click.echo(f"Error: {message}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort as exc:
            if isinstance(exc.__cause__, KeyboardInterrupt):  # Ctrl-C: click printed a newline
                click.echo("interrupted", err=True)
                sys.exit(128 + signal.SIGINT)
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


def _load_data(data):
    """``jitnet.load_mnist`` with data errors turned into one-line CLI errors."""
    from jitnet.datasets import load_mnist
    from jitnet.idx import DataError

    try:
        return load_mnist(None if data is None else str(data))
    except DataError as exc:
        raise CliError(str(exc)) from None


@click.group(cls=JitnetGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="jitnet")
def cli():
    """Fully connected sigmoid networks trained by per-sample SGD, compiled with Numba.

    Start with `train`: the back-propagation tutorial's MNIST experiment (784-300-10, rate 0.3,
    targets 0.9/0.1) in about a minute.
    """


# ------------------------------------------------------------------------------------------------
# evaluate and predict
# ------------------------------------------------------------------------------------------------


def _load_model_and_split(model, data, split):
    from jitnet import training

    try:
        net, info = training.load_model(model)
    except training.TrainingError as exc:
        raise CliError(str(exc)) from None
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


_model_argument = click.argument("model", type=click.Path(exists=True, path_type=Path))
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
    """Error rate and 10x10 confusion matrix of MODEL (a run folder, a model file or a
    checkpoint).

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
    """Show one image as text art with the true label, the predicted digit and the outputs of
    MODEL (a run folder, a model file or a checkpoint)."""
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
        raise CliError(str(exc)) from None
    click.echo(format_report(result, top=top))
    ctx.exit(0 if result.passed else 1)


def _bench_main():
    """``main(argv, prog_name)`` of bench/compare.py in the source tree jitnet runs from."""
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "bench" / "compare.py"
    if not script.is_file():
        raise CliError(
            "the benchmark lives in the source tree's bench/ folder, which is not installed: "
            "in a checkout of jitnet's repository run python bench/compare.py"
        )
    spec = importlib.util.spec_from_file_location("bench_compare", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as for an import: the script's dataclasses look there
    spec.loader.exec_module(module)
    return module.main


@cli.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def bench(ctx, args):
    """Speed comparison of the engines (bench/compare.py of a source checkout); try --help."""
    bench_main = _bench_main()
    ctx.exit(int(bench_main(list(args), prog_name=f"{ctx.find_root().info_name} bench") or 0))


def main():
    """Entry point of ``python cli.py`` and the ``jitnet`` console script."""
    cli(prog_name="cli.py" if sys.argv and sys.argv[0].endswith("cli.py") else "jitnet")


if __name__ == "__main__":
    main()
