"""The model file: what :meth:`jitnet.Network.save` writes and :meth:`~jitnet.Network.load` reads.

One ``.npz`` holding, as arrays: ``format`` ("jitnet-model"), ``format_version`` (2),
``sizes``, ``activation``, ``loss``, ``init``, ``output_activation``, ``dtype``, and per layer
``W{l}`` (n_out, n_in) and ``b{l}`` (n_out,). Version 1 (no ``loss``/``init``/
``output_activation``) still loads, with its meaning then: the squared error, the tutorial's
initial weights and the activation (sigmoid or tanh) on every layer. Any problem raises
:class:`ModelFileError` naming the file.
"""

import os
import zipfile

import numpy as np

FORMAT = "jitnet-model"
FORMAT_VERSION = 2  # 2 adds loss, init and output_activation


class ModelFileError(ValueError):
    """A model or checkpoint file that cannot be used; the message names the file."""


def model_arrays(net):
    """The model file's content for ``net``: a dict of arrays, copies of the parameters."""
    arrays = {
        "format": np.array(FORMAT),
        "format_version": np.array(FORMAT_VERSION),
        "sizes": np.asarray(net.sizes, np.int64),
        "activation": np.array(net.activation),
        "loss": np.array(net.loss),
        "init": np.array(net.init),
        "output_activation": np.array(net.output_activation),
        "dtype": np.array(net.dtype.name),
    }
    for l, (W, b) in enumerate(zip(net.weights, net.biases)):
        arrays[f"W{l}"] = np.array(W, order="C")  # copies, never views of params
        arrays[f"b{l}"] = b.copy()
    return arrays


def _header(arrays, fail):
    """(version, sizes, activation, dtype, recipe) from the arrays, or ``fail(problem)``."""
    try:
        if "format" not in arrays or str(arrays["format"][()]) != FORMAT:
            fail("not a jitnet model (no 'format' entry saying jitnet-model)")
        version = int(arrays["format_version"][()])
        if version not in (1, FORMAT_VERSION):
            fail(f"model format version {version}, this jitnet reads 1 and {FORMAT_VERSION}")
        sizes = [int(n) for n in np.asarray(arrays["sizes"]).ravel()]
        activation = str(arrays["activation"][()])
        dtype = str(arrays["dtype"][()])
        # Version 1 knew only the tutorial's squared error and initial weights, with the
        # activation (sigmoid or tanh) on every layer: what version 2 derives from them.
        recipe = {"loss": "squared", "init": "tutorial", "output_activation": None}
        if version >= 2:
            recipe = {key: str(arrays[key][()]) for key in recipe}
    except KeyError as missing:
        fail(f"not a complete jitnet model (missing {missing})")
    except (ValueError, TypeError, IndexError, OverflowError) as error:
        fail(f"not a valid jitnet model ({error})")
    if version == 1 and activation not in ("sigmoid", "tanh"):
        fail(f"invalid model configuration (activation {activation!r} in a version 1 file)")
    return sizes, activation, dtype, recipe


def network_from_arrays(cls, arrays, source):
    """A ``cls`` network rebuilt from :func:`model_arrays` output; ModelFileError names source."""

    def fail(problem):
        raise ModelFileError(f"{source}: {problem}")

    sizes, activation, dtype, recipe = _header(arrays, fail)
    try:
        net = cls._unfilled(sizes, activation, dtype, recipe["loss"], recipe["init"])
    except ValueError as error:
        fail(f"invalid model configuration ({error})")
    if recipe["output_activation"] not in (None, net.output_activation):
        fail(f"invalid model configuration (output activation {recipe['output_activation']!r}; "
             f"activation {activation!r} with loss {recipe['loss']!r} has "
             f"{net.output_activation!r})")
    pairs = []
    for l in range(len(sizes) - 1):
        if f"W{l}" not in arrays or f"b{l}" not in arrays:
            fail(f"not a complete jitnet model (missing layer {l} parameters)")
        pairs.append((arrays[f"W{l}"], arrays[f"b{l}"]))
    try:
        net.set_weights(pairs)
    except ValueError as error:
        fail(f"parameters do not fit the model ({error})")
    return net


def read_arrays(path):
    """Every array of the ``.npz`` at ``path``; ModelFileError if missing or unreadable."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise ModelFileError(f"{path}: not a readable jitnet model ({error})") from None
