"""Fused LSTM: the reference's math (ops/lstm.py) with the time loop in compiled code.

Symbols: B batch, T steps, I input features, H hidden units, G = 4H gate rows (i, f, g, o).
Same signatures, dtypes and cache as ops.lstm, so either backward accepts either forward's cache:
    lstm_forward(x (B,T,I), (h0, c0) (B,H), w, lengths, need_cache) -> y (B,T,H), (h_n, c_n), cache
    lstm_backward(dy (B,T,H), (dh_n, dc_n), cache) -> dx (B,T,I), (dh0, dc0), grads
    lstm_step(x_t (B,I), (h, c), w) -> ((h_t, c_t), gates (B,4H))

Forward, per step t (rows b of one batch chunk; chunks run on separate cores, each with
single-threaded BLAS, since batch rows are independent until the weight gradients):
    z[:, t] = x_t W_ih^T            one GEMM for all of the chunk's steps, before the loop
    z[:, t] += h_{t-1} W_hh^T       GEMM with beta = 1 (gemv when the chunk has one row)
    a = act(z + (b_ih + b_hh))      in place: sigmoid on i, f, o; tanh on g
    c_t = f c_{t-1} + i g ;  h_t = o tanh(c_t)
Backward, per step t in reverse (dh, dc carried, (B, H)):
    dh_t = dh + dy_t ;  dc_t = dc + dh_t o (1 - tanh(c_t)^2)
    dz_o = dh_t tanh(c_t) o (1-o) ;  dz_i = dc_t g i (1-i) ;  dz_f = dc_t c_{t-1} f (1-f)
    dz_g = dc_t i (1 - g^2) ;  dh = dz W_hh (GEMM) ;  dc = dc_t f
Then dx = dz W_ih, dW_ih = dz^T x, dW_hh = dz^T h_{t-1}, db = sum dz: one GEMM each per chunk,
partial sums added at the end.
Rows past their length keep their state, output 0 and pass gradients through unchanged.
"""

from __future__ import annotations

import os

import numba
import numpy as np
from numba import njit, prange

from ..ops.lstm import LSTMCache, LSTMWeights
from ..ops.sequence import step_mask
from ._blas import get_threads, set_threads
from ._jit import JIT, NO_TRANS, TRANS, gemm, gemv, sigmoid_, tanh_

PARALLEL_MIN_WORK = 32 * 64  # B*H below which splitting the batch over cores does not pay

if "NUMBA_THREADING_LAYER" not in os.environ:
    # Numba's OpenMP layer took ~16 ms to start each parallel region on the 2-core test machine;
    # the workqueue layer ~0.1 ms. It applies to the whole process, so a user's explicit choice
    # (the environment variable) wins. (workqueue does not run two parallel regions at once.)
    numba.config.THREADING_LAYER = "workqueue"


# Loops run from 0 over views (z[:H], ...): offset indices such as z[2 * H + j] keep Numba from
# proving indices non-negative, and the wraparound check stopped LLVM vectorising (4x slower).
# No float literals either: 1.0 - x would promote float32 to float64.


@njit(**JIT)
def _activate(z, b, H):
    """z (4H,) pre-activations + b (4H,) -> gates in place: sigmoid on i, f, o; tanh on g."""
    s, bs = z[: 2 * H], b[: 2 * H]
    for j in range(2 * H):
        s[j] = sigmoid_(s[j] + bs[j])
    g, bg = z[2 * H : 3 * H], b[2 * H : 3 * H]
    for j in range(H):
        g[j] = tanh_(g[j] + bg[j])
    o, bo = z[3 * H :], b[3 * H :]
    for j in range(H):
        o[j] = sigmoid_(o[j] + bo[j])


