"""The model file: what :meth:`jitnet.Network.save` writes and :meth:`~jitnet.Network.load` reads.

A model file is one uncompressed ``.npz`` (written atomically) of plain arrays:

* ``format`` ("jitnet-model"), ``format_version`` (2, 3 or 4), ``dtype`` ("float64" or "float32"),
  ``activation``, ``loss``, ``init``, ``output_activation``: 0-d texts and integers;
* ``sizes``: the layer sizes (L + 1,), inputs first;
* ``W{l}`` (n_out, n_in) and ``b{l}`` (n_out,) for each layer ``l``, in ``dtype``;
* ``input_scale`` (version 3): the factor the network's inputs are multiplied by when a call
  passes no ``scale`` (:attr:`jitnet.Network.input_scale`; 1.0 for a raw-pixel model);
* ``input_mean``, ``input_std`` (version 4, both or neither): (n_in,) float64, the
  :attr:`jitnet.Network.standardization` applied to raw inputs;
* ``class_names`` (version 4): (n_out,) texts, :attr:`jitnet.Network.class_names`;
* ``preprocessing`` (version 5): a text (``deslant+width:16``) and ``preprocessing_shape``, the
  images' (rows, cols): the :attr:`jitnet.Network.preprocessing` applied to raw images.

A network without any of these is written as version 2, which every jitnet since the recipes
reads; one with an input scale only as version 3, one with a standardization or class names as
version 4 and one that preprocesses images as version 5, so that an older jitnet refuses it
instead of feeding it wrongly scaled or unprocessed inputs.
Version 1 (no ``loss``, ``init``, ``output_activation``) still loads with its meaning then:
squared error, the tutorial's initial weights and the activation on every layer. A training
run's model file also holds ``jitnet_train_info``, JSON bytes saying how it was trained (and, for
data other than IDX files, what the data was: ``data``); its ``input_scale``, when the arrays
carry none, is the network's.

A checkpoint (:mod:`jitnet.training.checkpoint`) holds its current network as such arrays under
``net/``, and a JSON description under ``meta`` whose ``config`` says whether the run trained on
raw pixels (``raw_pixels``: input scale 1.0; otherwise None) and whose ``data`` whether it
trained on float features (``input_scale`` 1.0). :func:`load` reads just that; the
strict check of the whole training state is the checkpoint reader's.

Reading checks everything before it allocates: the archive's directory and every array's
header against the file (:mod:`jitnet.io.npzfile`: no array may claim more bytes than the file
holds for it), then the small entries (format, version, names, sizes) and each layer's declared
shape and type against the sizes, so that the network the sizes describe is backed by arrays in
the file; only then is it built and its parameters read, one layer at a time. Any problem raises
:class:`ModelFileError`, one line naming the file.
"""

import numbers
import os

import numpy as np

from jitnet.engine.checks import check_positive
from jitnet.engine.preprocess import run_preprocessing, stored_preprocessing
from jitnet.io.atomic import atomic_save_npz
from jitnet.io.npzarrays import ArchiveArrays, json_object
from jitnet.io.npzfile import NpzArchive

FORMAT = "jitnet-model"
FORMAT_VERSION = 5  # 3 adds input_scale, 4 the standardization and class names, 5 the
VERSIONS = (1, 2, 3, 4, 5)  # preprocessing (see above)
TRAIN_INFO_KEY = "jitnet_train_info"
CHECKPOINT_KEY = "meta"  # a checkpoint's JSON description
CHECKPOINT_FORMAT = "jitnet-checkpoint"
CHECKPOINT_VERSION = 2
CHECKPOINT_NET = "net/"  # the prefix of a checkpoint's current network
#: Largest checkpoint description read (about 300,000 epoch records; parsing stays under 1 GB).
MAX_META_BYTES = 1 << 26
MAX_LAYERS = 1000
_MAX_TEXT = 256  # characters of a name entry
_MAX_INFO_BYTES = 1 << 20  # a run's description is about 1 KB of JSON


class ModelFileError(ValueError):
    """A model or checkpoint file that cannot be used; the message names the file."""


# -- writing ----------------------------------------------------------------------------------


