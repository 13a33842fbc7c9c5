"""Command-line pieces shared by the benchmark scripts: a list-of-sizes type, ``--out``, progress
lines, and running a click command so that every error ends in one line."""

import click

from harness import BenchError

EXIT_INTERRUPTED = 130


class IntList(click.ParamType):
    """A comma-separated list of positive integers, e.g. ``784,300,10``."""

    name = "N[,N...]"

    def __init__(self, min_items=1, what="sizes"):
        self.min_items = min_items
        self.what = what

    def convert(self, value, param, ctx):
        if isinstance(value, (tuple, list)):
            return tuple(value)
        try:
            items = tuple(int(part) for part in str(value).split(","))
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of positive integers", param, ctx)
        if len(items) < self.min_items or min(items) < 1:
            self.fail(f"expected at least {self.min_items} positive {self.what}, "
                      f"comma-separated, got {value!r}", param, ctx)
        return items


out_dir_option = click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), default=None,
    help="Directory for the JSON and markdown results [default: bench/results].")


def log(message):
    """Progress to stderr, leaving stdout to the results."""
    click.echo(message, err=True)


def _one_line(text):
    return " ".join(str(text).split())


def run_command(command, argv, prog_name):
    """Run the click ``command`` on ``argv`` (kept in ``ctx.obj["argv"]`` for the results files).

    Returns
    -------
    int
        The command's return value (None counts as 0); 2 after a usage error or a
        :class:`~harness.BenchError`, 130 after Ctrl-C, each reported in one line on stderr.
    """
    try:
        return command.main(args=argv, prog_name=prog_name, standalone_mode=False,
                            obj={"argv": argv}) or 0
    except click.UsageError as error:
        log(f"Error: {_one_line(error.format_message())} (try {prog_name} --help)")
        return error.exit_code
    except click.ClickException as error:
        log(f"Error: {_one_line(error.format_message())}")
        return error.exit_code
    except BenchError as error:
        log(f"Error: {_one_line(error)}")
        return error.exit_code
    except OSError as error:
        # An unwritable --out or an unreadable data file: the user's to fix, not a traceback.
        log(f"Error: {_one_line(error)}")
        return 2
    except click.Abort:
        log("interrupted")
        return EXIT_INTERRUPTED
