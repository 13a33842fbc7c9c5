"""``jitnet evaluate``, ``predict``, ``plot`` and ``compare``: saved models and runs, looked at.

Options in, library calls (:mod:`jitnet.training`, :mod:`jitnet.evaluation.metrics`,
:mod:`jitnet.data.images`, :mod:`jitnet.plots.figures`), lines or JSON out (a digit as text:
:mod:`jitnet.cli.digits`). A picture never replaces an existing file: an explicit
path (``--out``, ``--confusion-png``, ``--save-preprocessed``) is refused unless ``--force``,
and a default one gets a number (``mistakes-test-2.png``).
"""

import json
import math
from pathlib import Path

import click

from jitnet.cli.main import SHIPPED, CliError, check_new_file

_model_argument = click.argument("model", type=click.Path(exists=True, path_type=Path))
_data_option = click.option(
    "--data", type=click.Path(exists=True, path_type=Path), default=None,
    show_default=f"the run's own data for a model of an .npz or a table, else {SHIPPED}",
    help="Labelled data: a folder in MNIST's IDX layout, an .npz or a table (evaluated whole "
         "when it has no test set of its own).",
)
_split_option = click.option(
    "--split", type=click.Choice(["test", "train"]), default="test", show_default=True,
    help="Which of the dataset's two sets to use.",
)
_force_option = click.option(
    "--force", is_flag=True, default=False, show_default=True,
    help="Let the pictures named by options replace existing files.",
)
_json_option = click.option(
    "--json", "as_json", is_flag=True, default=False, show_default=True,
    help="Print the results as one JSON object, for scripts.",
)


# -- models, data and files -----------------------------------------------------------------


def _load_model(model):
    """(network, info) of a run folder, model file or checkpoint -- or (committee, info) of a
    committee folder; the network carries the input scale it was trained with. A file that
    cannot be used is one line, exit 2."""
    from jitnet import training
    from jitnet.cli.committee import load_committee

    loaded = load_committee(model)
    if loaded is not None:
        return loaded
    try:
        return training.load_model(model)
    except training.TrainingError as exc:  # CheckpointError: every problem of the file
        raise CliError(str(exc)) from None


def _load_model_and_split(model, data, split):
    from jitnet.cli.datafiles import evaluation_set
    from jitnet.io.atomic import display_path

    net, info = _load_model(model)
    dataset, where, part = evaluation_set(net, info, data, split)
    model = display_path(model)  # one line, whatever the file's name
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
    return net, info, dataset, (where, part)


def _free_path(path):
    """``path``, or ``NAME-2.png``, ``NAME-3.png``, ... beside it: the first that is free."""
    candidate, number = path, 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
        number += 1
    return candidate


def _beside(model, name):
    """A default output path: ``name`` in a run folder, or ``STEM-name`` beside a model file;
    numbered when taken."""
    if model.is_dir():
        return _free_path(model / name)
    return _free_path(model.with_name(f"{model.stem}-{name}"))


