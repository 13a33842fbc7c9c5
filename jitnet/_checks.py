"""Input checks shared by every engine (the references and the JIT Network)."""

import numpy as np


def check_sizes(layer_sizes):
    """Return ``layer_sizes`` as a list of positive ints, or raise a clear ``ValueError``."""
    try:
        sizes = [int(n) for n in layer_sizes]
    except (TypeError, ValueError):
        raise ValueError(f"layer sizes must be integers, got {layer_sizes!r}") from None
    if len(sizes) < 2:
        raise ValueError(f"a network needs at least two layers (input and output), got {sizes}")
    if any(n < 1 for n in sizes) or any(n != s for n, s in zip(sizes, layer_sizes)):
        raise ValueError(f"layer sizes must be positive integers, got {list(layer_sizes)}")
    return sizes


def check_weight_pairs(sizes, pairs):
    """Check ``(W, b)`` pairs against ``sizes``; return float64 copies or raise ``ValueError``."""
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
        W = np.array(W, dtype=np.float64)
        b = np.array(b, dtype=np.float64)
        n_in, n_out = sizes[layer], sizes[layer + 1]
        if W.shape != (n_out, n_in):
            raise ValueError(f"layer {layer}: W must have shape {(n_out, n_in)}, got {W.shape}")
        if b.shape != (n_out,):
            raise ValueError(f"layer {layer}: b must have shape {(n_out,)}, got {b.shape}")
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ValueError(f"layer {layer}: weights must be finite (no NaN or inf)")
        checked.append((W, b))
    return checked
