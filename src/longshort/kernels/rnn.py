"""Fused Elman RNN: the math of ops/rnn.py with the time loop in compiled code.

Symbols: B batch, T steps, I input features, H hidden units; phi = tanh or relu.
Same signatures and cache (RNNCache) as ops.rnn:
    rnn_forward(x (B,T,I), h0 (B,H), w, lengths, need_cache, *, nonlinearity) -> y, h_n, cache
    rnn_backward(dy (B,T,H), dh_n (B,H), cache) -> dx (B,T,I), dh0 (B,H), grads
    rnn_step(x_t (B,I), h (B,H), w, *, nonlinearity) -> h_t (B,H)

Forward, per step:  a = x_t W_ih^T (one GEMM for all steps) + h_{t-1} W_hh^T (tiles, beta = 1)
                    h_t = phi(a + b_ih + b_hh)
Backward, per step: da = (dh + dy_t) phi'(h_t), with tanh' = 1 - h_t^2 and relu' = [h_t > 0]
                    dh = da W_hh (tiles); then dx, dW_ih, dW_hh, db: one GEMM each per chunk.
Batch chunks run on separate cores as in kernels/lstm.py; rows past their length carry the state.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

from ..ops import rnn as ref
from ..ops.rnn import RNNCache, RNNWeights
from ..ops.sequence import step_mask
from ._affinity import pin_chunk
from ._blas import get_threads, set_threads
from ._jit import JIT, NO_TRANS, TRANS, gemm, gemv, tanh_
from ._lstm_loops import _add, _copy, _zero, fold, weight_grads
from ._tiles import tgemm, transpose
from .lstm import _c, _contig, _cores, _lens

# As in _lstm_loops.py: the per-row loops index whole arrays flattened once per call
# (z.reshape(-1)) at uint64 offsets, no views inside the time and row loops (each costs an atomic
# reference count increment and decrement); no float literals.


@njit(**JIT)
def _phi(a, ao, b, h, ho, H, relu):
    """h[ho : ho + H] = phi(a[ao : ao + H] + b) (flat arrays, offsets)."""
    ao, ho = uint64(ao), uint64(ho)
    if relu:
        for j in range(uint64(H)):
            v = a[ao + j] + b[j]
            h[ho + j] = v if v > 0 else v - v  # v - v: a zero of the array's dtype
    else:
        for j in range(uint64(H)):
            h[ho + j] = tanh_(a[ao + j] + b[j])


@njit(**JIT)
def _forward_chunk(x, w_ih, b, w_hh, wt_hh, z, hbuf, y, lens, relu, b0, b1):
    B, T, I = x.shape
    H, S, nb = z.shape[2], hbuf.shape[1], b1 - b0
    gemm(NO_TRANS, TRANS, nb * T, H, I, x, b0 * T * I, I, w_ih, 0, I, 0.0, z, b0 * T * H, H)
    zf, hf, yf = z.reshape(-1), hbuf.reshape(-1), y.reshape(-1)
    for t in range(T):
        tp, tn = t % S, (t + 1) % S
        if nb == 1:
            gemv(NO_TRANS, H, H, w_hh, 0, H, hbuf, (b0 * S + tp) * H, 1.0, z, (b0 * T + t) * H)
        else:
            tgemm(nb, H, H, hbuf, (b0 * S + tp) * H, S * H, 1,
                  wt_hh, 0, H, 32, 1.0, z, (b0 * T + t) * H, T * H, H)  # fmt: skip
        for r in range(b0, b1):
            hn, ko = (r * S + tn) * H, (r * T + t) * H  # ko: row r, step t of z and y
            _phi(zf, ko, b, hf, hn, H, relu)
            if t < lens[r]:
                _copy(yf, ko, hf, hn, H)
            else:
                _copy(hf, hn, hf, (r * S + tp) * H, H)
                _zero(yf, ko, H)


@njit(**JIT)
def _da(da, ao, dh, ho, hs, so, H, relu):
    """da[ao : ao + H] = dh[ho : ho + H] phi'(h_t), h_t = hs[so : so + H] (flat arrays, offsets)."""
    ao, ho, so = uint64(ao), uint64(ho), uint64(so)
    if relu:
        for j in range(uint64(H)):
            da[ao + j] = dh[ho + j] if hs[so + j] > 0 else dh[ho + j] - dh[ho + j]
    else:
        for j in range(uint64(H)):
            da[ao + j] = dh[ho + j] - dh[ho + j] * hs[so + j] * hs[so + j]


