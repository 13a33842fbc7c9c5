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
        from jitnet.engine.network import Network

        return Network(sizes, dtype="float64", seed=seed)
    raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
