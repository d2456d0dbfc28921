"""Compiled loops behind kernels/lstm_variants_full.py (equations in ops/lstm_variants.py).

`forward_rows` and `backward_rows` handle batch rows b0:b1 and release the GIL, so the caller can
run chunks of the batch in threads, with single-threaded BLAS (`blas_threads`); rows are
independent until the weight gradients, which are partial sums per chunk. (A `prange` version
took LLVM over ten minutes to compile: these loops are large and take many arguments.) Symbols: G = 4H gate rows, R = P or H (width of h).
flags = (peepholes, clip, zoneout_c, zoneout_h, recurrent_mask, projection, layer_norm).
`one` carries the dtype: float literals would promote float32 to float64.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._blas import get_threads, set_threads
from ._jit import JIT, NO_TRANS, TRANS, gemm, tanh_
from ._variant_rows import dz_row, gates_row


@njit(**JIT)
def blas_threads(n):
    """Set BLAS's thread count to n; returns the previous count."""
    old = get_threads()
    set_threads(n)
    return old


@njit(**JIT)
def _ln(a, n, gain, add, out, eps, one, inv):
    """n = LN(a) over a's length m, out = n * gain + add (out may be a); returns 1 / std.
    inv = 1 / m in a's dtype (dividing by the int m would promote float32 to float64)."""
    m = len(a)
    mu = one * 0
    for j in range(m):
        mu += a[j]
    mu *= inv
    v = one * 0
    for j in range(m):
        v += (a[j] - mu) * (a[j] - mu)
    rs = one / np.sqrt(v * inv + eps)
    for j in range(m):
        n[j] = (a[j] - mu) * rs
        out[j] = n[j] * gain[j] + add[j]
    return rs


@njit(**JIT)
def _ln_back(dn, gain, n, rs, out, one, inv):
    """out = rs (d - mean(d) - n mean(d n)) with d = dn * gain (out may be dn)."""
    m = len(dn)
    s1, s2 = one * 0, one * 0
    for j in range(m):
        d = dn[j] * gain[j]
        s1 += d
        s2 += d * n[j]
    s1, s2 = s1 * inv, s2 * inv
    for j in range(m):
        out[j] = rs * (dn[j] * gain[j] - s1 - n[j] * s2)


