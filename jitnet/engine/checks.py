"""Input checks shared by every engine (the references and the JIT Network).

Every public argument is checked here, once, where it enters; each failure is a ``ValueError`` that
names the argument. Numbers that end up in the network's precision are checked *after* the cast
(``1e39`` is finite as a float64 but ``inf`` as a float32).
"""

import numbers

import numpy as np


def check_sizes(layer_sizes):
    """Return ``layer_sizes`` as a list of positive ints, or raise a clear ``ValueError``."""
    try:
        sizes = [int(n) for n in layer_sizes]
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"layer sizes must be integers, got {layer_sizes!r}") from None
    if len(sizes) < 2:
        raise ValueError(f"a network needs at least two layers (input and output), got {sizes}")
    if any(n < 1 for n in sizes) or any(n != s for n, s in zip(sizes, layer_sizes)):
        raise ValueError(f"layer sizes must be positive integers, got {list(layer_sizes)}")
    return sizes


def check_weight_pairs(sizes, pairs, dtype=np.float64):
    """Check ``(W, b)`` pairs against ``sizes``; return copies in ``dtype`` or raise ``ValueError``.

    Values are checked after the cast to ``dtype``, so a weight that overflows it is refused.
    """
    pairs = list(pairs)
    if len(pairs) != len(sizes) - 1:
        raise ValueError(
            f"expected {len(sizes) - 1} (W, b) pairs for sizes {sizes}, got {len(pairs)}"
        )
    checked = []
    for layer, pair in enumerate(pairs):
        try:
            W, b = pair
        except (TypeError, ValueError):
            kind = type(pair).__name__
            raise ValueError(f"layer {layer}: expected a (W, b) pair, got {kind}") from None
        try:
            with np.errstate(over="ignore"):
                W = np.array(W, dtype=dtype)
                b = np.array(b, dtype=dtype)
        except (TypeError, ValueError) as error:
            raise ValueError(f"layer {layer}: weights must be real numbers ({error})") from None
        n_in, n_out = sizes[layer], sizes[layer + 1]
        if W.shape != (n_out, n_in):
            raise ValueError(f"layer {layer}: W must have shape {(n_out, n_in)}, got {W.shape}")
        if b.shape != (n_out,):
            raise ValueError(f"layer {layer}: b must have shape {(n_out,)}, got {b.shape}")
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ValueError(
                f"layer {layer}: weights must be finite in {np.dtype(dtype).name} "
                "(no NaN, inf or values that overflow it)"
            )
        checked.append((W, b))
    return checked


# -- scalars ------------------------------------------------------------------------------------


def _real(name, value):
    """``value`` as a Python float if it is one real number (not a bool, string, list or None)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    try:
        return float(value)
    except OverflowError:  # an int beyond float64's range
        raise ValueError(f"{name} must be a finite number, got an integer of "
                         f"{len(str(abs(int(value))))} digits") from None


def check_positive(name, value, dtype=np.float64):
    """A positive finite number, as the scalar type of ``dtype``, checked after the cast."""
    x = _real(name, value)
    with np.errstate(over="ignore", under="ignore"):
        cast = np.dtype(dtype).type(x)
    if not (np.isfinite(cast) and cast > 0):
        where = "" if np.dtype(dtype) == np.float64 else f" in {np.dtype(dtype).name}"
        raise ValueError(f"{name} must be a positive finite number{where}, got {value!r}")
    return cast


def check_fraction(name, value):
    """A number in [0, 1) (a momentum), as a float."""
    x = _real(name, value)
    if not 0.0 <= x < 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
    return x


def check_count(name, value):
    """A whole number >= 0 (a number of epochs), as an int."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    if isinstance(value, numbers.Integral):
        value = int(value)
        if value < 0:
            raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
        if value > 2**63 - 1:
            raise ValueError(f"{name} must be a whole number below 2**63, got one of "
                             f"{len(str(value))} digits")
        return value
    if not (np.isfinite(value) and value >= 0 and value == int(value)):
        raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    return int(value)


def check_seed(seed):
    """None or a non-negative integer (what ``np.random.default_rng`` is given)."""
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


# -- arrays -------------------------------------------------------------------------------------


def check_inputs(X, n_inputs, name="X"):
    """X as a C-contiguous (N, n_inputs) array the kernels take, and whether it was one sample.

    uint8 stays uint8 (scaled inside the kernels), float32/float64 stay as they are, bool and other
    float types become float64 (other integer types once the scale is known, in
    :func:`input_scale`). NaN and inf are refused.
    """
    X = np.asarray(X)
    single = X.ndim == 1
    if single:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != n_inputs:
        raise ValueError(f"{name} must have shape (N, {n_inputs}) or ({n_inputs},), got {X.shape}")
    if X.dtype.kind == "b":
        X = X.astype(np.float64)
    elif X.dtype.kind in "iu" and X.dtype != np.uint8:
        pass  # converted once the scale is known (see input_scale)
    elif X.dtype.kind == "f":
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        if not np.isfinite(X).all():
            raise ValueError(f"{name} contains NaN or inf")
    elif X.dtype != np.uint8:
        raise ValueError(f"{name} must be numeric, got dtype {X.dtype}")
    return np.ascontiguousarray(X), single


