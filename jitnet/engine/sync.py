"""The barrier of the model-parallel epoch (:mod:`jitnet.engine.parallel`): atomics for Numba's CPU
target, and a spin-then-yield wait that gives up after a few seconds instead of hanging.

Numba has no public atomics on the CPU, so the operations needed are emitted directly as LLVM IR
through :func:`numba.extending.intrinsic`: ``atomicrmw add`` (sequentially consistent), ``load
atomic`` (acquire), the spin-wait hint, and calls of the C library's ``sched_yield`` and
``clock_gettime`` (resolved by name when the kernel is linked, so a cached kernel holds no
address). All take a 1-D int64 array and an index.

Legend (``R`` ranks; one 64-byte line is 8 int64)::

    sync: (16 + 8 R,) int64  sync[COUNT] arrivals so far, all ranks together;
                             sync[ABORT] > 0 when a rank gave up, sync[LATE] 1 + the rank it
                             gave up on; sync[ARRIVED + 8 r] the barriers rank r has reached

A waiting rank gives up when another rank did, or when it has waited ``timeout_ns`` of wall time
(:data:`DEFAULT_TIMEOUT`). Wall time, not a count of yields: a yield costs 0.1 us on an idle core
and a whole scheduler time slice on a busy machine. The clock is read every
:data:`YIELDS_PER_LOOK` yields, and a gap between two reads counts at most :data:`MAX_GAP_NS`: a
waiting rank that lost its core for long, or a process stopped (Ctrl-Z) and resumed, does not
find its time spent on resuming. A rank that really runs is never seconds behind the others.
"""

import platform
import sys
import time

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from jitnet.engine.jit import jit

COUNT = 0
ABORT = 8  # on its own cache line: the counter's line is the contended one
LATE = 9
ARRIVED = 16
LINE = 8  # int64 per cache line: each rank's arrivals on a line of their own
SPINS_BEFORE_YIELD = 50  # about 2-7 us of pause instructions on current x86 cores
YIELDS_PER_LOOK = 16  # a clock read (~30 ns) every 16 yields (>= 16 x 0.1 us)
MAX_GAP_NS = 100_000_000  # 0.1 s
#: Seconds a waiting rank waits for the others before it gives up.
DEFAULT_TIMEOUT = 10.0


def sync_size(ranks):
    """Length of the ``sync`` array of a team of ``ranks``."""
    return ARRIVED + LINE * ranks


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


def _external(builder, name, return_type, argument_types=()):
    """The C function ``name`` declared in the kernel's LLVM module (resolved when linked)."""
    fn = builder.module.globals.get(name)
    if fn is None:
        fn = ir.Function(builder.module, ir.FunctionType(return_type, list(argument_types)), name)
    return fn


# Give the core to another thread: POSIX sched_yield, Windows SwitchToThread (both take no
# argument and return an int). Resolved by name when the kernel is linked, so a cached kernel
# holds no address.
_YIELD = "SwitchToThread" if sys.platform == "win32" else "sched_yield"


@intrinsic
def _yield_core(typingctx):
    """Let another thread run on this core."""
    sig = types.int32()

    def codegen(context, builder, signature, args):
        return builder.call(_external(builder, _YIELD, ir.IntType(32)), [])

    return sig, codegen


# A monotonic clock: POSIX clock_gettime(CLOCK_MONOTONIC) with its timespec of two 64-bit
# integers (seconds, nanoseconds; 64-bit platforms); Windows GetTickCount64, in milliseconds.
_CLOCK = None if sys.platform == "win32" else time.CLOCK_MONOTONIC


@intrinsic
def _monotonic_ns(typingctx):
    """Nanoseconds on a clock that never goes back (its start is arbitrary)."""
    sig = types.int64()

    def codegen(context, builder, signature, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        if _CLOCK is None:
            ms = builder.call(_external(builder, "GetTickCount64", i64), [])
            return builder.mul(ms, ir.Constant(i64, 1_000_000))
        timespec = ir.LiteralStructType([i64, i64])
        now = cgutils.alloca_once(builder, timespec)
        clock_gettime = _external(builder, "clock_gettime", i32, [i32, now.type])
        builder.call(clock_gettime, [ir.Constant(i32, _CLOCK), now])
        seconds = builder.load(cgutils.gep_inbounds(builder, now, 0, 0))
        nanoseconds = builder.load(cgutils.gep_inbounds(builder, now, 0, 1))
        return builder.add(builder.mul(seconds, ir.Constant(i64, 1_000_000_000)), nanoseconds)

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


@jit
def _give_up(sync, size, n):
    """Record the first rank that has not reached barrier n, then raise the abort flag."""
    for r in range(size):
        if _atomic_load(sync, ARRIVED + LINE * r) < n:
            sync[LATE] = r + 1
            break
    _atomic_add(sync, ABORT, 1)


@jit
def _barrier(sync, rank, size, n, timeout_ns):
    """Rank ``rank`` of ``size`` arrives at its n-th barrier (n = 1, 2, ...) and waits until every
    rank has; False when the wait was abandoned (another rank gave up, or ``timeout_ns`` of wall
    time passed), after raising the abort flag."""
    sync[ARRIVED + LINE * rank] = n  # read only by a rank that gives up
    _atomic_add(sync, COUNT, 1)
    target = size * n
    spins = 0
    yields = 0
    waited = 0
    last = 0
    while _atomic_load(sync, COUNT) < target:
        if _atomic_load(sync, ABORT) != 0:
            _atomic_add(sync, ABORT, 1)
            return False
        spins += 1
        _spin_pause()
        if spins >= SPINS_BEFORE_YIELD:
            _yield_core()
            yields += 1
            if yields % YIELDS_PER_LOOK == 0:
                now = _monotonic_ns()
                if last > 0:
                    waited += min(now - last, MAX_GAP_NS)
                last = now
                if waited >= timeout_ns:
                    _give_up(sync, size, n)
                    return False
    return True


@jit
def _barrier_loop(sync, rank, size, n, timeout_ns):
    """n barriers in a row (the microbenchmark of the barrier alone); False if abandoned."""
    for p in range(n):
        if not _barrier(sync, rank, size, p + 1, timeout_ns):
            return False
    return True
