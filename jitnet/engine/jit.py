"""How every kernel of the engine is compiled: one set of Numba options, three decorators.

Reassociation lets LLVM vectorise the dot products; no "fast" NaN/Inf assumptions, so a
saturated sigmoid still gives exactly 0 or 1. ``error_model="numpy"``: a float division never
raises (and so never blocks vectorisation). ``nogil``: the parallel epoch runs one kernel per
thread. ``cache=True``: later processes load the machine code from Numba's cache.
"""

from numba import njit

FASTMATH = frozenset({"nsz", "arcp", "contract", "reassoc"})
OPTIONS = dict(cache=True, nogil=True, error_model="numpy")

#: A compiled function of its own.
jit = njit(fastmath=set(FASTMATH), **OPTIONS)
#: Inlined into its caller by Numba itself: the per-sample steps take tuples of arrays, and a
#: real call passes each of their arrays field by field (measured: 5% of an epoch).
jit_inline = njit(inline="always", fastmath=set(FASTMATH), **OPTIONS)
#: Without reassociation, for sums whose order must not depend on how LLVM builds the code:
#: with it, LLVM ordered some sums differently when compiling afresh and when building the
#: cached copy, so the weights after an epoch depended on whether Numba's cache was warm. The
#: exp of :mod:`jitnet.engine.activations` also relies on the order of its operations.
jit_ordered = njit(fastmath=set(FASTMATH - {"reassoc"}), **OPTIONS)
jit_ordered_inline = njit(inline="always", fastmath=set(FASTMATH - {"reassoc"}), **OPTIONS)
