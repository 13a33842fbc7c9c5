"""``jitnet train``: options in, :mod:`jitnet.training` calls, lines out.

Every option but ``--resume``, ``--name``, ``--runs-dir``, ``--force`` and ``--quiet`` is a field
of :class:`jitnet.training.TrainConfig` with the same name; click checks the values, the library
trusts them. The options given on the command line go to
:meth:`jitnet.training.TrainConfig.from_options`, which resolves ``--recipe`` (given options win)
exactly as a sweep's trials and library calls do; click's defaults are the configuration's.
"""

import contextlib
import os
import shlex
import shutil
import signal
import sys
import threading
from pathlib import Path

import click

from jitnet.cli.main import (
    ACTIVATIONS, LOSSES, SHIPPED, CliError, IntListType, NameChoice, PositiveFloat,
    check_new_file,
)
from jitnet.training.checks import MAX_EPOCHS
from jitnet.training.recipes import RECIPES

RUN_OPTIONS = ("resume", "name", "runs_dir", "force", "quiet")


def _run_name(ctx, param, value):
    if value is not None and (value in ("", ".", "..") or "/" in value or os.sep in value
                              or "\x00" in value):
        raise click.BadParameter(f"{value!r} is not a folder name", ctx, param)
    return value


def _command_prefix():
    """How this process was started, as a command that works when pasted into a shell."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if getattr(sys.modules.get("__main__"), "__spec__", None) is not None:
        return [sys.executable, "-m", "jitnet"]  # python -m jitnet (or a test runner)
    if os.path.basename(argv0) in ("jitnet", "jitnet.exe"):  # the console script
        found = shutil.which("jitnet")
        same = found is not None and os.path.exists(argv0) and os.path.samefile(found, argv0)
        return ["jitnet" if same else argv0]
    if argv0.endswith(".py"):  # python cli.py, with whichever python ran it
        return [sys.executable, argv0]
    return [sys.executable, "-m", "jitnet"]


def resume_command(run_dir):
    """The shell command that resumes ``run_dir``, quoted."""
    return shlex.join([*_command_prefix(), "train", "--resume", str(run_dir)])


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (what ``kill`` and batch schedulers send) becomes a KeyboardInterrupt, so that it
    saves the run like Ctrl-C. Yields the list of signals received."""
    received = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum, frame):
        received.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


