"""The barrier of the model-parallel epoch (:mod:`jitnet.engine.parallel`): atomics for Numba's CPU
target, and a spin-then-yield wait that gives up instead of hanging.

Numba has no public atomics on the CPU, so the three operations needed are emitted directly as
LLVM IR through :func:`numba.extending.intrinsic`: ``atomicrmw add`` (sequentially consistent),
``load atomic`` (acquire) and the spin-wait hint. All take a 1-D int64 array and an index.

Legend::

    sync: (16,) int64   sync[COUNT] arrivals so far, sync[ABORT] > 0 when a rank gave up
"""

import platform
import sys

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from jitnet.engine import kernels

COUNT = 0
ABORT = 8  # on its own cache line: the counter's line is the contended one
SPINS_BEFORE_YIELD = 50  # about 2-7 us of pause instructions on current x86 cores
#: Yields a waiting rank allows before it gives up (each yield is at least ~0.1 us; a rank
#: that really runs is never this far behind).
MAX_YIELDS = 1 << 34

_jit = njit(fastmath=kernels._FASTMATH, **kernels._OPTIONS)


def _int64_array(ty):
    return isinstance(ty, types.Array) and ty.dtype == types.int64 and ty.ndim == 1


def _address(context, builder, array_type, array, index):
    data = context.make_array(array_type)(context, builder, array).data
    return builder.gep(data, [index])


@intrinsic
def _atomic_add(typingctx, array, index, value):
    """array[index] += value as one atomic read-modify-write (sequentially consistent, so
    every plain store before it is visible to whoever sees its result); returns the old value."""
    if not (_int64_array(array) and isinstance(index, types.Integer)):
        return None
    sig = types.int64(array, types.intp, types.int64)

    def codegen(context, builder, signature, args):
        address = _address(context, builder, signature.args[0], args[0], args[1])
        return builder.atomic_rmw("add", address, args[2], "seq_cst")

    return sig, codegen


@intrinsic
def _atomic_load(typingctx, array, index):
    """array[index] read atomically with acquire ordering (later reads see what the writer
    stored before its release)."""
    if not (_int64_array(array) and isinstance(index, types.Integer)):
        return None
    sig = types.int64(array, types.intp)

    def codegen(context, builder, signature, args):
        address = _address(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(address, "acquire", 8)

    return sig, codegen


# Give the core to another thread: POSIX sched_yield, Windows SwitchToThread (both take no
# argument and return an int). Resolved by name when the kernel is linked, so a cached kernel
# holds no address.
_YIELD = "SwitchToThread" if sys.platform == "win32" else "sched_yield"


@intrinsic
def _yield_core(typingctx):
    """Let another thread run on this core."""
    sig = types.int32()

    def codegen(context, builder, signature, args):
        fn = builder.module.globals.get(_YIELD)
        if fn is None:
            fn = ir.Function(builder.module, ir.FunctionType(ir.IntType(32), []), _YIELD)
        return builder.call(fn, [])

    return sig, codegen


# The spin-wait hint, as LLVM's target intrinsic (x86 pause, Arm "hint #1", i.e. yield; nothing
# elsewhere): a spinning core leaves the pipeline to its sibling hyperthread and leaves the loop
# without a pipeline flush when the counter changes.
_PAUSE = {
    "x86_64": ("llvm.x86.sse2.pause", ()),
    "amd64": ("llvm.x86.sse2.pause", ()),
    "aarch64": ("llvm.aarch64.hint", (1,)),
    "arm64": ("llvm.aarch64.hint", (1,)),
}.get(platform.machine().lower())


@intrinsic
def _spin_pause(typingctx):
    """One spin-wait hint instruction."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        if _PAUSE is not None:
            name, operands = _PAUSE
            i32 = ir.IntType(32)
            fnty = ir.FunctionType(ir.VoidType(), [i32] * len(operands))
            fn = builder.module.globals.get(name) or ir.Function(builder.module, fnty, name)
            builder.call(fn, [ir.Constant(i32, v) for v in operands])
        return context.get_dummy_value()

    return sig, codegen


@_jit
def _barrier(sync, target, max_yields):
    """Arrive, then wait until ``target`` arrivals in all; False when the wait was abandoned
    (another rank gave up, or ``max_yields`` yields passed), after raising the abort flag."""
    _atomic_add(sync, COUNT, 1)
    spins = 0
    yields = 0
    while _atomic_load(sync, COUNT) < target:
        if _atomic_load(sync, ABORT) != 0 or yields >= max_yields:
            _atomic_add(sync, ABORT, 1)
            return False
        spins += 1
        _spin_pause()
        if spins >= SPINS_BEFORE_YIELD:
            _yield_core()
            yields += 1
    return True


@_jit
def _barrier_loop(sync, size, n):
    """n barriers in a row (the microbenchmark of the barrier alone); False if abandoned."""
    for p in range(n):
        if not _barrier(sync, size * (p + 1), MAX_YIELDS):
            return False
    return True
