"""The pictures of a run folder, drawn by ``jitnet train`` and redrawn by ``jitnet plot``.

* ``learning_curve.png``: after evaluations (training loss per epoch, validation error per
  evaluation), and once more at the end with the best model's test error added. A redraw takes
  about 0.2-0.4 s (the first also imports matplotlib, 0.4-1 s, once), so during training the
  curve is redrawn only while redraws stay within ``CURVE_BUDGET`` of the run's time: at every
  evaluation of the tutorial's run (one per 6 s or more), not at every one of
  ``--eval-every 1`` on a tiny network;
* ``confusion_matrix.png`` and ``mistakes.png`` (the 24 test images the best model got wrong
  most confidently): at the end, on the run's test set.

Plain functions of the run's state and data, no click; the drawing itself is
:mod:`jitnet.plots.figures`. Without matplotlib or Pillow :class:`RunPictures` says so once and draws
nothing, so that training never depends on them.
"""

import json
import time
from pathlib import Path

CURVE_NAME = "learning_curve.png"
CONFUSION_NAME = "confusion_matrix.png"
MISTAKES_NAME = "mistakes.png"
N_MISTAKES = 24
#: The largest share of a run's time that redrawing the learning curve may take during training.
CURVE_BUDGET = 0.10
NOTE = 'note: no pictures in the run folder; pip install "jitnet[plots]" to get them'


def with_test_error(records, best_epoch, test_error):
    """``records`` (per-epoch dicts) with the best model's ``test_error`` added to the record of
    its epoch, for the learning curve; unchanged when the records already hold test errors
    (a run that stopped on the test set) or there is no test error."""
    if test_error is None or best_epoch is None or any("test_error" in r for r in records):
        return list(records)
    return [dict(r, test_error=test_error) if r.get("epoch") == best_epoch else r
            for r in records]


def report_history(run_dir):
    """The history and title of the run in ``run_dir`` (or of a report or log file) for
    :func:`jitnet.plots.figures.learning_curve`, with the finished run's test error added.

    Raises
    ------
    ValueError
        Nothing readable there (:func:`jitnet.plots.figures.load_run`).
    """
    from jitnet.plots import figures as plots

    history, title = plots.load_run(run_dir)
    path = Path(run_dir)
    report_path = path / "report.json" if path.is_dir() else path
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return history, title  # a log without a report: a run still going, or killed
    if not isinstance(report, dict):
        return history, title
    return with_test_error(history, report.get("best_epoch"), report.get("test_error")), title


def test_scores(net, images, scale, config=None):
    """The predicted class of each image and its score (the outputs divided by their sum).

    Returns
    -------
    predicted : ndarray of int64, (N,)
    confidence : ndarray of float64, (N,)
        In [0, 1]: see :func:`jitnet.data.images.probabilities`.
    outputs : ndarray, (N, n_classes)
    """
    from jitnet.data.images import probabilities

    outputs = net.predict(images, scale=scale)
    scores = probabilities(outputs, loss=score_kind(config))
    return outputs.argmax(axis=1), scores.max(axis=1), outputs


def score_kind(config):
    """The ``loss`` argument of :func:`jitnet.data.images.probabilities` for a run's configuration:
    softmax outputs of a cross-entropy network are already a distribution."""
    loss = (config or {}).get("loss")
    return "cross_entropy" if loss == "cross_entropy" else "squared"


def draw_test_pictures(net, dataset, scale, config, confusion_path, mistakes_path, title,
                       n_mistakes=N_MISTAKES):
    """Confusion matrix and most confident mistakes of ``net`` on ``dataset``; either path may
    be None. Returns ``(matrix, predicted, confidence)``."""
    import numpy as np

    from jitnet.plots import figures as plots
    from jitnet.evaluation.metrics import confusion_matrix

    predicted, confidence, _ = test_scores(net, dataset.images, scale, config)
    matrix = confusion_matrix(dataset.labels, predicted, net.n_outputs)
    names = net.class_names
    if confusion_path is not None:
        plots.confusion_matrix_plot(matrix, confusion_path, title=title, class_names=names)
    if mistakes_path is not None and dataset.image_shape is not None:
        images = dataset.images.reshape(len(dataset), *dataset.image_shape)
        true, guess = dataset.labels, predicted
        if names is not None:  # captions by name: "true setosa -> pred virginica"
            true, guess = np.array(names)[true], np.array(names)[guess]
        plots.mistakes_gallery(images, true, guess, confidence, mistakes_path,
                               n=n_mistakes, title=title)
    return matrix, predicted, confidence


