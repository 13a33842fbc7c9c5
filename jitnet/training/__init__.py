"""The training experiment behind ``jitnet train``: run folders, stopping rule, checkpoints,
resume. Plain functions of plain values, importable without the command line (no click)::

    from jitnet.training import TrainConfig, run_training, resume_training

    result = run_training(TrainConfig(hidden=(300,), epochs=40), "runs/tutorial")
    result = resume_training("runs/tutorial", {"epochs": 60})      # extend it later
    config = TrainConfig(recipe="simard2003-plain", epochs=5)      # a recipe, one option changed

The experiment
--------------
Each epoch visits every training sample once inside one compiled call
(:meth:`jitnet.Network.train_epoch`), in a fresh permutation drawn from one
``numpy.random.Generator`` (or in file order with ``shuffle=False``). Every ``eval_every`` epochs,
and after the last one, the network is evaluated on the validation set -- the last
``validation`` training samples, held out -- or, with ``validation=0``, on the test set as the
tutorial did. The network with the lowest validation error is the best model; its test error is
measured once at the end. Training stops after ``patience`` consecutive evaluations whose error
is higher than the best so far (``patience=1`` is the tutorial's rule), or after ``epochs``.

A recipe (:mod:`~jitnet.training.recipes`) fills the options not given:
``TrainConfig(recipe=NAME, **options)`` and ``TrainConfig.from_options(recipe=NAME, **options)``
(which the command line and the sweeps use; it also refuses options the others make
meaningless) give the same configuration as ``train --recipe NAME`` with those options, and it
holds the resolved values, so ``config.json`` says what was trained.

The data is any source :func:`jitnet.load_data` reads (MNIST's IDX files, a Keras-style ``.npz``,
a table): ``TrainConfig(data="wine.csv", label="cultivar", standardize=True)``. Data without a
test set of its own is split (``test_fraction`` of each class, the same samples for every seed); the run's
``config.json`` and checkpoints describe the data's file (path, size, sha256), and a resume
refuses a file whose content changed.

Modules: :mod:`~jitnet.training.config` (the options, recipes resolved),
:mod:`~jitnet.training.checks` (checks of values read from files), :mod:`~jitnet.training.recipes`
(the recipe book), :mod:`~jitnet.training.data` (the data's source and split, limits, hold-out,
standardization, fingerprint, the checks that need the data), :mod:`~jitnet.training.runs` (the
run folder, its files and its log),
:mod:`~jitnet.training.runlog` (a run's history read back, for pictures),
:mod:`~jitnet.training.checkpoint` (checkpoint and model files), :mod:`~jitnet.training.loop`
(the epochs), :mod:`~jitnet.training.resume` (resume, or a restart of a run killed before its
first checkpoint), :mod:`~jitnet.training.report` (reporter and report),
:mod:`~jitnet.training.errors` and :mod:`~jitnet.training.machine`.

Resume
------
A checkpoint describes the end of a completed epoch, so a run that is killed (or interrupted in
the middle of an epoch) and resumed draws the same permutations and performs the same float
operations as one that ran straight through: in float64 the final weights are bitwise equal.
Options in :data:`CHANGEABLE` may change on resume (``epochs`` to extend a run, never below the
epochs completed; ``patience`` and ``eval_every``; where data and copies go); the others define
the experiment and must stay. The data may come from another directory, but must be the same
(sizes and fingerprint). Extending a finished run continues it exactly, but the evaluation it
made after its old last epoch stays in its history, in the choice of the best model and in the
stopping count. A run folder without a checkpoint (a run killed before its first one: ``kill
-9``, a crash) has nothing to continue: resuming it starts it again from its ``config.json``.
"""

from importlib import import_module

_EXPORTS = {
    **dict.fromkeys(["TrainState", "load_checkpoint", "load_model", "save_checkpoint",
                     "save_model"], "checkpoint"),
    **dict.fromkeys(["CHANGEABLE", "TrainConfig"], "config"),
    **dict.fromkeys(["Splits", "check_config", "check_resume_data", "load_splits",
                     "prepare_data"], "data"),
    **dict.fromkeys(["CheckpointError", "RunDiverged", "TrainingError", "TrainingInterrupted",
                     "one_line"], "errors"),
    **dict.fromkeys(["TrainResult", "run_training", "stopping_update"], "loop"),
    **dict.fromkeys(["Reporter", "format_epoch", "format_evaluation"], "report"),
    **dict.fromkeys(["resume_config", "resume_training"], "resume"),
    **dict.fromkeys(["create_run_dir", "locate_checkpoint", "read_log"], "runs"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    # Lazy, like jitnet's own names: the recipes and the configuration load without Numba.
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jitnet.training' has no attribute {name!r}")
    value = getattr(import_module(f"jitnet.training.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
