"""One batch row of one step of the variant LSTM, shared by both variant kernels.

Written as short loops over whole arrays flattened once per call, at unsigned (uint64) offsets,
as _lstm_loops.py: a single loop with signed offset indices (z[2 * H + j]) and per-unit branches
ran scalar, which cost the variants 30-60 % over the plain kernel, and a view per block (z[:H])
costs an atomic reference count increment and decrement each time; these vectorise. Options are
branches around whole loops, not inside them. No int literal may meet a uint64 index (Numba
would compute in float64): offsets are sums of uint64 values. `gates_row_at` and `dz_row_at` take
flat arrays and offsets (ph flat: its 3 rows at 0, H, 2H). flags = (peepholes, clip, ...); `one` carries the dtype.
"""

from __future__ import annotations

from numba import njit, uint64

from ._jit import JIT, sigmoid_, tanh_


@njit(**JIT)
def _clip_at(z, zo, keep, ko, k, n):
    """keep[ko : ko + n] = |z| < k, then z[zo : zo + n] clipped to [-k, k] (uint64 n, offsets)."""
    for j in range(n):
        keep[ko + j] = abs(z[zo + j]) < k
    for j in range(n):
        z[zo + j] = min(max(z[zo + j], -k), k)


@njit(**JIT)
def gates_row_at(z, zo, b, cp, po, cn, no, tc, to, m, mo, ph, keep, ko, use_ph, use_k, k, inf,
                 one, do_tanh, H):  # fmt: skip
    """z[zo : zo + 4H] pre-activations -> gates in place, plus bias b (4H,); c_{t-1} =
    cp[po:], c~ -> cn[no:]; when do_tanh, tc[to:] = tanh(c~) and m[mo:] = o tc. keep[ko : ko + 4H]
    gets the clip masks when use_k. Flat arrays, offsets."""
    zo, po, no, to, mo, ko = uint64(zo), uint64(po), uint64(no), uint64(to), uint64(mo), uint64(ko)
    Hu = uint64(H)
    H2 = Hu + Hu
    H3, G = H2 + Hu, H2 + H2
    zi, zf, zg, zq = zo, zo + Hu, zo + H2, zo + H3
    for j in range(G):
        z[zo + j] += b[j]
    if use_ph:
        for j in range(Hu):
            z[zi + j] += ph[j] * cp[po + j]
        for j in range(Hu):
            z[zf + j] += ph[H2 + j] * cp[po + j]
    if use_k:
        _clip_at(z, zo, keep, ko, k, H3)
    for j in range(H2):
        z[zo + j] = sigmoid_(z[zo + j])
    for j in range(Hu):
        z[zg + j] = tanh_(z[zg + j])
    if inf:
        for j in range(Hu):
            z[zi + j] = one - z[zf + j]
    for j in range(Hu):
        cn[no + j] = z[zf + j] * cp[po + j] + z[zi + j] * z[zg + j]
    if use_ph:
        for j in range(Hu):
            z[zq + j] += ph[Hu + j] * cn[no + j]
    if use_k:
        _clip_at(z, zq, keep, ko + H3, k, Hu)
    for j in range(Hu):
        z[zq + j] = sigmoid_(z[zq + j])
    if do_tanh:
        for j in range(Hu):
            tc[to + j] = tanh_(cn[no + j])
        for j in range(Hu):
            m[mo + j] = z[zq + j] * tc[to + j]


@njit(**JIT)
def dz_row_at(dz, zo, g4, go, tc, to, cp, po, dm, mo, dct, co, dcn, no, dcp, qo, zc, zco, ph,
              keep, ko, use_ph, use_k, use_zc, inf, one, dln_c, H):  # fmt: skip
    """dz[zo : zo + 4H] of one row from the gates g4[go:], tanh(.) tc[to:], c_{t-1} cp[po:];
    dm[mo : mo + H] the gradient w.r.t. m = o tanh(.), dct[co:] w.r.t. c_t (zero on a padded
    step), zc[zco:] zoneout's keep-previous row. dcn[no:] is scratch that holds, on entry when
    dln_c, the cell's layer-norm term of dc~. dcp[qo:] gets dc_{t-1}. Flat arrays, offsets."""
    zo, go, to, po, mo = uint64(zo), uint64(go), uint64(to), uint64(po), uint64(mo)
    co, no, qo, zco, ko = uint64(co), uint64(no), uint64(qo), uint64(zco), uint64(ko)
    Hu = uint64(H)
    H2 = Hu + Hu
    H3 = H2 + Hu
    i, f, g, o = go, go + Hu, go + H2, go + H3
    di, df, dg, do = zo, zo + Hu, zo + H2, zo + H3
    for j in range(Hu):
        dz[do + j] = dm[mo + j] * tc[to + j] * (g4[o + j] - g4[o + j] * g4[o + j])
    if not dln_c:
        for j in range(Hu):
            dcn[no + j] = dm[mo + j] * g4[o + j] - dm[mo + j] * g4[o + j] * tc[to + j] * tc[to + j]
    if use_zc:
        for j in range(Hu):
            dcn[no + j] += dct[co + j] - dct[co + j] * zc[zco + j]
    else:
        for j in range(Hu):
            dcn[no + j] += dct[co + j]
    if use_k:
        kq = ko + H3
        for j in range(Hu):
            dz[do + j] = dz[do + j] if keep[kq + j] else dz[do + j] * 0
    if use_ph:
        for j in range(Hu):
            dcn[no + j] += dz[do + j] * ph[Hu + j]
    for j in range(Hu):
        dz[dg + j] = dcn[no + j] * g4[i + j] - dcn[no + j] * g4[i + j] * g4[g + j] * g4[g + j]
    if inf:  # i = 1 - f
        for j in range(Hu):
            dz[df + j] = (dcn[no + j] * cp[po + j] - dcn[no + j] * g4[g + j]) * (
                g4[f + j] - g4[f + j] * g4[f + j]
            )
        for j in range(Hu):
            dz[di + j] = dcn[no + j] * 0
    else:
        for j in range(Hu):
            dz[df + j] = dcn[no + j] * cp[po + j] * (g4[f + j] - g4[f + j] * g4[f + j])
        for j in range(Hu):
            dz[di + j] = dcn[no + j] * g4[g + j] * (g4[i + j] - g4[i + j] * g4[i + j])
    if use_k:
        for j in range(H3):
            dz[zo + j] = dz[zo + j] if keep[ko + j] else dz[zo + j] * 0
    for j in range(Hu):
        dcp[qo + j] = dcn[no + j] * g4[f + j]
    if use_ph:
        for j in range(Hu):
            dcp[qo + j] += dz[di + j] * ph[j] + dz[df + j] * ph[H2 + j]
    if use_zc:
        for j in range(Hu):
            dcp[qo + j] += dct[co + j] * zc[zco + j]