def model_arrays(net):
    """The model file's content for ``net``: a dict of arrays, copies of the parameters."""
    scale, standard, names = net.input_scale, net.standardization, net.class_names
    version = 4 if standard is not None or names is not None else 2 if scale is None else 3
    if net.preprocessing is not None:
        version = 5
    arrays = {
        "format": np.array(FORMAT),
        "format_version": np.array(version),
        "sizes": np.asarray(net.sizes, np.int64),
        "activation": np.array(net.activation),
        "loss": np.array(net.loss),
        "init": np.array(net.init),
        "output_activation": np.array(net.output_activation),
        "dtype": np.array(net.dtype.name),
    }
    if scale is not None:
        arrays["input_scale"] = np.array(scale, np.float64)
    if standard is not None:
        arrays["input_mean"], arrays["input_std"] = standard.mean.copy(), standard.std.copy()
    if names is not None:
        arrays["class_names"] = np.array(names, dtype=str)
    if net.preprocessing is not None:
        arrays["preprocessing"] = np.array(str(net.preprocessing))
        arrays["preprocessing_shape"] = np.asarray(net.preprocessing.image_shape, np.int64)
    for l, (W, b) in enumerate(zip(net.weights, net.biases)):
        arrays[f"W{l}"] = np.array(W, order="C")  # copies, never views of params
        arrays[f"b{l}"] = b.copy()
    return arrays


def save(net, path):
    """Write ``net`` to ``path`` atomically (stored, uncompressed: :func:`load` reads any size)."""
    atomic_save_npz(path, model_arrays(net))


# -- reading ----------------------------------------------------------------------------------


def load(cls, path):
    """A ``cls`` network from a model file, a checkpoint (its current network) or a run folder
    (its ``model.npz``), with the input scale it was trained with; ModelFileError otherwise."""
    path = os.fspath(path)
    if isinstance(path, str) and "\0" not in path and os.path.isdir(path):
        path = os.path.join(path, "model.npz")
    with NpzArchive(path, ModelFileError) as archive:
        arrays = ArchiveArrays(archive)
        if CHECKPOINT_KEY in arrays:
            return _checkpoint_network(cls, arrays)
        return read_model(cls, arrays, archive.where)[0]


def _checkpoint_network(cls, arrays):
    """A checkpoint's current network, with the input scale its run trained with."""

    def fail(problem):
        raise ModelFileError(f"{arrays.where}: {problem}")

    try:
        meta = json_object(arrays, CHECKPOINT_KEY, MAX_META_BYTES)
    except ValueError as error:
        fail(f"its description {error}")
    if meta.get("format") != CHECKPOINT_FORMAT:
        fail("not a jitnet training checkpoint")
    if meta.get("version") != CHECKPOINT_VERSION:
        fail(f"checkpoint format version {_short(meta.get('version'))}; this jitnet reads "
             f"version {CHECKPOINT_VERSION}")
    config, data = meta.get("config"), meta.get("data")
    raw_pixels = config.get("raw_pixels", False) if isinstance(config, dict) else None
    if not isinstance(raw_pixels, bool):
        fail("its configuration does not say how inputs are scaled (raw_pixels)")
    scale = 1.0 if raw_pixels else None
    if isinstance(data, dict) and data.get("input_scale") == 1.0:
        scale = 1.0  # float features, used as they are
    net = read_model(cls, arrays.prefixed(CHECKPOINT_NET), f"{arrays.where} (network)")[0]
    if net.input_scale not in (None, scale):
        fail(f"its network's input scale {net.input_scale:g} is not its configuration's "
             f"({'1/255' if scale is None else scale})")
    net.input_scale = scale
    shape = config.get("image_shape") or (data.get("image_shape") if isinstance(data, dict)
                                          else None)
    try:  # a run that trained on preprocessed images: its network takes raw ones
        net.preprocessing = run_preprocessing(config.get("preprocess", "none"), shape,
                                              net.n_inputs)
    except (TypeError, ValueError) as error:
        fail(f"its configuration's preprocessing cannot be applied ({error})")
    return net


def network_from_arrays(cls, arrays, source):
    """A ``cls`` network from :func:`model_arrays` output in memory; ModelFileError names
    ``source``. See :func:`read_model`."""
    return read_model(cls, arrays, source)[0]


