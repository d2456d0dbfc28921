"""Atomic loads, stores and compare-and-swap on int64 array elements, for compiled code.

Two threads that hand each other a step's result (kernels/_row2.py) need a flag one writes
after its data (a *release* store) and the other reads before the data (an *acquire* load); a
plain load in a wait loop may legally be hoisted out of it by the compiler and spin forever.
Numba has no atomics, so these are `@intrinsic`s emitting LLVM's atomic instructions; they are
inlined into the calling kernel, which stays cacheable on disk.

    load_acquire(a, i) -> a[i]             atomic, acquire ordering
    store_release(a, i, v)                 a[i] = v, atomic, release ordering
    cas(a, i, expected, new) -> bool       a[i] = new if a[i] == expected (seq_cst); True if done
    spin_pause()                           x86 `pause` in a busy-wait loop (nothing elsewhere)

`a` must be a C-contiguous int64 array; `i` is not bounds-checked.
"""

from __future__ import annotations

import platform

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


def _check(a):
    if not (isinstance(a, types.Array) and a.dtype == types.int64 and a.layout == "C"):
        raise TypingError(f"atomics need a C-contiguous int64 array, got {a}")


def _pointer(context, builder, aty, ary, ity, idx):
    arr = context.make_array(aty)(context, builder, ary)
    i = context.cast(builder, idx, ity, types.intp)
    return cgutils.get_item_pointer(context, builder, aty, arr, [i])


@intrinsic
def load_acquire(typingctx, a, i):
    _check(a)

    def codegen(context, builder, sig, args):
        ptr = _pointer(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        return builder.load_atomic(ptr, "acquire", 8)

    return types.int64(a, i), codegen


@intrinsic
def store_release(typingctx, a, i, v):
    _check(a)

    def codegen(context, builder, sig, args):
        ptr = _pointer(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        val = context.cast(builder, args[2], sig.args[2], types.int64)
        builder.store_atomic(val, ptr, "release", 8)
        return context.get_dummy_value()

    return types.void(a, i, v), codegen


@intrinsic
def cas(typingctx, a, i, expected, new):
    _check(a)

    def codegen(context, builder, sig, args):
        ptr = _pointer(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        exp = context.cast(builder, args[2], sig.args[2], types.int64)
        val = context.cast(builder, args[3], sig.args[3], types.int64)
        pair = builder.cmpxchg(ptr, exp, val, "seq_cst", "seq_cst")
        return builder.extract_value(pair, 1)

    return types.boolean(a, i, expected, new), codegen


@intrinsic
def spin_pause(typingctx):
    def codegen(context, builder, sig, args):
        if _X86:
            fnty = ir.FunctionType(ir.VoidType(), [])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.sse2.pause")
            builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen
