"""The data ``evaluate`` and ``predict`` look at, for a saved model: a run's own data and test
split, another labelled file, a table of rows to predict, and the image shape a model takes.

A training run's model file describes its data (``jitnet_train_info``: the file, its label
column, feature columns, image shape and test split): without ``--data``, a model trained on
an ``.npz`` or a table is evaluated on the test set its run held out; a model trained on IDX
files (MNIST) on the shipped MNIST, as before. Labels are read as the model's classes (by their
names) and a table's features by their column names.
"""

import click

from jitnet.cli.main import CliError

DEFAULT_SHAPE = (28, 28)


def _errors():
    from jitnet.io.errors import DataError, MissingDependencyError

    return DataError, MissingDependencyError


def _names(net):
    """The model's class names; a model without names has classes named by their index."""
    if net.class_names is not None:
        return net.class_names
    return tuple(str(k) for k in range(net.n_outputs))


def evaluation_set(net, info, data, split):
    """``(dataset, where, part)``: the samples to evaluate ``net`` on, the data they come from
    (a path or "shipped MNIST") and which part of it ("test set", "all samples").

    Without ``data``: the run's own test (or training) set for a model of an ``.npz`` or a
    table, the shipped MNIST otherwise. With ``data``: that file's ``split``; a file without a
    test set of its own is evaluated whole.
    """
    from jitnet.data.loading import data_kind, read_source, split_off_test
    from jitnet.training.data import TEST_FRACTION

    source = info.get("data") or {}
    config = info.get("config") or {}
    own = data is None and source.get("format") in ("npz", "table")
    path = source.get("path") if own else (None if data is None else str(data))
    table = source.get("format") == "table"
    try:
        files = path is not None and data_kind(path) != "idx"  # IDX: labels are the classes
        loaded = read_source(
            path, label=source.get("label") if table else None,
            test_data=config.get("test_data") if own else None,
            image_shape=source.get("image_shape") if files else None, dtype=net.dtype,
            class_names=_names(net) if files else None,
            columns=source.get("features") if table else None)
        train, test = loaded.train, loaded.test
        if test is None and own:
            recorded = source.get("split") or {}  # as the run split it (older runs: by --seed)
            fraction = recorded.get("test_fraction", TEST_FRACTION)
            train, test = split_off_test(train, fraction, recorded.get("seed", 0), path)
    except _errors() as exc:
        raise CliError(str(exc)) from None
    where = "shipped MNIST" if path is None else path
    if test is None:
        return train, where, "all samples"
    return (test if split == "test" else train), where, f"{split} set"


def model_image_shape(net, info):
    """The (rows, cols) images the model takes: its run's, else 28x28; a CliError for a model
    of features, or of a size that is no image."""
    source = info.get("data") or {}
    if source.get("format") is not None and source.get("image_shape") is None:
        raise CliError("the model was trained on features, not images; predict rows with "
                       "--table FILE")
    shape = tuple(source.get("image_shape") or DEFAULT_SHAPE)
    if shape[0] * shape[1] != net.n_inputs:
        raise CliError(f"the model takes {net.n_inputs} inputs, not {shape[0]}x{shape[1]} = "
                       f"{shape[0] * shape[1]} pixels of an image")
    return shape


def predict_table(net, info, table, out, as_json, model):
    """``predict --table``: one predicted class and its score per row, in the rows' order,
    as CSV on stdout or in ``out``, or as JSON."""
    import json

    import numpy as np

    from jitnet.cli.pictures import score_kind
    from jitnet.data.images import probabilities
    from jitnet.data.tables import read_rows
    from jitnet.io.atomic import atomic_write_bytes, display_path

    source = info.get("data") or {}
    try:
        X = read_rows(table, columns=source.get("features"), n_inputs=net.n_inputs,
                      dtype=net.dtype)
    except _errors() as exc:
        raise CliError(str(exc)) from None
    if X.shape[1] != net.n_inputs:
        raise CliError(f"{display_path(table)}: {X.shape[1]} features, but the model takes "
                       f"{net.n_inputs}")
    try:
        outputs = net.predict(X)
    except ValueError as exc:
        raise CliError(f"{display_path(table)}: {exc}") from None
    kind = score_kind(info.get("config"))
    scores = probabilities(outputs, loss=kind)
    predicted = outputs.argmax(axis=1)
    names = np.array(_names(net))[predicted]
    best = scores[np.arange(len(scores)), predicted]
    column = "probability" if kind == "cross_entropy" else "score"
    if as_json:
        click.echo(json.dumps({
            "model": str(model), "table": str(table), "class_names": list(_names(net)),
            "predictions": [{"row": i, "predicted": str(name), "class": int(k), column: float(p)}
                            for i, (name, k, p) in enumerate(zip(names, predicted, best))],
        }, indent=2))
        return
    lines = [f"row,predicted,{column}"]
    lines += [f"{i},{_csv(name)},{p:.6f}" for i, (name, p) in enumerate(zip(names, best))]
    text = "\n".join(lines) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        atomic_write_bytes(out, text.encode("utf-8"))
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror or exc}") from None
    click.echo(f"predictions  {out}  ({len(names):,} rows)")


def _csv(text):
    """A CSV field: quoted when it holds a comma, a quote or a line break."""
    text = str(text)
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text
