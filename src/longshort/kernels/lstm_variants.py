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
As in _lstm_loops.py and _variant_loops.py, the loops index whole arrays flattened once per call
(z.reshape(-1)) at uint64 offsets (gates_row_at, dz_row_at, _copy, _zero, _add), with no views
(z[r, t], dh[r], dph[0]) made inside the time and row loops: each costs an atomic reference
count increment and decrement. Mask stand-ins (keep, zc, zh: (1, 1, 1) when off) are read at
_at3's broadcast offsets.
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint64

from ..ops import lstm_variants as ref
from ..ops.lstm_variants import LSTMExtCache, LSTMExtWeights, lstm_ext_step
from ..ops.sequence import step_mask
from ._jit import JIT, NO_TRANS, TRANS, gemm
from ._lstm_loops import _add, _copy, _zero
from ._variant_loops import _at3
from ._variant_rows import dz_row_at, gates_row_at
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
    zf, hf, cf, cnsf, tcsf, keepf, yf, hinf = (
        z.reshape(-1), hbuf.reshape(-1), cbuf.reshape(-1), cns.reshape(-1), tcs.reshape(-1),
        keep.reshape(-1), y.reshape(-1), hin.reshape(-1),
    )  # fmt: skip
    phf, zcf, zhf, rmf = ph.reshape(-1), zc.reshape(-1), zh.reshape(-1), rm.reshape(-1)
    Hu = uint64(H)
    gemm(NO_TRANS, TRANS, nb * T, G, I, x, b0 * T * I, I, w_ih, 0, I, 0.0, z, b0 * T * G, G)
    for t in range(T):
        src, off, ld = hbuf, (b0 * (T + 1) + t) * H, (T + 1) * H
        if use_rm:
            for r in range(b0, b1):
                ho, io = uint64((r * (T + 1) + t) * H), uint64(r * H)
                for j in range(Hu):
                    hinf[io + j] = hf[ho + j] * rmf[io + j]
            src, off, ld = hin, b0 * H, H
        gemm(NO_TRANS, NO_TRANS, nb, G, H, src, off, ld, wt, 0, G, 1.0, z, (b0 * T + t) * G, T * G)
        for r in range(b0, b1):
            # h_{t-1}, c_{t-1} at s0 of hbuf, cbuf; h_t, c_t at s1; this step's rows of cns,
            # tcs, y at co
            zo, co = (r * T + t) * G, (r * T + t) * H
            s0, s1 = (r * (T + 1) + t) * H, (r * (T + 1) + t + 1) * H
            gates_row_at(zf, zo, b, cf, s0, cnsf, co, tcsf, co, hf, s1, phf, keepf,
                         _at3(keep, r, t), use_ph, use_k, k, inf, one, True, H)  # fmt: skip
            _copy(cf, s1, cnsf, co, H)
            u0, u1 = uint64(s0), uint64(s1)
            if use_zc:
                zco = uint64(_at3(zc, r, t))
                for j in range(Hu):
                    cf[u1 + j] = zcf[zco + j] * cf[u0 + j] + (one - zcf[zco + j]) * cf[u1 + j]
            if use_zh:
                zho = uint64(_at3(zh, r, t))
                for j in range(Hu):
                    hf[u1 + j] = zhf[zho + j] * hf[u0 + j] + (one - zhf[zho + j]) * hf[u1 + j]
            if t < lens[r]:
                _copy(yf, co, hf, s1, H)
            else:  # past the end: carry the state, output zero
                _copy(hf, s1, hf, s0, H)
                _copy(cf, s1, cf, s0, H)
                _zero(yf, co, H)


