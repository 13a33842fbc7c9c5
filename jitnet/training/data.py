"""The data of a run: limits, the validation hold-out, a fingerprint that ties a checkpoint to
the data it was trained on, and the checks of a configuration that need the data."""

import zlib
from dataclasses import dataclass

import numpy as np

from jitnet.training.errors import CheckpointError, TrainingError


@dataclass
class Splits:
    """The data of one run.

    Attributes
    ----------
    train : Dataset
        Samples trained on.
    val : Dataset
        Samples the stopping rule looks at (the test set itself with ``validation=0``).
    test : Dataset
        Samples the final test error is measured on.
    info : dict
        Sizes, shapes and a fingerprint of the data, stored in checkpoints.
    """

    train: object
    val: object
    test: object
    info: dict


def _crc(crc, array):
    return zlib.crc32(memoryview(np.ascontiguousarray(array)).cast("B"), crc)


def data_fingerprint(*datasets):
    """CRC-32 of the images and labels of ``datasets``, as 8 hex digits."""
    crc = 0
    for ds in datasets:
        crc = _crc(crc, ds.images)
        crc = _crc(crc, ds.labels)
    return f"{crc:08x}"


def load_splits(config):
    """:func:`prepare_data` on ``jitnet.load_mnist(config.data)``."""
    from jitnet.data.datasets import load_mnist

    return prepare_data(config, *load_mnist(config.data))


def prepare_data(config, train, test):
    """Apply the limits and the validation hold-out of ``config`` to the loaded data.

    Parameters
    ----------
    config : TrainConfig
    train, test : Dataset
        As returned by :func:`jitnet.load_mnist`.

    Returns
    -------
    Splits

    Raises
    ------
    TrainingError
        When the hold-out leaves no training samples or the data is empty or inconsistent.
    """
    if config.train_limit is not None:
        train = train[: config.train_limit]
    if config.test_limit is not None:
        test = test[: config.test_limit]
    if len(test) == 0:
        raise TrainingError("the test set is empty")
    if config.validation >= len(train):
        limit = f" (--train-limit {config.train_limit})" if config.train_limit else ""
        raise TrainingError(
            f"--validation {config.validation} holds out every sample of the training set of "
            f"{len(train):,}{limit}; give a smaller --validation (0 stops on the test error)"
        )
    if train.images.shape[1] != test.images.shape[1]:
        raise TrainingError(
            f"training images have {train.images.shape[1]} pixels but test images "
            f"have {test.images.shape[1]}"
        )
    if config.validation:
        fit, val = train.split(config.validation)
        fingerprint = data_fingerprint(fit, val, test)
    else:
        fit, val = train, test
        fingerprint = data_fingerprint(fit, test)
    info = {
        "n_inputs": int(fit.images.shape[1]),
        "n_classes": int(max(fit.n_classes, test.n_classes)),
        "n_train": len(fit),
        "n_val": len(val) if config.validation else 0,
        "n_test": len(test),
        "fingerprint": fingerprint,
    }
    return Splits(fit, val, test, info)


def network_sizes(config, info):
    """Layer sizes ``[n_inputs, *hidden, n_classes]`` for ``config`` on data described by
    ``info`` (:attr:`Splits.info`)."""
    return [info["n_inputs"], *config.hidden, info["n_classes"]]


def check_resume_data(saved_info, splits, checkpoint_path):
    """Refuse to resume a checkpoint on data other than the data it was trained on.

    Raises
    ------
    CheckpointError
        When sizes or the fingerprint differ.
    """
    new = splits.info
    for key, what in (
        ("n_inputs", "inputs per sample"),
        ("n_classes", "classes"),
        ("n_train", "training samples"),
        ("n_val", "validation samples"),
        ("n_test", "test samples"),
    ):
        if saved_info[key] != new[key]:
            raise CheckpointError(
                f"checkpoint {checkpoint_path} was trained on data with {saved_info[key]} "
                f"{what}; this data has {new[key]}"
            )
    if saved_info["fingerprint"] != new["fingerprint"]:
        raise CheckpointError(
            f"checkpoint {checkpoint_path} was trained on different data "
            f"(fingerprint {saved_info['fingerprint']}, this data {new['fingerprint']})"
        )


def check_config(config, splits):
    """The checks of ``config`` that need the data, before any folder or network exists (data
    sets have at least 2 classes, so every loss fits).

    Raises
    ------
    TrainingError
        One line: a distortion that does not fit the images, or a thread count the network or
        this machine cannot use (the engine's :func:`jitnet.engine.parallel.check_threads`), or
        threads with momentum or distortions (the multi-threaded epoch trains plain SGD).
    """
    from jitnet.engine.parallel import check_threads

    if config.threads > 1:
        for name, used in (("momentum", config.momentum > 0),
                           ("distort", config.distort != "none")):
            if used:
                raise TrainingError(f"--threads {config.threads} trains plain SGD and cannot be "
                                    f"combined with --{name} {getattr(config, name)} "
                                    f"(use --threads 1)")
        try:
            check_threads(config.threads, network_sizes(config, splits.info))
        except ValueError as exc:
            raise TrainingError(f"--threads: {exc}") from None
    distortion = config.distortion
    rows, cols = splits.train.image_shape
    if distortion is not None and distortion.elastic_sigma > max(rows, cols):
        raise TrainingError(f"--elastic-sigma {config.elastic_sigma:g} is wider than the "
                            f"{rows}x{cols} images (at most {max(rows, cols)})")