def read_model(cls, arrays, source):
    """Check and read a model from ``arrays``, then build it.

    Parameters
    ----------
    cls : type
        `jitnet.Network` (or a subclass).
    arrays : mapping of str to array
        A dict (:func:`model_arrays` output), or :class:`ArchiveArrays` whose arrays are read
        only once their headers have passed every check.
    source : str
        Names the file in messages: ``"SOURCE: problem"``.

    Returns
    -------
    net : cls
    info : dict
        The run's description from ``jitnet_train_info``; empty when there is none.
    """

    def fail(problem):
        raise ModelFileError(f"{source}: {problem}")

    version, dtype, recipe = _recipe(arrays, fail)
    sizes = _sizes(arrays, fail)
    scale = _stored_scale(arrays, dtype, fail) if version >= 3 else None
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        _check_layer(arrays, l, n_in, n_out, fail)
    extras = _inputs_and_classes(arrays, sizes, fail) if version >= 4 else {}
    if version >= 5:
        extras.update(_preprocessing(arrays, fail))
    info = _train_info(arrays, dtype, fail)
    try:
        net = cls._unfilled(sizes, recipe["activation"], dtype, recipe["loss"], recipe["init"])
    except ValueError as error:
        fail(f"invalid model configuration ({error})")
    if recipe["output_activation"] not in (None, net.output_activation):
        fail(f"invalid model configuration (output activation {recipe['output_activation']!r}; "
             f"activation {recipe['activation']!r} with loss {recipe['loss']!r} has "
             f"{net.output_activation!r})")
    for l in range(len(sizes) - 1):  # one layer at a time: at most one layer's copy in memory
        for target, key in ((net.weights[l], f"W{l}"), (net.biases[l], f"b{l}")):
            with np.errstate(over="ignore", invalid="ignore"):
                target[...] = arrays[key]
            if not np.isfinite(target).all():
                fail(f"parameters do not fit the model (layer {l}: weights must be finite in "
                     f"{dtype} (no NaN, inf or values that overflow it))")
    info_scale = info.get("input_scale")
    if scale is not None and info_scale is not None and scale != float(info_scale):
        fail(f"input scale {scale!r}, but its training description says {info_scale!r}")
    net.input_scale = scale if scale is not None else info_scale
    try:
        for name, value in extras.items():
            setattr(net, name, value)
    except ValueError as error:
        fail(f"invalid model configuration ({error})")
    return net, info


def _describe(arrays, key, fail):
    """(shape, dtype) of an entry, from its header when it has not been read; KeyError if none."""
    if hasattr(arrays, "describe"):
        return arrays.describe(key)
    try:
        array = np.asarray(arrays[key])
    except (TypeError, ValueError) as error:
        fail(f"entry {key!r} is not an array ({error})")
    return array.shape, array.dtype


def _scalar(arrays, key, kinds, fail, missing=None):
    """A 0-d entry of one of the dtype ``kinds`` ("U" texts up to _MAX_TEXT characters)."""
    try:
        shape, dtype = _describe(arrays, key, fail)
    except KeyError:
        fail(missing or f"not a complete jitnet model (missing {key!r})")
    too_long = dtype.kind == "U" and dtype.itemsize > 4 * _MAX_TEXT
    if shape != () or dtype.kind not in kinds or too_long:
        fail(missing or f"not a valid jitnet model ({key!r} is a {dtype} array of shape {shape}, "
                        f"not one {'text' if kinds == 'U' else 'number'})")
    value = np.asarray(arrays[key])[()]
    return str(value) if kinds == "U" else value


def _recipe(arrays, fail):
    """(version, dtype, recipe) from the small entries."""
    not_ours = f"not a jitnet model (no 'format' entry saying {FORMAT})"
    if _scalar(arrays, "format", "U", fail, missing=not_ours) != FORMAT:
        fail(not_ours)
    version = int(_scalar(arrays, "format_version", "iu", fail))
    if version not in VERSIONS:
        fail(f"model format version {version}, this jitnet reads 1 to {FORMAT_VERSION}")
    dtype = _scalar(arrays, "dtype", "U", fail)
    if dtype not in ("float64", "float32"):
        fail(f"invalid model configuration (dtype must be 'float64' or 'float32', got {dtype!r})")
    recipe = {"activation": _scalar(arrays, "activation", "U", fail)}
    # Version 1 knew only the tutorial's squared error and initial weights, with the activation
    # (sigmoid or tanh) on every layer: what version 2 derives from them.
    if version == 1:
        if recipe["activation"] not in ("sigmoid", "tanh"):
            fail(f"invalid model configuration (activation {recipe['activation']!r} in a "
                 "version 1 file)")
        recipe.update(loss="squared", init="tutorial", output_activation=None)
    else:
        for key in ("loss", "init", "output_activation"):
            recipe[key] = _scalar(arrays, key, "U", fail)
    return version, dtype, recipe


def _sizes(arrays, fail):
    """The layer sizes, checked as a header first (a few integers), then as values."""
    try:
        shape, dtype = _describe(arrays, "sizes", fail)
    except KeyError:
        fail("not a complete jitnet model (missing 'sizes')")
    if len(shape) != 1 or not 2 <= shape[0] <= MAX_LAYERS + 1 or dtype.kind not in "iu":
        fail(f"invalid model configuration ('sizes' is a {dtype} array of shape {shape}, not "
             f"2 to {MAX_LAYERS + 1} integers)")
    sizes = [int(n) for n in np.asarray(arrays["sizes"])]
    if min(sizes) < 1:
        fail(f"invalid model configuration (layer sizes must be positive integers, got "
             f"{_shown(sizes)})")
    return sizes


