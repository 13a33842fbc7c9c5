"""ONNX export of the estimators through skl2onnx (extra ``[sklearn-onnx]``).

jitnet's estimators keep scikit-learn's fitted attributes (``coefs_``, ``intercepts_``,
``activation``, ``out_activation_``, ``classes_``), so skl2onnx's own converter of
scikit-learn's MLPClassifier translates the classifier unchanged (labels, ``zipmap`` and its
other options). The regressor goes through jitnet's graph builder
(:func:`jitnet.io.onnx_export.emit_network`), which also knows ``loss='poisson'``'s exp outputs
(skl2onnx 1.20's MLP converter does not) and gives every output of a multi-output regressor:
(N, n_outputs_). :func:`register` tells skl2onnx both, and ``skl2onnx.to_onnx(estimator,
X[:1])`` then works as it does for scikit-learn's.
"""

import importlib.util

import numpy as np

from jitnet.io.onnx_export import emit_network

#: scikit-learn's hidden activations by the graph builder's names.
_HIDDEN = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}

_REGISTERED = []


def register():
    """Register the estimators with skl2onnx, if it is installed; whether they are.

    Called when :mod:`jitnet.sklearn` is imported; calling it again does nothing.
    """
    if _REGISTERED:
        return True
    if importlib.util.find_spec("skl2onnx") is None:
        return False
    from skl2onnx import update_registered_converter
    from skl2onnx.operator_converters.multilayer_perceptron import (
        convert_sklearn_mlp_classifier,
    )
    from skl2onnx.shape_calculators.linear_classifier import (
        calculate_linear_classifier_output_shapes,
    )

    from jitnet.sklearn._multilayer_perceptron import MLPClassifier, MLPRegressor

    update_registered_converter(
        MLPClassifier, "JitnetMLPClassifier", calculate_linear_classifier_output_shapes,
        convert_sklearn_mlp_classifier,
        options={"zipmap": [True, False, "columns"], "output_class_labels": [False, True],
                 "nocl": [True, False]})
    update_registered_converter(
        MLPRegressor, "JitnetMLPRegressor", _regressor_shape, _convert_regressor)
    _REGISTERED.append(True)
    return True


def _regressor_shape(operator):
    """skl2onnx's shape calculator: (N, n_features) in, (N, n_outputs_) out, same type."""
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = operator.inputs[0].type.__class__(
        [n, operator.raw_operator.n_outputs_])


def _convert_regressor(scope, operator, container):
    """skl2onnx's converter of a fitted MLPRegressor: its layers in the input's precision."""
    from onnx import TensorProto
    from skl2onnx.common.data_types import guess_proto_type

    reg = operator.raw_operator
    double = guess_proto_type(operator.inputs[0].type) == TensorProto.DOUBLE
    dtype = "float64" if double else "float32"
    layers = [(np.asarray(c, dtype).T, np.asarray(b, dtype))
              for c, b in zip(reg.coefs_, reg.intercepts_)]
    out = operator.outputs[0].full_name  # declared by skl2onnx: the last node's, as it is

    def unique(name):
        return name if name == out else scope.get_unique_variable_name(name)

    emit_network(container, layers, _HIDDEN[reg.activation], reg.out_activation_,
                 operator.inputs[0].full_name, out, None, dtype=dtype, unique=unique)
