"""Compiled loops behind kernels/lstm_variants_full.py (equations in ops/lstm_variants.py).

`forward_rows` and `backward_rows` handle batch rows b0:b1 and release the GIL, so the caller can
run chunks of the batch in threads, with single-threaded BLAS (`blas_threads`); rows are
independent until the weight gradients, which are partial sums per chunk. (A `prange` version
took LLVM over ten minutes to compile: these loops are large and take many arguments.) Symbols: G = 4H gate rows, R = P or H (width of h).
flags = (peepholes, clip, zoneout_c, zoneout_h, recurrent_mask, projection, layer_norm).
`one` carries the dtype: float literals would promote float32 to float64.
As in _lstm_loops.py, the per-row loops index whole arrays flattened once per call (z.reshape(-1))
at uint64 offsets, with no views (z[r, t], keep[r, t], lnw[0]) made inside the time and row loops:
each costs an atomic reference count increment and decrement.
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint64

from ._blas import get_threads, set_threads
from ._jit import JIT, NO_TRANS, TRANS, gemm, tanh_
from ._lstm_loops import _add, _copy, _zero
from ._variant_rows import dz_row_at, gates_row_at


@njit(**JIT)
def blas_threads(n):
    """Set BLAS's thread count to n; returns the previous count."""
    old = get_threads()
    set_threads(n)
    return old


@njit(**JIT)
def _ln(a, ao, n, no, gain, add, do, out, oo, m, eps, one, inv):
    """n[no : no + m] = LN(a[ao : ao + m]), out[oo:] = n * gain + add[do:] (out may be a; flat
    arrays, offsets); returns 1 / std. inv = 1 / m in a's dtype (dividing by the int m would
    promote float32 to float64)."""
    ao, no, do, oo, mu_ = uint64(ao), uint64(no), uint64(do), uint64(oo), uint64(m)
    mu = one * 0
    for j in range(mu_):
        mu += a[ao + j]
    mu *= inv
    v = one * 0
    for j in range(mu_):
        v += (a[ao + j] - mu) * (a[ao + j] - mu)
    rs = one / np.sqrt(v * inv + eps)
    for j in range(mu_):
        n[no + j] = (a[ao + j] - mu) * rs
        out[oo + j] = n[no + j] * gain[j] + add[do + j]
    return rs


@njit(**JIT)
def _ln_back(dn, do, gain, n, no, rs, out, oo, m, one, inv):
    """out[oo : oo + m] = rs (d - mean(d) - n mean(d n)) with d = dn[do:] * gain, n = n[no:]
    (out may be dn; flat arrays, offsets)."""
    do, no, oo, mu_ = uint64(do), uint64(no), uint64(oo), uint64(m)
    s1, s2 = one * 0, one * 0
    for j in range(mu_):
        d = dn[do + j] * gain[j]
        s1 += d
        s2 += d * n[no + j]
    s1, s2 = s1 * inv, s2 * inv
    for j in range(mu_):
        out[oo + j] = rs * (dn[do + j] * gain[j] - s1 - n[no + j] * s2)


@njit(**JIT)
def _at3(a, r, t):
    """Flat offset of a[min(r, B' - 1), min(t, T' - 1)] in a (B', T', n) broadcast stand-in."""
    return (min(r, a.shape[0] - 1) * a.shape[1] + min(t, a.shape[1] - 1)) * a.shape[2]


