"""``jitnet committee``: options in, :func:`jitnet.sweep.run_committee` called, its table out;
and how ``evaluate`` and ``predict`` load and describe a committee folder.

Progress goes to stderr (one line per member done), the members' table and the committee's
errors to stdout. Errors a user can cause end in one line and exit code 2; Ctrl-C in exit code
130 with the command that continues the committee; exit code 1 when a member failed.
"""

import shlex
import sys
from pathlib import Path

import click

from jitnet.cli.main import CliError

EXIT_INTERRUPTED = 130


# -- committee folders for evaluate and predict ----------------------------------------------


def load_committee(path):
    """``(committee, info)`` of a committee folder or its ``committee.json``, as
    :func:`jitnet.training.load_model` gives ``(network, info)``; None for any other path."""
    from jitnet.engine.committee import Committee, CommitteeFileError, is_committee

    if not is_committee(path):
        return None
    try:
        committee = Committee.load(path)
    except CommitteeFileError as exc:
        raise CliError(str(exc)) from None
    return committee, {"input_scale": committee.input_scale, "config": {"loss": committee.loss},
                       "committee": True}


def describe(net):
    """``784-300-10 sigmoid float64``, or ``committee of 3 (outputs averaged): 784-800-10 relu
    float32 x3``."""
    if hasattr(net, "members"):
        return f"committee of {len(net)} (outputs averaged): {net.describe()}"
    return f"{'-'.join(map(str, net.sizes))} {net.activation} {net.dtype.name}"


def json_fields(net):
    """``sizes``, ``activation`` and ``dtype`` of a network for ``--json``; for a committee the
    members' common ones (None where they differ) and a ``committee`` entry listing them."""
    if not hasattr(net, "members"):
        return {"sizes": list(net.sizes), "activation": net.activation, "dtype": net.dtype.name}

    def common(values):
        return values[0] if all(v == values[0] for v in values) else None

    members = [{"sizes": list(m.sizes), "activation": m.activation, "dtype": m.dtype.name}
               for m in net]
    return {"sizes": common([m["sizes"] for m in members]),
            "activation": common([m["activation"] for m in members]),
            "dtype": net.dtype.name, "committee": {"rule": net.rule, "members": members}}


# -- the command -----------------------------------------------------------------------------


class _Reporter:
    """One line on stderr per diagnostic and per member done."""

    def message(self, text):
        click.echo(text, err=True)

    def progress(self, progress):
        click.echo(_line(progress), err=True)

    def trial_done(self, record, progress):
        seed = record["options"].get("seed")
        if record["status"] == "finished":
            outcome = (f"val error {100 * record['val_error']:.2f}%"
                       if record["val_error"] is not None else "finished")
            if record["test_error"] is not None:
                outcome += f", test error {100 * record['test_error']:.2f}%"
        else:
            outcome = f"{record['status']}: {record['error']}"
        click.echo(f"{_line(progress)}  | member {seed + 1} (seed {seed}): {outcome}", err=True)


def _line(progress):
    from jitnet.sweep.command import progress_line

    return progress_line(progress).replace("trials", "members", 1)


@click.command(
    "committee",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                      "help_option_names": ["-h", "--help"]},
)
@click.option("--members", type=click.IntRange(1, 100), default=5, show_default=True,
              help="How many networks: K members with seeds 0..K-1.")
@click.option("--vary", multiple=True, metavar="NAME=V1,V2,...|hidden|distortion|preprocess",
              show_default="seeds only",
              help="Make the members differ by more than their seed (repeatable): the member "
                   "with seed i takes value i mod n of a list, or factor i mod 3 of the ladder "
                   "x1, x0.85, x1.15 of the hidden sizes or the distortion's strength, or "
                   "preprocessing i mod 6 of deslant, deslant+width:14, deslant+width:18, none, "
                   "deslant+width:12, deslant+width:16 (Meier et al. 2011).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="committee",
              show_default=True,
              help="Committee folder: a run folder per member, committee.json, .md and .png.")
@click.option("--scheduler", default=None, show_default="a local cluster",
              help="Address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786.")
@click.option("--workers", type=click.IntRange(min=1), default=None, show_default="one per core",
              help="Worker processes of the local cluster.")
@click.pass_context
def committee_command(ctx, members, vary, out, scheduler, workers):
    """Train a committee of networks on Dask and average their outputs (Meier et al. 2011).

    Any train option (one value each, in sweep's syntax: --hidden 500x150) is shared by the
    members, e.g. --recipe meier2011 --epochs 100; they have seeds 0..K-1. Each member is a run
    folder under --out/trials with its checkpoint, best model and report; rerunning the same
    command skips the members that are done and resumes the others (a larger --members
    reuses them). At the end the members' best models are averaged on the validation and test
    sets: committee.json (read by evaluate and predict: pass the folder as MODEL),
    committee.md and committee.png. --vary elastic-alpha=30,34,38, --vary hidden=600,800,
    --vary distortion or --vary preprocess gives the members more than their seed to differ
    by.
    """
    from jitnet.sweep import SweepError
    from jitnet.sweep.command import _program, _train_options
    from jitnet.sweep.committee import parse_options, run_committee
    from jitnet.sweep.committee_report import format_table
    from jitnet.sweep.runner import SweepInterrupted

    command = f"{_program()} {shlex.join(sys.argv[1:])}" if len(sys.argv) > 1 else None
    try:
        options = parse_options(_train_options(ctx.args))
        result = run_committee(options, out, members=members, vary=vary, scheduler=scheduler,
                               workers=workers, reporter=_Reporter(), command=command)
    except SweepError as exc:
        raise CliError(" ".join(str(exc).split())) from None
    except SweepInterrupted as stop:
        click.echo(f"\n{stop}", err=True)
        click.echo(f"continue with: {command or 'the same command'}", err=True)
        ctx.exit(EXIT_INTERRUPTED)

    click.echo(format_table(result))
    click.echo(f"\n{result.ran} members trained, {result.skipped} skipped (done before), "
               f"{len(result.failed)} failed")
    for what, path in result.files.items():
        click.echo(f"{what:<9} {path}")
    if result.files:
        click.echo(f"evaluate: {_program()} evaluate {shlex.quote(str(result.out_dir))}")
    if result.failed or not result.finished:
        ctx.exit(1)