def _shown(sizes):
    """Layer sizes for a message: ``784-300-10``, shortened when long."""
    text = "-".join(map(str, sizes[:8])) + ("-..." if len(sizes) > 8 else "")
    return text if len(text) <= 80 else text[:77] + "..."


def _stored_scale(arrays, dtype, fail):
    """The ``input_scale`` entry (version 3): None when absent, else a positive finite float."""
    if "input_scale" not in arrays:
        return None
    value = _scalar(arrays, "input_scale", "fiu", fail).item()
    try:
        check_positive("input_scale", value, dtype)  # in the network's dtype; kept as stored
        return float(value)
    except (ValueError, OverflowError) as error:
        fail(f"invalid model configuration ({error})")


def _inputs_and_classes(arrays, sizes, fail):
    """The version 4 entries, each checked from its header before it is read:
    {"standardization": (mean, std), "class_names": tuple} for those present."""
    extras = {}
    present = [key for key in ("input_mean", "input_std") if key in arrays]
    if len(present) == 1:
        fail(f"not a complete jitnet model ({present[0]!r} without its partner)")
    if present:
        for key in present:
            shape, dtype = _describe(arrays, key, fail)
            if shape != (sizes[0],) or dtype.kind not in "fiu":
                fail(f"invalid model configuration ({key!r} is a {dtype} array of shape "
                     f"{shape}, not {sizes[0]} numbers)")
        extras["standardization"] = (np.asarray(arrays["input_mean"]),
                                     np.asarray(arrays["input_std"]))
    if "class_names" in arrays:
        shape, dtype = _describe(arrays, "class_names", fail)
        if shape != (sizes[-1],) or dtype.kind != "U" or dtype.itemsize > 4 * _MAX_TEXT:
            fail(f"invalid model configuration ('class_names' is a {dtype} array of shape "
                 f"{shape}, not {sizes[-1]} texts)")
        extras["class_names"] = tuple(str(name) for name in np.asarray(arrays["class_names"]))
    return extras


def _preprocessing(arrays, fail):
    """The version 5 entries: {"preprocessing": Preprocessing} when present."""
    if "preprocessing" not in arrays and "preprocessing_shape" not in arrays:
        return {}
    text = _scalar(arrays, "preprocessing", "U", fail)
    try:
        shape, dtype = _describe(arrays, "preprocessing_shape", fail)
    except KeyError:
        fail("not a complete jitnet model ('preprocessing' without 'preprocessing_shape')")
    if shape != (2,) or dtype.kind not in "iu":
        fail(f"invalid model configuration ('preprocessing_shape' is a {dtype} array of shape "
             f"{shape}, not 2 integers)")
    try:
        return {"preprocessing": stored_preprocessing(text, arrays["preprocessing_shape"])}
    except ValueError as error:
        fail(f"invalid model configuration ({error})")


def _check_layer(arrays, l, n_in, n_out, fail):
    """Layer ``l``'s W and b are declared as real numbers of the shapes the sizes give."""
    for key, shape in ((f"W{l}", (n_out, n_in)), (f"b{l}", (n_out,))):
        try:
            got, dtype = _describe(arrays, key, fail)
        except KeyError:
            fail(f"not a complete jitnet model (missing layer {l} parameters)")
        if got != shape:
            fail(f"parameters do not fit the model (layer {l}: {key[0]} must have shape "
                 f"{shape}, got {got})")
        if dtype.kind not in "fiu":
            fail(f"parameters do not fit the model (layer {l}: {key} holds {dtype}, not real "
                 "numbers)")


def _train_info(arrays, dtype, fail):
    """The ``jitnet_train_info`` JSON object ({} when absent), its ``input_scale`` checked."""
    if TRAIN_INFO_KEY not in arrays:
        return {}
    what = "its training description (jitnet_train_info)"
    try:
        info = json_object(arrays, TRAIN_INFO_KEY, _MAX_INFO_BYTES)
    except ValueError as error:
        fail(f"{what} {error}")
    scale = info.get("input_scale")
    if scale is not None:
        try:
            if not isinstance(scale, numbers.Real):
                raise ValueError
            check_positive("input_scale", scale, dtype)
        except (ValueError, OverflowError):
            fail(f"{what} has input_scale {_short(scale)}, not a positive number")
    if not isinstance(info.get("config", {}), dict):
        fail(f"{what} has a config that is not a JSON object")
    return info


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
