"""scikit-learn estimators trained by jitnet's engine: drop-ins for
``sklearn.neural_network.MLPClassifier`` and ``MLPRegressor`` with ``solver='sgd',
batch_size=1`` (the same parameters and random stream give the same weights).

Needs scikit-learn (``pip install 'jitnet[sklearn]'``). Above :mod:`jitnet.training` in the
layers; nothing below imports it.
"""

try:
    import sklearn  # noqa: F401
except ImportError:  # pragma: no cover - depends on the installation
    from jitnet.io.errors import MissingDependencyError

    raise MissingDependencyError(
        "jitnet.sklearn needs scikit-learn: pip install 'jitnet[sklearn]'") from None

from jitnet.sklearn._multilayer_perceptron import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