@njit(**JIT)
def _backward_chunk(dy, has_dy, hs, w_hh, lens, relu, dh, da, tmp, x, w_ih, dx, dw_ih, dw_hh,
                    db, b0, b1):  # fmt: skip
    B, T, I = x.shape
    H, nb = hs.shape[2], b1 - b0
    full = True
    for r in range(b0, b1):
        full = full and lens[r] >= T
    out = dh if full else tmp
    daf, dhf, hsf = da.reshape(-1), dh.reshape(-1), hs.reshape(-1)
    dyf, tmpf = dy.reshape(-1), tmp.reshape(-1)
    for t in range(T - 1, -1, -1):
        for r in range(b0, b1):
            k = r * T + t
            if t >= lens[r]:
                _zero(daf, k * H, H)
                continue
            if has_dy:
                _add(dhf, r * H, dyf, k * H, H)
            _da(daf, k * H, dhf, r * H, hsf, (k + r + 1) * H, H, relu)
        if nb == 1:
            gemv(TRANS, H, H, w_hh, 0, H, da, (b0 * T + t) * H, 0.0, out, b0 * H)
        else:
            tgemm(nb, H, H, da, (b0 * T + t) * H, T * H, 1,
                  w_hh, 0, H, 32, 0.0, out, b0 * H, H, H)  # fmt: skip
        if not full:
            for r in range(b0, b1):
                if t < lens[r]:
                    _copy(dhf, r * H, tmpf, r * H, H)
    weight_grads(da, x, hs, w_ih, dx, dw_ih, dw_hh, db, b0, b1)


@njit(**JIT)
def _forward_one(x, w_ih, b, w_hh, wt_hh, z, hbuf, y, lens, relu):
    threads = get_threads()
    set_threads(1)
    _forward_chunk(x, w_ih, b, w_hh, wt_hh, z, hbuf, y, lens, relu, 0, x.shape[0])
    set_threads(threads)


@njit(**JIT)
def _backward_one(dy, has_dy, hs, w_hh, lens, relu, dh, da, tmp, x, w_ih, dx, dw_ih, dw_hh, db):
    threads = get_threads()
    set_threads(1)
    _backward_chunk(dy, has_dy, hs, w_hh, lens, relu, dh, da, tmp, x, w_ih, dx,
                    dw_ih[0], dw_hh[0], db[0], 0, x.shape[0])  # fmt: skip
    set_threads(threads)


