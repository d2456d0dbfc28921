"""Fused LSTM variants with projection (LSTMP) and layer norm, and any of the other options.

The equations are ops/lstm_variants.py's (this forward's cache feeds either backward and vice
versa); kernels/lstm_variants.py is the lighter kernel for the options without projection or
layer norm. Symbols: B batch, T steps, I inputs, H cell units, G = 4H, R = P (projection) or H.
    forward(x (B,T,I), (h0 (B,R), c0 (B,H)), w, opts, lengths, need_cache) -> y (B,T,R), state, cache
    backward(dy, (dh_n, dc_n), cache) -> dx, (dh0, dc0), LSTMExtWeights grads
Forward per batch chunk (chunks in threads on separate cores, BLAS single-threaded; the loops
are in _variant_loops.py):
    z = x W_ih^T (one GEMM) ; layer norm: z = LN(z) gain_ih + b, row by row
    per step: a_h = (h_{t-1} * m_r) W^T (GEMM), z_t += LN(a_h) gain_hh (or a_h); one loop over
    units for gates and c~; the cell's LN and tanh; h~ = m W_hr^T (GEMM); zoneout and lengths.
Backward per step: dm = dh~ W_hr (GEMM), one loop over units for dz, LN backward of the
recurrent part, dh = da_h W (GEMM); after the loop dx, dW_ih, dW_hh, dW_hr as GEMMs per chunk.
"""

from __future__ import annotations

import threading

import numpy as np

from ..ops import lstm_variants as ref
from ..ops.lstm_variants import LSTMExtCache, LSTMExtWeights, lstm_ext_step
from ..ops.sequence import step_mask
from ._variant_loops import backward_rows, blas_threads, forward_rows
from .lstm import _c, _chunks, _lens

FUSED_FEATURES = frozenset(
    {"proj", "layer_norm", "peepholes", "cell_clip", "input_forget", "zoneout",
     "recurrent_dropout", "weight_drop"}
)  # fmt: skip


def _masks(opts, H, R, dt):
    """Zoneout and recurrent-dropout arrays (unit axis spelled out) with 1-element stand-ins."""

    def units(a, n):
        return np.ascontiguousarray(np.broadcast_to(a, a.shape[:2] + (n,)), dt)

    d3 = np.zeros((1, 1, 1), dt)
    zc = d3 if opts.zoneout_c is None else units(opts.zoneout_c, H)
    zh = d3 if opts.zoneout_h is None else units(opts.zoneout_h, R)
    rm = np.zeros((1, 1), dt) if opts.recurrent_mask is None else _c(opts.recurrent_mask, dt)
    return zc, zh, rm


