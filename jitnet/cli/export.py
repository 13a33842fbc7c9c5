"""``jitnet export``: a saved model as an ONNX graph, for runtimes other than jitnet.

The graph is :meth:`jitnet.Network.to_onnx`'s (:mod:`jitnet.io.onnx_export`): float inputs of
0-255 pixels (or raw values, for a ``--raw-pixels`` model), the output layer's values and the
predicted class. A run folder's test error goes into the model's metadata.
"""

import json
from pathlib import Path

import click

from jitnet.cli.inspect import _load_model, _model_argument
from jitnet.cli.main import CliError, check_new_file


def _test_error(model):
    """The finished run's test error (None unless MODEL is a run folder or its model.npz)."""
    from jitnet.training import runs

    folder = model if model.is_dir() else model.parent if model.name == runs.MODEL_NAME else None
    if folder is None:
        return None
    try:
        report = json.loads((folder / runs.REPORT_NAME).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    error = report.get("test_error") if isinstance(report, dict) else None
    return error if isinstance(error, float) else None


@click.command()
@_model_argument
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, default=False, show_default=True,
              help="Replace OUT if it exists.")
def export(model, out, force):
    """Write MODEL (a run folder, a model file, a checkpoint or a committee folder) to OUT as an
    ONNX graph.

    The graph takes float pixels (N, 784) and gives the outputs ("probabilities" for softmax
    models, else "outputs") and "label" (int64); needs pip install "jitnet[onnx]".
    """
    from jitnet.io.atomic import display_path
    from jitnet.io.errors import MissingDependencyError
    from jitnet.io.onnx_export import IR_VERSION, OPSET, output_name

    check_new_file("OUT", out, force)
    net, _ = _load_model(model)
    try:
        net.to_onnx(out, metadata={"test_error": _test_error(model)})
    except MissingDependencyError as exc:
        raise CliError(str(exc)) from None
    except ValueError as exc:  # a model that preprocesses its images
        raise CliError(f"{model}: {exc}") from None
    except OSError as exc:
        raise CliError(f"cannot write {display_path(out)}: {exc.strerror or exc}") from None
    if hasattr(net, "members"):  # a committee folder: one graph averaging its members
        what = f"committee of {len(net)} ({net.describe()}), outputs averaged"
    else:
        what = f"{'-'.join(map(str, net.sizes))} {net.activation}"
    click.echo(f"wrote {display_path(out)}: {what}, {output_name(net.output_activation)} and "
               f"label, {net.dtype.name}, opset {OPSET}, IR version {IR_VERSION}")
