"""The command line: ``python cli.py COMMAND`` or ``jitnet COMMAND``.

Commands
--------
train      The tutorial's MNIST experiment in a run folder: checkpoints, resume, log, report,
           pictures (:mod:`jitnet.cli.train`; its progress bar in :mod:`jitnet.cli.console`, its
           pictures in :mod:`jitnet.cli.pictures`).
evaluate   Error rate, confusion matrix, precision and recall of a saved model; pictures of
           its mistakes and confusions (:mod:`jitnet.cli.inspect`, as the next three; the digits
           ``predict`` shows as text in :mod:`jitnet.cli.digits`).
predict    The class a model sees in image files of your own, in one test image, or in every
           row of a table (``--table``; the data a model was trained on: cli.datafiles).
plot       The learning curve of a run, redrawn.
compare    The learning curves of several runs in one picture.
gradcheck  Back-propagated gradients against central differences (tutorial Eq. 6).
bench      The speed comparison of ``bench/compare.py``; arguments are passed through.
sweep      Many ``train`` runs on Dask distributed, ranked by validation error
           (:mod:`jitnet.sweep.command`; needs ``pip install "jitnet[sweep]"``).

``python -m jitnet`` is the same command line.

Results go to stdout, progress and diagnostics to stderr. Errors a user can cause end in one line
``Error: ...`` and exit code 2; Ctrl-C ends any command with one line and exit code 130 (``train``
saves its state first, and treats SIGTERM the same way, exit code 143). When the reader of stdout
goes away (``jitnet evaluate ... | head``) a command ends silently with exit code 141, as a tool
killed by SIGPIPE does. Heavy modules (numpy, numba, the engine, matplotlib) and the commands
in other modules are imported only when used, so ``--help`` is fast.
"""

import importlib
import json
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

    LAZY = {"train": ("jitnet.cli.train", "train"),
            "export": ("jitnet.cli.export", "export"),
            "sweep": ("jitnet.sweep.command", "sweep_command"),
            "committee": ("jitnet.cli.committee", "committee_command"),
            **{name: ("jitnet.cli.inspect", name)
               for name in ("evaluate", "predict", "plot", "compare")}}

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


class NameChoice(click.Choice):
    """One of the library's names, shown with '-' (``scaled-tanh``, ``cross-entropy``) and
    accepted with '-' or '_'; the value is the library's spelling (``cross_entropy``)."""

    def __init__(self, names):
        self.library = {name.replace("_", "-"): name for name in names}
        super().__init__(list(self.library))

    def convert(self, value, param, ctx):
        if isinstance(value, str):
            value = value.replace("_", "-")
        return self.library[super().convert(value, param, ctx)]


#: The engine's names (jitnet.engine.components, which loads Numba: tests check that these agree).
ACTIVATIONS = ("sigmoid", "tanh", "scaled_tanh", "relu")
LOSSES = ("squared", "cross_entropy")


def check_new_file(option, path, force):
    """An output file an option names (``--out``, ``--output``, ...): not a folder, not an
    existing file unless ``force``, and in a folder that exists or can be created. Checked
    before any work is done; None passes."""
    if path is None:
        return
    if path.is_dir():
        raise CliError(f"{option} {path} is a directory")
    if path.exists() and not force:
        raise CliError(f"{option} {path} exists; add --force to replace it")
    existing = next(p for p in (path.parent, *path.parent.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        raise CliError(f"{option} {path}: {existing} is not a directory")


@click.group(cls=JitnetGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="jitnet")
def cli():
    """Fully connected neural networks trained by per-sample SGD, compiled with Numba.

    Start with `train`: the back-propagation tutorial's MNIST experiment (784-300-10, rate 0.3,
    targets 0.9/0.1) in about a minute.
    """


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
@click.option("--activation", type=NameChoice(ACTIVATIONS), default="sigmoid",
              show_default=True, help="Hidden units' non-linearity (the jit engine only).")
@click.option("--loss", type=NameChoice(LOSSES), default="squared", show_default=True,
              help="Squared error, or softmax outputs with cross-entropy (the jit engine only).")
@click.option("--epsilon", type=PositiveFloat(), default=1e-4, show_default=True,
              help="Step of the central differences.")
@click.option("--top", type=click.IntRange(min=0), default=5, show_default=True,
              help="How many of the worst parameters to list.")
@click.option("--json", "as_json", is_flag=True, default=False, show_default=True,
              help="Print the result as one JSON object, for scripts.")
@click.pass_context
def gradcheck(ctx, sizes, engine, seed, activation, loss, epsilon, top, as_json):
    """Compare back-propagated gradients with central differences (tutorial Eq. 6).

    Exits with 1 when a gradient is out of tolerance.
    """
    from jitnet.evaluation.gradcheck import format_report, run_gradcheck

    try:
        result = run_gradcheck(list(sizes), engine=engine, seed=seed, epsilon=epsilon,
                               activation=activation, loss=loss)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if as_json:
        report = _gradcheck_json(result, sizes, engine, seed, top)
        report.update(activation=activation, loss=loss)
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(format_report(result, top=top))
    ctx.exit(0 if result.passed else 1)


def _gradcheck_json(result, sizes, engine, seed, top):
    """The gradient check as plain values; infinite or NaN errors as strings (JSON has no
    numbers for them)."""
    def number(value):
        return float(value) if math.isfinite(value) else str(value)

    worst = [{"name": e.name, "layer": e.layer, "kind": e.kind, "index": list(e.index),
              "expected": number(e.expected), "actual": number(e.actual),
              "abs_error": number(e.abs_error), "rel_error": number(e.rel_error)}
             for e in result.worst(top)]
    return {"passed": result.passed, "sizes": list(sizes), "engine": engine, "seed": seed,
            "epsilon": result.epsilon, "rtol": result.rtol, "atol": result.atol,
            "n_params": result.n_params, "n_failed": result.n_failed,
            "max_abs_error": number(result.max_abs_error),
            "max_rel_error": number(result.max_rel_error), "worst": worst}


def _bench_main():
    """``main(argv, prog_name)`` of bench/compare.py in the source tree jitnet runs from."""
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "bench" / "compare.py"
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


def main(prog_name=None):
    """Entry point of ``python cli.py``, ``python -m jitnet`` and the ``jitnet`` console script."""
    if prog_name is None:
        prog_name = "cli.py" if sys.argv and sys.argv[0].endswith("cli.py") else "jitnet"
    cli(prog_name=prog_name)


if __name__ == "__main__":
    main()