def _draw(what, *args, **kwargs):
    """A picture call whose user-facing errors (matplotlib or Pillow missing, the file cannot
    be written, nothing to draw) become one line."""
    from jitnet.plots.figures import MissingDependencyError

    try:
        return what(*args, **kwargs)
    except (MissingDependencyError, ValueError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        raise CliError(f"cannot write{where}: {exc.strerror or exc}") from None


# -- evaluate --------------------------------------------------------------------------------


@click.command()
@_model_argument
@_data_option
@_split_option
@click.option("--mistakes", type=click.IntRange(min=1), default=None, show_default="none",
              help="Also draw the N misclassified images the model was surest about as a PNG "
                   "gallery, and print its path.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              show_default="mistakes-SPLIT.png in the run folder, MODEL-mistakes-SPLIT.png "
                           "beside a model file; numbered if taken",
              help="Where --mistakes writes its gallery.")
@click.option("--confusion-png", type=click.Path(dir_okay=False, path_type=Path), default=None,
              show_default="none", help="Also draw the confusion matrix as a PNG at this path.")
@_force_option
@_json_option
@click.pass_context
def evaluate(ctx, model, data, split, mistakes, out, confusion_png, force, as_json):
    """Error rate and confusion matrix, with each class's precision and recall, of MODEL (a run
    folder, a model file, a checkpoint or a committee folder: its members' outputs averaged).

    Inputs are scaled the way the model was trained (raw pixels for a --raw-pixels model).
    """
    from jitnet.cli.committee import describe, json_fields
    from jitnet.cli.pictures import draw_test_pictures
    from jitnet.evaluation.metrics import format_confusion, precision_recall

    if out is not None and mistakes is None:
        raise click.UsageError("--out names the gallery of --mistakes N; give --mistakes", ctx)
    for option, path in (("--out", out), ("--confusion-png", confusion_png)):
        if path is not None:
            check_new_file(option, path, force)
    net, info, dataset, (where, part) = _load_model_and_split(model, data, split)
    if mistakes is not None and dataset.image_shape is None:
        raise CliError(f"--mistakes draws images; the samples of {where} are features")
    if mistakes is not None and out is None:
        out = _beside(model, f"mistakes-{split}.png")
    what = f"{model.name}: {describe(net)}, {split} set"
    matrix, predicted, _ = _draw(draw_test_pictures, net, dataset, net.input_scale,
                                 info.get("config"), confusion_png, out, what,
                                 n_mistakes=mistakes or 0)
    n, wrong = len(dataset), int((predicted != dataset.labels).sum())
    shown = min(mistakes or 0, wrong)
    names = None if net.class_names is None else list(net.class_names)
    if as_json:
        # None for NaN in JSON: a class never predicted has no precision
        precision, recall = ([float(v) if math.isfinite(v) else None for v in rates]
                             for rates in precision_recall(matrix))
        click.echo(json.dumps({
            "model": str(model), **json_fields(net), "data": where,
            "split": split if "set" in part else "all", "n_images": n, "class_names": names,
            "wrong": wrong, "error_rate": wrong / n, "confusion_matrix": matrix.tolist(),
            "precision": precision, "recall": recall,
            "mistakes_png": None if out is None else str(out), "mistakes_shown": shown,
            "confusion_png": None if confusion_png is None else str(confusion_png),
        }, indent=2))
        return
    click.echo(f"model {model}: {describe(net)}")
    click.echo(f"data  {where}, {part}, {n:,} {'images' if dataset.image_shape else 'samples'}")
    click.echo(f"error rate {100 * wrong / n:.2f}%  ({wrong:,} of {n:,} wrong)")
    click.echo()
    click.echo(format_confusion(matrix, rates=True, class_names=names))
    click.echo("recall: share of a true class found; prec(ision): share of a prediction right")
    if out is not None:
        click.echo(f"\nmistakes   {out}  (the {shown:,} most confident of {wrong:,})")
    if confusion_png is not None:
        click.echo(f"{'' if out is not None else chr(10)}confusion  {confusion_png}")


# -- predict ---------------------------------------------------------------------------------


def _digits_from_files(images, net, info):
    """``[(name, image)]`` from image files, each made MNIST-like by ``load_digit`` at the
    model's image shape."""
    from jitnet.cli.datafiles import model_image_shape
    from jitnet.data.images import ImageError, load_digit
    from jitnet.plots.figures import MissingDependencyError

    shape = model_image_shape(net, info)
    digits = []
    for path in images:
        try:
            digits.append((str(path), path.stem, load_digit(path, shape)))
        except (ImageError, MissingDependencyError) as exc:
            raise CliError(str(exc)) from None
    return digits


def _preprocessed_paths(target, stems, force, shape=(28, 28)):
    """Where ``--save-preprocessed`` writes each digit: ``target`` itself for one digit and a
    ``.png`` name, else ``STEM-RxC.png`` (``STEM-28x28.png``) files in the folder ``target``."""
    if len(stems) == 1 and target.suffix and not target.is_dir():
        if target.suffix.lower() != ".png":
            raise CliError(f"--save-preprocessed {target}: digits are written as PNG; give a "
                           ".png file or a folder")
        paths = [target]
    else:
        names = []
        for stem in stems:
            size = f"{shape[0]}x{shape[1]}"
            name, k = f"{stem}-{size}.png", 2
            while name in names:  # the same name from two folders
                name, k = f"{stem}-{k}-{size}.png", k + 1
            names.append(name)
        paths = [target / name for name in names]
    for path in paths:
        check_new_file("--save-preprocessed", path, force)
    return paths


def _scores(net, image, info):
    from jitnet.cli.pictures import score_kind
    from jitnet.data.images import probabilities

    outputs = net.predict(image.reshape(-1))  # scaled as the model was trained
    return outputs, probabilities(outputs, loss=score_kind(info.get("config")))


@click.command()
@_model_argument
@click.argument("images", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--index", type=click.IntRange(min=0), default=None, show_default="none",
              help="Instead of image files, show this image of the --split set (0-based).")
@_data_option
@_split_option
@click.option("--top", type=click.IntRange(min=1), default=None,
              show_default="3, or the model's classes if fewer",
              help="How many of the likeliest classes to list for an image file.")
@click.option("--save-preprocessed", type=click.Path(path_type=Path), default=None,
              show_default="none",
              help="Write each digit as the network sees it (a 28x28 PNG, white on black): to "
                   "this .png file for one digit, else as NAME-28x28.png in this folder.")
@click.option("--table", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, show_default="none",
              help="Instead of images, predict every row of this .csv/.tsv/.parquet table "
                   "(the model's feature columns; others, such as a label, are left aside).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              show_default="stdout", help="Where --table writes its predictions (CSV).")
@_force_option
@_json_option
def predict(model, images, index, data, split, top, save_preprocessed, table, out, force,
            as_json):
    """The class MODEL (a run folder, a model file, a checkpoint or a committee folder) sees in
    each IMAGE file, in image --index of the data set, or in each row of a --table.

    An image file (PNG, JPEG, ... or a .npy array of the model's image shape) is made to look
    like an MNIST digit first: grey, white ink on black, fitted into 20x20 pixels and centred
    by its centre of mass in 28x28 (then resized to the model's image shape). Shown are the
    digit as text art and the likeliest classes with their scores, the network's outputs
    divided by their sum (not calibrated probabilities; a cross-entropy model's softmax).
    """
    from jitnet.cli.datafiles import predict_table
    from jitnet.cli.digits import SCORES, file_block, index_block
    from jitnet.data.images import save_digit
    from jitnet.evaluation.metrics import top_k

    if table is not None:
        if images or index is not None:
            raise CliError("give --table FILE, IMAGE files or --index N: one of them")
        check_new_file("--out", out, force)
        net, info = _load_model(model)
        return predict_table(net, info, table, out, as_json, model)
    if out is not None:
        raise CliError("--out names where the predictions of --table FILE go; give --table")
    if bool(images) == (index is not None):
        raise CliError("give one or more IMAGE files, or --index N for an image of the data set"
                       if not images else "give IMAGE files or --index, not both")
    if index is not None:
        net, info, dataset, _ = _load_model_and_split(model, data, split)
        if index >= len(dataset):
            raise CliError(
                f"--index {index} is out of range: the {split} set has {len(dataset):,} images")
        if dataset.image_shape is None and save_preprocessed is not None:
            raise CliError("--save-preprocessed draws images; these samples are features")
        sample = dataset.images[index]
        digits = [(f"{split} image {index}", f"{split}-{index}",
                   sample if dataset.image_shape is None else sample.reshape(dataset.image_shape))]
    else:
        net, info = _load_model(model)
        digits = _digits_from_files(images, net, info)
    top = min(3, net.n_outputs) if top is None else top
    if top > net.n_outputs:
        raise CliError(f"--top {top} is more than the model's {net.n_outputs} classes")
    saved = [None] * len(digits)
    if save_preprocessed is not None:
        saved = _preprocessed_paths(save_preprocessed, [stem for _, stem, _ in digits], force,
                                    digits[0][2].shape)
        for (_, _, image), path in zip(digits, saved):
            _draw(save_digit, image, path)
    results, blocks = [], []
    names = [str(k) for k in range(net.n_outputs)] if net.class_names is None else \
        list(net.class_names)
    for (name, _, image), path in zip(digits, saved):
        outputs, scores = _scores(net, image, info)
        classes = [int(k) for k in top_k(scores, top)[0]]
        result = {"image": name, "predicted": int(outputs.argmax()),
                  "predicted_name": names[int(outputs.argmax())],
                  "top": [{"class": k, "score": float(scores[k]), "output": float(outputs[k])}
                          for k in classes],
                  "outputs": [float(y) for y in outputs],
                  "preprocessed": None if path is None else str(path)}
        if index is not None:
            result.update(image=None, split=split, index=index,
                          label=int(dataset.labels[index]))
            blocks.append(index_block(name, image, dataset.image_shape, result["label"],
                                      outputs, net.class_names))
        else:
            blocks.append(file_block(name, image, outputs, scores, classes, net.class_names))
        if path is not None:
            blocks[-1] += f"\nsaved       {path}"
        results.append(result)
    if as_json:
        click.echo(json.dumps({"model": str(model), "note": SCORES, "class_names": names,
                               "predictions": results}, indent=2))
    else:
        click.echo("\n\n".join(blocks))


# -- plot and compare ------------------------------------------------------------------------


def _history(run):
    from jitnet.cli.pictures import report_history

    try:
        return report_history(run)
    except ValueError as exc:
        raise CliError(str(exc)) from None


@click.command()
@click.argument("run", type=click.Path(exists=True, path_type=Path))
@click.option("--log-scale", is_flag=True, default=False, show_default=True,
              help="Logarithmic y axes (loss and error).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              show_default="learning_curve.png (learning_curve-log.png with --log-scale) "
                           "beside the log or report; numbered if taken",
              help="Where to write the PNG.")
@_force_option
def plot(run, log_scale, out, force):
    """Draw the learning curve of RUN (a run folder, its log.jsonl or a report.json): training
    loss per epoch, validation error per evaluation, the best epoch marked."""
    from jitnet.plots import figures as plots

    if out is not None:
        check_new_file("--out", out, force)
    history, title = _history(run)
    if out is None:
        folder = run if run.is_dir() else run.parent
        out = _free_path(folder / ("learning_curve-log.png" if log_scale else
                                   "learning_curve.png"))
    best = _draw(plots.learning_curve, history, out, title=title, log_scale=log_scale)
    epochs = len(history)
    click.echo(f"learning curve  {out}  ({epochs} epoch{'s' * (epochs != 1)}"
               + ("" if best is None else f", best epoch {best:g}") + ")")


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--metric", type=click.Choice(["val_error", "test_error", "loss"]),
              default="val_error", show_default=True,
              help="What to draw against the epoch (errors in %).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the PNG.")
@click.option("--log-scale", is_flag=True, default=False, show_default=True,
              help="Logarithmic y axis.")
@_force_option
def compare(runs, metric, out, log_scale, force):
    """Overlay the learning curves of several RUNS (run folders, logs or reports), one line
    each, each run's best value starred."""
    from jitnet.plots import figures as plots

    check_new_file("--out", out, force)
    loaded = [_history(run) for run in runs]  # (history, "NAME: 784-300-10, rate 0.3, ...")
    names = [(run if run.is_dir() else run.parent).name for run in runs]
    if len(set(names)) < len(names):  # same folder names in different places: say which
        loaded = [(history, str(run) + title[len(name):]) for (history, title), run, name
                  in zip(loaded, runs, names)]
    histories = [(title, history) for history, title in loaded]
    missing = [label for label, history in histories
               if not any(isinstance(r.get(metric), (int, float)) for r in history)]
    what = {"val_error": "validation error", "test_error": "test error",
            "loss": "training loss"}[metric]
    drawn = _draw(plots.compare_curves, histories, out, metric=metric, log_scale=log_scale,
                  title=f"{what} of {len(runs)} run{'s' * (len(runs) != 1)}")
    if missing:
        click.echo(f"note: no {metric} in {', '.join(missing)}", err=True)
    click.echo(f"comparison  {out}  ({drawn} of {len(runs)} runs drawn)")