@njit(**JIT)
def forward_rows(x, w_ih, bias, wt, wrt, lnw, z, ah, hin, mb, hp, hbuf, cbuf, cns, tcs, keep, y,
               lens, ph, lnc, zc, zh, rm, flags, k, inf, eps, one, b0, b1):  # fmt: skip
    """lnc = (nx, rsx, nh, rsh, nc, rsc); lnw = (gain_ih, gain_hh, gain_c, bias_c, zeros(4H),
    [1 / 4H, 1 / H])."""
    B, T, G = z.shape
    H, R, I, nb = G // 4, hbuf.shape[2], x.shape[2], b1 - b0
    use_ph, use_k, use_zc, use_zh, use_rm, use_p, use_ln = flags
    nx, rsx, nh, rsh, nc, rsc = lnc
    gemm(NO_TRANS, TRANS, nb * T, G, I, x, b0 * T * I, I, w_ih, 0, I, 0.0, z, b0 * T * G, G)
    if use_ln:  # z = LN(x W_ih^T) gain_ih + b; the unit loop then adds lnw[4] = 0
        for r in range(b0, b1):
            for t in range(T):
                rsx[r, t, 0] = _ln(z[r, t], nx[r, t], lnw[0], bias, z[r, t], eps, one, lnw[5][0])
    bb = lnw[4] if use_ln else bias
    for t in range(T):
        src, off, ld = hbuf, (b0 * (T + 1) + t) * R, (T + 1) * R
        if use_rm:
            for r in range(b0, b1):
                for j in range(R):
                    hin[r, 0, j] = hbuf[r, t, j] * rm[r, j]
            src, off, ld = hin, b0 * R, R
        if use_ln:
            gemm(NO_TRANS, NO_TRANS, nb, G, R, src, off, ld, wt, 0, G, 0.0, ah, b0 * G, G)
            for r in range(b0, b1):
                rsh[r, t, 0] = _ln(ah[r], nh[r, t], lnw[1], z[r, t], z[r, t], eps, one, lnw[5][0])
        else:
            gemm(NO_TRANS, NO_TRANS, nb, G, R, src, off, ld, wt, 0, G, 1.0, z, (b0 * T + t) * G,
                 T * G)  # fmt: skip
        for r in range(b0, b1):
            zr, cn_, tc_, m_ = z[r, t], cns[r, t], tcs[r, t], mb[r]
            kr = keep[min(r, keep.shape[0] - 1), min(t, keep.shape[1] - 1)]
            gates_row(zr, bb, cbuf[r, t], cn_, tc_, m_, ph, kr, use_ph, use_k, k, inf, one,
                      not use_ln)  # fmt: skip
            if use_ln:  # tanh(LN(c~) gain_c + bias_c)
                rsc[r, t, 0] = _ln(cn_, nc[r, t], lnw[2], lnw[3], tc_, eps, one, lnw[5][1])
                for j in range(H):
                    tc_[j] = tanh_(tc_[j])
                    m_[j] = zr[3 * H + j] * tc_[j]
        if use_p:  # h~ = m W_hr^T
            gemm(NO_TRANS, NO_TRANS, nb, R, H, mb, b0 * H, H, wrt, 0, R, 0.0, hp, b0 * R, R)
        hs = hp if use_p else mb
        for r in range(b0, b1):
            rz, tz, th = min(r, zc.shape[0] - 1), min(t, zc.shape[1] - 1), min(t, zh.shape[1] - 1)
            rh, valid = min(r, zh.shape[0] - 1), t < lens[r]
            for j in range(R):
                hn = hs[r, j]
                if use_zh:
                    hn = zh[rh, th, j] * hbuf[r, t, j] + (one - zh[rh, th, j]) * hn
                hbuf[r, t + 1, j] = hn if valid else hbuf[r, t, j]
                y[r, t, j] = hn if valid else hn * 0
            for j in range(H):
                cn = cns[r, t, j]
                if use_zc:
                    cn = zc[rz, tz, j] * cbuf[r, t, j] + (one - zc[rz, tz, j]) * cn
                cbuf[r, t + 1, j] = cn if valid else cbuf[r, t, j]