@njit(**JIT)
def forward_rows(x, w_ih, bias, wt, wrt, lnw, z, ah, hin, mb, hp, hbuf, cbuf, cns, tcs, keep, y,
               lens, ph, lnc, zc, zh, rm, flags, k, inf, eps, one, b0, b1):  # fmt: skip
    """lnc = (nx, rsx, nh, rsh, nc, rsc); lnw = (gain_ih, gain_hh, gain_c, bias_c, zeros(4H),
    [1 / 4H, 1 / H])."""
    B, T, G = z.shape
    H, R, I, nb = G // 4, hbuf.shape[2], x.shape[2], b1 - b0
    use_ph, use_k, use_zc, use_zh, use_rm, use_p, use_ln = flags
    nx, rsx, nh, rsh, nc, rsc = lnc
    g_ih, g_hh, g_c, b_c, zero4, invs = lnw
    inv_g = invs[0]
    inv_h = invs[1] if use_ln else inv_g
    zf, ahf, hinf, mbf, hpf, hf, cf = (
        z.reshape(-1), ah.reshape(-1), hin.reshape(-1), mb.reshape(-1), hp.reshape(-1),
        hbuf.reshape(-1), cbuf.reshape(-1),
    )  # fmt: skip
    cnsf, tcsf, keepf, yf, phf = (
        cns.reshape(-1), tcs.reshape(-1), keep.reshape(-1), y.reshape(-1), ph.reshape(-1)
    )  # fmt: skip
    nxf, nhf, ncf, zcf, zhf, rmf = (
        nx.reshape(-1), nh.reshape(-1), nc.reshape(-1), zc.reshape(-1), zh.reshape(-1),
        rm.reshape(-1),
    )  # fmt: skip
    hsf = hpf if use_p else mbf  # what h~ is read from
    Hu, Ru = uint64(H), uint64(R)
    gemm(NO_TRANS, TRANS, nb * T, G, I, x, b0 * T * I, I, w_ih, 0, I, 0.0, z, b0 * T * G, G)
    if use_ln:  # z = LN(x W_ih^T) gain_ih + b; the unit loop then adds lnw[4] = 0
        for r in range(b0, b1):
            for t in range(T):
                zo = (r * T + t) * G
                rsx[r, t, 0] = _ln(zf, zo, nxf, zo, g_ih, bias, 0, zf, zo, G, eps, one, inv_g)
    bb = zero4 if use_ln else bias
    for t in range(T):
        src, off, ld = hbuf, (b0 * (T + 1) + t) * R, (T + 1) * R
        if use_rm:
            for r in range(b0, b1):
                ho, io = uint64((r * (T + 1) + t) * R), uint64(r * R)
                for j in range(Ru):
                    hinf[io + j] = hf[ho + j] * rmf[io + j]
            src, off, ld = hin, b0 * R, R
        if use_ln:
            gemm(NO_TRANS, NO_TRANS, nb, G, R, src, off, ld, wt, 0, G, 0.0, ah, b0 * G, G)
            for r in range(b0, b1):
                zo = (r * T + t) * G
                rsh[r, t, 0] = _ln(ahf, r * G, nhf, zo, g_hh, zf, zo, zf, zo, G, eps, one, inv_g)
        else:
            gemm(NO_TRANS, NO_TRANS, nb, G, R, src, off, ld, wt, 0, G, 1.0, z, (b0 * T + t) * G,
                 T * G)  # fmt: skip
        for r in range(b0, b1):
            zo, co, mo = (r * T + t) * G, (r * T + t) * H, r * H
            gates_row_at(zf, zo, bb, cf, (r * (T + 1) + t) * H, cnsf, co, tcsf, co, mbf, mo, phf,
                         keepf, _at3(keep, r, t), use_ph, use_k, k, inf, one, not use_ln,
                         H)  # fmt: skip
            if use_ln:  # tanh(LN(c~) gain_c + bias_c)
                rsc[r, t, 0] = _ln(cnsf, co, ncf, co, g_c, b_c, 0, tcsf, co, H, eps, one, inv_h)
                cu, mu, ou = uint64(co), uint64(mo), uint64(zo + 3 * H)
                for j in range(Hu):
                    tcsf[cu + j] = tanh_(tcsf[cu + j])
                    mbf[mu + j] = zf[ou + j] * tcsf[cu + j]
        if use_p:  # h~ = m W_hr^T
            gemm(NO_TRANS, NO_TRANS, nb, R, H, mb, b0 * H, H, wrt, 0, R, 0.0, hp, b0 * R, R)
        for r in range(b0, b1):
            valid = t < lens[r]
            so, yo = uint64(r * R), uint64((r * T + t) * R)
            h0, h1 = uint64((r * (T + 1) + t) * R), uint64((r * (T + 1) + t + 1) * R)
            zho = uint64(_at3(zh, r, t))
            for j in range(Ru):
                hn = hsf[so + j]
                if use_zh:
                    hn = zhf[zho + j] * hf[h0 + j] + (one - zhf[zho + j]) * hn
                hf[h1 + j] = hn if valid else hf[h0 + j]
                yf[yo + j] = hn if valid else hn * 0
            co = uint64((r * T + t) * H)
            c0, c1 = uint64((r * (T + 1) + t) * H), uint64((r * (T + 1) + t + 1) * H)
            zco = uint64(_at3(zc, r, t))
            for j in range(Hu):
                cn = cnsf[co + j]
                if use_zc:
                    cn = zcf[zco + j] * cf[c0 + j] + (one - zcf[zco + j]) * cn
                cf[c1 + j] = cn if valid else cf[c0 + j]


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
    g_hh, g_c, invs = lnw[1], lnw[2], lnw[5]
    inv_g = invs[0]
    inv_h = invs[1] if use_ln else inv_g
    dln[:] = 0.0
    dhf, dcf, dyf, dhnf, dkhf, dhpf, tmpf = (
        dh.reshape(-1), dc.reshape(-1), dy.reshape(-1), dhn.reshape(-1), dkh.reshape(-1),
        dhp.reshape(-1), tmp.reshape(-1),
    )  # fmt: skip
    dcpf, dmbf, dctf, dcnf, gf, dzf, dahf = (
        dcp.reshape(-1), dmb.reshape(-1), dctb.reshape(-1), dcnb.reshape(-1), gates.reshape(-1),
        dz.reshape(-1), dah.reshape(-1),
    )  # fmt: skip
    csf, tcsf, keepf, mallf, ncf, nhf, dlnf = (
        cs.reshape(-1), tcs.reshape(-1), keep.reshape(-1), mall.reshape(-1), nc.reshape(-1),
        nh.reshape(-1), dln.reshape(-1),
    )  # fmt: skip
    zcf, zhf, rmf, phf = zc.reshape(-1), zh.reshape(-1), rm.reshape(-1), ph.reshape(-1)
    dmf = dmbf if use_p else dhnf
    Hu, Ru = uint64(H), uint64(R)
    for t in range(T - 1, -1, -1):
        for r in range(b0, b1):
            valid = t < lens[r]
            ro, to, zho = uint64(r * R), uint64((r * T + t) * R), uint64(_at3(zh, r, t))
            for j in range(Ru):
                dht = dhf[ro + j] + dyf[to + j] if has_dy else dhf[ro + j]
                dht = dht if valid else dht * 0
                dhnf[ro + j] = dht * (one - zhf[zho + j]) if use_zh else dht
                dkhf[ro + j] = dht * zhf[zho + j] if use_zh else dht * 0
                if use_p:
                    dhpf[to + j] = dhnf[ro + j]
        if use_p:  # dm = dh~ W_hr
            gemm(NO_TRANS, NO_TRANS, nb, H, R, dhp, (b0 * T + t) * R, T * R, w_hr, 0, H, 0.0,
                 dmb, b0 * H, H)  # fmt: skip
        for r in range(b0, b1):
            zo, co, ho = (r * T + t) * G, (r * T + t) * H, r * H
            if t < lens[r]:
                _copy(dctf, ho, dcf, ho, H)
            else:
                _zero(dctf, ho, H)
            if use_ln:  # dcn = d c~ through n = LN(c~) gain_c + bias_c
                cu, hu, ou = uint64(co), uint64(ho), uint64(zo + 3 * H)
                d2, d3 = uint64(2 * G), uint64(3 * G)
                for j in range(Hu):
                    tc = tcsf[cu + j]
                    dcnf[hu + j] = dmf[hu + j] * gf[ou + j] * (one - tc * tc)
                    dlnf[d2 + j] += dcnf[hu + j] * ncf[cu + j]
                    dlnf[d3 + j] += dcnf[hu + j]
                _ln_back(dcnf, ho, g_c, ncf, co, rsc[r, t, 0], dcnf, ho, H, one, inv_h)
            dz_row_at(dzf, zo, gf, zo, tcsf, co, csf, (r * (T + 1) + t) * H, dmf, ho, dctf, ho,
                      dcnf, ho, dcpf, ho, zcf, _at3(zc, r, t), phf, keepf, _at3(keep, r, t),
                      use_ph, use_k, use_zc, inf, one, use_ln, H)  # fmt: skip
            if use_p:
                cu, ou = uint64(co), uint64(zo + 3 * H)
                for j in range(Hu):
                    mallf[cu + j] = gf[ou + j] * tcsf[cu + j]
            if use_ln:
                _ln_back(dzf, zo, g_hh, nhf, zo, rsh[r, t, 0], dahf, zo, G, one, inv_g)
        gemm(NO_TRANS, NO_TRANS, nb, R, G, dah, (b0 * T + t) * G, T * G, w, 0, R, 0.0, tmp,
             b0 * R, R)  # fmt: skip
        for r in range(b0, b1):
            if t < lens[r]:
                ro = uint64(r * R)
                for j in range(Ru):
                    d = tmpf[ro + j] * rmf[ro + j] if use_rm else tmpf[ro + j]
                    dhf[ro + j] = d + dkhf[ro + j]
                _copy(dcf, r * H, dcpf, r * H, H)
    _grads(x, w_ih, hsrc, dz, dah, dax, dhp, mall, lnw, nx, rsx, nh, flags, one,
           dx, dw_ih, dw_hh, dw_hr, db, dln, b0, b1)  # fmt: skip