@njit(**JIT)
def _cell(z, cp, cn, tc, hn, H):
    """Gates z (4H,), c_{t-1} (H,) -> c_t, tanh(c_t), h_t; one output array per loop."""
    i, f, g, o = z[:H], z[H : 2 * H], z[2 * H : 3 * H], z[3 * H :]
    for j in range(H):
        cn[j] = f[j] * cp[j] + i[j] * g[j]
    for j in range(H):
        tc[j] = tanh_(cn[j])
    for j in range(H):
        hn[j] = o[j] * tc[j]


@njit(**JIT)
def _forward_rows(z, b, w_hh, wt_hh, hbuf, cbuf, tbuf, y, lens, b0, b1):
    """Rows b0:b1 through all steps. z (B,T,4H) holds x W_ih^T and becomes the gates.

    wt_hh = W_hh^T (H, 4H) contiguous: OpenBLAS runs the NN product 1.5x faster than NT here.
    hbuf, cbuf (B, S, H) with S = T+1 (keep every state) or 2 (ring); tbuf (B, T or 1, H).
    """
    B, T, G = z.shape
    H, S, St, nb = G // 4, hbuf.shape[1], tbuf.shape[1], b1 - b0
    for t in range(T):
        tp, tn, tt = t % S, (t + 1) % S, t % St
        if nb == 1:
            gemv(NO_TRANS, G, H, w_hh, 0, H, hbuf, (b0 * S + tp) * H, 1.0, z, (b0 * T + t) * G)
        else:
            gemm(NO_TRANS, NO_TRANS, nb, G, H, hbuf, (b0 * S + tp) * H, S * H,
                 wt_hh, 0, G, 1.0, z, (b0 * T + t) * G, T * G)  # fmt: skip
        for r in range(b0, b1):
            zr, hn, cn, yr = z[r, t], hbuf[r, tn], cbuf[r, tn], y[r, t]
            _activate(zr, b, H)
            _cell(zr, cbuf[r, tp], cn, tbuf[r, tt], hn, H)
            if t < lens[r]:
                yr[:] = hn
            else:  # past the end: carry the state, output zero
                hn[:] = hbuf[r, tp]
                cn[:] = cbuf[r, tp]
                yr[:] = 0.0


@njit(**JIT)
def _forward_chunk(x, w_ih, wt_ih, b, w_hh, wt_hh, z, hbuf, cbuf, tbuf, y, lens, b0, b1):
    """Rows b0:b1: z = x W_ih^T (one GEMM over their T steps), then the time loop.

    wt_ih = W_ih^T (I, 4H) for the faster NN product, or (0, 0) when the transpose is not worth
    making (few rows); likewise wt_hh is only needed when a chunk has several rows.
    """
    B, T, I = x.shape
    G, M = z.shape[2], (b1 - b0) * T
    if wt_ih.shape[0] == 0:
        gemm(NO_TRANS, TRANS, M, G, I, x, b0 * T * I, I, w_ih, 0, I, 0.0, z, b0 * T * G, G)
    else:
        gemm(NO_TRANS, NO_TRANS, M, G, I, x, b0 * T * I, I, wt_ih, 0, G, 0.0, z, b0 * T * G, G)
    _forward_rows(z, b, w_hh, wt_hh, hbuf, cbuf, tbuf, y, lens, b0, b1)


@njit(**JIT)
def _forward_one(x, w_ih, wt_ih, b, w_hh, wt_hh, z, hbuf, cbuf, tbuf, y, lens):
    threads = get_threads()
    set_threads(1)
    _forward_chunk(x, w_ih, wt_ih, b, w_hh, wt_hh, z, hbuf, cbuf, tbuf, y, lens, 0, x.shape[0])
    set_threads(threads)


