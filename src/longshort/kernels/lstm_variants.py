"""Fused LSTM variants: the elementwise ones of ops/lstm_variants.py with the time loop compiled.

Covers FUSED_FEATURES: peepholes, cell_clip, input_forget, zoneout, recurrent_dropout and
weight_drop (any combination). Projection and layer norm change the shapes and reductions of a
step: kernels/lstm_variants_full.py handles them (and everything else, a little slower).

Symbols: B batch, T steps, I inputs, H hidden units, G = 4H. Same signatures, caches and
equations as ops/lstm_variants.py (whose backward accepts this forward's cache, and vice versa):
    forward(x (B,T,I), (h0, c0) (B,H), w, opts, lengths, need_cache) -> y, (h_n, c_n), cache
    backward(dy, (dh_n, dc_n), cache) -> dx, (dh0, dc0), LSTMExtWeights grads
Per step, for each chunk of batch rows (chunks in threads on separate cores, BLAS
single-threaded; see lstm_variants_full._on_cores):
    z_t += (h_{t-1} * m_r) W^T         one GEMM (W = W_hh * m_w, made once per forward)
    gates, c~, c_t, h_t                short vectorised loops over units (_variant_rows.py); the
                                       options are branches around whole loops
Backward: dz_t per row in short loops (which also sum db and the peephole gradients), dh = dz_t W
(GEMM); dx and the weight gradients are GEMMs per chunk after the loop, inside the compiled code
(NumPy's threaded GEMM stalled on a busy machine), partial sums added at the end.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..ops import lstm_variants as ref
from ..ops.lstm_variants import LSTMExtCache, LSTMExtWeights, lstm_ext_step
from ..ops.sequence import step_mask
from ._jit import JIT, NO_TRANS, TRANS, gemm
from ._variant_rows import dz_row, gates_row
from .lstm import _c, _chunks, _lens
from .lstm_variants_full import _on_cores

FUSED_FEATURES = frozenset(
    {"peepholes", "cell_clip", "input_forget", "zoneout", "recurrent_dropout", "weight_drop"}
)


@njit(**JIT)
def _forward_loop(x, w_ih, z, b, wt, hbuf, cbuf, cns, tcs, keep, y, lens, hin, ph, k, inf, zc, zh, rm,
                  flags, one, b0, b1):  # fmt: skip
    """Rows b0:b1; z (B,T,G) holds x W_ih^T and becomes the gates; hin (B,1,H) scratch;
    flags = (peep, clip, zc, zh, rm)."""
    B, T, G = z.shape
    H, I, nb = G // 4, x.shape[2], b1 - b0
    use_ph, use_k, use_zc, use_zh, use_rm = flags
    gemm(NO_TRANS, TRANS, nb * T, G, I, x, b0 * T * I, I, w_ih, 0, I, 0.0, z, b0 * T * G, G)
    for t in range(T):
        src, off, ld = hbuf, (b0 * (T + 1) + t) * H, (T + 1) * H
        if use_rm:
            for r in range(b0, b1):
                for j in range(H):
                    hin[r, 0, j] = hbuf[r, t, j] * rm[r, j]
            src, off, ld = hin, b0 * H, H
        gemm(NO_TRANS, NO_TRANS, nb, G, H, src, off, ld, wt, 0, G, 1.0, z, (b0 * T + t) * G, T * G)
        for r in range(b0, b1):
            cp, hp, hn, cn = cbuf[r, t], hbuf[r, t], hbuf[r, t + 1], cbuf[r, t + 1]
            kr = keep[min(r, keep.shape[0] - 1), min(t, keep.shape[1] - 1)]
            gates_row(z[r, t], b, cp, cns[r, t], tcs[r, t], hn, ph, kr, use_ph, use_k, k, inf, one,
                      True)  # fmt: skip
            cn[:] = cns[r, t]
            if use_zc:
                zr_ = zc[min(r, zc.shape[0] - 1), min(t, zc.shape[1] - 1)]
                for j in range(H):
                    cn[j] = zr_[j] * cp[j] + (one - zr_[j]) * cn[j]
            if use_zh:
                zr_ = zh[min(r, zh.shape[0] - 1), min(t, zh.shape[1] - 1)]
                for j in range(H):
                    hn[j] = zr_[j] * hp[j] + (one - zr_[j]) * hn[j]
            if t < lens[r]:
                y[r, t] = hn
            else:  # past the end: carry the state, output zero
                hn[:] = hp
                cn[:] = cp
                y[r, t] = 0.0


@njit(**JIT)
def _backward_loop(x, w_ih, hsrc, dy, has_dy, gates, cs, cns, tcs, keep, w, lens, dh, dc, dz,
                   tmp, dcp, dkh, dmb, dctb, dcnb, ph, inf, zc, zh, rm, flags, one, dx, dw_ih, dw_hh, db, dph,
                   b0, b1):  # fmt: skip
    """Rows b0:b1; dh, dc (B,H) carried in place; dz (B,T,G) written; tmp ... dcnb (B,H)
    scratch; hsrc (B,S,H) what W_hh multiplied (S = T+1: the carried h); dw_ih, dw_hh, db and
    dph (3,H) this chunk's partial sums."""
    B, T, G = gates.shape
    H, nb = G // 4, b1 - b0
    use_ph, use_k, use_zc, use_zh, use_rm = flags
    db[:] = 0.0
    dph[:] = 0.0
    for t in range(T - 1, -1, -1):
        for r in range(b0, b1):
            dzr, cp, dm, dct, dkr = dz[r, t], cs[r, t], dmb[r], dctb[r], dkh[r]
            if t < lens[r]:
                dm[:] = dh[r]
                if has_dy:
                    dm += dy[r, t]
                dct[:] = dc[r]
            else:
                dm[:] = 0.0
                dct[:] = 0.0
            if use_zh:  # h_t = d h_{t-1} + (1 - d) h~
                zr_ = zh[min(r, zh.shape[0] - 1), min(t, zh.shape[1] - 1)]
                for j in range(H):
                    dkr[j] = dm[j] * zr_[j]
                for j in range(H):
                    dm[j] -= dkr[j]
            zr_ = zc[min(r, zc.shape[0] - 1), min(t, zc.shape[1] - 1)]
            kr = keep[min(r, keep.shape[0] - 1), min(t, keep.shape[1] - 1)]
            dz_row(dzr, gates[r, t], tcs[r, t], cp, dm, dct, dcnb[r], dcp[r], zr_, ph, kr, use_ph,
                   use_k, use_zc, inf, one, False)  # fmt: skip
            if use_ph:
                p0, p1, p2, cn = dph[0], dph[1], dph[2], cns[r, t]
                for j in range(H):
                    p0[j] += dzr[j] * cp[j]
                for j in range(H):
                    p1[j] += dzr[3 * H + j] * cn[j]
                for j in range(H):
                    p2[j] += dzr[H + j] * cp[j]
            for j in range(G):
                db[j] += dzr[j]
        gemm(NO_TRANS, NO_TRANS, nb, H, G, dz, (b0 * T + t) * G, T * G, w, 0, H, 0.0, tmp, b0 * H,
             H)  # fmt: skip
        for r in range(b0, b1):
            if t < lens[r]:
                for j in range(H):
                    dh[r, j] = tmp[r, j] * rm[r, j] if use_rm else tmp[r, j]
                    dh[r, j] += dkh[r, j] if use_zh else dh[r, j] * 0
                    dc[r, j] = dcp[r, j]
    # dx = dz W_ih ; dW_ih = dz^T x ; dW_hh = dz^T h_in (per row: h_in rows are not adjacent)
    M, I, S = nb * T, x.shape[2], hsrc.shape[1]
    gemm(NO_TRANS, NO_TRANS, M, I, G, dz, b0 * T * G, G, w_ih, 0, I, 0.0, dx, b0 * T * I, I)
    gemm(TRANS, NO_TRANS, G, I, M, dz, b0 * T * G, G, x, b0 * T * I, I, 0.0, dw_ih, 0, I)
    for r in range(b0, b1):
        beta = 0.0 if r == b0 else 1.0
        gemm(TRANS, NO_TRANS, G, H, T, dz, r * T * G, G, hsrc, r * S * H, H, beta, dw_hh, 0, H)