@njit(**JIT)
def _grads(x, w_ih, hsrc, dz, dah, dax, dhp, mall, lnw, nx, rsx, nh, flags, one,
           dx, dw_ih, dw_hh, dw_hr, db, dln, b0, b1):  # fmt: skip
    """Rows b0:b1 after the loop: dx, the layer-norm gains, and GEMM partial weight gradients."""
    B, T, G = dz.shape
    I, R, S, nb, H = x.shape[2], hsrc.shape[2], hsrc.shape[1], b1 - b0, dz.shape[2] // 4
    g_ih, inv_g = lnw[0], lnw[5][0]
    dzf, daxf, nxf, nhf, dlnf = (
        dz.reshape(-1), dax.reshape(-1), nx.reshape(-1), nh.reshape(-1), dln.reshape(-1)
    )  # fmt: skip
    Gu = uint64(G)
    db[:] = 0.0
    for r in range(b0, b1):
        for t in range(T):
            zo = (r * T + t) * G
            _add(db, 0, dzf, zo, G)
            if flags[6]:  # dax = LN backward of dz gain_ih
                zu = uint64(zo)
                for j in range(Gu):
                    dlnf[j] += dzf[zu + j] * nxf[zu + j]
                for j in range(Gu):
                    dlnf[Gu + j] += dzf[zu + j] * nhf[zu + j]
                _ln_back(dzf, zo, g_ih, nxf, zo, rsx[r, t, 0], daxf, zo, G, one, inv_g)
    gemm(NO_TRANS, NO_TRANS, nb * T, I, G, dax, b0 * T * G, G, w_ih, 0, I, 0.0, dx, b0 * T * I, I)
    gemm(TRANS, NO_TRANS, G, I, nb * T, dax, b0 * T * G, G, x, b0 * T * I, I, 0.0, dw_ih, 0, I)
    for b in range(b0, b1):  # h_in rows of consecutive sequences are not adjacent when S = T+1
        beta = 0.0 if b == b0 else 1.0
        gemm(TRANS, NO_TRANS, G, R, T, dah, b * T * G, G, hsrc, b * S * R, R, beta, dw_hh, 0, R)
    if flags[5]:
        P = dhp.shape[2]
        gemm(TRANS, NO_TRANS, P, H, nb * T, dhp, b0 * T * P, P, mall, b0 * T * H, H, 0.0,
             dw_hr, 0, H)  # fmt: skip
