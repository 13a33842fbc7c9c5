"""ONNX graphs of fully connected networks, built from plain arrays and names.

The graph of layers ``(W[l] (n_out, n_in), b[l] (n_out,))``, l = 1..L, as ``predict`` computes it::

    input (N, n_0) float -> Mul(input_scale)                      [left out when the scale is 1]
      -> Gemm(W[1], b[1], transB=1) -> hidden activation -> ... -> Gemm(W[L], b[L], transB=1)
      -> output activation -> "probabilities" (softmax outputs) or "outputs" (N, n_L)
      -> ArgMax(axis=1) -> "label" (N,) int64         [or Gather(class names) -> "label" strings]

Activations: ``sigmoid`` Sigmoid, ``tanh`` Tanh, ``relu`` Relu, ``scaled_tanh`` (LeCun's
``A tanh(S z)``) Mul/Tanh/Mul, ``softmax`` Softmax(axis=1). The input scale is a ``Mul`` node, not
folded into the first layer's weights, so that the graph holds the model's weights unchanged and
a float64 graph scales its inputs exactly as the kernels do. Every tensor is in the model's own
dtype (float32 or float64); the batch dimension ``N`` is dynamic. Opset :data:`OPSET`, IR version
:data:`IR_VERSION`: read by every current runtime. Each model passes
``onnx.checker.check_model(model, full_check=True)`` before it is handed back.

For converters: :func:`emit_network` adds the nodes and initializers to any ``container`` with
``add_initializer(name, onnx_type, shape, content)`` and ``add_node(op_type, inputs, outputs,
name=..., **attrs)`` -- the interface skl2onnx hands its converters -- with names made unique by
``unique`` (skl2onnx: ``scope.get_unique_variable_name``). :func:`build_model` is that plus the
graph's inputs, outputs and metadata.
"""

import json
import math

import numpy as np

from jitnet.io.atomic import atomic_write_bytes
from jitnet.io.errors import MissingDependencyError

OPSET = 17
IR_VERSION = 8
ACTIVATIONS = ("sigmoid", "tanh", "scaled_tanh", "relu", "softmax", "identity", "logistic", "exp")
_SIMPLE_OPS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "identity": "Identity",
               "logistic": "Sigmoid", "exp": "Exp"}
_DTYPES = ("float32", "float64")


def _onnx():
    try:
        import onnx
    except ImportError:
        raise MissingDependencyError(
            'ONNX export needs the onnx package: pip install "jitnet[onnx]"') from None
    return onnx


def _tensor_type(onnx, dtype):
    types = {"float32": onnx.TensorProto.FLOAT, "float64": onnx.TensorProto.DOUBLE}
    return types[np.dtype(dtype).name]


class _Collector:
    """A container that keeps what :func:`emit_network` adds, for :func:`build_model`."""

    def __init__(self, onnx):
        self.onnx, self.nodes, self.initializers = onnx, [], []

    def add_initializer(self, name, onnx_type, shape, content):
        if onnx_type == self.onnx.TensorProto.STRING:
            tensor = self.onnx.helper.make_tensor(name, onnx_type, shape,
                                                  [s.encode() for s in content])
        else:  # raw bytes: fast, and exact for float64
            tensor = self.onnx.numpy_helper.from_array(np.asarray(content).reshape(shape), name)
        self.initializers.append(tensor)

    def add_node(self, op_type, inputs, outputs, name=None, **attrs):
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, outputs, name=name, **attrs))