class InitName(click.ParamType):
    """An initialisation: tutorial, glorot, lecun, he or uniform:A (A > 0)."""

    name = "tutorial|glorot|lecun|he|uniform:A"

    def convert(self, value, param, ctx):
        from jitnet.engine.components import check_init

        try:
            return check_init(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class ImageShape(click.ParamType):
    """ROWSxCOLS: the shape of one image, e.g. 28x28."""

    name = "ROWSxCOLS"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        parts = str(value).lower().replace("×", "x").split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
            self.fail(f"{value!r} is not ROWSxCOLS of positive integers (e.g. 28x28)", param,
                      ctx)
        return tuple(int(p) for p in parts)


def _remove_if_empty(folder):
    try:
        folder.rmdir()
    except OSError:  # not empty (or already gone): the run's files stay
        pass


def _config_value(name, value):
    """A click value as a TrainConfig field: paths become strings, and the paths a run keeps
    (--data, --output, --report) absolute, so that a run resumed elsewhere finds them."""
    if value is None:
        return None
    if name in ("data", "test_data"):
        return str(Path(value).resolve())
    if name in ("output", "report"):
        return os.path.abspath(value)
    return value


def _preprocess_spec(ctx, param, value):
    from jitnet.training.config import preprocess_spec

    try:
        return preprocess_spec(value.strip().lower())
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not {exc}") from None


@click.command()
@click.option("--hidden", type=IntListType(what="hidden sizes"), default="300", show_default=True,
              help="Hidden layer sizes; a comma-separated list gives several layers "
                   "(e.g. 500,150).")
@click.option("--rate", type=PositiveFloat(), default=0.3, show_default=True,
              help="Learning rate (the tutorial's eta), a positive number.")
@click.option("--epochs", type=click.IntRange(1, MAX_EPOCHS), default=40, show_default=True,
              help="The most epochs to run; the stopping rule may end training earlier "
                   "(with --resume, a larger value extends the run).")
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
@click.option("--validation", type=click.IntRange(min=0), default=None,
              show_default="10000 for IDX data, a sixth of the training set for other data",
              help="Hold out the last N training samples for the stopping rule; 0 stops on the "
                   "test error, as the tutorial did.")
@click.option("--raw-pixels", is_flag=True, default=False, show_default=True,
              help="Feed raw 0-255 pixels like the tutorial instead of scaling them to [0, 1] "
                   "(this saturates the sigmoids).")
@click.option("--train-limit", type=click.IntRange(min=1), default=None, show_default="all",
              help="Use only the first N training samples (before the hold-out), for quick runs "
                   "and tests.")
@click.option("--test-limit", type=click.IntRange(min=1), default=None, show_default="all",
              help="Use only the first N test samples, for quick runs and tests.")
@click.option("--data", type=click.Path(exists=True, path_type=Path), default=None,
              show_default=SHIPPED,
              help="The data: a folder in MNIST's four-file IDX layout, a Keras-style .npz "
                   "(x_train, y_train[, x_test, y_test]) or a .csv/.tsv/.parquet table.")
@click.option("--label", default=None,
              show_default="a column named label, target, class or y, else the last",
              help="A table's label column: its name, or its index from 0.")
@click.option("--test-data", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, show_default="none",
              help="A separate test file of the same kind, for data without a test set.")
@click.option("--test-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=None, show_default="0.2 for data without a test set",
              help="Hold out this share of each class as the test set (stratified, drawn from "
                   "--seed), for data without a test set.")
@click.option("--standardize", is_flag=True, default=False, show_default=True,
              help="Standardise every feature by the training samples' mean and standard "
                   "deviation; the model keeps them and takes raw inputs.")
@click.option("--image-shape", type=ImageShape(), default=None,
              show_default="from the data (IDX files, (N, rows, cols) arrays)",
              help="Declare the samples to be ROWSxCOLS images (distortions, pictures of "
                   "mistakes).")
@click.option("--recipe", type=click.Choice(list(RECIPES)), default=None, show_default="none",
              help="Start from a published experiment's options (jitnet/training/recipes.py); "
                   "options given here override it.")
@click.option("--activation", type=NameChoice(ACTIVATIONS), default="sigmoid",
              show_default=True, help="Non-linearity of the hidden units.")
@click.option("--loss", type=NameChoice(LOSSES), default="squared", show_default=True,
              help="Squared error with 0.9/0.1 targets (the tutorial's), or softmax outputs with "
                   "cross-entropy.")
@click.option("--init", type=InitName(), default="tutorial", show_default=True,
              help="Initial weights: the tutorial's uniform(-0.1, 0.1), glorot, lecun, he, or "
                   "uniform:A for uniform(-A, A).")
@click.option("--schedule", type=click.Choice(["constant", "exponential", "step"]),
              default="constant", show_default=True,
              help="Learning rate per epoch: constant, rate*decay^epoch, or rate*decay^(epoch // "
                   "step-every).")
@click.option("--decay", type=click.FloatRange(0, 1, min_open=True), default=0.95,
              show_default=True, help="Factor of the exponential or step schedule, in (0, 1].")
@click.option("--step-every", type=click.IntRange(min=1), default=10, show_default=True,
              help="Epochs per step of the step schedule.")
@click.option("--momentum", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              show_default=True,
              help="Classical momentum in [0, 1) (v = momentum*v + rate*delta*x; w += v); 0 is "
                   "plain SGD.")
@click.option("--distort", type=click.Choice(["none", "elastic", "affine", "both"]),
              default="none", show_default=True,
              help="Distort every training image afresh each epoch: elastic (Simard et al. 2003), "
                   "affine, or both; evaluation never is.")
@click.option("--elastic-sigma", type=click.FloatRange(min=0), default=4.0, show_default=True,
              help="Width in pixels of the Gaussian that smooths the elastic displacement field "
                   "(Simard et al.: 4).")
@click.option("--elastic-alpha", type=click.FloatRange(min=0), default=34.0, show_default=True,
              help="Scale in pixels of the elastic displacement field (Simard et al.: 34).")
@click.option("--rotate", type=click.FloatRange(0, 180), default=15.0, show_default=True,
              help="Affine part: rotation by up to ± this many degrees (Cireșan et al. 2010: "
                   "15).")
@click.option("--scale", type=click.FloatRange(0, 1, max_open=True), default=0.15,
              show_default=True,
              help="Affine part: width and height scaled by up to ± this fraction (Cireșan et "
                   "al.: 0.15).")
@click.option("--shear", type=click.FloatRange(0, 90, max_open=True), default=15.0,
              show_default=True,
              help="Affine part: horizontal shear by up to ± this many degrees (Cireșan et al.: "
                   "15).")
@click.option("--translate", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Affine part: shift by up to ± this many pixels along each axis.")
@click.option("--preprocess", default="none", show_default=True, metavar="SPEC",
              callback=_preprocess_spec,
              help="Preprocess every image before training and in the model: deslant, width:W "
                   "(every digit stretched to W columns) or deslant+width:W (Meier et al. "
                   "2011).")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="Threads sharing every sample's work (any recipe, --momentum and --distort "
                   "included); N gives bitwise the same weights on every run.")
@click.option("--checkpoint-every", type=click.IntRange(min=0), default=10, show_default=True,
              help="Save a checkpoint every this many epochs (0: only at the end and when "
                   "stopped).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              show_default="none",
              help="Also save the best model to this file (never replacing one without --force).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              show_default="none",
              help="Also write the JSON report to this file (never replacing one without "
                   "--force).")
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default="runs",
              show_default=True, help="Folder that holds the run folders.")