class RunPictures:
    """Draws the pictures of one run folder, as the run goes.

    Parameters
    ----------
    run_dir : str or os.PathLike
    message : callable
        Receives the one line said when matplotlib or Pillow is missing, or when a picture
        cannot be written; after either, nothing more is drawn (training goes on).
    """

    def __init__(self, run_dir, message):
        self.run_dir = Path(run_dir)
        self.message = message
        self.enabled = True
        self.last_end = None  # when the last curve was drawn, and how long it took
        self.last_seconds = 0.0

    def _draw(self, what, *args, **kwargs):
        from jitnet.plots.figures import MissingDependencyError

        if not self.enabled:
            return
        try:
            what(*args, **kwargs)
        except MissingDependencyError:
            self.enabled = False
            self.message(NOTE)
        except OSError as exc:  # disk full, folder gone: the run's own files matter more
            self.enabled = False
            where = f" {exc.filename}" if exc.filename else ""
            self.message(f"note: cannot write{where} ({exc.strerror or exc}); "
                         "no more pictures drawn")

    def title(self, state):
        from jitnet.training.data import network_sizes
        from jitnet.training.runlog import run_title

        return run_title(self.run_dir.name, state.config.to_dict(),
                         network_sizes(state.config, state.data))

    def curve(self, state, test_error=None, always=False):
        """learning_curve.png of ``state`` (a :class:`jitnet.training.TrainState`); unless
        ``always``, skipped when the last redraw was too recent for :data:`CURVE_BUDGET`."""
        from jitnet.plots import figures as plots

        start = time.perf_counter()
        first = self.last_end is None
        wait = self.last_seconds * (1 - CURVE_BUDGET) / CURVE_BUDGET
        if not (always or first) and start - self.last_end < wait:
            return
        records = with_test_error(state.records, state.best_epoch, test_error)
        self._draw(plots.learning_curve, records, self.run_dir / CURVE_NAME,
                   title=self.title(state))
        self.last_end = time.perf_counter()
        # The first drawing also imports matplotlib, once: not what a redraw costs.
        self.last_seconds = 0.0 if first else self.last_end - start

    def final(self, result, test):
        """At the end of a run: the learning curve with the test error, then the confusion
        matrix and the mistakes of the best model on the test set ``test``."""
        from jitnet.training.data import preprocessing, taking_raw_images

        state = result.state
        self.curve(state, result.test_error, always=True)
        net = state.best if state.best is not None else state.net
        # Trained on preprocessed images; ``test`` holds raw ones, as the saved model takes.
        net = taking_raw_images(net, preprocessing(state.config, test.image_shape))
        which = (f"best model (epoch {state.best_epoch})" if state.best is not None
                 else f"model after epoch {state.epoch}")
        title = f"{self.title(state)}; {which}, test set"
        # A network that knows how to take its inputs (features, standardized) is given no
        # scale; MNIST's networks take the run's (raw pixels or 1/255).
        own = net.input_scale is not None or net.standardization is not None
        self._draw(draw_test_pictures, net, test, None if own else state.config.input_scale,
                   state.config.to_dict(), self.run_dir / CONFUSION_NAME,
                   self.run_dir / MISTAKES_NAME, title)
        if test.image_shape is None and self.enabled:
            self.message(f"note: no {MISTAKES_NAME}: the samples are not images (declare "
                         "their shape with --image-shape ROWSxCOLS if they are)")
