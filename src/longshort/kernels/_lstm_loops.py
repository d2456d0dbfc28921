"""The compiled loops behind kernels/lstm.py (equations and shapes are in that file's docstring).

Each `*_chunk` function handles batch rows b0:b1 and calls BLAS single-threaded; `*_one` runs the
whole batch in the calling thread, `*_batch_par` splits it into chunks over Numba's threads, in
one compiled call that also makes its buffers and weight panels.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

from ._affinity import pin_chunk
from ._blas import get_threads, set_threads
from ._jit import JIT, NO_TRANS, TRANS, gemm, gemv, sigmoid_, tanh_
from ._tiles import NR, pack, pack_t, pgemm, pgemm_nt, pgemv, pgemv_nt, prefetch, tgemm

# The per-row loops index whole arrays flattened once per call (z.reshape(-1)) at an offset, with
# unsigned indices (uint64): a view such as z[r, t] or z[:H] costs an atomic reference count
# increment and decrement (Numba's NRT) each time it is made, ~30 of them per row and step; the
# locked instructions also wait for the row's pending stores. Forward activations of a
# (16, 100, 32, 128) chunk on one core: 350-430 -> 200-260 us. Signed offset indices such as
# z[2 * H + j] would instead keep Numba's negative-index wraparound, which stopped LLVM
# vectorising (4x slower). No float literals either: 1.0 - x would promote float32 to float64.


@njit(**JIT)
def _copy(dst, do, src, so, n):
    """dst[do : do + n] = src[so : so + n] (flat arrays, offsets)."""
    do, so = uint64(do), uint64(so)
    for j in range(uint64(n)):
        dst[do + j] = src[so + j]


@njit(**JIT)
def _zero(dst, do, n):
    """dst[do : do + n] = 0 (a flat array, an offset)."""
    do = uint64(do)
    for j in range(uint64(n)):
        dst[do + j] = 0


@njit(**JIT)
def _activate_at(z, zo, b, bo, H):
    """z[zo : zo + 4H] pre-activations + b[bo : bo + 4H] -> gates in place: sigmoid on i, f, o;
    tanh on g (flat arrays, offsets)."""
    zo, bo, H2, Hu = uint64(zo), uint64(bo), uint64(2 * H), uint64(H)
    for j in range(H2):
        z[zo + j] = sigmoid_(z[zo + j] + b[bo + j])
    for j in range(H2, H2 + Hu):
        z[zo + j] = tanh_(z[zo + j] + b[bo + j])
    for j in range(H2 + Hu, H2 + H2):
        z[zo + j] = sigmoid_(z[zo + j] + b[bo + j])


@njit(**JIT)
def _activate(z, b, H):
    """z (4H,) pre-activations + b (4H,) -> gates in place: sigmoid on i, f, o; tanh on g."""
    _activate_at(z, 0, b, 0, H)


@njit(**JIT)
def _cell_at(z, zo, cp, po, cn, no, tc, to, hn, ho, H):
    """Gates z[zo : zo + 4H], c_{t-1} = cp[po : po + H] -> c_t, tanh(c_t), h_t into cn, tc, hn
    at their offsets (flat arrays); one output array per loop."""
    zo, po, no, to, ho, Hu = uint64(zo), uint64(po), uint64(no), uint64(to), uint64(ho), uint64(H)
    fo, go, oo = zo + Hu, zo + Hu + Hu, zo + Hu + Hu + Hu
    for j in range(Hu):
        cn[no + j] = z[fo + j] * cp[po + j] + z[zo + j] * z[go + j]
    for j in range(Hu):
        tc[to + j] = tanh_(cn[no + j])
    for j in range(Hu):
        hn[ho + j] = z[oo + j] * tc[to + j]


@njit(**JIT)
def _cell(z, cp, cn, tc, hn, H):
    """Gates z (4H,), c_{t-1} (H,) -> c_t, tanh(c_t), h_t; one output array per loop."""
    _cell_at(z, 0, cp, 0, cn, 0, tc, 0, hn, 0, H)


@njit(**JIT)
def _forward_rows(x, w_ih, wp_ih, fused, z, b, w_hh, wp_hh, hbuf, cbuf, tbuf, y, lens, b0, b1):
    """Rows b0:b1 through all steps; z (B, Tz, 4H) becomes the gates.

    fused: each step computes z_t = x_t W_ih^T + h_{t-1} W_hh^T (no (B, T, 4H) buffer to write
    and read back: z may be a single step, Tz = 1, without a cache); otherwise z already holds
    x W_ih^T. wp_ih, wp_hh = _tiles.pack_t(W): panels of W^T for the tiles; for a batch of one
    wp_hh = _tiles.pack_rows_t(W_hh), the one-row layout (1.6 us a step at H = 128 against
    OpenBLAS's gemv 3.4); (0, 0, 32) when not worth packing (a short single row: gemv on W).
    hbuf, cbuf (B, S, H) with S = T+1 (keep every state) or 2 (ring); tbuf (B, T or 1, H).
    """
    T, I = x.shape[1], x.shape[2]
    Tz, G = z.shape[1], z.shape[2]
    H, S, St, nb = G // 4, hbuf.shape[1], tbuf.shape[1], b1 - b0
    packed = wp_hh.shape[1] > 0
    zf, hf, cf = z.reshape(-1), hbuf.reshape(-1), cbuf.reshape(-1)
    tf, yf = tbuf.reshape(-1), y.reshape(-1)
    for t in range(T):
        tp, tn, tt, tz = t % S, (t + 1) % S, t % St, t % Tz
        zo = (b0 * Tz + tz) * G
        if fused:
            pgemm_nt(nb, G, I, x, (b0 * T + t) * I, T * I, wp_ih, w_ih, 0.0, z, zo, Tz * G)
        if packed and wp_hh.shape[2] != NR:  # the one-row layout (_tiles.pack_rows_t)
            pgemv_nt(G, H, hbuf, (b0 * S + tp) * H, wp_hh, w_hh, 1.0, z, zo)
        elif packed:
            pgemm_nt(nb, G, H, hbuf, (b0 * S + tp) * H, S * H, wp_hh, w_hh, 1.0, z, zo, Tz * G)
        else:
            gemv(NO_TRANS, G, H, w_hh, 0, H, hbuf, (b0 * S + tp) * H, 1.0, z, zo)
        for r in range(b0, b1):
            zr, hp, hn = (r * Tz + tz) * G, (r * S + tp) * H, (r * S + tn) * H
            _activate_at(zf, zr, b, 0, H)
            _cell_at(zf, zr, cf, hp, cf, hn, tf, (r * St + tt) * H, hf, hn, H)
            if t < lens[r]:
                _copy(yf, (r * T + t) * H, hf, hn, H)
            else:  # past the end: carry the state, output zero
                _copy(hf, hn, hf, hp, H)
                _copy(cf, hn, cf, hp, H)
                _zero(yf, (r * T + t) * H, H)


@njit(**JIT)
def _forward_chunk(x, w_ih, wp_ih, fused, b, w_hh, wp_hh, z, hbuf, cbuf, tbuf, y, lens, b0, b1):
    """Rows b0:b1: z = x W_ih^T (one GEMM over their T steps) unless the input product is fused
    into the steps, then the time loop. wp_ih may be (0, 0, 32) (few rows: BLAS on W_ih)."""
    B, T, I = x.shape
    G, M = z.shape[2], (b1 - b0) * T
    if not fused:
        if wp_ih.shape[1] == 0:
            gemm(NO_TRANS, TRANS, M, G, I, x, b0 * T * I, I, w_ih, 0, I, 0.0, z, b0 * T * G, G)
        else:
            pgemm_nt(M, G, I, x, b0 * T * I, I, wp_ih, w_ih, 0.0, z, b0 * T * G, G)
    _forward_rows(x, w_ih, wp_ih, fused, z, b, w_hh, wp_hh, hbuf, cbuf, tbuf, y, lens, b0, b1)


@njit(**JIT)
def _forward_one(x, w_ih, wp_ih, fused, b, w_hh, wp_hh, z, hbuf, cbuf, tbuf, y, lens):
    threads = get_threads()
    set_threads(1)
    _forward_chunk(x, w_ih, wp_ih, fused, b, w_hh, wp_hh, z, hbuf, cbuf, tbuf, y, lens,
                   0, x.shape[0])  # fmt: skip
    set_threads(threads)


@njit(**JIT)
def _forward_setup(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lens, need_cache, z):
    """What the batched forward needs before its parallel region (see _forward_batch_par):
    (wp_ih, wp_hh, b, hbuf, cbuf, tbuf, y, z, lens); z allocated here when given as (0, 0, 0).
    Outside the parallel function, whose array expressions Numba would otherwise turn into
    parallel regions of their own."""
    B, T, _ = x.shape
    H = w_hh.shape[1]
    S = T + 1 if need_cache else 2
    hbuf, cbuf = np.empty((B, S, H), x.dtype), np.empty((B, S, H), x.dtype)
    hbuf[:, 0], cbuf[:, 0] = h0, c0
    if len(lens) == 0:  # no lengths given: every row runs all T steps
        lens = np.full(B, T, np.int64)
    tbuf = np.empty((B, T if need_cache else 1, H), x.dtype)
    if z.shape[0] == 0:
        z = np.empty((B, T if need_cache else 1, 4 * H), x.dtype)
    y = np.empty((B, T, H), x.dtype)
    return pack_t(w_ih), pack_t(w_hh), b_ih + b_hh, hbuf, cbuf, tbuf, y, z, lens


@njit(parallel=True, cache=True, nogil=True)
def _forward_batch_par(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lens, need_cache, chunks, z):
    """A batch of B >= chunks rows on `chunks` cores in ONE compiled call: the weight panels,
    the buffers and the initial states are set up here, not in Python (after a forward or
    backward has swept the caches, each NumPy call from Python took 2-5x its warm time:
    pack_t 21 us against 11, np.isfinite on x 21 against 10).
    lens: (B,) int64, or (0,) for all T; z: the gate buffer (B, T or 1, 4H), or (0, 0, 0) to
    allocate it here. Returns (y, hbuf, cbuf, tbuf, z) as _forward_chunk fills them (the input
    product fused into the steps, as B > 1 always is)."""
    wp_ih, wp_hh, b, hbuf, cbuf, tbuf, y, z, lens = _forward_setup(
        x, h0, c0, w_ih, w_hh, b_ih, b_hh, lens, need_cache, z
    )
    B, threads = x.shape[0], get_threads()
    set_threads(1)
    for k in prange(chunks):
        pin_chunk(k)  # one core per chunk (_affinity.py)
        _forward_chunk(x, w_ih, wp_ih, True, b, w_hh, wp_hh, z, hbuf, cbuf, tbuf, y, lens,
                       k * B // chunks, (k + 1) * B // chunks)  # fmt: skip
    set_threads(threads)
    return y, hbuf, cbuf, tbuf, z


@njit(**JIT)
def _dz_row(dz, zo, g4, go, tc, to, cp, po, dh, dc, ho, H):
    """One row of one step (flat arrays, offsets): dz[zo : zo + 4H] from the gates
    g4[go : go + 4H], tanh(c_t) tc[to:], c_{t-1} cp[po:] and dh[ho : ho + H];
    dc[ho : ho + H] becomes dc_t f. One loop for the five outputs (each input read once):
    1600 row-steps of a (16, 100, H = 128) chunk 256 -> 214 us against one loop per output."""
    zo, go, to, po, ho, Hu = uint64(zo), uint64(go), uint64(to), uint64(po), uint64(ho), uint64(H)
    i, f, g, o = go, go + Hu, go + Hu + Hu, go + Hu + Hu + Hu
    di, df, dg, do = zo, zo + Hu, zo + Hu + Hu, zo + Hu + Hu + Hu
    for j in range(Hu):
        oj, tj, dhj = g4[o + j], tc[to + j], dh[ho + j]
        dcj = dc[ho + j] + dhj * oj - dhj * oj * tj * tj  # dc_t
        ij, fj, gj = g4[i + j], g4[f + j], g4[g + j]
        dz[do + j] = dhj * tj * (oj - oj * oj)
        dz[di + j] = dcj * gj * (ij - ij * ij)
        dz[df + j] = dcj * cp[po + j] * (fj - fj * fj)
        dz[dg + j] = dcj * ij - dcj * ij * gj * gj
        dc[ho + j] = dcj * fj


@njit(**JIT)
def _add(dst, do, src, so, n):
    """dst[do : do + n] += src[so : so + n] (flat arrays, offsets)."""
    do, so = uint64(do), uint64(so)
    for j in range(uint64(n)):
        dst[do + j] += src[so + j]


@njit(**JIT)
def _backward_rows(dy, has_dy, gates, cs, tcs, w_hh, wp_hh, lens, dh, dc, dz, tmp, b0, b1):
    """Rows b0:b1 of BPTT; dh, dc (B, H) carried in place; dz (B, T, Gp) written, Gp >= 4H
    (its first 4H columns; see kernels/lstm.py on the padding).
    wp_hh = _tiles.pack(W_hh): (H // 32, 4H, 32) panels for dh = dz W_hh; for a batch of one
    _tiles.pack_rows(W_hh), or (0, 0, 32) for a short one (gemv)."""
    B, T, G = gates.shape
    H, nb, Gp = G // 4, b1 - b0, dz.shape[2]
    full = True
    for r in range(b0, b1):
        full = full and lens[r] >= T
    out = dh if full else tmp  # rows past their end must keep dh, so go through tmp
    gf, cf, tf = gates.reshape(-1), cs.reshape(-1), tcs.reshape(-1)
    dzf, dyf = dz.reshape(-1), dy.reshape(-1)
    dhf, dcf, tmpf = dh.reshape(-1), dc.reshape(-1), tmp.reshape(-1)
    for t in range(T - 1, -1, -1):
        for r in range(b0, b1):
            if t >= lens[r]:
                _zero(dzf, (r * T + t) * Gp, Gp)
                continue
            if t > 0:  # this row's next (earlier) step, while this one computes
                prefetch(gates, (r * T + t - 1) * G, G)
                prefetch(tcs, (r * T + t - 1) * H, H)
                prefetch(cs, (r * (T + 1) + t - 1) * H, H)
                if has_dy:
                    prefetch(dy, (r * T + t - 1) * H, H)
            if has_dy:
                _add(dhf, r * H, dyf, (r * T + t) * H, H)
            _dz_row(dzf, (r * T + t) * Gp, gf, (r * T + t) * G, tf, (r * T + t) * H,
                    cf, (r * (T + 1) + t) * H, dhf, dcf, r * H, H)  # fmt: skip
        if wp_hh.shape[1] == 0:  # a short single row: gemv on W_hh
            gemv(TRANS, G, H, w_hh, 0, H, dz, (b0 * T + t) * Gp, 0.0, out, b0 * H)
        elif wp_hh.shape[2] != NR:  # a batch of one: the one-row layout (_tiles.pack_rows)
            pgemv(H, G, dz, (b0 * T + t) * Gp, wp_hh, w_hh, 0.0, out, b0 * H)
        else:
            pgemm(nb, H, G, dz, (b0 * T + t) * Gp, T * Gp, wp_hh,
                  w_hh, 0, H, 0.0, out, b0 * H, H)  # fmt: skip
        if not full:
            for r in range(b0, b1):
                if t < lens[r]:
                    _copy(dhf, r * H, tmpf, r * H, H)


# input sizes up to which dW_ih goes through the tiles (BLAS was faster above)
TILE_WGRAD_MAX_I = 256
# dW_hh sizes (G x H elements) from which both weight gradients are one product over gathered
# [x_t, h_(t-1)] panels (below it, dW_hh's per-row products keep it in L2 and win)
JOINT_WGRAD_MIN = 4 * 256 * 256
# bytes of a block of the gathered panels, kept in L2 while the row tiles pass over it, and
# of the gathered panels at a time (memory for the joint product stays bounded for any B T)
JOINT_BLOCK, JOINT_SCRATCH = 320 * 1024, 8 << 20


@njit(**JIT)
def gather_panels(x, hs, b0, k0, k1, out):
    """[x_t, h_(t-1)] of the rows k0 <= k < k1 of batch rows b0.. (k = (b - b0) T + t) as
    32-column panels: out (P, >= k1 - k0, 32), P = (I + H) // 32; I and H multiples of 32."""
    T, I, H = x.shape[1], x.shape[2], hs.shape[2]
    PI, Pn = I // NR, out.shape[1]
    xf, hf, of = x.reshape(-1), hs.reshape(-1), out.reshape(-1)
    for k in range(k0, k1):
        b, t, q = b0 + k // T, k % T, k - k0
        xo, ho = (b * T + t) * I, (b * (T + 1) + t) * H
        for p in range(PI):
            _copy(of, (p * Pn + q) * NR, xf, xo + p * NR, NR)
        for p in range(H // NR):
            _copy(of, ((PI + p) * Pn + q) * NR, hf, ho + p * NR, NR)


@njit(**JIT)
def _joint_grads(dz, x, hs, dw_ih, dw_hh, b0, b1):
    """[dW_ih dW_hh] = dz^T [x h_(t-1)] over rows b0:b1 as one product (see weight_grads), K
    in pieces of at most JOINT_SCRATCH bytes of gathered panels."""
    T, I, H = x.shape[1], x.shape[2], hs.shape[2]
    G, Gp, N, K, size = dw_ih.shape[0], dz.shape[2], I + H, (b1 - b0) * T, dz.itemsize
    kb = max(64, min(512, JOINT_BLOCK // (N * size)))
    piece = min(K, max(kb, JOINT_SCRATCH // (N * size) // kb * kb))
    xh = np.empty((N // NR, piece, NR), dz.dtype)
    out = np.empty((G, N), dz.dtype)
    for k0 in range(0, K, piece):
        kn = min(piece, K - k0)
        gather_panels(x, hs, b0, k0, k0 + kn, xh)
        beta = 0.0 if k0 == 0 else 1.0
        tgemm(G, N, kn, dz, (b0 * T + k0) * Gp, 1, Gp, xh, 0, NR, NR * piece, beta, out, 0, N, kb)
    of, af, cf = out.reshape(-1), dw_ih.reshape(-1), dw_hh.reshape(-1)
    for g in range(G):
        _copy(af, g * I, of, g * N, I)
        _copy(cf, g * H, of, g * N + I, H)


@njit(**JIT)
def _separate_grads(dz, x, hs, dw_ih, dw_hh, b0, b1):
    """dW_ih = dz^T x and dW_hh = dz^T h_(t-1) over rows b0:b1 as separate products (see
    weight_grads for which form each takes)."""
    T, I, H = x.shape[1], x.shape[2], hs.shape[2]
    G, Gp, nb = dw_ih.shape[0], dz.shape[2], b1 - b0
    if nb > 1 and I % NR == 0:  # dW_ih = dz^T x, straight: x's rows are its panels
        tgemm(G, I, nb * T, dz, b0 * T * Gp, 1, Gp, x, b0 * T * I, I, 32, 0.0, dw_ih, 0, I, 128)
    elif nb > 1 and I <= TILE_WGRAD_MAX_I:
        wt = np.empty((I, G), dz.dtype)
        tgemm(I, G, nb * T, x, b0 * T * I, 1, I, dz, b0 * T * Gp, Gp, 32, 0.0, wt, 0, G, 128)
        dw_ih[:, :] = wt.T
    else:
        gemm(TRANS, NO_TRANS, G, I, nb * T, dz, b0 * T * Gp, Gp, x, b0 * T * I, I,
             0.0, dw_ih, 0, I)  # fmt: skip
    if nb == 1:  # one product: BLAS is faster than the tiles at K = T
        gemm(TRANS, NO_TRANS, G, H, T, dz, b0 * T * Gp, Gp, hs, b0 * (T + 1) * H, H,
             0.0, dw_hh, 0, H)  # fmt: skip
    else:  # dW_hh = sum over rows of dz_b^T h_b: dz_b read transposed in place, h_b as panels
        for b in range(b0, b1):
            beta = 0.0 if b == b0 else 1.0
            tgemm(G, H, T, dz, b * T * Gp, 1, Gp, hs, b * (T + 1) * H, H, 32, beta, dw_hh, 0, H, T)


@njit(**JIT)
def weight_grads(dz, x, hs, w_ih, dx, dw_ih, dw_hh, db, b0, b1):
    """Rows b0:b1 of dz (B, T, Gp), G = dW_ih's rows <= Gp the columns used (a row length of
    Gp > G keeps dz^T's reads off one cache set: see kernels/lstm.py):
    dx = dz W_ih (unless dx is (0, T, I)), their partial dW_ih = dz^T x,
    dW_hh = dz^T h_{t-1}, db = sum of dz. Shared by every cell kind.

    dx = dz W_ih goes through the tiles (_tiles.tgemm; W_ih (4H, I) row-major already has the
    panel layout: 1.1-1.5x OpenBLAS at (3200..12800, 512..2048, 32..128)).
    Large dW_hh (G H >= JOINT_WGRAD_MIN) with I and H multiples of 32: [dW_ih dW_hh] =
    dz^T [x h_(t-1)], one long-K product over the rows' [x_t, h_(t-1)] gathered into panels:
    dz is read once, and the (G, I + H) result passes through the cache once per K block of
    JOINT_BLOCK bytes of panels instead of once per batch row (weight gradients on both cores
    at (128, 50, 128, 512) and (64, 200, 64, 256): see benchmarks/README.md).
    Otherwise, with several rows and I a multiple of 32, dW_ih = dz^T x goes through the tiles
    reading dz^T and x in place (x's
    rows hold whole panels), 15-55 % faster than x^T dz and a transpose at I = 64..512 and H =
    128..512 (one core, interleaved) and 1.7-2x OpenBLAS; other I: dW_ih^T = x^T dz through the
    tiles, reading x^T in place (2.5x OpenBLAS over a (32, 100, 32, 128) batch; at I = 16 the
    form above would leave every column to BLAS), then a transpose; dW_hh = dz_b^T h_b, one
    product per batch row
    (h_0..h_{T-1} of consecutive rows are not adjacent in hs (B, T+1, H)), reads dz_b^T in place
    and h_b as 32-column panels, straight into dW_hh (8-20 % faster than h^T dz and a transpose
    at (64, 200, 64, 256) and (128, 50, 128, 512); level at (32, 100, 32, 128)).
    One row: a single BLAS product each is faster.
    """
    B, T, I = x.shape
    G, Gp, H, nb = dw_ih.shape[0], dz.shape[2], hs.shape[2], b1 - b0
    if dx.shape[0] > 0:  # (0, T, I): the caller does not need dx
        tgemm(nb * T, I, G, dz, b0 * T * Gp, Gp, 1, w_ih, 0, I, 32, 0.0, dx, b0 * T * I, I, G)
    if nb > 1 and I % NR == 0 and H % NR == 0 and G * H >= JOINT_WGRAD_MIN:
        _joint_grads(dz, x, hs, dw_ih, dw_hh, b0, b1)
    else:
        _separate_grads(dz, x, hs, dw_ih, dw_hh, b0, b1)
    db[:] = 0.0
    dzf = dz.reshape(-1)
    for k in range(b0 * T, b1 * T):
        _add(db, 0, dzf, k * Gp, G)


@njit(**JIT)
def _backward_chunk(dy, has_dy, gates, hs, cs, tcs, w_hh, wp_hh, lens, dh, dc, dz, tmp,
                    x, w_ih, dx, dw_ih, dw_hh, db, b0, b1):  # fmt: skip
    """Rows b0:b1: BPTT, then their share of dx and of the weight gradients."""
    _backward_rows(dy, has_dy, gates, cs, tcs, w_hh, wp_hh, lens, dh, dc, dz, tmp, b0, b1)
    weight_grads(dz, x, hs, w_ih, dx, dw_ih, dw_hh, db, b0, b1)


@njit(**JIT)
def _backward_one(dy, has_dy, gates, hs, cs, tcs, w_hh, wp_hh, lens, dh, dc, dz, tmp,
                  x, w_ih, dx, dw_ih, dw_hh, db):  # fmt: skip
    threads = get_threads()
    set_threads(1)
    _backward_chunk(dy, has_dy, gates, hs, cs, tcs, w_hh, wp_hh, lens, dh, dc, dz, tmp,
                    x, w_ih, dx, dw_ih[0], dw_hh[0], db[0], 0, dh.shape[0])  # fmt: skip
    set_threads(threads)


@njit(**JIT)
def fold(parts, k, n):
    """parts[0, rows] += parts[c, rows] for every chunk c >= 1, rows = the k-th of n blocks of the
    second axis: core k's share of adding the chunks' partial sums (parts (chunks, G, ...)
    C-contiguous) into the first chunk's."""
    g0, g1 = k * parts.shape[1] // n, (k + 1) * parts.shape[1] // n
    row = parts.size // (parts.shape[0] * parts.shape[1])  # elements per gate row
    chunk, flat = parts.shape[1] * row, parts.reshape(-1)
    for c in range(1, parts.shape[0]):  # rows g0:g1 of a chunk are one contiguous run
        _add(flat, g0 * row, flat, c * chunk + g0 * row, (g1 - g0) * row)


@njit(**JIT)
def _backward_setup(w_hh, dh0, dc0, lens, B, T, I, need_dx, chunks, dt_like):
    """Buffers of the batched backward (see _backward_batch_par): (wp_hh, dh, dc, tmp, dx,
    dw_ih, dw_hh, db, lens); dh0, dc0 (B, H) or (0, 0) for zeros; lens (B,) or (0,) for all T."""
    G, H = w_hh.shape
    if len(lens) == 0:
        lens = np.full(B, T, np.int64)
    dh = np.zeros((B, H), dt_like.dtype) if len(dh0) == 0 else dh0.copy()
    dc = np.zeros((B, H), dt_like.dtype) if len(dc0) == 0 else dc0.copy()
    dx = np.empty((B if need_dx else 0, T, I), dt_like.dtype)
    dw_ih = np.empty((chunks, G, I), dt_like.dtype)
    dw_hh, db = np.empty((chunks, G, H), dt_like.dtype), np.empty((chunks, G), dt_like.dtype)
    return pack(w_hh), dh, dc, np.empty((B, H), dt_like.dtype), dx, dw_ih, dw_hh, db, lens


@njit(parallel=True, cache=True, nogil=True)
def _backward_batch_par(dy, has_dy, gates, hs, cs, tcs, w_hh, dh0, dc0, dz, x, w_ih, lens,
                        need_dx, chunks):  # fmt: skip
    """The backward of B >= chunks rows on `chunks` cores in ONE compiled call, its buffers and
    W_hh's panels set up here (see _forward_batch_par). Returns (dx, dh, dc, dw_ih, dw_hh, db).
    Each chunk sums its own partial weight gradients, then every core adds up a block of gate
    rows of all chunks into the first (`fold`: 2-3x faster than NumPy's sum over the chunk axis,
    which took 23 us for (2, 512, 128) and 0.7 ms for (2, 2048, 512)); the returned gradients
    are the first chunk's buffers."""
    B, T, I = x.shape
    wp_hh, dh, dc, tmp, dx, dw_ih, dw_hh, db, lens = _backward_setup(
        w_hh, dh0, dc0, lens, B, T, I, need_dx, chunks, dz
    )
    threads = get_threads()
    set_threads(1)
    for k in prange(chunks):
        pin_chunk(k)  # one core per chunk (_affinity.py)
        _backward_chunk(dy, has_dy, gates, hs, cs, tcs, w_hh, wp_hh, lens, dh, dc, dz, tmp,
                        x, w_ih, dx, dw_ih[k], dw_hh[k], db[k],
                        k * B // chunks, (k + 1) * B // chunks)  # fmt: skip
    for k in prange(chunks):
        fold(dw_ih, k, chunks)
        fold(dw_hh, k, chunks)
        fold(db, k, chunks)
    set_threads(threads)
    return dx, dh, dc, dw_ih[0], dw_hh[0], db[0]


@njit(**JIT)
def _step(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One step for all rows -> (h_t, c_t, gates (B, 4H)). Few arguments: each costs the
    dispatcher time, and a streaming step is mostly call overhead."""
    B, I = x.shape
    H = h.shape[1]
    G = 4 * H
    threads = get_threads()
    set_threads(1)
    z, b = np.empty((B, G), h.dtype), b_ih + b_hh
    hn, cn, tc = np.empty((B, H), h.dtype), np.empty((B, H), h.dtype), np.empty(H, h.dtype)
    if B == 1:
        gemv(NO_TRANS, G, I, w_ih, 0, I, x, 0, 0.0, z, 0)
        gemv(NO_TRANS, G, H, w_hh, 0, H, h, 0, 1.0, z, 0)
    else:
        gemm(NO_TRANS, TRANS, B, G, I, x, 0, I, w_ih, 0, I, 0.0, z, 0, G)
        gemm(NO_TRANS, TRANS, B, G, H, h, 0, H, w_hh, 0, H, 1.0, z, 0, G)
    for r in range(B):
        _activate(z[r], b, H)
        _cell(z[r], c[r], cn[r], tc, hn[r], H)
    set_threads(threads)
    return hn, cn, z
