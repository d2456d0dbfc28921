"""Keep the batch chunks of a parallel kernel on different cores.

The fused kernels split the batch into one chunk per Numba thread (`prange`). On the 2-core test
VM the scheduler sometimes started both chunks on the same core (3-14 % of calls in a 100-call
test, and some whole processes stayed that way), and such a call took twice as long: the same
(32,100,32,128,1) forward measured 3.8 ms in one process and 6.4-7.7 ms in the next.
`pin_chunk(k)`, called by chunk k, binds the calling worker thread to the k-th CPU this process
may use (as the main thread's affinity says, so `taskset` and cgroup limits are respected);
pinned, no call started two chunks on one core and the median fell from 3.6-5.1 to 3.4 ms.

Opt-in, with LONGSHORT_PIN=1 (read once, at import; like OMP_PROC_BIND for OpenMP), and only
with Numba's workqueue layer (_threads.py's fallback), whose worker threads run every chunk: in
A/B runs of whole processes the pinned kernels were faster in most but not all (the VM's own
noise is as large), and a pinned
thread cannot move away from a core that another job is using. Linux only (glibc's
sched_getaffinity / sched_setaffinity, looked up by name and registered for the compiled code as
_blas.py does for BLAS); otherwise the functions are no-ops and the scheduler decides.
"""

from __future__ import annotations

import ctypes
import os

import llvmlite.binding as llvm
import numpy as np
from numba import njit, types

from . import _threads

_WORDS = 16  # 1024 CPUs in a cpu_set_t-sized mask
_SIGS = {
    "getaffinity": types.int32(types.int32, types.uint64, types.uint64),
    "setaffinity": types.int32(types.int32, types.uint64, types.uint64),
    "getpid": types.int32(),
}


def _libc_addresses() -> dict[str, int]:
    if os.environ.get("LONGSHORT_PIN", "0") != "1":
        return {}
    if _threads.LAYER != "workqueue":
        return {}  # omp / tbb run chunk 0 on the calling thread: never pin the user's thread
    try:
        libc = ctypes.CDLL("libc.so.6")
        names = {"getaffinity": "sched_getaffinity", "setaffinity": "sched_setaffinity",
                 "getpid": "getpid"}  # fmt: skip
        return {k: ctypes.cast(getattr(libc, v), ctypes.c_void_p).value for k, v in names.items()}
    except (OSError, AttributeError):  # not glibc: no pinning
        return {}


_ADDRS = _libc_addresses()
ENABLED = bool(_ADDRS)
_NOOP_IR = """
define i32 @longshort_noop_getaffinity(i32 %pid, i64 %size, i64 %mask) { ret i32 -1 }
define i32 @longshort_noop_setaffinity(i32 %pid, i64 %size, i64 %mask) { ret i32 -1 }
define i32 @longshort_noop_getpid() { ret i32 0 }
"""


def _noop_addresses() -> tuple[object, dict[str, int]]:
    """(engine kept alive, addresses) of do-nothing stand-ins, compiled from LLVM IR in a few
    milliseconds (three numba.cfunc's took ~0.2 s of every import)."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    tm = llvm.Target.from_default_triple().create_target_machine()
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(_NOOP_IR), tm)
    engine.finalize_object()
    return engine, {k: engine.get_function_address("longshort_noop_" + k) for k in _SIGS}


if not ENABLED:
    _ENGINE, _ADDRS = _noop_addresses()
for _name, _addr in _ADDRS.items():
    llvm.add_symbol("longshort_" + _name, _addr)

_get = types.ExternalFunction("longshort_getaffinity", _SIGS["getaffinity"])
_set = types.ExternalFunction("longshort_setaffinity", _SIGS["setaffinity"])
_getpid = types.ExternalFunction("longshort_getpid", _SIGS["getpid"])


@njit(nogil=True, cache=True)
def pin_chunk(k):
    """Bind the calling thread to the (k mod n)-th of the n CPUs the process's main thread may
    use; does nothing when the mask cannot be read or allows a single CPU."""
    mask = np.zeros(_WORDS, np.uint64)
    if _get(_getpid(), _WORDS * 8, mask.ctypes.data) != 0:
        return
    n = 0
    for w in range(_WORDS):
        for b in range(64):
            if (mask[w] >> np.uint64(b)) & np.uint64(1):
                n += 1
    if n < 2:
        return
    target, seen = k % n, 0
    for w in range(_WORDS):
        for b in range(64):
            if (mask[w] >> np.uint64(b)) & np.uint64(1):
                if seen == target:
                    one = np.zeros(_WORDS, np.uint64)
                    one[w] = np.uint64(1) << np.uint64(b)
                    _set(0, _WORDS * 8, one.ctypes.data)
                    return
                seen += 1