def _unit_axis(a, H, dt):
    """A (B|1, T|1, H|1) zoneout array with its unit axis spelled out, contiguous."""
    return np.ascontiguousarray(np.broadcast_to(a, a.shape[:2] + (H,)), dt)


def _masks(opts, H, dt):
    """Kernel arguments for the optional masks: (arrays, flags) with 1-element stand-ins."""
    dummy3, dummy2 = np.zeros((1, 1, 1), dt), np.zeros((1, 1), dt)
    zc = dummy3 if opts.zoneout_c is None else _unit_axis(opts.zoneout_c, H, dt)
    zh = dummy3 if opts.zoneout_h is None else _unit_axis(opts.zoneout_h, H, dt)
    rm = dummy2 if opts.recurrent_mask is None else np.ascontiguousarray(opts.recurrent_mask, dt)
    flags = (
        opts.zoneout_c is not None,
        opts.zoneout_h is not None,
        opts.recurrent_mask is not None,
    )
    return zc, zh, rm, flags


def lstm_ext_forward(x, state0, w: LSTMExtWeights, opts, lengths=None, need_cache=True):
    """Fused `ops.lstm_variants.lstm_ext_forward` (no projection or layer norm)."""
    if len(x) == 0:  # an empty batch: nothing to compute, and the kernels assume rows
        return ref.lstm_ext_forward(x, state0, w, opts, lengths, need_cache)
    if w.w_hr is not None or w.ln_ih is not None:
        raise ValueError("the fused LSTM variant kernel has no projection or layer norm")
    x = _c(x, x.dtype)
    dt = x.dtype
    B, T, _ = x.shape
    H = w.w_hh.shape[1]
    w_hh = w.w_hh if opts.weight_mask is None else w.w_hh * opts.weight_mask  # (4H, H)
    mask = step_mask(lengths, B, T)
    z = np.empty((B, T, 4 * H), dt)  # x W_ih^T, then the gates
    hbuf, cbuf = np.empty((B, T + 1, H), dt), np.empty((B, T + 1, H), dt)
    hbuf[:, 0], cbuf[:, 0] = state0
    cns, tcs, y = (np.empty((B, T, H), dt) for _ in range(3))
    clip = opts.cell_clip is not None
    keep = np.empty(z.shape if clip else (1, 1, 1), np.bool_)
    ph = np.zeros((3, 1), dt) if w.w_ph is None else _c(w.w_ph, dt)
    zc, zh, rm, fl = _masks(opts, H, dt)
    flags = (w.w_ph is not None, clip, *fl)
    k = dt.type(opts.cell_clip if clip else 0.0)
    b = _c(w.b_ih + w.b_hh, dt)
    args = (
        x,
        _c(w.w_ih, dt),
        z,
        b,
        _c(w_hh.T, dt),
        hbuf,
        cbuf,
        cns,
        tcs,
        keep,
        y,
        _lens(mask, B, T),
    )
    args += (np.empty((B, 1, H), dt), ph, k, bool(opts.input_forget), zc, zh, rm, flags, dt.type(1))
    _on_cores(_forward_loop, B, _chunks(B, H), args)
    state = (hbuf[:, T].copy(), cbuf[:, T].copy())
    if not need_cache:
        return y, state, None
    cache = LSTMExtCache(x, hbuf, cbuf, z, cns, tcs, mask, w, opts, None, keep if clip else None)
    return y, state, cache


