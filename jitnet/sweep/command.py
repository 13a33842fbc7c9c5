"""The ``sweep`` command: a thin translation of options into :func:`jitnet.sweep.run_sweep`.

Added to the command line's group with ``cli.add_command(sweep_command)``. Progress goes to
stderr, the results table and the best trial's command to stdout. Errors a user can cause end in
one line and exit code 2; Ctrl-C in exit code 130 with the command that continues the sweep.
"""

import os
import shlex
import sys
from pathlib import Path

import click

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _SweepUsageError(click.ClickException):
    exit_code = EXIT_USAGE


def _duration(seconds):
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def progress_line(progress):
    """``trials 5/12  running 2  failed 1  best val error 3.21%  ETA 1 min 20 s``."""
    line = f"trials {progress.done}/{progress.total}  running {progress.running}"
    line += f"  failed {progress.failed}"
    if progress.best_val_error is not None:
        line += f"  best val error {100 * progress.best_val_error:.2f}%"
    if progress.eta_seconds is not None and progress.done < progress.total:
        line += f"  ETA {_duration(progress.eta_seconds)}"
    return line


class _StderrReporter:
    """One line on stderr per diagnostic and per trial done (naming its swept options)."""

    def __init__(self, params):
        self.params = params

    def message(self, text):
        click.echo(text, err=True)

    def progress(self, progress):
        click.echo(progress_line(progress), err=True)

    def trial_done(self, record, progress):
        from jitnet.sweep.results import format_value

        options = record["options"]
        what = " ".join(f"{name}={format_value(options.get(name))}" for name in self.params)
        if record["status"] == "finished" and record["val_error"] is not None:
            outcome = f"val error {100 * record['val_error']:.2f}%"
        elif record["status"] == "finished":
            outcome = "finished (no evaluation)"
        else:
            outcome = f"{record['status']}: {record['error']}"
        click.echo(f"{progress_line(progress)}  | {what or record['key']}: {outcome}", err=True)


def _program():
    """How this command line was started: ``python cli.py``, ``jitnet`` or ``python -m ...``."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if argv0.endswith("__main__.py"):
        return "python -m jitnet"
    if argv0.endswith(".py"):
        return f"python {argv0}"
    return os.path.basename(argv0) or "jitnet"


def _train_options(args):
    """``['--rate', '0.1,0.3', '--raw-pixels']`` -> ``{'rate': ['0.1,0.3'], 'raw-pixels':
    [None]}``: each ``--name`` with its value(s), a repeated one collected in a list."""
    options = {}
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--") or token == "--":
            raise _SweepUsageError(
                f"unexpected argument {token!r}: give train options as --name VALUES"
            )
        name, has_value, value = token[2:].partition("=")
        if not has_value:
            value = None
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                value = args[i + 1]
                i += 1
        options.setdefault(name, []).append(value)
        i += 1
    return options


@click.command(
    "sweep",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                      "help_option_names": ["-h", "--help"]},
)
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, show_default="none",
              help="TOML file of the space (options given here replace its keys).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="sweep",
              show_default=True, help="Sweep folder: a folder per trial and the results tables.")
@click.option("--seeds", type=click.IntRange(min=1), default=None, show_default="1",
              help="Run every configuration with seeds 0..N-1.")
@click.option("--random", "random_trials", type=click.IntRange(min=1), default=None,
              show_default="grid", help="Draw N configurations (ranges LOW:HIGH allowed).")
@click.option("--random-seed", type=click.IntRange(min=0), default=None, show_default="0",
              help="Seed of the --random draws: the same seed draws the same trials.")
@click.option("--scheduler", default=None, show_default="a local cluster",
              help="Address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786.")
@click.option("--workers", type=click.IntRange(min=1), default=None, show_default="one per core",
              help="Worker processes of the local cluster.")
@click.option("--yes", is_flag=True, default=False, show_default=True,
              help="Run a space of more than 100 trials.")
@click.pass_context
def sweep_command(ctx, config_path, out, seeds, random_trials, random_seed, scheduler, workers,
                  yes):
    """Train many configurations on Dask and rank them by validation error.

    Any train option (but --output, --report and the run folder's --runs-dir, --name, --resume,
    --force, --quiet) takes a comma-separated list: --hidden 100,300,500x150 (x joins the layers
    of one network) --rate 0.1,0.3,1 --seeds 3 runs 27 trials. With --random N, ranges LOW:HIGH are drawn from (log-uniformly
    for --rate and --hidden): --rate 0.01:1 --hidden 16:512. Every trial has its own folder
    under --out with its checkpoint, best model and report; rerunning the same command skips
    done trials and resumes unfinished ones. A local cluster runs one single-thread worker
    process per core; --scheduler uses a running Dask cluster.
    """
    from jitnet.sweep import SweepError, SweepInterrupted, format_table, parse_space, run_sweep

    options = _train_options(ctx.args)
    if seeds is not None:
        options["seeds"] = str(seeds)
    if random_seed is not None:
        options["random_seed"] = str(random_seed)
    try:
        space = parse_space(options, config_path)
        reporter = _StderrReporter(space.swept(random_trials))
        result = run_sweep(space, out, scheduler=scheduler, workers=workers,
                           random=random_trials, yes=yes, reporter=reporter)
    except SweepError as exc:
        raise _SweepUsageError(" ".join(str(exc).split())) from None
    except SweepInterrupted as stop:
        click.echo(f"\n{stop}", err=True)
        command = shlex.join(sys.argv[1:]) if len(sys.argv) > 1 else "sweep ..."
        click.echo(f"continue with: {_program()} {command}", err=True)
        ctx.exit(EXIT_INTERRUPTED)

    click.echo(format_table(result))
    click.echo(f"\n{result.ran} trials run, {result.skipped} skipped (done before), "
               f"{len(result.failed)} failed")
    for what, path in result.files.items():
        click.echo(f"{what:<9} {path}")
    if result.best is not None:
        click.echo(f"best model {Path(result.best['folder']) / 'model.npz'}")
        click.echo(f"best alone: {result.best_command.replace('python cli.py', _program(), 1)}")
    else:
        ctx.exit(1)
