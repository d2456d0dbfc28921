"""all_finite(a): True when a C-contiguous float array holds no NaN or inf, in one compiled pass.

The layers check every input sequence (x (B, T, I)) for NaN and inf. `np.isfinite(x).all()`
writes a boolean array of x's size and reads it back; after a kernel call has swept the caches
it took 33 us for a (32, 100, 32) float32 input against 13 us for the loop below (medians of
300, alternating with training steps in one process).

The loop sums x - x: 0 for every finite value, NaN for NaN and for +-inf (inf - inf), and NaN
survives any order of additions, so the reduction may be reassociated (and so vectorised)
without changing the answer. Only `reassoc` is allowed: with `nnan` or `ninf` LLVM could fold
x - x to 0.
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def all_finite(a):
    """a: C-contiguous float32 or float64 array of any shape -> bool."""
    f = a.reshape(-1)
    s = f.dtype.type(0)
    for i in range(f.size):
        s += f[i] - f[i]
    return s == 0
