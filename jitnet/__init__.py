"""jitnet: the back-propagation tutorial's fully connected networks, compiled with Numba.

Public names are imported lazily so that ``import jitnet`` (and the command line's ``--help``)
stays fast; Numba is only loaded when an engine is first used.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "Network": "jitnet.engine.network",
    "Committee": "jitnet.engine.committee",
    "ModelFileError": "jitnet.engine.network",
    "TrainingDiverged": "jitnet.engine.network",
    "compile_kernels": "jitnet.engine.compile",
    "Schedule": "jitnet.engine.schedules",
    "make_schedule": "jitnet.engine.schedules",
    "Dataset": "jitnet.data.datasets",
    "load_mnist": "jitnet.data.datasets",
    "load_data": "jitnet.data.loading",
    "Standardization": "jitnet.engine.standardize",
    "Preprocessing": "jitnet.engine.preprocess",
    "read_idx": "jitnet.data.idx",
    "write_idx": "jitnet.data.idx",
    "DataError": "jitnet.io.errors",
    "Distortion": "jitnet.engine.distortion",
    "distort": "jitnet.engine.distortion",
    "gradient_check": "jitnet.evaluation.gradcheck",
    "GradientCheckResult": "jitnet.evaluation.gradcheck",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jitnet' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