@click.option("--name", callback=_run_name, default=None, show_default="date and time",
              help="Name of the new run folder in --runs-dir; refused if it exists.")
@click.option("--resume", type=click.Path(exists=True, path_type=Path), default=None,
              show_default=True,
              help="Continue the run in this run folder (or checkpoint file); only --epochs "
                   "(not below the epochs it completed), --eval-every, --patience, --data, "
                   "--test-data, --checkpoint-every, --output and --report may differ from the "
                   "saved run (the data files must be unchanged).")
@click.option("--force", is_flag=True, default=False, show_default=True,
              help="Let --output and --report replace existing files.")
@click.option("--quiet", is_flag=True, default=False, show_default=True,
              help="Print only the summary: no progress, diagnostics or evaluation lines.")
@click.pass_context
def train(ctx, **options):
    """Train on MNIST the way the tutorial did, keep the best model, report its test error.

    Defaults reproduce the tutorial's 784-300-10 sigmoid network (rate 0.3, targets 0.9/0.1,
    weights uniform(-0.1, 0.1)) with two differences: pixels are scaled to [0, 1] (--raw-pixels
    restores the tutorial's raw pixels) and samples are shuffled every epoch (--no-shuffle).
    Every --eval-every epochs the error on the held-out --validation samples is printed; training
    stops when it has risen --patience times in a row, or after --epochs. Each run writes a new
    folder in --runs-dir: config.json, log.jsonl (one line per epoch), checkpoint.npz, model.npz
    (the best model) and report.json. Ctrl-C or SIGTERM saves a checkpoint that --resume
    continues exactly.

    --recipe starts from a published experiment's options (tutorial, lecun1998, simard2003,
    simard2003-plain, ciresan2010, meier2011: one member of a committee; see
    jitnet/training/recipes.py); options given with it win.
    --activation, --loss, --init, --schedule, --momentum and --distort change the method one
    choice at a time.

    --data also takes your own data: a Keras-style .npz or a .csv/.tsv/.parquet table (pip
    install "jitnet[tables]") with one label column (--label) of any kind: the class names go
    into the model. Without a test set of its own, --test-fraction of each class is held out
    (or --test-data names a test file); --standardize for features of any range.
    """
    from jitnet import training
    from jitnet.cli.console import ConsoleReporter
    from jitnet.io.errors import DataError, MissingDependencyError
    from jitnet.training.data import check_config

    run = {name: options.pop(name) for name in RUN_OPTIONS}
    given = {name: _config_value(name, value) for name, value in options.items()
             if ctx.get_parameter_source(name) in (click.core.ParameterSource.COMMANDLINE,
                                                   click.core.ParameterSource.ENVIRONMENT)}
    for option in ("output", "report"):
        check_new_file(f"--{option}", options[option] if option in given else None, run["force"])
    if run["resume"] is not None:
        for option in ("name", "runs_dir"):
            if ctx.get_parameter_source(option) == click.core.ParameterSource.COMMANDLINE:
                raise CliError(f"--{option.replace('_', '-')} names a new run folder; "
                               f"--resume continues the run in its own folder")
    with _sigterm_as_interrupt() as signals:
        try:
            if run["resume"] is not None:
                run_dir = training.locate_checkpoint(run["resume"])[1]
                reporter = ConsoleReporter(quiet=run["quiet"], pictures=run_dir)
                result = training.resume_training(run["resume"], given, reporter=reporter)
                test = training.load_splits(result.state.config).test
            else:
                config = training.TrainConfig.from_options(**given)
                splits = training.load_splits(config)  # data errors before any folder exists
                check_config(config, splits)
                run_dir = training.create_run_dir(run["runs_dir"], run["name"])
                reporter = ConsoleReporter(quiet=run["quiet"], pictures=run_dir)
                try:
                    result = training.run_training(config, run_dir, splits=splits,
                                                   reporter=reporter)
                except BaseException:
                    _remove_if_empty(run_dir)  # refused or stopped before it wrote anything
                    raise
                test = splits.test
            reporter.final_pictures(result, test)  # confusion matrix and mistakes of the test set
        except training.TrainingInterrupted as stop:
            signum = signals[0] if signals else signal.SIGINT
            what = "terminated" if signum == signal.SIGTERM else "interrupted"
            click.echo(f"\n{what}: saved the state after epoch {stop.epoch} in {stop.run_dir}",
                       err=True)
            click.echo(f"resume with: {resume_command(stop.run_dir)}", err=True)
            ctx.exit(128 + signum)
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            ctx.exit(128 + (signals[0] if signals else signal.SIGINT))
        except (training.TrainingError, DataError, MissingDependencyError) as exc:
            raise CliError(str(exc)) from None
        except BrokenPipeError:
            raise  # the reader of stdout went away: the group ends quietly
        except OSError as exc:  # a file of the run could not be written (disk full, ...)
            where = f" {exc.filename}" if exc.filename else ""
            raise CliError(f"cannot write{where}: {exc.strerror or exc}") from None
    _print_summary(result)



