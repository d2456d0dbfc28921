"""A batch of one on two cores: the forward's hidden units split between them, step by step.

With B = 1 there are no batch rows to share out, and the per-step work (a one-row product with
W_hh and the cell) is too small for a parallel region per step (microseconds to start one). So
one region runs the whole sequence: part k (k = 0, 1) owns hidden units k U .. (k+1) U - 1,
U = H / 2, that is 4 blocks of U gate rows, and computes per step t

    z_k = x_t W_ih,k^T + h_{t-1} W_hh,k^T      (2H,): gates i, f, g, o of its units, in that order
    a_k = act(z_k + b_k) ;  c_t[k] = f c_{t-1}[k] + i g ;  h_t[k] = o tanh(c_t[k])

W_.,k = the rows of part k (split_rows), packed once per call. Both parts read all of h_{t-1},
so after writing its half of h_t part k publishes t + 1 (an atomic release store, _atomic.py)
and waits (acquire loads, `pause`) until the other part has published t + 1 too. The input
products x W_ih,k^T of all steps are done first, each part its own rows, with no wait.

No deadlock when the thread pool runs the two parts one after the other on one thread: a part
claims its share (compare-and-swap) before starting, and a part that has waited SPIN rounds at
step 0 for a share nobody has claimed claims it and computes both halves alone; the other
iteration then finds its share taken and returns.

sync (64,) int64, zeroed per call: claim of part k at 16 k, its progress at 16 k + 8 (separate
cache lines).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._atomic import cas, load_acquire, spin_pause, store_release
from ._blas import get_threads, set_threads
from ._jit import JIT
from ._lstm_loops import _activate, _cell
from ._tiles import NR, grow, tgemm, transpose_into

PAIR_MIN_T = 16  # shorter sequences: one core (the region's start costs more than it saves)
SPIN = 4096  # `pause` rounds at step 0 before a part takes over a share nobody has claimed


def usable(B: int, T: int, H: int) -> bool:
    """Whether the two-part forward applies: one row, enough steps, H a multiple of 64 (each
    part's 4 gate blocks of H / 2 rows are whole 32-row panels)."""
    return B == 1 and T >= PAIR_MIN_T and H % 64 == 0


@njit(nogil=True, cache=True)
def pack_parts(w_ih, w_hh, b):
    """Each part's rows (gate by gate, its half of each) packed for the tiles, in one call:
    wpk_ih (2, 2H // 32, I, 32) = pack_t of part k's W_ih rows, bk (2, 2H) its biases, wpk_hh =
    (2, groups, H, nr) pack_rows_t of its W_hh rows. H % 64 == 0 (every panel of 32 part
    rows is 32 consecutive rows of W)."""
    G, I = w_ih.shape
    H = G // 4
    U, P = H // 2, 2 * H // NR
    nr = NR * (4 if w_ih.itemsize == 4 else 2)  # the one-row layout's group width
    wpk_ih = np.empty((2, P, I, NR), w_ih.dtype)
    wpk_hh = np.empty((2, (2 * H + nr - 1) // nr, H, nr), w_ih.dtype)
    bk = np.empty((2, 2 * H), w_ih.dtype)
    for k in range(2):
        for p in range(P):
            r = (NR * p) // U * H + k * U + (NR * p) % U  # W's first row in this panel
            transpose_into(w_ih, r * I, I, NR, I, wpk_ih, (k * P + p) * I * NR, NR)
            g, j = NR * p // nr, NR * p % nr
            transpose_into(
                w_hh, r * H, H, NR, H, wpk_hh, ((k * wpk_hh.shape[1] + g) * H) * nr + j, nr
            )
            bk[k, NR * p : NR * p + NR] = b[r : r + NR]
    return wpk_ih, bk, wpk_hh


@njit(**JIT)
def _project(k, x, wpk_ih, zk):
    """zk[k] (T, 2H) = x_t W_ih,k^T for every step."""
    T, I, G2 = x.shape[1], x.shape[2], zk.shape[2]
    tgemm(T, G2, I, x, 0, I, 1, wpk_ih[k], 0, NR, NR * I, 0.0, zk[k], 0, G2, I)


@njit(**JIT)
def _half(k, t, wpk_hh, bk, zk, hbuf, cbuf, tbuf, y, z, lens, cache):
    """Part k's step t: its gates from h_{t-1} (all of it), then its units' c_t, h_t, y_t."""
    S, H, St = hbuf.shape[1], hbuf.shape[2], tbuf.shape[1]
    U, G2 = H // 2, 2 * H
    tp, tn, u0 = t % S, (t + 1) % S, k * U
    zkk = zk[k]
    grow(G2 // NR, H, hbuf, tp * H, 1, wpk_hh[k], 1.0, zkk, t * G2)
    zr = zkk[t]
    _activate(zr, bk[k], U)
    hn, cn, cp = hbuf[0, tn, u0 : u0 + U], cbuf[0, tn, u0 : u0 + U], cbuf[0, tp, u0 : u0 + U]
    _cell(zr, cp, cn, tbuf[0, t % St, u0 : u0 + U], hn, U)
    yr = y[0, t, u0 : u0 + U]
    if t < lens[0]:
        yr[:] = hn
    else:  # past the end: carry the state, output zero
        hn[:] = hbuf[0, tp, u0 : u0 + U]
        cn[:] = cp
        yr[:] = 0.0
    if cache:  # the gates in the cache's layout (B, T, 4H)
        zt = z[0, t]
        for q in range(4):
            zt[q * H + u0 : q * H + u0 + U] = zr[q * U : (q + 1) * U]


@njit(**JIT)
def _part(k, x, wpk_ih, bk, wpk_hh, zk, hbuf, cbuf, tbuf, y, z, lens, cache, sync):
    T, o = x.shape[1], 1 - k
    _project(k, x, wpk_ih, zk)
    for t in range(T):
        _half(k, t, wpk_hh, bk, zk, hbuf, cbuf, tbuf, y, z, lens, cache)
        store_release(sync, 16 * k + 8, t + 1)
        n = 0
        while load_acquire(sync, 16 * o + 8) < t + 1:
            spin_pause()
            n += 1
            if t == 0 and n >= SPIN and load_acquire(sync, 16 * o) == 0 and cas(sync, 16 * o, 0, 2):
                # nobody runs the other share: do it all here (its step 0, then both halves)
                _project(o, x, wpk_ih, zk)
                _half(o, 0, wpk_hh, bk, zk, hbuf, cbuf, tbuf, y, z, lens, cache)
                for s in range(1, T):
                    _half(k, s, wpk_hh, bk, zk, hbuf, cbuf, tbuf, y, z, lens, cache)
                    _half(o, s, wpk_hh, bk, zk, hbuf, cbuf, tbuf, y, z, lens, cache)
                return


@njit(parallel=True, cache=True, nogil=True)
def forward_pair(x, wpk_ih, bk, wpk_hh, zk, hbuf, cbuf, tbuf, y, z, lens, cache):
    """x (1, T, I); hbuf, cbuf (1, S, H) with state 0 in [:, 0]; tbuf (1, T or 1, H); y (1, T, H);
    z (1, T, 4H) the gates when cache (else unused); zk (2, T, 2H) scratch; lens (1,)."""
    threads = get_threads()
    set_threads(1)
    sync = np.zeros(64, np.int64)
    for k in prange(2):
        if cas(sync, 16 * k, 0, 1):
            _part(k, x, wpk_ih, bk, wpk_hh, zk, hbuf, cbuf, tbuf, y, z, lens,
                  cache, sync)  # fmt: skip
    set_threads(threads)
