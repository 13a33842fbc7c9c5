"""The tutorial's two implementations, kept as slow, obviously correct references.

- :mod:`jitnet.reference.objects` -- the object version: one Python object per node and per
  connection, pure Python floats, read like the tutorial's first implementation.
- :mod:`jitnet.reference.vectorized` -- the numpy version: one fully connected layer object per
  layer with ``W`` (n_out, n_in), ``b`` (n_out,), ``forward``/``backward``/``update``.

Both share the JIT engine's parameter interface (``sizes``, ``get_weights()``,
``set_weights(pairs)``, ``predict(x)``, ``gradient(x, t)``) so that the same initial weights can be
loaded into every engine and the results compared (``tests/test_equivalence.py``).
"""

ENGINES = ("object", "vectorized", "jit")


def make_network(sizes, engine="jit", seed=None):
    """Build a network of the named engine.

    Parameters
    ----------
    sizes : sequence of int
        Layer sizes, input first, e.g. ``[784, 300, 10]``.
    engine : {"object", "vectorized", "jit"}
        ``"object"`` is :class:`jitnet.reference.objects.Network`, ``"vectorized"`` is
        :class:`jitnet.reference.vectorized.Network`, ``"jit"`` is :class:`jitnet.Network` in
        float64.
    seed : int or None
        Seed of the initial weights.

    Returns
    -------
    network
        An object with ``sizes``, ``get_weights``, ``set_weights``, ``predict`` and ``gradient``.
    """
    if engine == "object":
        from jitnet.reference.objects import Network

        return Network(sizes, seed=seed)
    if engine == "vectorized":
        from jitnet.reference.vectorized import Network

        return Network(sizes, seed=seed)
    if engine == "jit":
        from jitnet.network import Network

        return Network(sizes, dtype="float64", seed=seed)
    raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")


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
    import numpy as np

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
