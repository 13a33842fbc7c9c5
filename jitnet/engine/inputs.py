"""The arguments of a :class:`jitnet.Network` call, checked against that network once, where
they enter: samples and their scale, labels, targets, a distortion and its draws.

Each function takes the network and returns the argument as the kernels take it; a problem is a
one-line ``ValueError`` naming the argument (the checks themselves are in
:mod:`jitnet.engine.checks`, shared with the references).
"""

import math

import numpy as np

from jitnet.engine.checks import (
    check_inputs, check_labels, check_positive, check_target_rows, input_scale,
)
from jitnet.engine.components import check_distributions, label_targets
from jitnet.engine.distort_kernels import FIELD_I, FIELD_J, N_DRAW
from jitnet.engine.distortion import DistortionPlan
from jitnet.engine.layout import _aligned_zeros
from jitnet.engine.preprocess import check_preprocessing
from jitnet.engine.standardize import check_standardization


def samples(net, X, scale, name="X"):
    """(X as the kernels take it, its scale, whether X was one sample); ``scale`` None means
    the network's :attr:`~jitnet.Network.input_scale`. A network with a standardization
    standardises X (a new array in its dtype, scale 1) and takes no ``scale``; one with a
    preprocessing preprocesses the raw images first (after the scale policy has judged them)."""
    X, single = check_inputs(X, net.n_inputs, name)
    if net.preprocessing is not None:
        if net.standardization is None:  # the scale policy judges the raw values
            input_scale(X, net.input_scale if scale is None else scale, net.dtype, name)
        X = net.preprocessing.apply(X)
    if net.standardization is not None:
        if scale is not None:
            raise ValueError(f"scale does not apply to a network that standardizes its inputs "
                             f"(it takes raw inputs), got scale={scale!r}")
        X = net.standardization.apply(X, net.dtype)
        if not np.isfinite(X).all():
            raise ValueError(f"{name} standardized leaves {net.dtype.name}'s range")
        return X, 1.0, single
    X, scale = input_scale(X, net.input_scale if scale is None else scale, net.dtype, name)
    return X, scale, single


def standardization(net, value):
    """None, or a :class:`~jitnet.engine.standardize.Standardization` of the network's inputs
    (float64 copies of finite means and standard deviations >= 0)."""
    value = check_standardization(value, net.n_inputs)
    if value is not None and net.preprocessing is not None:
        raise ValueError("a network that preprocesses images cannot standardize its inputs")
    return value


def preprocessing(net, value):
    """None, or a :class:`~jitnet.engine.preprocess.Preprocessing` of images of the network's
    input size."""
    value = check_preprocessing(value, net.n_inputs)
    if value is not None and net.standardization is not None:
        raise ValueError("a network that standardizes its inputs cannot preprocess images")
    return value


def class_names(net, names):
    """None, or a tuple of one distinct, non-empty text per output (at most 256 characters)."""
    if names is None:
        return None
    if isinstance(names, (str, bytes)) or not hasattr(names, "__len__"):
        raise ValueError(f"class_names must be a sequence of {net.n_outputs} texts, got "
                         f"{type(names).__name__}")
    names = tuple(names)
    if len(names) != net.n_outputs or not all(isinstance(n, str) and 0 < len(n) <= 256
                                              for n in names):
        raise ValueError(f"class_names must be {net.n_outputs} texts of 1 to 256 characters, "
                         f"one per output")
    if len(set(names)) != len(names):
        raise ValueError("class_names must be distinct")
    return names


def optional_scale(net, scale):
    """None, or a positive number finite in the network's dtype, kept as a float as given
    (:attr:`jitnet.Network.input_scale`)."""
    if scale is None:
        return None
    try:
        check_positive("input_scale", scale, net.dtype)
        return float(scale)
    except OverflowError:
        raise ValueError(f"input_scale must be a positive finite number, got {scale!r}") from None


def velocity(net, velocity):
    """None, or an aligned copy of ``velocity``: P finite numbers laid out like ``params``."""
    if velocity is None:
        return None
    with np.errstate(over="ignore"):
        checked = np.asarray(velocity).astype(net.dtype)
    if checked.shape != net.params.shape or not np.isfinite(checked).all():
        raise ValueError(f"velocity must be {net.params.shape[0]} finite numbers laid out like "
                         f"params, got shape {np.shape(velocity)}")
    aligned = _aligned_zeros(checked.size, net.dtype)
    aligned[...] = checked
    return aligned


def labels(net, labels, n, name="labels"):
    """(n,) class labels of the network's outputs, as int64."""
    return check_labels(labels, n, net.n_outputs, name)


def label_vectors(net, labels):
    """Target vectors (N, n_out) for the 1-D integer ``labels`` (:meth:`jitnet.Network.targets`)."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of class labels, got shape {labels.shape}")
    return label_targets(check_labels(labels, labels.shape[0], net.n_outputs, "labels"),
                         net.n_outputs, net.loss, net.dtype)


def targets(net, targets, n):
    """(n, n_out) targets in the network's dtype; (n,) labels become target vectors."""
    targets = np.asarray(targets)
    if targets.ndim == 1:
        return label_targets(check_labels(targets, n, net.n_outputs, "targets"), net.n_outputs,
                             net.loss, net.dtype)
    T = check_target_rows(targets, n, net.n_outputs, net.dtype)
    return check_distributions(T) if net.loss == "cross_entropy" else T


def draws(net, plan, draws, n_visits):
    """The draws of a distorted epoch of ``n_visits`` samples as float64 rows, after checking the
    plan against the network and the draws against the plan; None for an undistorted epoch."""
    if plan is None:
        if draws is not None:
            raise ValueError("draws need a distortion (the plan they were drawn from)")
        return None
    if net.standardization is not None:
        raise ValueError("a network that standardizes its inputs cannot train on distorted "
                         "samples (distortions move raw pixels)")
    if not isinstance(plan, DistortionPlan):
        raise ValueError(f"distortion must be a jitnet.DistortionPlan, got "
                         f"{type(plan).__name__}")
    rows, cols = plan.image_shape
    if rows * cols != net.n_inputs:
        raise ValueError(f"distortion is for {rows}x{cols} images ({rows * cols} pixels); "
                         f"the network has {net.n_inputs} inputs")
    if draws is None:
        raise ValueError("a distortion needs draws: distortion.draw_epoch(rng, len(order))")
    draws = np.ascontiguousarray(draws, dtype=np.float64)
    if draws.shape != (n_visits, N_DRAW) or not np.isfinite(draws).all():
        raise ValueError(f"draws must be {n_visits} rows of {N_DRAW} finite numbers (one per "
                         f"sample visited), got shape {draws.shape}")
    n_fields = plan.bank.shape[0]
    if n_fields:  # the kernel indexes the bank with these: never out of bounds
        fields = draws[:, [FIELD_I, FIELD_J]]
        if (fields != np.floor(fields)).any() or fields.min(initial=0) < 0 or \
                fields.max(initial=0) >= n_fields:
            raise ValueError(f"draws name fields outside the plan's bank of {n_fields}")
    return draws


def image_shape(net, image_shape):
    """(rows, cols) of the images to distort: as given, or square when n_in is a square."""
    if image_shape is not None:
        return image_shape
    side = math.isqrt(net.n_inputs)
    if side * side != net.n_inputs:
        raise ValueError(f"distort needs image_shape=(rows, cols) for {net.n_inputs} inputs "
                         f"(not a square number)")
    return (side, side)