def _on_cores(fn, B: int, n: int, args, per_chunk=()):
    """fn(*args, *[a[c] for a in per_chunk], b0, b1) for n chunks of the batch: chunk 0 in this
    thread, the others in threads of their own (the loops release the GIL), BLAS single-threaded."""
    old = blas_threads(1)
    try:
        calls = [
            (*args, *(a[c] for a in per_chunk), c * B // n, (c + 1) * B // n) for c in range(n)
        ]
        threads = [threading.Thread(target=fn, args=a) for a in calls[1:]]
        for t in threads:
            t.start()
        fn(*calls[0])
        for t in threads:
            t.join()
    finally:
        blas_threads(old)


def _common(w, opts, dt, keep):
    """Arguments shared by forward and backward: (flags, ph, lnw, zc, zh, rm, masked W_hh)."""
    H, R = w.w_hh.shape[0] // 4, w.w_hh.shape[1]
    use_ln = w.ln_ih is not None
    flags = (w.w_ph is not None, keep, opts.zoneout_c is not None, opts.zoneout_h is not None,
             opts.recurrent_mask is not None, w.w_hr is not None, use_ln)  # fmt: skip
    ph = np.zeros((3, 1), dt) if w.w_ph is None else _c(w.w_ph, dt)
    if use_ln:
        lnw = tuple(_c(a, dt) for a in (w.ln_ih, w.ln_hh, w.ln_c_w, w.ln_c_b))
        lnw += (np.zeros(4 * H, dt), np.array([1 / (4 * H), 1 / H], dt))
    else:
        lnw = (np.zeros(1, dt),) * 6
    w_hh = w.w_hh if opts.weight_mask is None else w.w_hh * opts.weight_mask  # (4H, R)
    return flags, ph, lnw, *_masks(opts, H, R, dt), _c(w_hh, dt)


def lstm_ext_forward(x, state0, w: LSTMExtWeights, opts, lengths=None, need_cache=True):
    """Fused `ops.lstm_variants.lstm_ext_forward`, every option."""
    if len(x) == 0:  # an empty batch: nothing to compute, and the kernels assume rows
        return ref.lstm_ext_forward(x, state0, w, opts, lengths, need_cache)
    x = _c(x, x.dtype)
    dt = x.dtype
    B, T, _ = x.shape
    G, R = w.w_hh.shape
    H = G // 4
    clip = opts.cell_clip is not None
    flags, ph, lnw, zc, zh, rm, w_hh = _common(w, opts, dt, clip)
    mask = step_mask(lengths, B, T)
    z = np.empty((B, T, G), dt)  # x W_ih^T, then the gates
    hbuf, cbuf = np.empty((B, T + 1, R), dt), np.empty((B, T + 1, H), dt)
    hbuf[:, 0], cbuf[:, 0] = state0
    cns, tcs = np.empty((B, T, H), dt), np.empty((B, T, H), dt)
    y = np.empty((B, T, R), dt)
    keep = np.empty(z.shape if clip else (1, 1, 1), np.bool_)
    d3 = np.zeros((1, 1, 1), dt)
    if flags[6]:
        lnc = (np.empty_like(z), np.empty((B, T, 1), dt), np.empty_like(z),
               np.empty((B, T, 1), dt), np.empty_like(cns), np.empty((B, T, 1), dt))  # fmt: skip
    else:
        lnc = (d3,) * 6
    P = R if flags[5] else 1
    wrt = _c(w.w_hr.T, dt) if flags[5] else np.zeros((1, 1), dt)  # (H, P)
    scratch = (np.empty((B, G), dt), np.empty((B, 1, R), dt), np.empty((B, H), dt),
               np.empty((B, P), dt))  # fmt: skip
    b = _c(w.b_ih + w.b_hh, dt)
    args = (x, _c(w.w_ih, dt), b, _c(w_hh.T, dt), wrt, lnw, z, *scratch, hbuf, cbuf, cns, tcs)
    args += (keep, y, _lens(mask, B, T), ph, lnc, zc, zh, rm, flags)
    args += (dt.type(opts.cell_clip if clip else 0), bool(opts.input_forget))
    args += (dt.type(opts.ln_eps), dt.type(1))
    _on_cores(forward_rows, B, _chunks(B, H), args)
    state = (hbuf[:, T].copy(), cbuf[:, T].copy())
    if not need_cache:
        return y, state, None
    ln = lnc if flags[6] else None
    return (
        y,
        state,
        LSTMExtCache(x, hbuf, cbuf, z, cns, tcs, mask, w, opts, ln, keep if clip else None),
    )


def lstm_ext_backward(dy, dstate, cache: LSTMExtCache):
    """Fused `ops.lstm_variants.lstm_ext_backward`; accepts a cache from either forward."""
    if len(cache.x) == 0:  # an empty batch (see lstm_ext_forward)
        return ref.lstm_ext_backward(dy, dstate, cache)
    x, hs, cs, gates, cns, tcs, mask, w, opts, ln, keep = cache
    x = _c(x, x.dtype)
    dt = x.dtype
    B, T, I = x.shape
    G, R = w.w_hh.shape
    H = G // 4
    flags, ph, lnw, zc, zh, rm, w_hh = _common(w, opts, dt, keep is not None)
    hs, cs, gates, cns, tcs = (_c(a, dt) for a in (hs, cs, gates, cns, tcs))
    dh = np.zeros((B, R), dt) if dstate[0] is None else np.array(dstate[0], dtype=dt)
    dc = np.zeros((B, H), dt) if dstate[1] is None else np.array(dstate[1], dtype=dt)
    has_dy = dy is not None
    dy = _c(dy, dt) if has_dy else np.empty((1, 1, 1), dt)
    d3 = np.zeros((1, 1, 1), dt)
    lnc = tuple(_c(a, dt) for a in ln) if ln is not None else (d3,) * 6
    kp = np.empty((1, 1, 1), np.bool_) if keep is None else _c(keep, np.bool_)
    hsrc = hs if opts.recurrent_mask is None else _c(hs[:, :-1] * opts.recurrent_mask[:, None], dt)
    dz = np.empty((B, T, G), dt)
    dah, dax = (np.empty_like(dz), np.empty_like(dz)) if flags[6] else (dz, dz)
    P = R if flags[5] else 1
    dhp = np.empty((B, T, P) if flags[5] else (1, 1, 1), dt)
    mall = np.empty((B, T, H) if flags[5] else (1, 1, 1), dt)
    w_hr = _c(w.w_hr, dt) if flags[5] else np.zeros((1, 1), dt)
    scr = tuple(np.empty((B, n), dt) for n in (R, R, R, H, H, H, H))
    dx = np.empty_like(x)
    args = (x, _c(w.w_ih, dt), w_hh, w_hr, lnw, hsrc, dy, has_dy, gates, cs, cns, tcs, kp)
    args += (_lens(mask, B, T), dh, dc, dz, dah, dax, dhp, mall, scr, ph, lnc, zc, zh, rm, flags)
    args += (bool(opts.input_forget), dt.type(1), dx)
    n = _chunks(B, H)  # partial weight gradients per chunk, summed below
    parts = (np.empty((n, G, I), dt), np.empty((n, G, R), dt), np.zeros((n, P, H), dt))
    parts += (np.empty((n, G), dt), np.empty((n, 4, G), dt))
    _on_cores(backward_rows, B, n, args, parts)
    dw_ih, dw_hh, dw_hr, db, dln = (p.sum(0) for p in parts)
    if opts.weight_mask is not None:
        dw_hh *= opts.weight_mask
    dph = None
    if w.w_ph is not None:
        cp = cs[:, :-1]  # (B, T, H) c_{t-1}
        dph = np.stack([(dz[..., :H] * cp).sum((0, 1)), (dz[..., 3 * H :] * cns).sum((0, 1)),
                        (dz[..., H : 2 * H] * cp).sum((0, 1))])  # fmt: skip
    g_ln = (dln[0], dln[1], dln[2, :H].copy(), dln[3, :H].copy()) if flags[6] else (None,) * 4
    grads = LSTMExtWeights(dw_ih, dw_hh, db, db.copy(), dph, dw_hr if flags[5] else None, *g_ln)
    return dx, (dh, dc), grads


forward, backward, step = lstm_ext_forward, lstm_ext_backward, lstm_ext_step