@njit(**JIT)
def _backward_loop(x, w_ih, hsrc, dy, has_dy, gates, cs, cns, tcs, keep, w, lens, dh, dc, dz,
                   tmp, dcp, dkh, dmb, dctb, dcnb, ph, inf, zc, zh, rm, flags, one, dx, dw_ih, dw_hh, db, dph,
                   b0, b1):  # fmt: skip
    """Rows b0:b1; dh, dc (B,H) carried in place; dz (B,T,G) written; tmp ... dcnb (B,H)
    scratch; hsrc (B,S,H) what W_hh multiplied (S = T+1: the carried h); dw_ih, dw_hh, db and
    dph (3,H) this chunk's partial sums."""
    B, T, G = gates.shape
    H, nb, Tc = G // 4, b1 - b0, cs.shape[1]  # Tc = T + 1: cs holds c_0 ... c_T
    use_ph, use_k, use_zc, use_zh, use_rm = flags
    dzf, gf, csf, cnsf, tcsf, keepf, dyf = (
        dz.reshape(-1), gates.reshape(-1), cs.reshape(-1), cns.reshape(-1), tcs.reshape(-1),
        keep.reshape(-1), dy.reshape(-1),
    )  # fmt: skip
    dhf, dcf, tmpf, dcpf, dkhf, dmf, dctf, dcnf = (
        dh.reshape(-1), dc.reshape(-1), tmp.reshape(-1), dcp.reshape(-1), dkh.reshape(-1),
        dmb.reshape(-1), dctb.reshape(-1), dcnb.reshape(-1),
    )  # fmt: skip
    phf, zcf, zhf, rmf, dphf = (
        ph.reshape(-1), zc.reshape(-1), zh.reshape(-1), rm.reshape(-1), dph.reshape(-1)
    )  # fmt: skip
    Hu = uint64(H)
    H2 = Hu + Hu
    H3 = H2 + Hu
    _zero(db, 0, G)
    _zero(dphf, 0, dphf.size)
    for t in range(T - 1, -1, -1):
        for r in range(b0, b1):
            # this step's rows of dz, gates at zo; of cns, tcs, dy at co; c_{t-1} at po; the
            # carried dh, dc and the scratch rows at ho
            zo, co, ho, po = (r * T + t) * G, (r * T + t) * H, r * H, (r * Tc + t) * H
            if t < lens[r]:
                _copy(dmf, ho, dhf, ho, H)
                if has_dy:
                    _add(dmf, ho, dyf, co, H)
                _copy(dctf, ho, dcf, ho, H)
            else:
                _zero(dmf, ho, H)
                _zero(dctf, ho, H)
            if use_zh:  # h_t = d h_{t-1} + (1 - d) h~
                zho, hu = uint64(_at3(zh, r, t)), uint64(ho)
                for j in range(Hu):
                    dkhf[hu + j] = dmf[hu + j] * zhf[zho + j]
                for j in range(Hu):
                    dmf[hu + j] -= dkhf[hu + j]
            dz_row_at(dzf, zo, gf, zo, tcsf, co, csf, po, dmf, ho, dctf, ho, dcnf, ho, dcpf, ho,
                      zcf, _at3(zc, r, t), phf, keepf, _at3(keep, r, t), use_ph, use_k, use_zc,
                      inf, one, False, H)  # fmt: skip
            if use_ph:
                zu, cu, pu = uint64(zo), uint64(co), uint64(po)
                for j in range(Hu):
                    dphf[j] += dzf[zu + j] * csf[pu + j]
                for j in range(Hu):
                    dphf[Hu + j] += dzf[zu + H3 + j] * cnsf[cu + j]
                for j in range(Hu):
                    dphf[H2 + j] += dzf[zu + Hu + j] * csf[pu + j]
            _add(db, 0, dzf, zo, G)
        gemm(NO_TRANS, NO_TRANS, nb, H, G, dz, (b0 * T + t) * G, T * G, w, 0, H, 0.0, tmp, b0 * H,
             H)  # fmt: skip
        for r in range(b0, b1):
            if t < lens[r]:
                hu = uint64(r * H)
                for j in range(Hu):
                    dhf[hu + j] = tmpf[hu + j] * rmf[hu + j] if use_rm else tmpf[hu + j]
                    dhf[hu + j] += dkhf[hu + j] if use_zh else dhf[hu + j] * 0
                _copy(dcf, r * H, dcpf, r * H, H)
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
    kp = np.empty((1, 1, 1), np.bool_) if keep is None else _c(keep, np.bool_)
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
