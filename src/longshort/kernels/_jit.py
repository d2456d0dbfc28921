"""Building blocks for the compiled loops: jit options, activations, BLAS on array slices.

Activations are chosen by dtype at compile time:
    float64: libm `tanh` (exact; the float64 path exists for checks, not speed).
    float32: a rational minimax approximation of tanh (Eigen's `generic_fast_tanh_float`,
             degree 13/6 on [-7.9053, 7.9053], a few ulp), which vectorises; libm `tanhf` does not,
             and cost the prototype 3x on long sequences.
    sigmoid(x) = 0.5 + 0.5 tanh(x / 2), the same formula as the reference (ops/activations.py).

BLAS helpers take whole arrays plus an element offset and a leading dimension, so a strided block
such as z[b0:b1, t, :] of a (B, T, 4H) array is passed without copying:
    gemm(ta, tb, M, N, K, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc)
        C[M, N] = op(A)[M, K] @ op(B)[K, N] + beta * C
    gemv(trans, M, N, A, a_off, lda, x, x_off, beta, y, y_off)
        y = op(A) x + beta * y, with A stored (M, N)

Caveat: Numba's disk cache is keyed on each kernel's own source file, not on the helpers it
inlines from here. After editing this file, delete kernels/__pycache__/*.nb[ci] so the kernels
are compiled again.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.core.errors import TypingError
from numba.extending import overload

from . import (
    _memory,  # noqa: F401  (reuse freed work buffers: see _memory.py)
    _threads,  # noqa: F401  (Numba's threading layer: see _threads.py)
)
from ._blas import NO_TRANS, ROW_MAJOR, TRANS, dgemm, dgemv, sgemm, sgemv

JIT = dict(nogil=True, cache=True, fastmath=True, error_model="numpy")
__all__ = ["JIT", "NO_TRANS", "TRANS", "gemm", "gemv", "sigmoid_", "tanh_"]

_CLAMP = np.float32(7.90531110763549805)
_A1, _A3, _A5 = (
    np.float32(4.89352455891786e-03),
    np.float32(6.37261928875436e-04),
    np.float32(1.48572235717979e-05),
)
_A7, _A9 = np.float32(5.12229709037114e-08), np.float32(-8.60467152213735e-11)
_A11, _A13 = np.float32(2.00018790482477e-13), np.float32(-2.76076847742355e-16)
_B0, _B2 = np.float32(4.89352518554385e-03), np.float32(2.26843463243900e-03)
_B4, _B6 = np.float32(1.18534705686654e-04), np.float32(1.19825839466702e-06)
_HALF32 = np.float32(0.5)


def tanh_(x):  # pragma: no cover - replaced by the overload inside compiled code
    return np.tanh(x)


def sigmoid_(x):  # pragma: no cover - replaced by the overload inside compiled code
    return 0.5 + 0.5 * np.tanh(0.5 * x)


def _tanh32(x):
    x = min(max(x, -_CLAMP), _CLAMP)
    x2 = x * x
    p = x2 * _A13 + _A11
    p = p * x2 + _A9
    p = p * x2 + _A7
    p = p * x2 + _A5
    p = p * x2 + _A3
    p = p * x2 + _A1
    q = x2 * _B6 + _B4
    q = q * x2 + _B2
    q = q * x2 + _B0
    return (x * p) / q


_tanh32_jit = njit(inline="always", fastmath=True, error_model="numpy")(_tanh32)


@overload(tanh_, inline="always")
def _tanh_ov(x):
    if x == types.float32:
        return _tanh32
    return lambda x: np.tanh(x)


@overload(sigmoid_, inline="always")
def _sigmoid_ov(x):
    if x == types.float32:
        return lambda x: _HALF32 + _HALF32 * _tanh32_jit(_HALF32 * x)
    return lambda x: 0.5 + 0.5 * np.tanh(0.5 * x)


def gemm(ta, tb, M, N, K, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc):  # pragma: no cover
    raise NotImplementedError("gemm is only callable from compiled code")


def gemv(trans, M, N, A, a_off, lda, x, x_off, beta, y, y_off):  # pragma: no cover
    raise NotImplementedError("gemv is only callable from compiled code")


def _check_arrays(*arrays):
    """BLAS gets raw addresses: refuse, at compile time, anything but C-contiguous arrays of one
    dtype (a silent stride or dtype mismatch would give wrong numbers, not an error)."""
    if any(a.layout != "C" for a in arrays) or len({a.dtype for a in arrays}) != 1:
        raise TypingError(f"gemm/gemv need C-contiguous arrays of one dtype, got {arrays}")


@overload(gemm)
def _gemm_ov(ta, tb, M, N, K, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc):
    _check_arrays(A, B, C)
    f32 = A.dtype == types.float32
    fn, real, size = (sgemm, np.float32, 4) if f32 else (dgemm, np.float64, 8)

    def impl(ta, tb, M, N, K, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc):
        fn(
            ROW_MAJOR, ta, tb, M, N, K, real(1.0),
            A.ctypes.data + a_off * size, lda,
            B.ctypes.data + b_off * size, ldb,
            real(beta), C.ctypes.data + c_off * size, ldc,
        )  # fmt: skip

    return impl


@overload(gemv)
def _gemv_ov(trans, M, N, A, a_off, lda, x, x_off, beta, y, y_off):
    _check_arrays(A, x, y)
    f32 = A.dtype == types.float32
    fn, real, size = (sgemv, np.float32, 4) if f32 else (dgemv, np.float64, 8)

    def impl(trans, M, N, A, a_off, lda, x, x_off, beta, y, y_off):
        fn(
            ROW_MAJOR, trans, M, N, real(1.0), A.ctypes.data + a_off * size, lda,
            x.ctypes.data + x_off * size, 1, real(beta), y.ctypes.data + y_off * size, 1,
        )  # fmt: skip

    return impl