@njit(parallel=True, cache=True, nogil=True)
def _forward_par(x, w_ih, wt_ih, b, w_hh, wt_hh, z, hbuf, cbuf, tbuf, y, lens, chunks):
    B, threads = x.shape[0], get_threads()
    set_threads(1)
    for k in prange(chunks):
        _forward_chunk(x, w_ih, wt_ih, b, w_hh, wt_hh, z, hbuf, cbuf, tbuf, y, lens,
                       k * B // chunks, (k + 1) * B // chunks)  # fmt: skip
    set_threads(threads)


@njit(**JIT)
def _dz_row(dzr, g4, tc, cp, dhb, dcb, H):
    """One row of one step: dz (4H,) from the gates; dc (H,) becomes dc_t, then dc_t f."""
    i, f, g, o = g4[:H], g4[H : 2 * H], g4[2 * H : 3 * H], g4[3 * H :]
    di, df, dg, do = dzr[:H], dzr[H : 2 * H], dzr[2 * H : 3 * H], dzr[3 * H :]
    for j in range(H):
        dcb[j] += dhb[j] * o[j] - dhb[j] * o[j] * tc[j] * tc[j]
    for j in range(H):
        do[j] = dhb[j] * tc[j] * (o[j] - o[j] * o[j])
    for j in range(H):
        di[j] = dcb[j] * g[j] * (i[j] - i[j] * i[j])
    for j in range(H):
        df[j] = dcb[j] * cp[j] * (f[j] - f[j] * f[j])
    for j in range(H):
        dg[j] = dcb[j] * i[j] - dcb[j] * i[j] * g[j] * g[j]
    for j in range(H):
        dcb[j] *= f[j]


@njit(**JIT)
def _backward_rows(dy, has_dy, gates, cs, tcs, w_hh, lens, dh, dc, dz, tmp, b0, b1):
    """Rows b0:b1 of BPTT; dh, dc (B, H) carried in place; dz (B, T, 4H) written."""
    B, T, G = gates.shape
    H, nb = G // 4, b1 - b0
    full = True
    for r in range(b0, b1):
        full = full and lens[r] >= T
    out = dh if full else tmp  # rows past their end must keep dh, so go through tmp
    for t in range(T - 1, -1, -1):
        for r in range(b0, b1):
            if t >= lens[r]:
                dz[r, t] = 0.0
                continue
            dhb = dh[r]
            if has_dy:
                dyr = dy[r, t]
                for j in range(H):
                    dhb[j] += dyr[j]
            _dz_row(dz[r, t], gates[r, t], tcs[r, t], cs[r, t], dhb, dc[r], H)
        if nb == 1:
            gemv(TRANS, G, H, w_hh, 0, H, dz, (b0 * T + t) * G, 0.0, out, b0 * H)
        else:
            gemm(NO_TRANS, NO_TRANS, nb, H, G, dz, (b0 * T + t) * G, T * G,
                 w_hh, 0, H, 0.0, out, b0 * H, H)  # fmt: skip
        if not full:
            for r in range(b0, b1):
                if t < lens[r]:
                    dh[r] = tmp[r]


@njit(**JIT)
def _backward_chunk(dy, has_dy, gates, hs, cs, tcs, w_hh, lens, dh, dc, dz, tmp,
                    x, w_ih, dx, dw_ih, dw_hh, db, b0, b1):  # fmt: skip
    """Rows b0:b1: BPTT, then their share of dx and of the weight gradients (one GEMM each;
    dW_hh sums per-row GEMMs because h_{0..T-1} of consecutive rows are not adjacent in hs)."""
    B, T, I = x.shape
    G = gates.shape[2]
    H, nb = G // 4, b1 - b0
    _backward_rows(dy, has_dy, gates, cs, tcs, w_hh, lens, dh, dc, dz, tmp, b0, b1)
    gemm(NO_TRANS, NO_TRANS, nb * T, I, G, dz, b0 * T * G, G, w_ih, 0, I, 0.0, dx, b0 * T * I, I)
    gemm(TRANS, NO_TRANS, G, I, nb * T, dz, b0 * T * G, G, x, b0 * T * I, I, 0.0, dw_ih, 0, I)
    for b in range(b0, b1):
        beta = 0.0 if b == b0 else 1.0
        gemm(TRANS, NO_TRANS, G, H, T, dz, b * T * G, G, hs, b * (T + 1) * H, H, beta, dw_hh, 0, H)
    db[:] = 0.0
    for b in range(b0, b1):
        for t in range(T):
            db += dz[b, t]


@njit(**JIT)
def _backward_one(dy, has_dy, gates, hs, cs, tcs, w_hh, lens, dh, dc, dz, tmp,
                  x, w_ih, dx, dw_ih, dw_hh, db):  # fmt: skip
    threads = get_threads()
    set_threads(1)
    _backward_chunk(dy, has_dy, gates, hs, cs, tcs, w_hh, lens, dh, dc, dz, tmp,
                    x, w_ih, dx, dw_ih[0], dw_hh[0], db[0], 0, dh.shape[0])  # fmt: skip
    set_threads(threads)


@njit(parallel=True, cache=True, nogil=True)
def _backward_par(dy, has_dy, gates, hs, cs, tcs, w_hh, lens, dh, dc, dz, tmp,
                  x, w_ih, dx, dw_ih, dw_hh, db):  # fmt: skip
    """dw_ih, dw_hh, db carry a leading axis: one partial sum per chunk (a chunk on 1 row)."""
    B, chunks, threads = dh.shape[0], dw_ih.shape[0], get_threads()
    set_threads(1)
    for k in prange(chunks):
        _backward_chunk(dy, has_dy, gates, hs, cs, tcs, w_hh, lens, dh, dc, dz, tmp,
                        x, w_ih, dx, dw_ih[k], dw_hh[k], db[k],
                        k * B // chunks, (k + 1) * B // chunks)  # fmt: skip
    set_threads(threads)


@njit(**JIT)
def _step(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One step for all rows -> (h_t, c_t, gates (B, 4H)). Few arguments: each costs the
    dispatcher time, and a streaming step is mostly call overhead."""
    B, I = x.shape
    H = h.shape[1]
    G = 4 * H
    threads = get_threads()
    set_threads(1)
    z, b = np.empty((B, G), h.dtype), b_ih + b_hh
    hn, cn, tc = np.empty((B, H), h.dtype), np.empty((B, H), h.dtype), np.empty(H, h.dtype)
    if B == 1:
        gemv(NO_TRANS, G, I, w_ih, 0, I, x, 0, 0.0, z, 0)
        gemv(NO_TRANS, G, H, w_hh, 0, H, h, 0, 1.0, z, 0)
    else:
        gemm(NO_TRANS, TRANS, B, G, I, x, 0, I, w_ih, 0, I, 0.0, z, 0, G)
        gemm(NO_TRANS, TRANS, B, G, H, h, 0, H, w_hh, 0, H, 1.0, z, 0, G)
    for r in range(B):
        _activate(z[r], b, H)
        _cell(z[r], c[r], cn[r], tc, hn[r], H)
    set_threads(threads)
    return hn, cn, z


# --- Python entry points, same signatures as ops.lstm -------------------------------------------


def _chunks(B: int, H: int) -> int:
    """How many cores share the batch: 1 for small work, else the thread count (max one row each)."""
    if B < 2 or B * H < PARALLEL_MIN_WORK:
        return 1
    return min(B, numba.get_num_threads())


def _lens(mask, B: int, T: int) -> np.ndarray:
    """(B,) int64 valid lengths from the (B, T) prefix mask (None: all T)."""
    if mask is None:
        return np.full(B, T, np.int64)
    return mask.sum(axis=1).astype(np.int64)


def _c(a, dt):
    """a as a C-contiguous array of dtype dt, copying only when needed (the BLAS calls need it)."""
    if type(a) is np.ndarray and a.dtype == dt and a.flags.c_contiguous:
        return a
    return np.ascontiguousarray(a, dt)


def _contig(w: LSTMWeights, dt) -> LSTMWeights:
    return LSTMWeights(*(_c(a, dt) for a in w))


def lstm_forward(x, state0, weights, lengths=None, need_cache=True):
    """Fused `ops.lstm.lstm_forward`; see that function for the contract."""
    x = np.ascontiguousarray(x)
    dt = x.dtype
    B, T, I = x.shape
    w = _contig(weights, dt)
    H = w.w_hh.shape[1]
    no_t = np.empty((0, 0), dt)
    wt_ih = np.ascontiguousarray(w.w_ih.T) if B * T >= 16 else no_t  # (I, 4H)
    wt_hh = np.ascontiguousarray(w.w_hh.T) if B > 1 else no_t  # (H, 4H)
    mask = step_mask(lengths, B, T)
    z = np.empty((B, T, 4 * H), dt)  # (B, T, 4H) pre-activations, then gates
    S = T + 1 if need_cache else 2  # keep every state, or a ring of two
    hbuf, cbuf = np.empty((B, S, H), dt), np.empty((B, S, H), dt)
    hbuf[:, 0], cbuf[:, 0] = state0
    tbuf = np.empty((B, T if need_cache else 1, H), dt)
    y = np.empty((B, T, H), dt)
    args = (
        x,
        w.w_ih,
        wt_ih,
        w.b_ih + w.b_hh,
        w.w_hh,
        wt_hh,
        z,
        hbuf,
        cbuf,
        tbuf,
        y,
        _lens(mask, B, T),
    )
    chunks = _chunks(B, H)
    if chunks == 1:
        _forward_one(*args)
    else:
        _forward_par(*args, chunks)
    state = (hbuf[:, T % S].copy(), cbuf[:, T % S].copy())
    cache = LSTMCache(x, hbuf, cbuf, z, tbuf, mask, w) if need_cache else None
    return y, state, cache


def lstm_backward(dy, dstate, cache):
    """Fused `ops.lstm.lstm_backward`; accepts a cache from either forward."""
    x, hs, cs, gates, tcs, mask, w = cache
    x = _c(x, x.dtype)
    dt = x.dtype
    B, T, I = x.shape
    H = hs.shape[-1]
    w = _contig(w, dt)
    gates, hs, cs, tcs = (_c(a, dt) for a in (gates, hs, cs, tcs))
    dh = np.zeros((B, H), dt) if dstate[0] is None else np.array(dstate[0], dtype=dt)
    dc = np.zeros((B, H), dt) if dstate[1] is None else np.array(dstate[1], dtype=dt)
    has_dy = dy is not None
    dy = _c(dy, dt) if has_dy else np.empty((1, 1, 1), dt)
    dz = np.empty((B, T, 4 * H), dt)  # (B, T, 4H) gradient w.r.t. pre-activations
    dx = np.empty((B, T, I), dt)
    chunks = _chunks(B, H)
    dw_ih = np.empty((chunks, 4 * H, I), dt)  # one partial sum per chunk
    dw_hh, db = np.empty((chunks, 4 * H, H), dt), np.empty((chunks, 4 * H), dt)
    args = (dy, has_dy, gates, hs, cs, tcs, w.w_hh, _lens(mask, B, T), dh, dc, dz)
    args += (np.empty((B, H), dt), x, w.w_ih, dx)
    (_backward_one if chunks == 1 else _backward_par)(*args, dw_ih, dw_hh, db)
    dw_ih, dw_hh, db = dw_ih.sum(0), dw_hh.sum(0), db.sum(0)
    return dx, (dh, dc), LSTMWeights(dw_ih, dw_hh, db, db.copy())


def lstm_step(x_t, state, weights):
    """Fused `ops.lstm.lstm_step`: x_t (B, I), (h, c) (B, H) -> ((h_t, c_t), gates (B, 4H))."""
    h, c = state
    dt = h.dtype
    hn, cn, z = _step(*(_c(a, dt) for a in (x_t, h, c, *weights)))
    return (hn, cn), z


forward, backward, step = lstm_forward, lstm_backward, lstm_step
