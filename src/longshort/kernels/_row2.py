"""A batch of one on two cores: the forward's hidden units split between them, step by step.

With B = 1 there are no batch rows to share out, and the per-step work (a one-row product with
W_hh and the cell) is too small for a parallel region per step (microseconds to start one). So
one region runs the whole sequence: part k (k = 0, 1) owns hidden units k U .. (k+1) U - 1,
U = H / 2, that is 4 blocks of U gate rows, and computes per step t

    z_k = x_t W_ih,k^T + h_{t-1} W_hh,k^T      (2H,): gates i, f, g, o of its units, in that order
    a_k = act(z_k + b_k) ;  c_t[k] = f c_{t-1}[k] + i g ;  h_t[k] = o tanh(c_t[k])

W_.,k = the rows of part k, packed once per call (pack_parts). Both halves of step t read all of
h_{t-1}, so a half-step (p, t) is published (progress[p] = t + 1, an atomic release store,
_atomic.py) and the next step starts only when both halves of this one are (acquire loads).

Each half-step is claimed by compare-and-swap (claim[p]: t -> t + 1) by exactly one thread.
Normally thread k computes part k and waits (`pause`) for the other half. If that half has not
come after STEAL waits, the other thread is away (descheduled on a busy machine, or not started:
a pool may run both iterations one after the other on one thread), so this thread claims it and
computes it itself, and waits only QUICK rounds at the next step; a late thread finds its
half-steps claimed and runs through. So nothing can deadlock, a loaded machine degrades to about
one core's speed instead of waiting on every step, and every half-step is still computed once,
from a complete h_{t-1}: a slot of the (1, 2, H) state ring is only rewritten at step t + 1, after
both halves of step t, its last readers, have been published. Long waits call sched_yield every
YIELD rounds. Part p's input products x W_ih,p^T for all steps are done with its step 0.

sync (SYNC,) int64, zeroed per call: claim[p] at CLAIM + 8 p, progress[p] at DONE + 8 p (each on
its own cache line).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import _threads
from ._atomic import cas, load_acquire, sched_yield, spin_pause, store_release
from ._blas import get_threads, set_threads
from ._jit import JIT
from ._lstm_loops import _activate_at, _cell_at, _copy, _zero
from ._tiles import _NP_D, _NP_S, NR, grow, tgemm, transpose_into

PAIR_MIN_T = 16  # shorter sequences: one core (the region's start costs more than it saves)
STEAL = 512  # `pause` rounds a thread waits for the other's half-step before doing it itself
QUICK = 8  # ... right after it had to (the other thread is probably still away)
YIELD = 1024  # `pause` rounds between sched_yield calls in a long wait
CLAIM, DONE, SYNC = 0, 16, 32  # sync: claim[p] at CLAIM + 8 p, progress[p] at DONE + 8 p


def usable(B: int, T: int, I: int, H: int) -> bool:
    """Whether the two-part forward applies: one row, enough steps, an input, H a multiple of 64
    (each part's 4 gate blocks of H / 2 rows are whole 32-row panels), and Numba's TBB layer
    (_threads.py), whose worker joins in microseconds: workqueue's took longer than a whole
    short call (2.5-17x slower than one core at H <= 128), so it keeps the one-core kernel."""
    return B == 1 and T >= PAIR_MIN_T and I > 0 and H % 64 == 0 and _threads.LAYER == "tbb"


@njit(nogil=True, cache=True)
def pack_parts(w_ih, w_hh, b):
    """Each part's rows (gate by gate, its half of each) packed for the tiles, in one call:
    wpk_ih (2, 2H // 32, I, 32) = pack_t of part k's W_ih rows, bk (2, 2H) its biases, wpk_hh =
    (2, groups, H, nr) pack_rows_t of its W_hh rows. H % 64 == 0 (every panel of 32 part
    rows is 32 consecutive rows of W)."""
    G, I = w_ih.shape
    H = G // 4
    U, P = H // 2, 2 * H // NR
    nr = NR * (_NP_S if w_ih.itemsize == 4 else _NP_D)  # the one-row layout's group width
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
    T, I, G2, P = x.shape[1], x.shape[2], zk.shape[2], wpk_ih.shape[1]
    tgemm(T, G2, I, x, 0, I, 1, wpk_ih, k * P * I * NR, NR, NR * I, 0.0, zk, k * T * G2, G2, I)


@njit(**JIT)
def _half(k, t, wh0, wh1, bkf, zkf, hf, cf, tf, yf, zf, lens, cache, T, S, St, H):
    """Part k's step t: its gates from h_{t-1} (all of it), then its units' c_t, h_t, y_t.
    Flat arrays (_part): zkf = zk, hf, cf = hbuf, cbuf (S, H), tf = tbuf (St, H), yf = y, zf = z;
    wh0, wh1 = wpk_hh[0], wpk_hh[1] (the tiles take a part's panels as an array)."""
    U, G2 = H // 2, 2 * H
    tp, tn, u0 = t % S, (t + 1) % S, k * U
    zo = (k * T + t) * G2
    if k == 0:
        grow(G2 // NR, H, hf, tp * H, 1, wh0, 1.0, zkf, zo)
    else:
        grow(G2 // NR, H, hf, tp * H, 1, wh1, 1.0, zkf, zo)
    _activate_at(zkf, zo, bkf, k * G2, U)
    hp, hn, yo = tp * H + u0, tn * H + u0, t * H + u0
    _cell_at(zkf, zo, cf, hp, cf, hn, tf, (t % St) * H + u0, hf, hn, U)
    if t < lens[0]:
        _copy(yf, yo, hf, hn, U)
    else:  # past the end: carry the state, output zero
        _copy(hf, hn, hf, hp, U)
        _copy(cf, hn, cf, hp, U)
        _zero(yf, yo, U)
    if cache:  # the gates in the cache's layout (B, T, 4H)
        for q in range(4):
            _copy(zf, t * 4 * H + q * H + u0, zkf, zo + q * U, U)


@njit(**JIT)
def _claim_and_run(p, t, x, wpk_ih, zk, wh0, wh1, bkf, zkf, hf, cf, tf, yf, zf, lens, cache, dims,
                   sync):  # fmt: skip
    """Compute half-step (p, t) if this thread wins its claim (claim[p]: t -> t + 1), then
    publish it (progress[p] = t + 1); False if another thread has it. Part p's step 0 also
    does its input products. dims = (T, S, St, H)."""
    if not cas(sync, CLAIM + 8 * p, t, t + 1):
        return False
    if t == 0:
        _project(p, x, wpk_ih, zk)
    T, S, St, H = dims
    _half(p, t, wh0, wh1, bkf, zkf, hf, cf, tf, yf, zf, lens, cache, T, S, St, H)
    store_release(sync, DONE + 8 * p, t + 1)
    return True


@njit(**JIT)
def _part(k, x, wpk_ih, bk, wpk_hh, zk, hbuf, cbuf, tbuf, y, z, lens, cache, sync):
    """One thread's walk through the steps: at each step its own half first, then the other's,
    each either computed here (own: at once; other's: after `patience` waits) or awaited.
    The buffers are flattened here, once (module docstring of _lstm_loops.py)."""
    T, patience, own = x.shape[1], STEAL, np.int64(k)  # (prange's index may be unsigned)
    dims = (T, hbuf.shape[1], tbuf.shape[1], hbuf.shape[2])
    wh0, wh1, bkf, zkf = wpk_hh[0], wpk_hh[1], bk.reshape(-1), zk.reshape(-1)
    hf, cf, tf = hbuf.reshape(-1), cbuf.reshape(-1), tbuf.reshape(-1)
    yf, zf = y.reshape(-1), z.reshape(-1)
    bufs = (wh0, wh1, bkf, zkf, hf, cf, tf, yf, zf)
    for t in range(T):
        for q in range(2):
            p = own if q == 0 else 1 - own
            n = 0
            while load_acquire(sync, DONE + 8 * p) < t + 1:
                if (q == 0 or n >= patience) and _claim_and_run(
                    p, t, x, wpk_ih, zk, *bufs, lens, cache, dims, sync
                ):
                    if q == 1:  # the other thread is away: do not wait long next time
                        patience = QUICK
                    break
                spin_pause()
                n += 1
                if n % YIELD == 0:  # a long wait: the other thread may need this core
                    sched_yield()
            else:
                if q == 1:  # the other thread did its half: it is running, wait for it again
                    patience = STEAL


@njit(nogil=True, cache=True)
def _pair_setup(x, w_ih, w_hh, b_ih, b_hh, h0, c0, cache):
    """forward_pair's panels and buffers, outside its parallel region (see
    _lstm_loops._forward_setup): (wpk_ih, bk, wpk_hh, zk, hbuf, cbuf, tbuf, y, z, sync)."""
    T, H, dt = x.shape[1], w_hh.shape[1], x.dtype
    wpk_ih, bk, wpk_hh = pack_parts(w_ih, w_hh, b_ih + b_hh)
    S = T + 1 if cache else 2
    hbuf, cbuf = np.empty((1, S, H), dt), np.empty((1, S, H), dt)
    hbuf[0, 0], cbuf[0, 0] = h0[0], c0[0]
    tbuf, y = np.empty((1, T if cache else 1, H), dt), np.empty((1, T, H), dt)
    z = np.empty((1, T if cache else 1, 4 * H), dt)  # the gates, for the cache
    zk = np.empty((2, T, 2 * H), dt)  # each part's gates, in its own row order
    return wpk_ih, bk, wpk_hh, zk, hbuf, cbuf, tbuf, y, z, np.zeros(SYNC, np.int64)


@njit(parallel=True, cache=True, nogil=True)
def forward_pair(x, w_ih, w_hh, b_ih, b_hh, h0, c0, lens, cache):
    """The forward of x (1, T, I) from the weights and the initial state h0, c0 (1, H), the two
    parts on two threads (module docstring), in ONE compiled call: the panels and buffers are
    made here (the Python around a (1, 100, 32, 128) forward took 26 of its 150 us, half of it
    the packing called from Python). lens (1,). Returns (y (1, T, H), hbuf, cbuf (1, S, H) with
    S = T + 1 when cache else a ring of 2, tbuf (1, T or 1, H), z (1, T or 1, 4H): the gates in
    the cache's layout when cache)."""
    wpk_ih, bk, wpk_hh, zk, hbuf, cbuf, tbuf, y, z, sync = _pair_setup(
        x, w_ih, w_hh, b_ih, b_hh, h0, c0, cache
    )
    threads = get_threads()
    set_threads(1)
    for k in prange(2):
        _part(k, x, wpk_ih, bk, wpk_hh, zk, hbuf, cbuf, tbuf, y, z, lens, cache, sync)
    set_threads(threads)
    return y, hbuf, cbuf, tbuf, z