def lstm_ext_backward(dy, dstate, cache: LSTMExtCache):
    """Fused `ops.lstm_variants.lstm_ext_backward`; accepts a cache from either forward."""
    if len(cache.x) == 0:  # an empty batch (see lstm_ext_forward)
        return ref.lstm_ext_backward(dy, dstate, cache)
    x, hs, cs, gates, cns, tcs, mask, w, opts, ln, keep = cache
    if w.w_hr is not None or ln is not None:
        raise ValueError("the fused LSTM variant kernel has no projection or layer norm")
    x = _c(x, x.dtype)
    dt = x.dtype
    B, T, I = x.shape
    H = w.w_hh.shape[1]
    c = [_c(a, dt) for a in (gates, cs, cns, tcs)]
    w_hh = w.w_hh if opts.weight_mask is None else w.w_hh * opts.weight_mask
    dh = np.zeros((B, H), dt) if dstate[0] is None else np.array(dstate[0], dtype=dt)
    dc = np.zeros((B, H), dt) if dstate[1] is None else np.array(dstate[1], dtype=dt)
    has_dy = dy is not None
    dy = _c(dy, dt) if has_dy else np.empty((1, 1, 1), dt)
    dz = np.empty((B, T, 4 * H), dt)
    ph = np.zeros((3, 1), dt) if w.w_ph is None else _c(w.w_ph, dt)
    zc, zh, rm, fl = _masks(opts, H, dt)
    flags = (w.w_ph is not None, keep is not None, *fl)
    kp = np.empty((1, 1, 1), np.bool_) if keep is None else keep
    scratch = [np.empty((B, H), dt) for _ in range(6)]
    # what W_hh multiplied: the carried h (B, T+1, H) itself, or h * m_r (B, T, H)
    hsrc = _c(hs, dt) if opts.recurrent_mask is None else _c(hs[:, :-1] * rm[:, None], dt)
    dx = np.empty_like(x)
    args = (x, _c(w.w_ih, dt), hsrc, dy, has_dy, *c, kp, _c(w_hh, dt), _lens(mask, B, T), dh, dc)
    args += (dz, *scratch, ph, bool(opts.input_forget), zc, zh, rm, flags, dt.type(1), dx)
    n = _chunks(B, H)
    parts = (np.empty((n, 4 * H, I), dt), np.empty((n, 4 * H, H), dt), np.empty((n, 4 * H), dt))
    parts += (np.empty((n,) + ph.shape, dt),)
    _on_cores(_backward_loop, B, n, args, parts)
    dw_ih, dw_hh, db, dph = (p.sum(0) for p in parts)
    if opts.weight_mask is not None:
        dw_hh *= opts.weight_mask
    return dx, (dh, dc), LSTMExtWeights(dw_ih, dw_hh, db, db.copy(), dph if flags[0] else None)


forward, backward, step = lstm_ext_forward, lstm_ext_backward, lstm_ext_step