@njit(**JIT)
def backward_rows(x, w_ih, w, w_hr, lnw, hsrc, dy, has_dy, gates, cs, cns, tcs, keep, lens, dh, dc,
               dz, dah, dax, dhp, mall, scr, ph, lnc, zc, zh, rm, flags, inf, one,
               dx, dw_ih, dw_hh, dw_hr, db, dln, b0, b1):  # fmt: skip
    """dh (B,R), dc (B,H) carried in place; dz, dah, dax (B,T,G) (the same array without layer
    norm); dhp (B,T,P) and mall (B,T,H) = o tanh(.) for dW_hr; scr = (dhn, dkh, tmp (B,R),
    dcp, dm, dct, dcn (B,H)); dw_*, db, dln (4, G): this chunk's partial sums."""
    B, T, G = gates.shape
    H, R, nb = G // 4, dh.shape[1], b1 - b0
    use_ph, use_k, use_zc, use_zh, use_rm, use_p, use_ln = flags
    nx, rsx, nh, rsh, nc, rsc = lnc
    dhn, dkh, tmp, dcp, dmb, dctb, dcnb = scr
    dln[:] = 0.0
    for t in range(T - 1, -1, -1):
        for r in range(b0, b1):
            th, rh, valid = min(t, zh.shape[1] - 1), min(r, zh.shape[0] - 1), t < lens[r]
            for j in range(R):
                dht = dh[r, j] + dy[r, t, j] if has_dy else dh[r, j]
                dht = dht if valid else dht * 0
                dhn[r, j] = dht * (one - zh[rh, th, j]) if use_zh else dht
                dkh[r, j] = dht * zh[rh, th, j] if use_zh else dht * 0
                if use_p:
                    dhp[r, t, j] = dhn[r, j]
        if use_p:  # dm = dh~ W_hr
            gemm(NO_TRANS, NO_TRANS, nb, H, R, dhp, (b0 * T + t) * R, T * R, w_hr, 0, H, 0.0,
                 dmb, b0 * H, H)  # fmt: skip
        dm = dmb if use_p else dhn
        for r in range(b0, b1):
            g4, dzr, dct, dcn = gates[r, t], dz[r, t], dctb[r], dcnb[r]
            if t < lens[r]:
                dct[:] = dc[r]
            else:
                dct[:] = 0.0
            if use_ln:  # dcn = d c~ through n = LN(c~) gain_c + bias_c
                for j in range(H):
                    tc = tcs[r, t, j]
                    dcn[j] = dm[r, j] * g4[3 * H + j] * (one - tc * tc)
                    dln[2, j] += dcn[j] * nc[r, t, j]
                    dln[3, j] += dcn[j]
                _ln_back(dcn, lnw[2], nc[r, t], rsc[r, t, 0], dcn, one, lnw[5][1])
            zr_ = zc[min(r, zc.shape[0] - 1), min(t, zc.shape[1] - 1)]
            kr = keep[min(r, keep.shape[0] - 1), min(t, keep.shape[1] - 1)]
            dz_row(dzr, g4, tcs[r, t], cs[r, t], dm[r], dct, dcn, dcp[r], zr_, ph, kr, use_ph,
                   use_k, use_zc, inf, one, use_ln)  # fmt: skip
            if use_p:
                for j in range(H):
                    mall[r, t, j] = g4[3 * H + j] * tcs[r, t, j]
            if use_ln:
                _ln_back(dzr, lnw[1], nh[r, t], rsh[r, t, 0], dah[r, t], one, lnw[5][0])
        gemm(NO_TRANS, NO_TRANS, nb, R, G, dah, (b0 * T + t) * G, T * G, w, 0, R, 0.0, tmp,
             b0 * R, R)  # fmt: skip
        for r in range(b0, b1):
            if t < lens[r]:
                for j in range(R):
                    dh[r, j] = (tmp[r, j] * rm[r, j] if use_rm else tmp[r, j]) + dkh[r, j]
                for j in range(H):
                    dc[r, j] = dcp[r, j]
    _grads(x, w_ih, hsrc, dz, dah, dax, dhp, mall, lnw, nx, rsx, nh, flags, one,
           dx, dw_ih, dw_hh, dw_hr, db, dln, b0, b1)  # fmt: skip


@njit(**JIT)
def _grads(x, w_ih, hsrc, dz, dah, dax, dhp, mall, lnw, nx, rsx, nh, flags, one,
           dx, dw_ih, dw_hh, dw_hr, db, dln, b0, b1):  # fmt: skip
    """Rows b0:b1 after the loop: dx, the layer-norm gains, and GEMM partial weight gradients."""
    B, T, G = dz.shape
    I, R, S, nb, H = x.shape[2], hsrc.shape[2], hsrc.shape[1], b1 - b0, dz.shape[2] // 4
    db[:] = 0.0
    for r in range(b0, b1):
        for t in range(T):
            dzr = dz[r, t]
            for j in range(G):
                db[j] += dzr[j]
            if flags[6]:  # dax = LN backward of dz gain_ih
                d0, d1, nxr, nhr = dln[0], dln[1], nx[r, t], nh[r, t]
                for j in range(G):
                    d0[j] += dzr[j] * nxr[j]
                for j in range(G):
                    d1[j] += dzr[j] * nhr[j]
                _ln_back(dzr, lnw[0], nx[r, t], rsx[r, t, 0], dax[r, t], one, lnw[5][0])
    gemm(NO_TRANS, NO_TRANS, nb * T, I, G, dax, b0 * T * G, G, w_ih, 0, I, 0.0, dx, b0 * T * I, I)
    gemm(TRANS, NO_TRANS, G, I, nb * T, dax, b0 * T * G, G, x, b0 * T * I, I, 0.0, dw_ih, 0, I)
    for b in range(b0, b1):  # h_in rows of consecutive sequences are not adjacent when S = T+1
        beta = 0.0 if b == b0 else 1.0
        gemm(TRANS, NO_TRANS, G, R, T, dah, b * T * G, G, hsrc, b * S * R, R, beta, dw_hh, 0, R)
    if flags[5]:
        P = dhp.shape[2]
        gemm(TRANS, NO_TRANS, P, H, nb * T, dhp, b0 * T * P, P, mall, b0 * T * H, H, 0.0,
             dw_hr, 0, H)  # fmt: skip