def _print_summary(result):
    state = result.state
    config = state.config
    stopping = config.stopping_set
    if result.stop_reason == "patience" and config.patience == 1:
        why = f"the {stopping} error rose (patience 1, the tutorial's rule)"
    elif result.stop_reason == "patience":
        why = f"the {stopping} error stayed above its best for {config.patience} evaluations"
    else:
        why = f"the epoch limit ({config.epochs})"
    click.echo(f"stopped after epoch {state.epoch}: {why}")
    if state.best_epoch is None:  # resumed and stopped before any evaluation
        best = f"no evaluation yet, final network after epoch {state.epoch}"
    elif stopping == "test":  # the stopping error is the test error: say it once
        best = f"best epoch {state.best_epoch}"
    else:
        best = f"best epoch {state.best_epoch}  val error {100 * state.best_error:.2f}%"
    n_test = state.data["n_test"]
    images = (state.data.get("source") or {}).get("image_shape", True)
    click.echo(f"{best}  test error {100 * result.test_error:.2f}% on {n_test:,} "
               f"{'images' if images else 'samples'}")
    report = result.report
    if report["seconds_per_epoch"] is not None:
        click.echo(
            f"{report['seconds_per_epoch']:.2f} s per epoch  "
            f"{report['samples_per_second']:,.0f} samples/s  "
            f"compile {result.compile_seconds:.2f} s  total {state.elapsed_seconds:.1f} s"
        )
    click.echo(f"run folder  {result.run_dir}")
    for label, path in (("model", config.output), ("report", config.report)):
        if path:
            click.echo(f"{label + ' copy':<11} {path}")
