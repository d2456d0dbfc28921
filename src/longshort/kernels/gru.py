"""Fused GRU: the math of ops/gru.py (PyTorch's GRU) with the time loop in compiled code.

Symbols: B batch, T steps, I input features, H hidden units, G = 3H gate rows (r, z, n).
Same signatures and cache (GRUCache) as ops.gru, so either backward accepts either forward's cache:
    gru_forward(x (B,T,I), h0 (B,H), w, lengths, need_cache) -> y (B,T,H), h_n (B,H), cache
    gru_backward(dy (B,T,H), dh_n (B,H), cache) -> dx (B,T,I), dh0 (B,H), grads
    gru_step(x_t (B,I), h (B,H), w) -> h_t (B,H)

Forward, per step t (rows of one batch chunk; chunks run on separate cores as in kernels/lstm.py):
    g[:, t] = x_t W_ih^T            one GEMM for all of the chunk's steps, before the loop
    gh = h_{t-1} W_hh^T             tiles (_tiles.tgemm; gemv for one row), into a (B, 3H) scratch
    r = sigmoid(g_r + b_ir + gh_r + b_hr) ;  z = sigmoid(g_z + b_iz + gh_z + b_hz)
    ghn = gh_n + b_hn ;  n = tanh(g_n + b_in + r ghn) ;  h_t = n + z (h_{t-1} - n)
    g[:, t] becomes the gates (r, z, n); ghn is kept for the backward.
Backward, per step t in reverse (dh carried, (B, H)):
    dh_t = dh + dy_t ;  dn = dh_t (1 - z) (1 - n^2) ;  dgx = (dn ghn r (1-r), dh_t (h_{t-1} - n)
    z (1-z), dn) ;  dgh = dgx with its n block times r ;  dh = dh_t z + dgh W_hh (tiles, beta = 1)
Then dx = dgx W_ih, dW_ih = dgx^T x, dW_hh = dgh^T h_{t-1}, db_ih = sum dgx, db_hh = sum dgh.
Rows past their length keep their state, output 0 and pass gradients through unchanged.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

from ..ops import gru as ref
from ..ops.gru import GRUCache, GRUWeights
from ..ops.sequence import step_mask
from ._affinity import pin_chunk
from ._blas import get_threads, set_threads
from ._jit import JIT, NO_TRANS, TRANS, gemm, gemv, sigmoid_, tanh_
from ._lstm_loops import _add, _copy, _zero, fold
from ._tiles import tgemm, transpose
from .lstm import _c, _contig, _cores, _lens

# As in _lstm_loops.py: the per-row loops index whole arrays flattened once per call
# (g.reshape(-1)) at uint64 offsets, no views inside the time and row loops (each costs an atomic
# reference count increment and decrement); one output array per loop, no float literals.


@njit(**JIT)
def _cell(g, go, gh, ho, bi, bh, hb, po, no, ghn, so, H):
    """g[go : go + 3H] = x W_ih^T -> gates r, z, n in place; gh[ho : ho + 3H] = h_{t-1} W_hh^T;
    h_{t-1} = hb[po : po + H], h_t into hb[no : no + H], W_hn h_{t-1} + b_hn into ghn[so:]
    (flat arrays, offsets)."""
    go, ho, po, no, so, Hu = uint64(go), uint64(ho), uint64(po), uint64(no), uint64(so), uint64(H)
    r, z, n, H2 = go, go + Hu, go + Hu + Hu, Hu + Hu
    for j in range(Hu):
        g[r + j] = sigmoid_(g[r + j] + bi[j] + gh[ho + j] + bh[j])
    for j in range(Hu):
        g[z + j] = sigmoid_(g[z + j] + bi[Hu + j] + gh[ho + Hu + j] + bh[Hu + j])
    for j in range(Hu):
        ghn[so + j] = gh[ho + H2 + j] + bh[H2 + j]
    for j in range(Hu):
        g[n + j] = tanh_(g[n + j] + bi[H2 + j] + g[r + j] * ghn[so + j])
    for j in range(Hu):
        hb[no + j] = g[n + j] + g[z + j] * (hb[po + j] - g[n + j])


@njit(**JIT)
def _forward_chunk(x, w_ih, b_ih, w_hh, wt_hh, b_hh, g, gh, ghn, hbuf, y, lens, b0, b1):
    """Rows b0:b1 through all steps; hbuf (B, S, H) with S = T+1 or 2 (ring), ghn (B, T or 1, H)."""
    B, T, I = x.shape
    G, S, Sn, nb = g.shape[2], hbuf.shape[1], ghn.shape[1], b1 - b0
    H = G // 3
    gemm(NO_TRANS, TRANS, nb * T, G, I, x, b0 * T * I, I, w_ih, 0, I, 0.0, g, b0 * T * G, G)
    gf, ghf, nf = g.reshape(-1), gh.reshape(-1), ghn.reshape(-1)
    hf, yf = hbuf.reshape(-1), y.reshape(-1)
    for t in range(T):
        tp, tn = t % S, (t + 1) % S
        if nb == 1:
            gemv(NO_TRANS, G, H, w_hh, 0, H, hbuf, (b0 * S + tp) * H, 0.0, gh, b0 * G)
        else:
            tgemm(nb, G, H, hbuf, (b0 * S + tp) * H, S * H, 1,
                  wt_hh, 0, G, 32, 0.0, gh, b0 * G, G, H)  # fmt: skip
        for r in range(b0, b1):
            hp, hn, yo = (r * S + tp) * H, (r * S + tn) * H, (r * T + t) * H
            _cell(gf, (r * T + t) * G, ghf, r * G, b_ih, b_hh, hf, hp, hn, nf,
                  (r * Sn + t % Sn) * H, H)  # fmt: skip
            if t < lens[r]:
                _copy(yf, yo, hf, hn, H)
            else:  # past the end: carry the state, output zero
                _copy(hf, hn, hf, hp, H)
                _zero(yf, yo, H)


@njit(**JIT)
def _dcell(dgx, xo, dgh, ho, g, go, ghn, so, hs, po, dhb, do, out, oo, H):
    """One row of one step (flat arrays, offsets): dgx[xo : xo + 3H], dgh[ho : ho + 3H] from
    dh_t = dhb[do : do + H], the gates g[go:], ghn[so:] and h_{t-1} = hs[po:];
    out[oo : oo + H] = dh_t z (may alias dhb)."""
    xo, ho, go, so, po = uint64(xo), uint64(ho), uint64(go), uint64(so), uint64(po)
    do, oo, Hu = uint64(do), uint64(oo), uint64(H)
    r, z, n = go, go + Hu, go + Hu + Hu
    dr, dz, dn = xo, xo + Hu, xo + Hu + Hu
    for j in range(Hu):
        a = dhb[do + j] - dhb[do + j] * g[z + j]
        dgx[dn + j] = a - a * g[n + j] * g[n + j]
    for j in range(Hu):
        dgx[dr + j] = dgx[dn + j] * ghn[so + j] * (g[r + j] - g[r + j] * g[r + j])
    for j in range(Hu):
        dgx[dz + j] = dhb[do + j] * (hs[po + j] - g[n + j]) * (g[z + j] - g[z + j] * g[z + j])
    _copy(dgh, ho, dgx, xo, H + H)  # the r and z blocks
    hn = ho + Hu + Hu
    for j in range(Hu):
        dgh[hn + j] = dgx[dn + j] * g[r + j]
    for j in range(Hu):
        out[oo + j] = dhb[do + j] * g[z + j]


@njit(**JIT)
def _backward_chunk(dy, has_dy, gates, hs, ghn, w_hh, lens, dh, dgx, dgh, tmp,
                    x, w_ih, dx, dw_ih, dw_hh, db_ih, db_hh, b0, b1):  # fmt: skip
    """Rows b0:b1 of BPTT (dh (B, H) carried in place), then their share of dx and the grads."""
    B, T, I = x.shape
    G, nb = gates.shape[2], b1 - b0
    H = G // 3
    full = True
    for r in range(b0, b1):
        full = full and lens[r] >= T
    out = dh if full else tmp  # rows past their end must keep dh, so go through tmp
    gf, hf, nf, dyf = gates.reshape(-1), hs.reshape(-1), ghn.reshape(-1), dy.reshape(-1)
    dgxf, dghf, dhf, outf = dgx.reshape(-1), dgh.reshape(-1), dh.reshape(-1), out.reshape(-1)
    tmpf = tmp.reshape(-1)
    for t in range(T - 1, -1, -1):
        for r in range(b0, b1):
            k = r * T + t
            if t >= lens[r]:
                _zero(dgxf, k * G, G)
                _zero(dghf, k * G, G)
                continue
            if has_dy:
                _add(dhf, r * H, dyf, k * H, H)
            _dcell(dgxf, k * G, dghf, k * G, gf, k * G, nf, k * H, hf, (k + r) * H, dhf, r * H,
                   outf, r * H, H)  # fmt: skip
        if nb == 1:
            gemv(TRANS, G, H, w_hh, 0, H, dgh, (b0 * T + t) * G, 1.0, out, b0 * H)
        else:
            tgemm(nb, H, G, dgh, (b0 * T + t) * G, T * G, 1,
                  w_hh, 0, H, 32, 1.0, out, b0 * H, H, G)  # fmt: skip
        if not full:
            for r in range(b0, b1):
                if t < lens[r]:
                    _copy(dhf, r * H, tmpf, r * H, H)
    gemm(NO_TRANS, NO_TRANS, nb * T, I, G, dgx, b0 * T * G, G, w_ih, 0, I, 0.0, dx, b0 * T * I, I)
    gemm(TRANS, NO_TRANS, G, I, nb * T, dgx, b0 * T * G, G, x, b0 * T * I, I, 0.0, dw_ih, 0, I)
    for b in range(b0, b1):  # h_0..h_{T-1} of consecutive rows are not adjacent in hs
        beta = 0.0 if b == b0 else 1.0
        gemm(TRANS, NO_TRANS, G, H, T, dgh, b * T * G, G, hs, b * (T + 1) * H, H, beta, dw_hh, 0, H)
    db_ih[:] = 0.0
    db_hh[:] = 0.0
    for k in range(b0 * T, b1 * T):
        _add(db_ih, 0, dgxf, k * G, G)
        _add(db_hh, 0, dghf, k * G, G)


@njit(**JIT)
def _forward_one(x, w_ih, b_ih, w_hh, wt_hh, b_hh, g, gh, ghn, hbuf, y, lens):
    threads = get_threads()
    set_threads(1)
    _forward_chunk(x, w_ih, b_ih, w_hh, wt_hh, b_hh, g, gh, ghn, hbuf, y, lens, 0, x.shape[0])
    set_threads(threads)


@njit(parallel=True, cache=True, nogil=True)
def _forward_par(x, w_ih, b_ih, w_hh, wt_hh, b_hh, g, gh, ghn, hbuf, y, lens, chunks):
    B, threads = x.shape[0], get_threads()
    set_threads(1)
    for k in prange(chunks):
        pin_chunk(k)  # one core per chunk (_affinity.py)
        _forward_chunk(x, w_ih, b_ih, w_hh, wt_hh, b_hh, g, gh, ghn, hbuf, y, lens,
                       k * B // chunks, (k + 1) * B // chunks)  # fmt: skip
    set_threads(threads)


@njit(**JIT)
def _backward_one(dy, has_dy, gates, hs, ghn, w_hh, lens, dh, dgx, dgh, tmp,
                  x, w_ih, dx, dw_ih, dw_hh, db_ih, db_hh):  # fmt: skip
    threads = get_threads()
    set_threads(1)
    _backward_chunk(dy, has_dy, gates, hs, ghn, w_hh, lens, dh, dgx, dgh, tmp, x, w_ih, dx,
                    dw_ih[0], dw_hh[0], db_ih[0], db_hh[0], 0, x.shape[0])  # fmt: skip
    set_threads(threads)


@njit(parallel=True, cache=True, nogil=True)
def _backward_par(dy, has_dy, gates, hs, ghn, w_hh, lens, dh, dgx, dgh, tmp,
                  x, w_ih, dx, dw_ih, dw_hh, db_ih, db_hh):  # fmt: skip
    """dw_ih, dw_hh, db_ih, db_hh carry a leading axis: one partial sum per chunk; on return the
    first holds the total (_lstm_loops.fold, each core a block of gate rows)."""
    B, chunks, threads = x.shape[0], dw_ih.shape[0], get_threads()
    set_threads(1)
    for k in prange(chunks):
        pin_chunk(k)  # one core per chunk (_affinity.py)
        _backward_chunk(dy, has_dy, gates, hs, ghn, w_hh, lens, dh, dgx, dgh, tmp, x, w_ih, dx,
                        dw_ih[k], dw_hh[k], db_ih[k], db_hh[k],
                        k * B // chunks, (k + 1) * B // chunks)  # fmt: skip
    for k in prange(chunks):
        fold(dw_ih, k, chunks)
        fold(dw_hh, k, chunks)
        fold(db_ih, k, chunks)
        fold(db_hh, k, chunks)
    set_threads(threads)


def gru_forward(x, h0, weights, lengths=None, need_cache=True):
    """Fused `ops.gru.gru_forward`; see that function for the contract."""
    if len(x) == 0:  # an empty batch: nothing to compute, and the kernels assume rows
        return ref.gru_forward(x, h0, weights, lengths, need_cache)
    if type(x) is not np.ndarray or not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)
    dt = x.dtype
    B, T, I = x.shape
    w = _contig(weights, dt)
    H = w.w_hh.shape[1]
    wt_hh = transpose(w.w_hh) if B > 1 else np.empty((0, 0), dt)  # (H, 3H)
    mask = None if lengths is None else step_mask(lengths, B, T)
    g = np.empty((B, T, 3 * H), dt)  # (B, T, 3H) input projections, then gates
    S = T + 1 if need_cache else 2  # keep every state, or a ring of two
    hbuf = np.empty((B, S, H), dt)
    hbuf[:, 0] = h0
    ghn = np.empty((B, T if need_cache else 1, H), dt)  # (B, T, H) W_hn h_{t-1} + b_hn
    y = np.empty((B, T, H), dt)
    args = (x, w.w_ih, w.b_ih, w.w_hh, wt_hh, w.b_hh, g, np.empty((B, 3 * H), dt), ghn, hbuf, y)
    args += (_lens(mask, B, T),)
    with _cores(B, H) as chunks:  # 1 for small work, without taking the parallel lock
        if chunks == 1:
            _forward_one(*args)
        else:
            _forward_par(*args, chunks)
    h_n = hbuf[:, T % S].copy()
    cache = GRUCache(x, hbuf, g, ghn, mask, w) if need_cache else None
    return y, h_n, cache


def gru_backward(dy, dh_n, cache):
    """Fused `ops.gru.gru_backward`; accepts a cache from either forward."""
    if len(cache.x) == 0:  # an empty batch (see gru_forward)
        return ref.gru_backward(dy, dh_n, cache)
    x, hs, gates, ghn, mask, w = cache
    x = _c(x, x.dtype)
    dt = x.dtype
    B, T, I = x.shape
    H = hs.shape[-1]
    w = _contig(w, dt)
    hs, gates, ghn = _c(hs, dt), _c(gates, dt), _c(ghn, dt)
    dh = np.zeros((B, H), dt) if dh_n is None else np.array(dh_n, dtype=dt)
    has_dy = dy is not None
    dy = _c(dy, dt) if has_dy else np.empty((1, 1, 1), dt)
    dgx, dgh = np.empty((B, T, 3 * H), dt), np.empty((B, T, 3 * H), dt)
    args = (dy, has_dy, gates, hs, ghn, w.w_hh, _lens(mask, B, T), dh, dgx, dgh)
    args += (np.zeros((B, H), dt), x, w.w_ih, np.empty((B, T, I), dt))
    with _cores(B, H) as chunks:
        dw_ih, dw_hh = np.empty((chunks, 3 * H, I), dt), np.empty((chunks, 3 * H, H), dt)
        db_ih, db_hh = np.empty((chunks, 3 * H), dt), np.empty((chunks, 3 * H), dt)
        (_backward_one if chunks == 1 else _backward_par)(*args, dw_ih, dw_hh, db_ih, db_hh)
    grads = GRUWeights(dw_ih[0], dw_hh[0], db_ih[0], db_hh[0])  # the chunks' sums, folded
    return args[13], dh, grads


def gru_step(x_t, h, weights):
    """Fused `ops.gru.gru_step`: x_t (B, I), h (B, H) -> h_t (B, H)."""
    h = np.asarray(h)
    x_t = np.asarray(x_t, h.dtype)
    _, h_n, _ = gru_forward(x_t[:, None], h, weights, None, False)
    return h_n


forward, backward, step = gru_forward, gru_backward, gru_step
