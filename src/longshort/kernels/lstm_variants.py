"""Fused LSTM variants: the elementwise ones of ops/lstm_variants.py with the time loop compiled.

Covers FUSED_FEATURES: peepholes, cell_clip, input_forget, zoneout, recurrent_dropout and
weight_drop (any combination). Projection and layer norm change the shapes and reductions of a
step and stay on the reference (impl="auto" falls back, impl="fused" raises; see kernels/).

Symbols: B batch, T steps, I inputs, H hidden units, G = 4H. Same signatures, caches and
equations as ops/lstm_variants.py (whose backward accepts this forward's cache, and vice versa):
    forward(x (B,T,I), (h0, c0) (B,H), w, opts, lengths, need_cache) -> y, (h_n, c_n), cache
    backward(dy, (dh_n, dc_n), cache) -> dx, (dh0, dc0), LSTMExtWeights grads
Per step, rows in the calling thread, BLAS single-threaded:
    z_t += (h_{t-1} * m_r) W^T         one GEMM (W = W_hh * m_w, made once per forward)
    gates, c~, c_t, h_t                one fused loop over units (peepholes, clip, coupling,
                                       zoneout and lengths are branches on loop-invariant flags)
Backward: dz_t per row in one loop, dh = dz_t W (GEMM); dx and the weight gradients are GEMMs
after the loop, inside the compiled code (NumPy's threaded GEMM stalled on a busy machine); the
peephole gradients are three reductions.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..ops.lstm_variants import LSTMExtCache, LSTMExtWeights, lstm_ext_step
from ..ops.sequence import step_mask
from ._blas import get_threads, set_threads
from ._jit import JIT, NO_TRANS, TRANS, gemm, sigmoid_, tanh_

FUSED_FEATURES = frozenset(
    {"peepholes", "cell_clip", "input_forget", "zoneout", "recurrent_dropout", "weight_drop"}
)


@njit(**JIT)
def _forward_loop(x, w_ih, z, b, wt, hbuf, cbuf, cns, tcs, keep, y, lens, hin, ph, k, inf, zc, zh, rm,
                  flags, one):  # fmt: skip
    """z (B,T,G) holds x W_ih^T and becomes the gates; flags = (peep, clip, zc, zh, rm)."""
    B, T, G = z.shape
    H = G // 4
    use_ph, use_k, use_zc, use_zh, use_rm = flags[0], flags[1], flags[2], flags[3], flags[4]
    threads = get_threads()
    set_threads(1)  # one BLAS thread: NumPy's threaded GEMM stalled for seconds on a busy machine
    I = x.shape[2]
    gemm(NO_TRANS, TRANS, B * T, G, I, x, 0, I, w_ih, 0, I, 0.0, z, 0, G)  # z = x W_ih^T
    for t in range(T):
        for r in range(B):
            for j in range(H):
                hin[r, j] = hbuf[r, t, j] * rm[r, j] if use_rm else hbuf[r, t, j]
        gemm(NO_TRANS, NO_TRANS, B, G, H, hin, 0, H, wt, 0, G, 1.0, z, t * G, T * G)
        for r in range(B):
            zr, cp, hp = z[r, t], cbuf[r, t], hbuf[r, t]
            rz, tz, th = min(r, zc.shape[0] - 1), min(t, zc.shape[1] - 1), min(t, zh.shape[1] - 1)
            rh = min(r, zh.shape[0] - 1)
            valid = t < lens[r]
            for j in range(H):
                zi, zf = zr[j] + b[j], zr[H + j] + b[H + j]
                zg, zo = zr[2 * H + j] + b[2 * H + j], zr[3 * H + j] + b[3 * H + j]
                if use_ph:
                    zi += ph[0, j] * cp[j]
                    zf += ph[2, j] * cp[j]
                if use_k:
                    keep[r, t, j], keep[r, t, H + j] = abs(zi) < k, abs(zf) < k
                    keep[r, t, 2 * H + j] = abs(zg) < k
                    zi, zf, zg = min(max(zi, -k), k), min(max(zf, -k), k), min(max(zg, -k), k)
                f, g = sigmoid_(zf), tanh_(zg)
                i = one - f if inf else sigmoid_(zi)
                cn = f * cp[j] + i * g
                if use_ph:
                    zo += ph[1, j] * cn
                if use_k:
                    keep[r, t, 3 * H + j] = abs(zo) < k
                    zo = min(max(zo, -k), k)
                o = sigmoid_(zo)
                tc = tanh_(cn)
                hn = o * tc
                zr[j], zr[H + j], zr[2 * H + j], zr[3 * H + j] = i, f, g, o
                cns[r, t, j], tcs[r, t, j] = cn, tc
                if use_zc:
                    cn = zc[rz, tz, j] * cp[j] + (one - zc[rz, tz, j]) * cn
                if use_zh:
                    hn = zh[rh, th, j] * hp[j] + (one - zh[rh, th, j]) * hn
                if valid:
                    hbuf[r, t + 1, j], cbuf[r, t + 1, j], y[r, t, j] = hn, cn, hn
                else:
                    hbuf[r, t + 1, j], cbuf[r, t + 1, j], y[r, t, j] = hp[j], cp[j], 0.0
    set_threads(threads)


@njit(**JIT)
def _backward_loop(x, w_ih, hin, dx, dw_ih, dw_hh, dy, has_dy, gates, cs, cns, tcs, keep, w, lens, dh, dc, dz, tmp, dcp, dkh,
                   ph, inf, zc, zh, rm, flags, one):  # fmt: skip
    """dh, dc (B,H) carried in place; dz (B,T,G) written; tmp, dcp, dkh (B,H) scratch."""
    B, T, G = gates.shape
    H = G // 4
    use_ph, use_k, use_zc, use_zh, use_rm = flags[0], flags[1], flags[2], flags[3], flags[4]
    threads = get_threads()
    set_threads(1)
    for t in range(T - 1, -1, -1):
        for r in range(B):
            g4, dzr, cp = gates[r, t], dz[r, t], cs[r, t]
            rz, tz, th = min(r, zc.shape[0] - 1), min(t, zc.shape[1] - 1), min(t, zh.shape[1] - 1)
            rh = min(r, zh.shape[0] - 1)
            valid = t < lens[r]
            for j in range(H):
                dht, dct = dh[r, j], dc[r, j]
                if has_dy:
                    dht += dy[r, t, j]
                if not valid:
                    dht, dct = dht * 0, dct * 0
                dhn = dht * (one - zh[rh, th, j]) if use_zh else dht
                dcn = dct * (one - zc[rz, tz, j]) if use_zc else dct
                dkh[r, j] = dht * zh[rh, th, j] if use_zh else dht * 0
                i, f, g, o = g4[j], g4[H + j], g4[2 * H + j], g4[3 * H + j]
                tc = tcs[r, t, j]
                dcn += dhn * o * (one - tc * tc)
                dzo = dhn * tc * o * (one - o)
                if use_k and not keep[r, t, 3 * H + j]:
                    dzo *= 0
                if use_ph:
                    dcn += dzo * ph[1, j]
                di, df, dg = dcn * g, dcn * cp[j], dcn * i
                dcprev = dcn * f
                dzi = di * i * (one - i)
                if inf:
                    df -= di
                    dzi *= 0
                dzf, dzg = df * f * (one - f), dg * (one - g * g)
                if use_k:
                    dzi = dzi if keep[r, t, j] else dzi * 0
                    dzf = dzf if keep[r, t, H + j] else dzf * 0
                    dzg = dzg if keep[r, t, 2 * H + j] else dzg * 0
                if use_ph:
                    dcprev += dzi * ph[0, j] + dzf * ph[2, j]
                if use_zc:
                    dcprev += dct * zc[rz, tz, j]
                dzr[j], dzr[H + j], dzr[2 * H + j], dzr[3 * H + j] = dzi, dzf, dzg, dzo
                dcp[r, j] = dcprev
        gemm(NO_TRANS, NO_TRANS, B, H, G, dz, t * G, T * G, w, 0, H, 0.0, tmp, 0, H)
        for r in range(B):
            if t < lens[r]:
                for j in range(H):
                    dh[r, j] = (tmp[r, j] * rm[r, j] if use_rm else tmp[r, j]) + dkh[r, j]
                    dc[r, j] = dcp[r, j]
    # dx = dz W_ih ; dW_ih = dz^T x ; dW_hh = dz^T h_in: one GEMM each
    M, I = B * T, x.shape[2]
    gemm(NO_TRANS, NO_TRANS, M, I, G, dz, 0, G, w_ih, 0, I, 0.0, dx, 0, I)
    gemm(TRANS, NO_TRANS, G, I, M, dz, 0, G, x, 0, I, 0.0, dw_ih, 0, I)
    gemm(TRANS, NO_TRANS, G, H, M, dz, 0, G, hin, 0, H, 0.0, dw_hh, 0, H)
    set_threads(threads)


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
    if w.w_hr is not None or w.ln_ih is not None:
        raise ValueError("the fused LSTM variant kernel has no projection or layer norm")
    x = np.ascontiguousarray(x)
    dt = x.dtype
    B, T, _ = x.shape
    H = w.w_hh.shape[1]
    w_hh = w.w_hh if opts.weight_mask is None else w.w_hh * opts.weight_mask  # (4H, H)
    mask = step_mask(lengths, B, T)
    lens = np.full(B, T, np.int64) if mask is None else mask.sum(1).astype(np.int64)
    z = np.empty((B, T, 4 * H), dt)  # x W_ih^T, then the gates
    hbuf, cbuf = np.empty((B, T + 1, H), dt), np.empty((B, T + 1, H), dt)
    hbuf[:, 0], cbuf[:, 0] = state0
    cns, tcs, y = (np.empty((B, T, H), dt) for _ in range(3))
    clip = opts.cell_clip is not None
    keep = np.empty(z.shape if clip else (1, 1, 1), np.bool_)
    ph = np.zeros((3, 1), dt) if w.w_ph is None else np.ascontiguousarray(w.w_ph, dt)
    zc, zh, rm, fl = _masks(opts, H, dt)
    flags = np.array((w.w_ph is not None, clip, *fl), np.bool_)
    k = dt.type(opts.cell_clip if clip else 0.0)
    b = np.ascontiguousarray(w.b_ih + w.b_hh, dt)
    wt = np.ascontiguousarray(w_hh.T, dt)  # (H, 4H)
    w_ih = np.ascontiguousarray(w.w_ih, dt)
    _forward_loop(x, w_ih, z, b, wt, hbuf, cbuf, cns, tcs, keep, y, lens, np.empty((B, H), dt),
            ph, k, bool(opts.input_forget), zc, zh, rm, flags, dt.type(1))  # fmt: skip
    state = (hbuf[:, T].copy(), cbuf[:, T].copy())
    if not need_cache:
        return y, state, None
    cache = LSTMExtCache(x, hbuf, cbuf, z, cns, tcs, mask, w, opts, None, keep if clip else None)
    return y, state, cache


def lstm_ext_backward(dy, dstate, cache: LSTMExtCache):
    """Fused `ops.lstm_variants.lstm_ext_backward`; accepts a cache from either forward."""
    x, hs, cs, gates, cns, tcs, mask, w, opts, ln, keep = cache
    if w.w_hr is not None or ln is not None:
        raise ValueError("the fused LSTM variant kernel has no projection or layer norm")
    dt = x.dtype
    B, T, _ = x.shape
    H = w.w_hh.shape[1]
    c = [np.ascontiguousarray(a, dt) for a in (gates, cs, cns, tcs)]
    w_hh = w.w_hh if opts.weight_mask is None else w.w_hh * opts.weight_mask
    lens = np.full(B, T, np.int64) if mask is None else mask.sum(1).astype(np.int64)
    dh = np.zeros((B, H), dt) if dstate[0] is None else np.array(dstate[0], dtype=dt)
    dc = np.zeros((B, H), dt) if dstate[1] is None else np.array(dstate[1], dtype=dt)
    has_dy = dy is not None
    dy = np.ascontiguousarray(dy, dt) if has_dy else np.empty((1, 1, 1), dt)
    dz = np.empty((B, T, 4 * H), dt)
    ph = np.zeros((3, 1), dt) if w.w_ph is None else np.ascontiguousarray(w.w_ph, dt)
    zc, zh, rm, fl = _masks(opts, H, dt)
    flags = np.array((w.w_ph is not None, keep is not None, *fl), np.bool_)
    kp = np.empty((1, 1, 1), np.bool_) if keep is None else keep
    scratch = [np.empty((B, H), dt) for _ in range(3)]
    x, w_ih = np.ascontiguousarray(x, dt), np.ascontiguousarray(w.w_ih, dt)
    hin = hs[:, :-1] if opts.recurrent_mask is None else hs[:, :-1] * opts.recurrent_mask[:, None]
    hin = np.ascontiguousarray(hin, dt)  # (B, T, H) what W_hh multiplied
    I = x.shape[2]
    dx, dw_ih, dw_hh = np.empty_like(x), np.empty((4 * H, I), dt), np.empty((4 * H, H), dt)
    _backward_loop(x, w_ih, hin, dx, dw_ih, dw_hh, dy, has_dy, *c, kp, np.ascontiguousarray(w_hh, dt), lens, dh, dc, dz,
            *scratch, ph, bool(opts.input_forget), zc, zh, rm, flags, dt.type(1))  # fmt: skip
    dph = None
    if w.w_ph is not None:
        cp = cs[:, :-1]  # (B, T, H) c_{t-1}
        dph = np.stack([(dz[..., :H] * cp).sum((0, 1)), (dz[..., 3 * H :] * cns).sum((0, 1)),
                        (dz[..., H : 2 * H] * cp).sum((0, 1))])  # fmt: skip
    if opts.weight_mask is not None:
        dw_hh *= opts.weight_mask
    db = dz.reshape(-1, 4 * H).sum(0)  # (4H,)
    return dx, (dh, dc), LSTMExtWeights(dw_ih, dw_hh, db, db.copy(), dph)


forward, backward, step = lstm_ext_forward, lstm_ext_backward, lstm_ext_step
