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
    sched_yield()                          give the core away (libc's sched_yield; a no-op where
                                           it cannot be found), for a wait that has gone on long:
                                           when the machine is oversubscribed the thread waited
                                           for may need this very core to run

`a` must be a C-contiguous int64 array; `i` is not bounds-checked.
"""

from __future__ import annotations

import ctypes
import platform

import llvmlite.binding as llvm
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


def _yield_address() -> tuple[object, int]:
    """(engine to keep alive or None, address) of libc's sched_yield, registered under a fixed
    name so the kernels that call it stay cacheable (as _blas.py does for BLAS)."""
    try:
        return None, ctypes.cast(ctypes.CDLL(None).sched_yield, ctypes.c_void_p).value
    except (OSError, AttributeError, TypeError):  # no libc symbol: a do-nothing stand-in
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        tm = llvm.Target.from_default_triple().create_target_machine()
        ir_text = "define i32 @longshort_noop_yield() { ret i32 0 }"
        engine = llvm.create_mcjit_compiler(llvm.parse_assembly(ir_text), tm)
        engine.finalize_object()
        return engine, engine.get_function_address("longshort_noop_yield")


_ENGINE, _YIELD = _yield_address()
llvm.add_symbol("longshort_sched_yield", _YIELD)
sched_yield = types.ExternalFunction("longshort_sched_yield", types.int32())
