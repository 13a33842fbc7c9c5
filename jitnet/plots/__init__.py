"""Pictures of training runs and predictions (matplotlib, the ``plots`` extra): one function per
picture in :mod:`jitnet.plots.figures`, their canvas and file plumbing in :mod:`jitnet.plots.base`."""

from jitnet.plots.figures import (  # noqa: F401
    DPI,
    MissingDependencyError,
    __all__,
    compare_curves,
    confusion_matrix_plot,
    distortion_grid,
    learning_curve,
    load_run,
    mistakes_gallery,
    sweep_plot,
)