def _check_layers(layers, hidden, output, dtype, input_scale, class_names, scaled_tanh):
    """The layers as C-contiguous arrays of ``dtype``; a ValueError names what does not fit."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in _DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    dtype = np.dtype(name)
    for what, name in (("hidden", hidden), ("output", output)):
        if name not in ACTIVATIONS:
            raise ValueError(f"{what} activation must be one of {', '.join(ACTIVATIONS)}; "
                             f"got {name!r}")
    if hidden in ("softmax", "logistic", "exp"):
        raise ValueError(f"{hidden} is an output activation only")
    if "scaled_tanh" in (hidden, output) and scaled_tanh is None:
        raise ValueError("the scaled tanh needs its constants: scaled_tanh=(amplitude, slope)")
    try:
        scale = float(input_scale)
    except (TypeError, ValueError):
        scale = math.nan
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"input_scale must be a positive finite number, got {input_scale!r}")
    if not layers:
        raise ValueError("a network needs at least one layer")
    checked = []
    n_in = None  # the first layer sets it
    for l, (W, b) in enumerate(layers, start=1):
        W, b = np.ascontiguousarray(W, dtype), np.ascontiguousarray(b, dtype)
        if W.ndim != 2 or W.shape[1] != (n_in or W.shape[1]) or b.shape != (W.shape[0],):
            raise ValueError(f"layer {l}: W must be (n_out, {n_in or 'n_in'}) and b (n_out,), "
                             f"got {W.shape} and {b.shape}")
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ValueError(f"layer {l}: the weights are not all finite")
        checked.append((W, b))
        n_in = W.shape[0]
    if class_names is not None:
        names = [str(name) for name in class_names]
        if len(names) != n_in or len(set(names)) != len(names):
            raise ValueError(f"class_names must be {n_in} distinct names, one per output; got "
                             f"{len(names)}")
    return checked


def emit_network(container, layers, hidden, output, input_name, output_name, label_name, *,
                 dtype, input_scale=1.0, class_names=None, scaled_tanh=None,
                 standardization=None, unique=lambda name: name):
    """Add the network's nodes and initializers to ``container`` (see the module docstring):
    ``input_name`` (N, n_0) -> ``output_name`` (N, n_L) and ``label_name`` (N,; None: no label).

    Parameters
    ----------
    layers : sequence of (ndarray (n_out, n_in), ndarray (n_out,))
        Weights and biases per layer, inputs first (``Network.get_weights()``).
    hidden, output : str
        Activation of the hidden layers and of the output layer (:data:`ACTIVATIONS`).
    dtype : {'float32', 'float64'}
        The precision of every tensor.
    input_scale : float
        The inputs are multiplied by it first (no node when it is 1).
    class_names : sequence of str, optional
        ``label`` holds these names (strings) instead of the output's index (int64).
    scaled_tanh : (float, float), optional
        The scaled tanh's amplitude A and slope S (needed when an activation is ``scaled_tanh``).
    standardization : (ndarray (n_0,), ndarray (n_0,)), optional
        Mean and standard deviation of each input: the inputs become ``(x - mean) * inv``
        (``Sub``, ``Mul``; ``inv`` = 1/std, 0 for a constant feature) instead of being scaled.
    unique : callable
        Turns a wanted name into one free in the container's graph.
    """
    onnx = _onnx()
    layers = _check_layers(layers, hidden, output, dtype, input_scale, class_names, scaled_tanh)
    dtype = np.dtype(dtype)
    elem = _tensor_type(onnx, dtype)
    constants = {}

    def constant(key, value):
        """A scalar initializer, added once per graph."""
        if key not in constants:
            constants[key] = unique(key)
            container.add_initializer(constants[key], elem, [], np.array([value], dtype))
        return constants[key]

    def node(op_type, inputs, wanted, **attrs):
        result = unique(wanted)
        container.add_node(op_type, inputs, [result], name=unique(f"{wanted}_{op_type}"), **attrs)
        return result

    def activate(a, f, wanted):
        if f in _SIMPLE_OPS:
            return node(_SIMPLE_OPS[f], [a], wanted)
        if f == "softmax":
            return node("Softmax", [a], wanted, axis=1)
        amplitude, slope = scaled_tanh
        u = node("Mul", [a, constant("scaled_tanh_slope", slope)], f"{wanted}_slope")
        t = node("Tanh", [u], f"{wanted}_tanh")
        return node("Mul", [t, constant("scaled_tanh_amplitude", amplitude)], wanted)

    a = input_name
    if standardization is not None:
        mean, std = (np.asarray(v, np.float64) for v in standardization)
        if mean.shape != (layers[0][0].shape[1],) or std.shape != mean.shape:
            raise ValueError(f"standardization must hold {layers[0][0].shape[1]} means and "
                             f"standard deviations")
        inverse = np.divide(1.0, std, out=np.zeros_like(std), where=std > 0)
        for key, values, op in (("input_mean", mean, "Sub"), ("input_inverse_std", inverse, "Mul")):
            name = unique(key)
            container.add_initializer(name, elem, [mean.shape[0]], values.astype(dtype))
            a = node(op, [a, name], "standardized_input" if op == "Mul" else "centred_input")
    elif input_scale != 1.0:
        a = node("Mul", [a, constant("input_scale", input_scale)], "scaled_input")
    for l, (W, b) in enumerate(layers, start=1):
        w_name, b_name = unique(f"W{l}"), unique(f"b{l}")
        container.add_initializer(w_name, elem, list(W.shape), W.ravel())
        container.add_initializer(b_name, elem, list(b.shape), b)
        z = node("Gemm", [a, w_name, b_name], f"z{l}", transB=1)
        last = l == len(layers)
        a = activate(z, output if last else hidden, output_name if last else f"a{l}")
    _emit_label(container, a, label_name, class_names, node, unique)


def _emit_label(container, a, label_name, class_names, node, unique):
    """``label_name``: the index of the largest of ``a`` (int64), or its class name."""
    if label_name is None:
        return
    if class_names is None:
        node("ArgMax", [a], label_name, axis=1, keepdims=0)
        return
    onnx = _onnx()
    names = unique("class_names")
    container.add_initializer(names, onnx.TensorProto.STRING, [len(class_names)],
                              [str(name) for name in class_names])
    index = node("ArgMax", [a], f"{label_name}_index", axis=1, keepdims=0)
    container.add_node("Gather", [names, index], [label_name], name=unique(f"{label_name}_Gather"),
                       axis=0)


def output_name(output):
    """The graph's output-layer values: ``probabilities`` for softmax models, else ``outputs``."""
    return "probabilities" if output == "softmax" else "outputs"


def build_model(layers, hidden, output, *, dtype, input_scale=1.0, class_names=None,
                scaled_tanh=None, metadata=None, path=None, members=None, standardization=None):
    """A checked ``onnx.ModelProto`` of the network (parameters as :func:`emit_network`),
    written to ``path`` atomically when given.

    One input ``input`` (N, n_0), two outputs: :func:`output_name` (N, n_L) and ``label`` (N,).
    ``metadata`` (str -> str, None values left out) joins the model's own properties:
    ``jitnet_version``, ``sizes`` (JSON list), ``activation``, ``output_activation``, ``dtype``,
    ``input_scale`` (and ``class_names``, a JSON list, when given).

    ``standardization``: see :func:`emit_network`. ``members`` (a committee): more
    ``(layers, hidden, standardization)`` triples with the same inputs, outputs and output
    activation (the first network's standardization is ``standardization``); the graph runs every network on the input and averages their outputs
    (``Sum`` then ``Mul`` by 1/K), and ``label`` is the largest average.

    Raises
    ------
    MissingDependencyError
        The onnx package is not installed (one line: which extra installs it).
    ValueError
        The layers, names or scale do not describe a network.
    """
    from jitnet import __version__

    onnx = _onnx()
    helper = onnx.helper
    collector = _Collector(onnx)
    values = output_name(output)
    if not members:
        emit_network(collector, layers, hidden, output, "input", values, "label", dtype=dtype,
                     input_scale=input_scale, class_names=class_names, scaled_tanh=scaled_tanh,
                     standardization=standardization)
    else:
        _emit_committee(collector, [(layers, hidden, standardization), *members], output,
                        values, dtype=dtype, input_scale=input_scale, class_names=class_names,
                        scaled_tanh=scaled_tanh)
    elem = _tensor_type(onnx, dtype)
    sizes = [int(np.shape(layers[0][0])[1])] + [int(np.shape(W)[0]) for W, _ in layers]
    label_type = onnx.TensorProto.INT64 if class_names is None else onnx.TensorProto.STRING
    graph = helper.make_graph(
        collector.nodes, "jitnet",
        [helper.make_tensor_value_info("input", elem, ["N", sizes[0]])],
        [helper.make_tensor_value_info(values, elem, ["N", sizes[-1]]),
         helper.make_tensor_value_info("label", label_type, ["N"])],
        initializer=collector.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="jitnet",
                              producer_version=__version__)
    properties = {"jitnet_version": __version__, "sizes": json.dumps(sizes),
                  "activation": hidden, "output_activation": output,
                  "dtype": np.dtype(dtype).name, "input_scale": repr(float(input_scale))}
    if class_names is not None:
        properties["class_names"] = json.dumps([str(name) for name in class_names])
    properties.update({str(k): str(v) for k, v in (metadata or {}).items() if v is not None})
    helper.set_model_props(model, properties)
    onnx.checker.check_model(model, full_check=True)
    if path is not None:  # an existing file stays intact if the write fails
        atomic_write_bytes(path, model.SerializeToString())
    return model


def _emit_committee(container, networks, output, values, *, dtype, input_scale, class_names,
                    scaled_tanh):
    """Every network of a committee on ``input``, their outputs averaged into ``values``."""
    taken = set()

    def unique(name):
        while name in taken:
            name += "_"
        taken.add(name)
        return name

    outputs = []
    for k, (layers, hidden, standardization) in enumerate(networks, start=1):
        prefix = f"member{k}_"  # every name of member k, its output prefix + values
        emit_network(container, layers, hidden, output, "input", values, None, dtype=dtype,
                     input_scale=input_scale, scaled_tanh=scaled_tanh,
                     standardization=standardization,
                     unique=lambda name, p=prefix: unique(p + name))
        outputs.append(prefix + values)
    total = unique("member_sum")
    container.add_node("Sum", outputs, [total], name=unique("member_sum_Sum"))
    share = unique("member_share")
    container.add_initializer(share, _tensor_type(_onnx(), dtype), [],
                              np.array([1.0 / len(networks)], dtype))
    container.add_node("Mul", [total, share], [values], name=unique("mean_Mul"))

    def node(op_type, inputs, wanted, **attrs):
        result = unique(wanted)
        container.add_node(op_type, inputs, [result], name=unique(f"{wanted}_{op_type}"), **attrs)
        return result

    _emit_label(container, values, "label", class_names, node, unique)