def _whole_numbers(X, chunk=1 << 20):
    """Whether every value of the float array X is a whole number (checked in bounded chunks)."""
    flat = X.reshape(-1)
    return all(
        np.array_equal(part, np.floor(part)) for part in
        (flat[start : start + chunk] for start in range(0, flat.size, chunk))
    )


def input_scale(X, scale, dtype, name="X"):
    """The factor the kernels apply to X, and X itself in a type they take.

    Policy: uint8 images get 1/255 by default. Other integer types
    need an explicit ``scale`` (their range is unknown: int64 or uint16 pixels fed raw train to
    chance level). Float inputs get 1 by default, except when they look like raw 0-255 pixels
    (whole numbers, largest above 1 and at most 255): then ``scale`` must be given. The scaled
    inputs must be finite in the network's ``dtype``.
    """
    dtype = np.dtype(dtype)
    if scale is None:
        if X.dtype == np.uint8:
            scale = 1.0 / 255.0
        elif X.dtype.kind in "iu":
            raise ValueError(
                f"{name} holds {X.dtype} values: pass scale= (1/255 for 0-255 pixels, 1.0 to "
                "use the values as they are); only uint8 images are scaled by default"
            )
        else:
            scale = 1.0
            if X.size and 1.0 < X.max() <= 255.0 and X.min() >= 0 and _whole_numbers(X):
                raise ValueError(
                    f"{name} looks like raw 0-255 pixels (whole numbers up to {X.max():g}): pass "
                    "scale=1/255 to train on [0, 1] inputs, or scale=1.0 to use them as they are"
                )
    else:
        scale = float(check_positive("scale", scale, dtype))
    if X.dtype.kind in "iu" and X.dtype != np.uint8:
        X = X.astype(np.float64)
    if X.size:
        peak = 255.0 if X.dtype == np.uint8 else float(np.abs(X).max())
        with np.errstate(over="ignore"):
            if not np.isfinite(dtype.type(peak * scale)):
                raise ValueError(
                    f"{name} times scale reaches {peak * scale:g}, beyond {dtype.name}'s range"
                )
    return X, scale


def check_labels(labels, n, n_classes, name="labels"):
    """(n,) integer class labels in [0, n_classes), as int64."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {labels.shape}")
    if labels.dtype.kind not in "iu":
        if labels.dtype.kind == "f" and np.isfinite(labels).all() and np.all(
            labels == np.round(labels)
        ):
            labels = labels.astype(np.int64)
        else:
            raise ValueError(f"{name} must be integer class labels, got dtype {labels.dtype}")
    if n and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
            f"{name}: class labels must lie in [0, {n_classes - 1}], "
            f"got values from {labels.min()} to {labels.max()}"
        )
    return np.ascontiguousarray(labels, np.int64)


def check_target_rows(targets, n, n_outputs, dtype):
    """(n, n_outputs) target vectors, finite in ``dtype`` after the cast."""
    if targets.shape != (n, n_outputs):
        raise ValueError(
            f"targets must have shape ({n}, {n_outputs}) or ({n},) labels, got {targets.shape}"
        )
    if targets.dtype.kind not in "biuf":
        raise ValueError(f"targets must be numeric, got dtype {targets.dtype}")
    with np.errstate(over="ignore"):
        T = np.ascontiguousarray(targets, dtype)
    if not np.isfinite(T).all():
        raise ValueError(f"targets contain NaN or inf (in {np.dtype(dtype).name})")
    return T


def check_l2(l2, n):
    """An L2 penalty strength: a number >= 0 or (n,) of them, as (n,) float64, or None for 0."""
    values = np.asarray(l2)
    if values.dtype.kind not in "biuf" or values.shape not in ((), (n,)):
        got = repr(l2) if values.ndim == 0 else f"shape {values.shape}"
        raise ValueError(f"l2 must be a number >= 0 or {n} of them (one per sample), got {got}")
    values = values.astype(np.float64)
    if not (np.isfinite(values).all() and (values >= 0).all()):
        raise ValueError("l2 must be finite and >= 0")
    if not values.any():
        return None
    if not values.all():
        raise ValueError("l2 must be > 0 for every sample, or 0 for all")
    return np.ascontiguousarray(np.broadcast_to(values, (n,)))


def check_order(order, n):
    """(M,) sample indices in [0, n), as int64; None means file order."""
    if order is None:
        return np.arange(n, dtype=np.int64)
    order = np.asarray(order)
    if order.ndim != 1 or order.dtype.kind not in "iu":
        raise ValueError("order must be a 1-D array of integer sample indices")
    if order.size and n == 0:
        raise ValueError("order must be empty: there are no samples")
    if order.size and (order.min() < 0 or order.max() >= n):
        raise ValueError(f"order holds indices outside [0, {n - 1}]")
    return np.ascontiguousarray(order, np.int64)


def check_dtype(dtype):
    """'float64' or 'float32' (any spelling numpy accepts), as a numpy dtype."""
    try:
        name = np.dtype(dtype).name if dtype is not None else None
    except TypeError:
        name = None
    if name not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return np.dtype(name)
