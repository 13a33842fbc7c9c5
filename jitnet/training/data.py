"""The data of a run: its source, the test split, limits, the validation hold-out, the
standardization, a fingerprint that ties a checkpoint to the data it was trained on, and the
checks of a configuration that need the data."""

import dataclasses
import zlib
from dataclasses import dataclass

import numpy as np

from jitnet.training.errors import CheckpointError, TrainingError

#: The share of each class held out as the test set of data without one (``--test-fraction``).
TEST_FRACTION = 0.2
#: The random stream of that split: one for every run, whatever its --seed, so that runs with
#: different seeds (a sweep's, a committee's members) are tested on the same samples and never
#: train on another's test set.
SPLIT_SEED = 0
#: The tutorial's validation hold-out, the default for IDX data; other data holds out a sixth.
TUTORIAL_VALIDATION = 10000


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
        Sizes, shapes and a fingerprint of the data, stored in checkpoints; the images'
        ``image_shape`` [rows, cols] (what a preprocessing run's checkpoint needs), ``class_names``,
        the ``source`` (:func:`jitnet.data.loading.read_source`'s description), the ``split``
        of a file without a test set, and ``input_scale`` (1.0) for float features.
    standardization : jitnet.Standardization or None
        Of the training samples, with ``standardize``.
    scale : float or None
        The ``scale`` of every engine call on this data: None for uint8 pixels (1/255) and for
        a standardizing network (which takes no scale), 1.0 for raw pixels and float features.
    """

    train: object
    val: object
    test: object
    info: dict
    standardization: object = None
    scale: float = None


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
    """:func:`prepare_data` on the data ``config`` names (:func:`jitnet.data.loading.read_source`);
    DataError (one line naming the file) when it cannot be used."""
    from jitnet.data.loading import read_source

    loaded = read_source(config.data, label=config.label, test_data=config.test_data,
                         image_shape=config.image_shape, dtype=np.dtype(config.dtype))
    return prepare_data(config, loaded.train, loaded.test, source=loaded.info)


def _split(config, train, source):
    """A test set carved out of ``train`` (data without one), as ``--test-fraction`` says."""
    from jitnet.data.loading import split_off_test
    from jitnet.io.errors import DataError

    fraction = TEST_FRACTION if config.test_fraction is None else config.test_fraction
    try:
        fit, test = split_off_test(train, fraction, SPLIT_SEED, config.data)
    except DataError as exc:
        raise TrainingError(f"--test-fraction {fraction:g}: {exc}") from None
    return fit, test, {"test_fraction": fraction, "seed": SPLIT_SEED}


def prepare_data(config, train, test=None, source=None):
    """Apply the test split, the limits, the validation hold-out and the standardization of
    ``config`` to the loaded data.

    Parameters
    ----------
    config : TrainConfig
    train, test : Dataset
        As returned by :func:`jitnet.load_mnist` or :func:`jitnet.load_data`; ``test`` None
        when the data has no test set: ``config.test_fraction`` of each class is held out.
    source : dict, optional
        The description of the data's files (:func:`jitnet.data.loading.read_source`).

    Returns
    -------
    Splits

    Raises
    ------
    TrainingError
        When the hold-out leaves no training samples, the data is empty or inconsistent, or
        an option does not fit it (``test_fraction`` for data with a test set).
    """
    split = None
    if test is None:
        train, test, split = _split(config, train, source)
    elif config.test_fraction is not None:
        raise TrainingError(f"--test-fraction {config.test_fraction:g}: the data has a test set "
                            f"of its own; --test-fraction splits data without one")
    if config.train_limit is not None:
        train = train[: config.train_limit]
    if config.test_limit is not None:
        test = test[: config.test_limit]
    if len(test) == 0:
        raise TrainingError("the test set is empty")
    validation = config.validation
    if validation is None:
        idx = source is None or source.get("format") == "idx"
        validation = TUTORIAL_VALIDATION if idx else round(len(train) / 6)
    if validation >= len(train):
        limit = f" (--train-limit {config.train_limit})" if config.train_limit else ""
        raise TrainingError(
            f"--validation {validation} holds out every sample of the training set of "
            f"{len(train):,}{limit}; give a smaller --validation (0 stops on the test error)"
        )
    if train.images.shape[1] != test.images.shape[1]:
        raise TrainingError(
            f"training images have {train.images.shape[1]} pixels but test images "
            f"have {test.images.shape[1]}"
        )
    if validation:
        fit, val = train.split(validation)
        fingerprint = data_fingerprint(fit, val, test)
    else:
        fit, val = train, test
        fingerprint = data_fingerprint(fit, test)
    info = {
        "n_inputs": int(fit.images.shape[1]),
        "n_classes": int(max(fit.n_classes, test.n_classes)),
        "n_train": len(fit),
        "n_val": len(val) if validation else 0,
        "n_test": len(test),
        "fingerprint": fingerprint,
    }
    standardization, scale = None, config.input_scale
    if config.standardize:
        from jitnet.engine.standardize import Standardization

        standardization, scale = Standardization.fit(fit.images), None
    elif fit.images.dtype != np.uint8:
        info["input_scale"] = scale = 1.0  # float features are used as they are, never pixels
    if fit.image_shape is not None:
        info["image_shape"] = [int(n) for n in fit.image_shape]
    if fit.class_names is not None:
        info["class_names"] = list(fit.class_names)
    if split is not None:
        info["split"] = split
    if source is not None:
        info["source"] = source
    return Splits(fit, val, test, info, standardization, scale)


def model_data_info(info):
    """What a model file says of its data (``{"data": ...}``, or {} for data without a source
    description): the format, file, label column, feature columns, image shape and split that
    ``evaluate`` and ``predict`` need to read data as the model was trained on it."""
    source = info.get("source")
    if source is None:
        return {}
    keep = ("format", "path", "label", "features", "image_shape")
    return {"data": {**{key: source.get(key) for key in keep}, "split": info.get("split")}}


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
    saved_source, new_source = saved_info.get("source") or {}, new.get("source") or {}
    for saved, now, file in ((saved_source, new_source, "data"),
                             (saved_source.get("test_source") or {},
                              new_source.get("test_source") or {}, "test data")):
        if saved.get("sha256") and now.get("sha256") and saved["sha256"] != now["sha256"]:
            raise CheckpointError(
                f"checkpoint {checkpoint_path} was trained on {file} {saved.get('path')} of "
                f"{saved.get('bytes')} bytes (sha256 {saved['sha256'][:12]}...); "
                f"{now.get('path')} now has {now.get('bytes')} bytes (sha256 "
                f"{now['sha256'][:12]}...): the file has changed"
            )
    if saved_info["fingerprint"] != new["fingerprint"]:
        raise CheckpointError(
            f"checkpoint {checkpoint_path} was trained on different data "
            f"(fingerprint {saved_info['fingerprint']}, this data {new['fingerprint']})"
        )
    if saved_info.get("class_names") != new.get("class_names"):
        raise CheckpointError(f"checkpoint {checkpoint_path} was trained on other classes "
                              f"({_names(saved_info)}; this data: {_names(new)})")


def _names(info):
    names = info.get("class_names")
    if not names:
        return "class indices"
    return ", ".join(map(str, names[:6])) + (", ..." if len(names) > 6 else "")


def preprocessing(config, image_shape):
    """The run's :class:`jitnet.Preprocessing` (None for ``preprocess`` none)."""
    from jitnet.engine.preprocess import Preprocessing

    return Preprocessing.parse(config.preprocess, image_shape) if image_shape else None


def taking_raw_images(net, prep):
    """``net`` as a run saves and shows it: trained on preprocessed images, it takes raw ones
    (a copy carrying ``prep``); ``net`` itself when ``prep`` is None."""
    if prep is None:
        return net
    net = net.copy()
    net.preprocessing = prep
    return net


def checkpoint_preprocessing(config, n_inputs, image_shape=None):
    """The preprocessing a checkpoint's network needs to take raw images (its run trained on
    preprocessed ones); None without one. ``image_shape``: the data's (:attr:`Splits.info`),
    when ``config`` declares none."""
    from jitnet.engine.preprocess import run_preprocessing

    try:
        return run_preprocessing(config.preprocess, config.image_shape or image_shape, n_inputs)
    except ValueError as exc:
        raise CheckpointError(f"--preprocess {config.preprocess}: {exc}") from None


def preprocessed(config, splits):
    """``splits`` with every image preprocessed as ``config.preprocess`` says, once (the
    training loop trains on these; its saved models carry the preprocessing and take raw
    images); ``splits`` itself without one."""
    prep = preprocessing(config, splits.train.image_shape)
    if prep is None:
        return splits
    done = {}

    def convert(ds):
        if id(ds) not in done:  # the test set is also the stopping set with validation 0
            done[id(ds)] = type(ds)._trusted(prep.apply(ds.images), ds.labels, ds.image_shape,
                                            ds.n_classes, ds.name, ds.class_names)
        return done[id(ds)]

    return dataclasses.replace(splits, train=convert(splits.train), val=convert(splits.val),
                               test=convert(splits.test))


def check_config(config, splits):
    """The checks of ``config`` that need the data, before any folder or network exists (data
    sets have at least 2 classes, so every loss fits).

    Raises
    ------
    TrainingError
        One line: a distortion that does not fit the images, or a thread count the network or
        this machine cannot use (the engine's :func:`jitnet.engine.parallel.check_threads`).
    """
    from jitnet.engine.parallel import check_threads

    if config.threads > 1:
        try:
            check_threads(config.threads, network_sizes(config, splits.info))
        except ValueError as exc:
            raise TrainingError(f"--threads: {exc}") from None
    pixels = splits.train.images.dtype == np.uint8
    if config.raw_pixels and (config.standardize or not pixels):
        raise TrainingError("--raw-pixels feeds 0-255 pixels unscaled; " + (
            "--standardize replaces any scaling" if config.standardize else
            "this data is features, which are always used as they are"))
    if config.preprocess != "none" and splits.train.image_shape is None:
        raise TrainingError(f"--preprocess {config.preprocess} needs images; declare the "
                            "samples' shape with --image-shape ROWSxCOLS if they are images")
    if config.preprocess != "none" and config.standardize:
        raise TrainingError(f"--preprocess {config.preprocess} cannot be combined with "
                            "--standardize (it works on the images' own pixels)")
    distortion = config.distortion
    if distortion is not None and splits.train.image_shape is None:
        raise TrainingError(f"--distort {config.distort} needs images; declare the samples' "
                            "shape with --image-shape ROWSxCOLS if they are images")
    if distortion is not None and config.standardize:
        raise TrainingError(f"--distort {config.distort} cannot be combined with --standardize "
                            "(distortions move the images' own pixels)")
    rows, cols = splits.train.image_shape or (0, 0)
    if distortion is not None and distortion.elastic_sigma > max(rows, cols):
        raise TrainingError(f"--elastic-sigma {config.elastic_sigma:g} is wider than the "
                            f"{rows}x{cols} images (at most {max(rows, cols)})")
