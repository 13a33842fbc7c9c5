"""scikit-learn estimators trained by jitnet's engine: drop-ins for
``sklearn.neural_network.MLPClassifier`` and ``MLPRegressor`` with ``solver='sgd',
batch_size=1`` (the same parameters and random stream give the same weights).

Needs scikit-learn (``pip install 'jitnet[sklearn]'``); with skl2onnx installed
(``jitnet[sklearn-onnx]``) ``skl2onnx.to_onnx`` converts them as it does scikit-learn's. Above :mod:`jitnet.training` in the
layers; nothing below imports it.
"""

try:
    import sklearn  # noqa: F401
except ImportError:  # pragma: no cover - depends on the installation
    from jitnet.io.errors import MissingDependencyError

    raise MissingDependencyError(
        "jitnet.sklearn needs scikit-learn: pip install 'jitnet[sklearn]'") from None

from jitnet.sklearn._multilayer_perceptron import MLPClassifier, MLPRegressor
from jitnet.sklearn._onnx import register as _register_onnx

# skl2onnx.to_onnx(estimator, X) works as for scikit-learn's MLPs when skl2onnx is installed
# (extra [sklearn-onnx]); importing it costs about half a second then.
_register_onnx()

__all__ = ["MLPClassifier", "MLPRegressor"]