@njit(parallel=True, cache=True, nogil=True)
def _forward_par(x, w_ih, b, w_hh, wt_hh, z, hbuf, y, lens, relu, chunks):
    B, threads = x.shape[0], get_threads()
    set_threads(1)
    for k in prange(chunks):
        pin_chunk(k)  # one core per chunk (_affinity.py)
        _forward_chunk(x, w_ih, b, w_hh, wt_hh, z, hbuf, y, lens, relu,
                       k * B // chunks, (k + 1) * B // chunks)  # fmt: skip
    set_threads(threads)


@njit(parallel=True, cache=True, nogil=True)
def _backward_par(dy, has_dy, hs, w_hh, lens, relu, dh, da, tmp, x, w_ih, dx, dw_ih, dw_hh, db):
    """dw_ih, dw_hh, db: one partial sum per chunk; on return the first holds the total."""
    B, chunks, threads = x.shape[0], dw_ih.shape[0], get_threads()
    set_threads(1)
    for k in prange(chunks):
        pin_chunk(k)  # one core per chunk (_affinity.py)
        _backward_chunk(dy, has_dy, hs, w_hh, lens, relu, dh, da, tmp, x, w_ih, dx,
                        dw_ih[k], dw_hh[k], db[k], k * B // chunks, (k + 1) * B // chunks)  # fmt: skip
    for k in prange(chunks):
        fold(dw_ih, k, chunks)
        fold(dw_hh, k, chunks)
        fold(db, k, chunks)
    set_threads(threads)


def _relu(nonlinearity: str) -> bool:
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return nonlinearity == "relu"


def rnn_forward(x, h0, weights, lengths=None, need_cache=True, *, nonlinearity="tanh"):
    """Fused `ops.rnn.rnn_forward`; see that function for the contract."""
    if len(x) == 0:  # an empty batch: nothing to compute, and the kernels assume rows
        return ref.rnn_forward(x, h0, weights, lengths, need_cache, nonlinearity=nonlinearity)
    relu = _relu(nonlinearity)
    x = _c(x, x.dtype)
    dt = x.dtype
    B, T, I = x.shape
    w = _contig(weights, dt)
    H = w.w_hh.shape[1]
    mask = step_mask(lengths, B, T)
    z = np.empty((B, T, H), dt)  # (B, T, H) pre-activations
    S = T + 1 if need_cache else 2
    hbuf = np.empty((B, S, H), dt)  # (B, S, H) carried states
    hbuf[:, 0] = h0
    y = np.empty((B, T, H), dt)
    wt_hh = transpose(w.w_hh)  # (H, H) for the NN product
    args = (x, w.w_ih, w.b_ih + w.b_hh, w.w_hh, wt_hh, z, hbuf, y, _lens(mask, B, T), relu)
    with _cores(B, H) as chunks:
        if chunks == 1:
            _forward_one(*args)
        else:
            _forward_par(*args, chunks)
    h_n = hbuf[:, T % S].copy()
    cache = RNNCache(x, hbuf, mask, w, nonlinearity) if need_cache else None
    return y, h_n, cache


def rnn_backward(dy, dh_n, cache):
    """Fused `ops.rnn.rnn_backward`; accepts a cache from either forward."""
    if len(cache.x) == 0:  # an empty batch (see rnn_forward)
        return ref.rnn_backward(dy, dh_n, cache)
    x, hs, mask, w, nonlinearity = cache
    x = _c(x, x.dtype)
    dt = x.dtype
    B, T, I = x.shape
    H = hs.shape[-1]
    w, hs = _contig(w, dt), _c(hs, dt)
    dh = np.zeros((B, H), dt) if dh_n is None else np.array(dh_n, dtype=dt)
    has_dy = dy is not None
    dy = _c(dy, dt) if has_dy else np.empty((1, 1, 1), dt)
    da, dx = np.empty((B, T, H), dt), np.empty((B, T, I), dt)
    args = (dy, has_dy, hs, w.w_hh, _lens(mask, B, T), _relu(nonlinearity), dh, da)
    args += (np.empty((B, H), dt), x, w.w_ih, dx)
    with _cores(B, H) as chunks:
        dw_ih, dw_hh = np.empty((chunks, H, I), dt), np.empty((chunks, H, H), dt)
        db = np.empty((chunks, H), dt)
        (_backward_one if chunks == 1 else _backward_par)(*args, dw_ih, dw_hh, db)
    return dx, dh, RNNWeights(dw_ih[0], dw_hh[0], db[0], db[0].copy())  # sums folded in [0]


def rnn_step(x_t, h, weights, *, nonlinearity="tanh"):
    """Fused `ops.rnn.rnn_step`: x_t (B, I), h (B, H) -> h_t (B, H)."""
    y, h_n, _ = rnn_forward(np.asarray(x_t)[:, None], h, weights, None, False,
                            nonlinearity=nonlinearity)  # fmt: skip
    return h_n


forward, backward, step = rnn_forward, rnn_backward, rnn_step
