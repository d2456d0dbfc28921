"""BLAS for compiled loops: NumPy's own OpenBLAS, called by symbol name so Numba can cache.

Why this file exists:
    * Numba's `np.dot` goes through SciPy's BLAS, a second thread pool beside NumPy's (the
      prototype measured 2x slower with both pools busy) and a dependency we do not want.
    * A ctypes function pointer baked into a jitted function blocks `cache=True` (3.6-5.0 s JIT at
      every start). Instead we register NumPy's `cblas_?gemm`/`cblas_?gemv` addresses with
      llvmlite under fixed alias names (`longshort_sgemm`, ...) and declare them as
      `numba.types.ExternalFunction`: the compiled, cached code refers to the name only, and the
      name is re-bound to this process's address every time this module is imported.
    * Wheels name the symbols differently (`cblas_sgemm`, `scipy_cblas_sgemm64_`, ...), so they are
      looked up at import; when none is found, small compiled fallbacks take the alias names.

All calls are row-major (CBLAS order 101). Pointers travel as integer addresses (`arr.ctypes.data`
plus a byte offset), and integer arguments are 64-bit (`ILP64`) or 32-bit to match the library.

    gemm(transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc):  C = alpha op(A) op(B) + beta C
    gemv(trans, M, N, alpha, A, lda, x, incx, beta, y, incy):            y = alpha op(A) x + beta y
"""

from __future__ import annotations

import ctypes
import logging
import os

import llvmlite.binding as llvm
from numba import types

from .._blas_threads import GET_NAMES, SET_NAMES, candidate_libraries

log = logging.getLogger(__name__)

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112


def _find_symbols():
    """(library, {'sgemm': address, ...}, int bits) for the first library exposing all four."""
    for path in candidate_libraries():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix, bits in (
            ("scipy_cblas_", "64_", 64),
            ("cblas_", "64_", 64),
            ("scipy_cblas_", "", 32),
            ("cblas_", "", 32),
        ):
            addrs = {}
            for name in ("sgemm", "dgemm", "sgemv", "dgemv"):
                fn = getattr(lib, prefix + name + suffix, None)
                if fn is None:
                    break
                addrs[name] = ctypes.cast(fn, ctypes.c_void_p).value
            if len(addrs) == 4:
                return lib, addrs, bits
    return None, {}, 64


_LIB, _ADDRS, _BITS = _find_symbols()
_IDX = types.int64 if _BITS == 64 else types.int32
_PTR = types.uint64  # an address; arrays are passed as arr.ctypes.data + byte offset


def _gemm_sig(real):
    i, p = _IDX, _PTR
    return types.void(i, i, i, i, i, i, real, p, i, p, i, real, p, i)


def _gemv_sig(real):
    i, p = _IDX, _PTR
    return types.void(i, i, i, i, real, p, i, p, i, real, p, i)


SIGS = {
    "sgemm": _gemm_sig(types.float32),
    "dgemm": _gemm_sig(types.float64),
    "sgemv": _gemv_sig(types.float32),
    "dgemv": _gemv_sig(types.float64),
}


def _fallback_cfuncs() -> dict[str, int]:
    """Plain compiled loops with the CBLAS signatures, used only when no OpenBLAS is found.

    They take typed pointers where callers pass integer addresses: the same registers on x86-64
    and arm64, so the alias names can point at them unchanged.
    """
    from numba import carray, cfunc

    out = {}
    for name in SIGS:
        real = types.float32 if name[0] == "s" else types.float64
        i, p = _IDX, types.CPointer(real)
        if name.endswith("gemm"):

            def gemm(order, ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc):
                A = carray(a, (M * lda if ta == NO_TRANS else K * lda,))
                Bm = carray(b, (K * ldb if tb == NO_TRANS else N * ldb,))
                C = carray(c, (M * ldc,))
                for m in range(M):
                    for n in range(N):
                        s = 0.0
                        for k in range(K):
                            av = A[m * lda + k] if ta == NO_TRANS else A[k * lda + m]
                            bv = Bm[k * ldb + n] if tb == NO_TRANS else Bm[n * ldb + k]
                            s += av * bv
                        prev = beta * C[m * ldc + n] if beta != 0 else 0.0
                        C[m * ldc + n] = alpha * s + prev

            sig = types.void(i, i, i, i, i, i, real, p, i, p, i, real, p, i)
            out[name] = cfunc(sig)(gemm).address
        else:

            def gemv(order, tr, M, N, alpha, a, lda, x, incx, beta, y, incy):
                A = carray(a, (M * lda,))
                rows, cols = (M, N) if tr == NO_TRANS else (N, M)
                X = carray(x, (cols * incx,))
                Y = carray(y, (rows * incy,))
                for r in range(rows):
                    s = 0.0
                    for k in range(cols):
                        s += (A[r * lda + k] if tr == NO_TRANS else A[k * lda + r]) * X[k * incx]
                    prev = beta * Y[r * incy] if beta != 0 else 0.0
                    Y[r * incy] = alpha * s + prev

            sig = types.void(i, i, i, i, real, p, i, p, i, real, p, i)
            out[name] = cfunc(sig)(gemv).address
    return out


if os.environ.get("LONGSHORT_BLAS") == "fallback":  # for testing the fallback path
    _LIB, _ADDRS = None, {}

if _ADDRS:
    BACKEND = f"numpy-openblas ({os.path.basename(_LIB._name)}, {_BITS}-bit ints)"
else:
    log.info("NumPy's OpenBLAS not found; the fused kernels use slow compiled BLAS fallbacks")
    _ADDRS = _fallback_cfuncs()
    BACKEND = "fallback loops"

for _name, _addr in _ADDRS.items():
    llvm.add_symbol("longshort_" + _name, _addr)

sgemm = types.ExternalFunction("longshort_sgemm", SIGS["sgemm"])
dgemm = types.ExternalFunction("longshort_dgemm", SIGS["dgemm"])
sgemv = types.ExternalFunction("longshort_sgemv", SIGS["sgemv"])
dgemv = types.ExternalFunction("longshort_dgemv", SIGS["dgemv"])


def _thread_symbols() -> dict[str, int]:
    """Addresses of OpenBLAS's get/set thread count, or compiled stand-ins (1 thread, no-op)."""
    out = {}
    for key, names in (("get_threads", GET_NAMES), ("set_threads", SET_NAMES)):
        for name in names:
            fn = getattr(_LIB, name, None) if _LIB is not None else None
            if fn is not None:
                out[key] = ctypes.cast(fn, ctypes.c_void_p).value
                break
    if len(out) < 2:
        from numba import cfunc

        out["get_threads"] = cfunc(types.int32())(lambda: 1).address
        out["set_threads"] = cfunc(types.void(types.int32))(lambda n: None).address
    return out


for _name, _addr in _thread_symbols().items():
    llvm.add_symbol("longshort_blas_" + _name, _addr)

# Called from inside the kernels: the loops' small GEMMs run single-threaded in the calling
# thread (waking OpenBLAS's pool for each cost ~160 us a step, and its spinning threads take the
# core that the other batch chunk runs on); the count is restored on the way out.
get_threads = types.ExternalFunction("longshort_blas_get_threads", types.int32())
set_threads = types.ExternalFunction("longshort_blas_set_threads", types.void(types.int32))
