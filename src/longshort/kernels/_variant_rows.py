"""One batch row of one step of the variant LSTM, shared by both variant kernels.

Written as short loops from 0 over views (as _lstm_loops.py): a single loop with offset indices
(z[2 * H + j]) and per-unit branches ran scalar, which cost the variants 30-60 % over the plain
kernel; these vectorise. Options are branches around whole loops, not inside them.
flags = (peepholes, clip, ...); `one` carries the dtype.
"""

from __future__ import annotations

from numba import njit

from ._jit import JIT, sigmoid_, tanh_


@njit(**JIT)
def gates_row(zr, b, cp, cn, tc, m, ph, keep, use_ph, use_k, k, inf, one, do_tanh):
    """zr (4H,) pre-activations -> gates in place, plus bias b; c~ -> cn; when do_tanh,
    tc = tanh(c~) and m = o tc. keep (4H,) gets the clip masks when use_k."""
    G = len(zr)
    H = G // 4
    zi, zf, zg, zo = zr[:H], zr[H : 2 * H], zr[2 * H : 3 * H], zr[3 * H :]
    for j in range(G):
        zr[j] += b[j]
    if use_ph:
        p0, p2 = ph[0], ph[2]
        for j in range(H):
            zi[j] += p0[j] * cp[j]
        for j in range(H):
            zf[j] += p2[j] * cp[j]
    if use_k:
        for j in range(3 * H):
            keep[j] = abs(zr[j]) < k
        for j in range(3 * H):
            zr[j] = min(max(zr[j], -k), k)
    s = zr[: 2 * H]
    for j in range(2 * H):
        s[j] = sigmoid_(s[j])
    for j in range(H):
        zg[j] = tanh_(zg[j])
    if inf:
        for j in range(H):
            zi[j] = one - zf[j]
    for j in range(H):
        cn[j] = zf[j] * cp[j] + zi[j] * zg[j]
    if use_ph:
        p1 = ph[1]
        for j in range(H):
            zo[j] += p1[j] * cn[j]
    if use_k:
        ko = keep[3 * H :]
        for j in range(H):
            ko[j] = abs(zo[j]) < k
        for j in range(H):
            zo[j] = min(max(zo[j], -k), k)
    for j in range(H):
        zo[j] = sigmoid_(zo[j])
    if do_tanh:
        for j in range(H):
            tc[j] = tanh_(cn[j])
        for j in range(H):
            m[j] = zo[j] * tc[j]


@njit(**JIT)
def dz_row(dzr, g4, tc, cp, dm, dct, dcn, dcp, zc, ph, keep, use_ph, use_k, use_zc, inf, one,
           dln_c):  # fmt: skip
    """dz (4H,) of one row; dm (H,) the gradient w.r.t. m = o tanh(.), dct (H,) w.r.t. c_t
    (zero on a padded step), zc (H,) zoneout's keep-previous row. dcn (H,) is scratch that holds,
    on entry when dln_c, the cell's layer-norm term of dc~. dcp (H,) gets dc_{t-1}."""
    G = len(dzr)
    H = G // 4
    i, f, g, o = g4[:H], g4[H : 2 * H], g4[2 * H : 3 * H], g4[3 * H :]
    di, df, dg, do = dzr[:H], dzr[H : 2 * H], dzr[2 * H : 3 * H], dzr[3 * H :]
    for j in range(H):
        do[j] = dm[j] * tc[j] * (o[j] - o[j] * o[j])
    if not dln_c:
        for j in range(H):
            dcn[j] = dm[j] * o[j] - dm[j] * o[j] * tc[j] * tc[j]
    if use_zc:
        for j in range(H):
            dcn[j] += dct[j] - dct[j] * zc[j]
    else:
        for j in range(H):
            dcn[j] += dct[j]
    if use_k:
        for j in range(H):
            do[j] = do[j] if keep[3 * H + j] else do[j] * 0
    if use_ph:
        p1 = ph[1]
        for j in range(H):
            dcn[j] += do[j] * p1[j]
    for j in range(H):
        dg[j] = dcn[j] * i[j] - dcn[j] * i[j] * g[j] * g[j]
    if inf:  # i = 1 - f
        for j in range(H):
            df[j] = (dcn[j] * cp[j] - dcn[j] * g[j]) * (f[j] - f[j] * f[j])
        for j in range(H):
            di[j] = dcn[j] * 0
    else:
        for j in range(H):
            df[j] = dcn[j] * cp[j] * (f[j] - f[j] * f[j])
        for j in range(H):
            di[j] = dcn[j] * g[j] * (i[j] - i[j] * i[j])
    if use_k:
        for j in range(3 * H):
            dzr[j] = dzr[j] if keep[j] else dzr[j] * 0
    for j in range(H):
        dcp[j] = dcn[j] * f[j]
    if use_ph:
        p0, p2 = ph[0], ph[2]
        for j in range(H):
            dcp[j] += di[j] * p0[j] + df[j] * p2[j]
    if use_zc:
        for j in range(H):
            dcp[j] += dct[j] * zc[j]
