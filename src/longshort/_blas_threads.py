"""NumPy's OpenBLAS thread count, read and set through the library's own symbols.

Why: OpenBLAS's worker threads keep spinning after each multi-threaded product (up to 2^28
cycles, ~0.1 s, by default), and on a small machine they take the very cores that the fused
kernels' threads (Numba's pool) need next. A text-model training step (32 x 100 characters, 640
units: forward, backward, clipping, Adam) that mixes NumPy's products (the output layer) with
the LSTM kernels took 177 ms with NumPy's BLAS on two threads against 139 ms on one (2 cores,
medians, the two alternating in one process). `Trainer.fit` runs with one BLAS thread
(TrainConfig.blas_threads), and so do the CLI's commands, `text.workflow.evaluate`, dynamic
evaluation and the models' predictions; each restores the count on return.

No threadpoolctl: the library is found the way kernels/_blas.py finds NumPy's cblas symbols,
and a NumPy without OpenBLAS (or a wheel that names the symbols otherwise) makes these no-ops.
"""

from __future__ import annotations

import ctypes
import glob
import os
from contextlib import contextmanager

import numpy as np

GET_NAMES = ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
              "openblas_get_num_threads")  # fmt: skip
SET_NAMES = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_",
              "openblas_set_num_threads")  # fmt: skip


def candidate_libraries() -> list[str]:
    """Shared libraries that may hold NumPy's BLAS, most likely first."""
    root = os.path.dirname(np.__file__)
    found = []
    for d in (root + ".libs", os.path.join(root, ".dylibs"), os.path.join(root, "_core")):
        found += sorted(glob.glob(os.path.join(d, "*openblas*")))
    return found


def _find() -> tuple[object, object]:
    """(get, set) ctypes functions of the first library that has both, or (None, None)."""
    for path in candidate_libraries():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        get = next((getattr(lib, n) for n in GET_NAMES if hasattr(lib, n)), None)
        put = next((getattr(lib, n) for n in SET_NAMES if hasattr(lib, n)), None)
        if get is not None and put is not None:
            get.restype, get.argtypes = ctypes.c_int, []
            put.restype, put.argtypes = None, [ctypes.c_int]
            return get, put
    return None, None


_GET, _SET = _find()
MAX_THREADS = 4096  # a C int; OpenBLAS caps the count at its build's maximum anyway


def _check(n) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_THREADS:
        raise ValueError(f"BLAS threads must be an integer in 1..{MAX_THREADS}, got {n!r}")


def get_blas_threads() -> int | None:
    """NumPy's OpenBLAS thread count, or None when it cannot be controlled."""
    return None if _GET is None else int(_GET())


def set_blas_threads(n: int) -> None:
    """Set NumPy's OpenBLAS thread count (n >= 1); a no-op when it cannot be controlled."""
    _check(n)
    if _SET is not None:
        _SET(n)


@contextmanager
def blas_threads(n: int | None):
    """Run the block with NumPy's OpenBLAS on n threads (None: leave it), then restore."""
    if n is not None:
        _check(n)
    before = get_blas_threads()
    if n is None or before is None:
        yield
        return
    set_blas_threads(n)
    try:
        yield
    finally:
        set_blas_threads(before)


__all__ = [
    "GET_NAMES",
    "SET_NAMES",
    "blas_threads",
    "candidate_libraries",
    "get_blas_threads",
    "set_blas_threads",
]
