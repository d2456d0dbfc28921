"""A small GEMM for the recurrent kernels' products, on weights packed once per call.

Why: each time step multiplies a few batch rows by the same weights, T times over,
    forward   z_t = x_t W_ih^T + h_{t-1} W_hh^T   (M = rows, K = I and H, N = 4H)
    backward  dh  = dz_t W_hh                     (M = rows, K = 4H, N = H)
with M small (a core's share of the batch); after the loop the weight gradients x^T dz, h^T dz
and dx = dz W_ih are long-K products. OpenBLAS packs both operands on every call and ran the
per-step shapes at 51-83 GFLOP/s on one core of the 2-core test machine (AMD EPYC, AVX-512);
packing the weights once and running the kernel below gave 108-112 GFLOP/s on the same shapes
(measured in benchmarks/README.md).

Layout: B (K, N) row-major becomes P = N // 32 panels, `pack(B)` -> (P, K, 32), each panel's
32 columns contiguous per k. The N - 32 P columns that do not fill a panel stay with BLAS.

Micro-kernel (one per row count: mr = 1..8 for float32, 1..4 for float64, the driver's tile
heights), written as LLVM IR, compiled by llvmlite for this CPU when the module loads (~0.08 s),
and registered under fixed names (`longshort_tile_s8`, ...) so the Numba kernels that call it
stay cacheable on disk (as in _blas.py):
    tile(K, A, ars, aks, Bp, ldb, C, ldc, accumulate):
        C[0:mr, 0:32] (+)= A[0:mr, 0:K] @ B[0:K, 0:32],  A[r, k] at A + r ars + k aks,
        B[k, :] at Bp + k ldb (ldb = 32 for a packed panel)
An mr x 32 block of accumulators stays in vector registers over the whole k loop: each k loads
one panel row (2 float32 or 4 float64 vectors), broadcasts A[r, k], and does one fused
multiply-add per accumulator. Vectors are LLVM's generic `<16 x float>`, lowered to whatever the
CPU has (AVX-512, AVX2, NEON). If compilation fails, plain compiled loops take the names.
That block needs 16 of AVX-512's 32 vector registers; a CPU without AVX-512 (`WIDE` False: AVX2
has 16 registers of 8 float32) gets the same functions from `_tile_ir_narrow` and
`_row_ir_narrow` instead: 6-row tiles (MR = 6) in chunks of 16 columns, and one-row products over
pairs of panels (NP = 2), so that nothing spills (37 -> 78-90 GFLOP/s a core on a Zen 3).
The driver loops over row tiles outside and panels inside: one tile's rows of A stay in L1 while
the panels stream from L2 (or L3); at M = 32 the other order fell to 82 GFLOP/s.

One row of A (a batch of one) would leave the tile latency-bound on 2 accumulators, so M = 1
goes through `longshort_row_<kind><npan>`: one row times npan panels at once (up to 4 float32 /
2 float64 panels, 8 accumulators). And `longshort_tr_<kind>`, a 16 x 16 (float32) or 8 x 8
(float64) block transpose by vector shuffles, gives `transpose(W)` and `pack_t(W)` = pack(W^T)
without NumPy's strided copy (9 us instead of 76 for pack(W^T) at W (512, 128); 0.12 ms
instead of 3.9 at (2048, 512)): the forward packs W_ih^T and W_hh^T on every call.

    pgemm(M, N, K, A, a_off, lda, Bp, B, b_off, ldb, beta, C, c_off, ldc)
        C[M, N] = A[M, K] @ B[K, N] + beta C,  beta in {0, 1}; Bp = pack(B) (panels), B the
        original (its last N - 32 P columns go through BLAS gemm).
    tgemm(M, N, K, A, a_off, ars, aks, B, b_off, ldb, bps, beta, C, c_off, ldc, kb)
        the general form: A or A^T in place, B packed or row-major, K in blocks of kb;
        the weight gradients use it for dz W_ih, x^T dz and h^T dz.
    pgemm_nt(M, N, K, A, a_off, lda, Wp, W, beta, C, c_off, ldc)
        C = A W^T + beta C with Wp = pack_t(W); rows of W past the last panel through BLAS.
"""

from __future__ import annotations

import contextlib
import logging
import os

import llvmlite.binding as llvm
import numpy as np
from numba import njit, types
from numba.extending import overload

from ._blas import NO_TRANS, TRANS
from ._jit import _check_arrays, gemm, gemv

log = logging.getLogger(__name__)

NR = 32  # columns per panel
# Longest K a tile runs before its accumulators go back to C: the tile's mr x KC block of A
# (8 x 512 float32, 4 x 512 float64: 16 KiB) stays in L1 (48 KiB here) while the panels pass.
# A product alone, M = 64, K = 2048, N = 512 (dz W_hh at H = 512) on both cores: 212 GFLOP/s
# unblocked, 408 with K cut in 512s; inside the BPTT loop (A just written, already in L1/L2) the
# two were level (37-41 ms a (64, 50, H = 512) backward loop either way).
KC = 512
# Panels outside, rows inside, when K > 2 KC and A's M x KC block fits in this many bytes of L2:
# dh = dz W_hh at (64 rows, K = 2048, N = 512) on both cores 37.7-37.8 -> 33.9-35.2 ms a 50-step
# loop (two in-process A/B runs); the forward's (64, 512, 2048) and H <= 256 were level or slower.
A_L2 = 512 * 1024
# 512-bit vectors on this CPU: the tiles below keep an 8 x 32 float32 block in 16 of its 32
# registers; without them (AVX2: 16 registers of 256 bits) the narrow-vector tiles are used.
WIDE = "+avx512f" in llvm.get_host_cpu_features().flatten().split(",")
# rows per tile: 8 x 2 <16 x float> = 4 x 4 <8 x double> = 16 accumulators; without 512-bit
# vectors 6 x 2 <8 x float> per 16 columns (12 of the 16 registers; the BLIS shape for AVX2):
# 82-89 GFLOP/s a core against 61-84 for 8 rows as two groups of 4 (Zen 3, medians of 15)
MR = {"s": 8, "d": 4} if WIDE else {"s": 6, "d": 4}
# panels per one-row product: 4 x 2 <16 x float> = 2 x 4 <8 x double> accumulators; without
# 512-bit vectors 2 x 4 <8 x float> = 1 x 8 <4 x double>, so that one pass streams one group
NP = {"s": 4, "d": 2} if WIDE else {"s": 2, "d": 1}
_NP_S, _NP_D = NP["s"], NP["d"]  # for compiled code
_LANES = {"s": 16, "d": 8}
_NARROW = {"s": 8, "d": 4}  # lanes of one AVX2 (256-bit) register
_LLTYPE = {"s": "float", "d": "double"}


@njit(nogil=True, cache=True)
def pack(b):
    """B (K, N) -> (N // 32, K, 32) panels of 32 columns (the remainder columns are left out).
    Compiled, so that the batched backward packs W_hh inside its one call (and 2x faster than
    NumPy's strided copy from Python)."""
    K, N = b.shape
    P = N // NR
    out = np.empty((P, K, NR), b.dtype)
    for p in range(P):
        for k in range(K):
            src, dst = b[k, p * NR : (p + 1) * NR], out[p, k]
            for j in range(NR):
                dst[j] = src[j]
    return out


def _tile_ir(kind: str, mr: int) -> str:
    """LLVM IR of `longshort_tile_<kind><mr>` (see the module docstring)."""
    f, vw = _LLTYPE[kind], _LANES[kind]
    nv, V = NR // vw, f"<{vw} x {f}>"
    fma = f"@llvm.fmuladd.v{vw}{'f32' if kind == 's' else 'f64'}"
    rows, vecs = range(mr), range(nv)
    out = [
        f"define void @longshort_tile_{kind}{mr}(i64 %K, ptr %A, i64 %ars, i64 %aks, ptr %Bp, "
        "i64 %ldb, ptr %C, i64 %ldc, i32 %accum) nounwind {",
        "entry:",
        *(f"  %arow{r} = mul i64 %ars, {r}" for r in rows),
        "  %kpos = icmp sgt i64 %K, 0",
        "  br i1 %kpos, label %loop, label %exit",
        "loop:",
        "  %k = phi i64 [0, %entry], [%k1, %loop]",
        *(
            f"  %acc{r}_{v} = phi {V} [zeroinitializer, %entry], [%n{r}_{v}, %loop]"
            for r in rows
            for v in vecs
        ),
        "  %boff = mul i64 %k, %ldb",
        "  %akoff = mul i64 %k, %aks",
    ]
    for v in vecs:
        out += [
            f"  %bo{v} = add i64 %boff, {v * vw}",
            f"  %bp{v} = getelementptr {f}, ptr %Bp, i64 %bo{v}",
            f"  %b{v} = load {V}, ptr %bp{v}, align 4",
        ]
    for r in rows:
        out += [
            f"  %ai{r} = add i64 %arow{r}, %akoff",
            f"  %ap{r} = getelementptr {f}, ptr %A, i64 %ai{r}",
            f"  %a{r} = load {f}, ptr %ap{r}, align 4",
            f"  %as{r} = insertelement {V} poison, {f} %a{r}, i32 0",
            f"  %av{r} = shufflevector {V} %as{r}, {V} poison, <{vw} x i32> zeroinitializer",
            *(
                f"  %n{r}_{v} = call {V} {fma}({V} %av{r}, {V} %b{v}, {V} %acc{r}_{v})"
                for v in vecs
            ),
        ]
    out += [
        "  %k1 = add i64 %k, 1",
        "  %more = icmp slt i64 %k1, %K",
        "  br i1 %more, label %loop, label %exit",
        "exit:",
        *(
            f"  %s{r}_{v} = phi {V} [zeroinitializer, %entry], [%n{r}_{v}, %loop]"
            for r in rows
            for v in vecs
        ),
        "  %on = icmp ne i32 %accum, 0",
        "  br i1 %on, label %add, label %set",
    ]
    for lab in ("add", "set"):
        out.append(f"{lab}:")
        for r in rows:
            out.append(f"  %{lab}row{r} = mul i64 %ldc, {r}")
            for v in vecs:
                p, val = f"%{lab}p{r}_{v}", f"%s{r}_{v}"
                out += [
                    f"  %{lab}i{r}_{v} = add i64 %{lab}row{r}, {v * vw}",
                    f"  {p} = getelementptr {f}, ptr %C, i64 %{lab}i{r}_{v}",
                ]
                if lab == "add":
                    out += [
                        f"  %old{r}_{v} = load {V}, ptr {p}, align 4",
                        f"  %sum{r}_{v} = fadd {V} %old{r}_{v}, {val}",
                    ]
                    val = f"%sum{r}_{v}"
                out.append(f"  store {V} {val}, ptr {p}, align 4")
        out.append("  ret void")
    out.append("}")
    return "\n".join(out)


def _row_ir(kind: str, npan: int) -> str:
    """LLVM IR of `longshort_row_<kind><npan>`: one row of A times npan panels at once.

        row(K, A, aks, Bp, ldb, bps, C, accumulate):
            C[0, 0:32 npan] (+)= A[0, 0:K] @ B[0:K, 0:32 npan],  panel q's row k at
            Bp + q bps + k ldb
    With one row the tile above keeps only 2 float32 accumulators, and each k's fused
    multiply-adds wait on the last (latency-bound: 2.4 us for a (1, 128) x (128, 512) step
    product, OpenBLAS's gemv 3.4 us); npan panels at once keep 2 npan chains in flight.
    """
    f, vw = _LLTYPE[kind], _LANES[kind]
    nv, V = NR // vw, f"<{vw} x {f}>"
    fma = f"@llvm.fmuladd.v{vw}{'f32' if kind == 's' else 'f64'}"
    accs = [(q, v) for q in range(npan) for v in range(nv)]
    out = [
        f"define void @longshort_row_{kind}{npan}(i64 %K, ptr %A, i64 %aks, ptr %Bp, i64 %ldb, "
        "i64 %bps, ptr %C, i32 %accum) nounwind {",
        "entry:",
        *(f"  %qoff{q} = mul i64 %bps, {q}" for q in range(npan)),
        "  %kpos = icmp sgt i64 %K, 0",
        "  br i1 %kpos, label %loop, label %exit",
        "loop:",
        "  %k = phi i64 [0, %entry], [%k1, %loop]",
        *(
            f"  %acc{q}_{v} = phi {V} [zeroinitializer, %entry], [%n{q}_{v}, %loop]"
            for q, v in accs
        ),
        "  %boff = mul i64 %k, %ldb",
        "  %akoff = mul i64 %k, %aks",
        f"  %ap = getelementptr {f}, ptr %A, i64 %akoff",
        f"  %a = load {f}, ptr %ap, align 4",
        f"  %as = insertelement {V} poison, {f} %a, i32 0",
        f"  %av = shufflevector {V} %as, {V} poison, <{vw} x i32> zeroinitializer",
    ]
    for q, v in accs:
        out += [
            f"  %bo{q}_{v} = add i64 %boff, %qoff{q}",
            f"  %bv{q}_{v} = add i64 %bo{q}_{v}, {v * vw}",
            f"  %bp{q}_{v} = getelementptr {f}, ptr %Bp, i64 %bv{q}_{v}",
            f"  %b{q}_{v} = load {V}, ptr %bp{q}_{v}, align 4",
            f"  %n{q}_{v} = call {V} {fma}({V} %av, {V} %b{q}_{v}, {V} %acc{q}_{v})",
        ]
    out += [
        "  %k1 = add i64 %k, 1",
        "  %more = icmp slt i64 %k1, %K",
        "  br i1 %more, label %loop, label %exit",
        "exit:",
        *(f"  %s{q}_{v} = phi {V} [zeroinitializer, %entry], [%n{q}_{v}, %loop]" for q, v in accs),
        "  %on = icmp ne i32 %accum, 0",
    ]
    for q, v in accs:
        out += [
            f"  %cp{q}_{v} = getelementptr {f}, ptr %C, i64 {q * NR + v * vw}",
            f"  %old{q}_{v} = load {V}, ptr %cp{q}_{v}, align 4",
            f"  %sum{q}_{v} = fadd {V} %old{q}_{v}, %s{q}_{v}",
            f"  %val{q}_{v} = select i1 %on, {V} %sum{q}_{v}, {V} %s{q}_{v}",
            f"  store {V} %val{q}_{v}, ptr %cp{q}_{v}, align 4",
        ]
    out += ["  ret void", "}"]
    return "\n".join(out)


def _pieces(n: int, most: int) -> list[range]:
    """range(n) cut into ceil(n / most) consecutive pieces of near-equal size."""
    k = -(-n // most)
    sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
    return [range(sum(sizes[:i]), sum(sizes[: i + 1])) for i in range(k)]


def _segment(s: int, f: str, vw: int, accs: list, nxt: str) -> list[str]:
    """One k loop of the narrow-vector kernels (labels seg<s>...), then the store and a branch to
    `nxt`. accs: (name, A element pointer base `%...`, A step per k `%...`, B offset IR constant or
    name added to k ldb, C offset IR `%...` or int); the accumulators' A values are shared by
    name (one broadcast per row and k)."""
    V = f"<{vw} x {f}>"
    fma = f"@llvm.fmuladd.v{vw}{'f32' if f == 'float' else 'f64'}"
    out = [f"seg{s}:", f"  br i1 %kpos, label %seg{s}l, label %seg{s}x", f"seg{s}l:",
           f"  %k{s} = phi i64 [0, %seg{s}], [%k{s}n, %seg{s}l]"]  # fmt: skip
    out += [f"  %{a}{s} = phi {V} [zeroinitializer, %seg{s}], [%{a}{s}u, %seg{s}l]"
            for a, *_ in accs]  # fmt: skip
    out += [f"  %bo{s} = mul i64 %k{s}, %ldb"]
    seen_a, seen_b = set(), set()
    for a, arow, aks, boff, _ in accs:
        if arow not in seen_a:
            seen_a.add(arow)
            t = f"{arow[1:]}_{s}"
            out += [f"  %ak{t} = mul i64 %k{s}, {aks}", f"  %ai{t} = add i64 {arow}, %ak{t}",
                    f"  %ap{t} = getelementptr {f}, ptr %A, i64 %ai{t}",
                    f"  %as{t} = load {f}, ptr %ap{t}, align 4",
                    f"  %av0{t} = insertelement {V} poison, {f} %as{t}, i32 0",
                    f"  %av{t} = shufflevector {V} %av0{t}, {V} poison, <{vw} x i32> "
                    "zeroinitializer"]  # fmt: skip
        bt = f"{str(boff).lstrip('%')}_{s}"
        if boff not in seen_b:
            seen_b.add(boff)
            out += [f"  %bi{bt} = add i64 %bo{s}, {boff}",
                    f"  %bp{bt} = getelementptr {f}, ptr %Bp, i64 %bi{bt}",
                    f"  %bv{bt} = load {V}, ptr %bp{bt}, align 4"]  # fmt: skip
        out.append(f"  %{a}{s}u = call {V} {fma}({V} %av{arow[1:]}_{s}, {V} %bv{bt}, "
                   f"{V} %{a}{s})")  # fmt: skip
    out += [f"  %k{s}n = add i64 %k{s}, 1", f"  %m{s} = icmp slt i64 %k{s}n, %K",
            f"  br i1 %m{s}, label %seg{s}l, label %seg{s}x", f"seg{s}x:"]  # fmt: skip
    out += [f"  %{a}{s}f = phi {V} [zeroinitializer, %seg{s}], [%{a}{s}u, %seg{s}l]"
            for a, *_ in accs]  # fmt: skip
    for a, _, _, _, coff in accs:
        out += [f"  %{a}{s}p = getelementptr {f}, ptr %C, i64 {coff}",
                f"  %{a}{s}o = load {V}, ptr %{a}{s}p, align 4",
                f"  %{a}{s}s = fadd {V} %{a}{s}o, %{a}{s}f",
                f"  %{a}{s}v = select i1 %on, {V} %{a}{s}s, {V} %{a}{s}f",
                f"  store {V} %{a}{s}v, ptr %{a}{s}p, align 4"]  # fmt: skip
    return out + ([f"  br label %{nxt}"] if nxt != "ret" else ["  ret void"])


def _tile_ir_narrow(kind: str, mr: int) -> str:
    """`longshort_tile_<kind><mr>` for CPUs without 512-bit vectors (AVX2: 16 registers of 8
    float32). The mr x 32 block would need 4 mr vector accumulators there, spilled to memory
    from mr = 4 on (37 GFLOP/s on one Zen 3 core); instead the 32 columns are done as two chunks
    of two vectors, each its own k loop over the tile's rows (MR = 6: at most 12 accumulators,
    2 loads of B and one broadcast per row per k): 78-90 GFLOP/s on the same core."""
    f, vw = _LLTYPE[kind], _NARROW[kind]
    cw = 2 * vw
    out = [f"define void @longshort_tile_{kind}{mr}(i64 %K, ptr %A, i64 %ars, i64 %aks, ptr %Bp, "
           "i64 %ldb, ptr %C, i64 %ldc, i32 %accum) nounwind {", "entry:",
           "  %kpos = icmp sgt i64 %K, 0", "  %on = icmp ne i32 %accum, 0"]  # fmt: skip
    for r in range(mr):
        out += [f"  %ar{r} = mul i64 %ars, {r}", f"  %cr{r} = mul i64 %ldc, {r}"]
        out += [f"  %cr{r}c{j} = add i64 %cr{r}, {j}" for j in range(0, NR, vw)]
    segs = [(c, g) for c in range(NR // cw) for g in _pieces(mr, 6)]
    out.append("  br label %seg0")
    for s, (c, g) in enumerate(segs):
        accs = [(f"r{r}v{v}_", f"%ar{r}", "%aks", c * cw + v * vw, f"%cr{r}c{c * cw + v * vw}")
                for r in g for v in range(2)]  # fmt: skip
        out += _segment(s, f, vw, accs, f"seg{s + 1}" if s + 1 < len(segs) else "ret")
    return "\n".join(out + ["}"])


def _row_ir_narrow(kind: str, npan: int) -> str:
    """`longshort_row_<kind><npan>` for CPUs without 512-bit vectors: the panels in pairs, each
    pair its own k loop of 2 x 32 / lanes accumulators (8 for float32 on AVX2)."""
    f, vw = _LLTYPE[kind], _NARROW[kind]
    nv = NR // vw
    out = [f"define void @longshort_row_{kind}{npan}(i64 %K, ptr %A, i64 %aks, ptr %Bp, "
           "i64 %ldb, i64 %bps, ptr %C, i32 %accum) nounwind {", "entry:",
           "  %zero = add i64 0, 0",  # the one row's offset, as _segment takes a row's
           "  %kpos = icmp sgt i64 %K, 0", "  %on = icmp ne i32 %accum, 0"]  # fmt: skip
    for q in range(npan):
        out.append(f"  %q{q} = mul i64 %bps, {q}")
        out += [f"  %q{q}v{v} = add i64 %q{q}, {v * vw}" for v in range(nv)]
    segs = _pieces(npan, max(1, 8 // nv))
    out.append("  br label %seg0")
    for s, g in enumerate(segs):
        accs = [(f"q{q}v{v}_", "%zero", "%aks", f"%q{q}v{v}", q * NR + v * vw)
                for q in g for v in range(nv)]  # fmt: skip
        out += _segment(s, f, vw, accs, f"seg{s + 1}" if s + 1 < len(segs) else "ret")
    return "\n".join(out + ["}"])


def _transpose_ir(kind: str) -> str:
    """LLVM IR of `longshort_tr_<kind>`: one n x n block (n = the vector's lanes) transposed,

        tr(src, lds, dst, ldd):  dst[c ldd + r] = src[r lds + c],  0 <= r, c < n

    by log2(n) rounds of block swaps: round b swaps, in each 2b x 2b tile, the top-right b x b
    block with the bottom-left one (row bit b with column bit b); the rounds commute.
    """
    f, n = _LLTYPE[kind], _LANES[kind]
    V = f"<{n} x {f}>"
    out = [f"define void @longshort_tr_{kind}(ptr %src, i64 %lds, ptr %dst, i64 %ldd) nounwind {{"]
    out.append("entry:")
    rows = []
    for r in range(n):
        out += [
            f"  %o{r} = mul i64 %lds, {r}",
            f"  %p{r} = getelementptr {f}, ptr %src, i64 %o{r}",
            f"  %r0_{r} = load {V}, ptr %p{r}, align 4",
        ]
        rows.append(f"%r0_{r}")
    b, level = n // 2, 0
    while b >= 1:
        level += 1
        m_top = [j if j % (2 * b) < b else n + j - b for j in range(n)]
        m_bot = [j + b if j % (2 * b) < b else n + j for j in range(n)]
        new = list(rows)
        for r in range(n):
            if r % (2 * b) < b:
                a, c = rows[r], rows[r + b]
                for name, mask in ((r, m_top), (r + b, m_bot)):
                    ms = ", ".join(f"i32 {m}" for m in mask)
                    out.append(
                        f"  %r{level}_{name} = shufflevector {V} {a}, {V} {c}, <{n} x i32> <{ms}>"
                    )
                    new[name] = f"%r{level}_{name}"
        rows, b = new, b // 2
    for r in range(n):
        out += [
            f"  %d{r} = mul i64 %ldd, {r}",
            f"  %q{r} = getelementptr {f}, ptr %dst, i64 %d{r}",
            f"  store {V} {rows[r]}, ptr %q{r}, align 4",
        ]
    out += ["  ret void", "}"]
    return "\n".join(out)


_PREFETCH_IR = """
define void @longshort_prefetch(ptr %p, i64 %nbytes) nounwind {
entry:
  %any = icmp sgt i64 %nbytes, 0
  br i1 %any, label %loop, label %exit
loop:
  %off = phi i64 [0, %entry], [%next, %loop]
  %q = getelementptr i8, ptr %p, i64 %off
  call void @llvm.prefetch.p0(ptr %q, i32 0, i32 3, i32 1)
  %next = add i64 %off, 64
  %more = icmp slt i64 %next, %nbytes
  br i1 %more, label %loop, label %exit
exit:
  ret void
}
declare void @llvm.prefetch.p0(ptr, i32, i32, i32)
"""


def _module_ir(wide: bool = True) -> str:
    """The module's IR: the 512-bit tiles (`wide`) or the narrow-vector ones."""
    decls = [
        f"declare <{n} x {t}> @llvm.fmuladd.v{n}f{b}(<{n} x {t}>, <{n} x {t}>, <{n} x {t}>)"
        for n, t, b in ((16, "float", 32), (8, "double", 64), (8, "float", 32), (4, "double", 64))
    ]
    tile_ir, row_ir = (_tile_ir, _row_ir) if wide else (_tile_ir_narrow, _row_ir_narrow)
    tiles = [tile_ir(kind, mr) for kind in "sd" for mr in range(1, MR[kind] + 1)]
    rows = [row_ir(kind, n) for kind in "sd" for n in range(1, NP[kind] + 1)]
    trs = [_transpose_ir(kind) for kind in "sd"]
    return "\n".join(tiles + rows + trs + decls) + "\n" + _PREFETCH_IR


_I, _P = types.int64, types.uint64
_SIG = {kind: types.void(_I, _P, _I, _I, _P, _I, _P, _I, types.int32) for kind in "sd"}
_RSIG = types.void(_I, _P, _I, _P, _I, _I, _P, types.int32)  # the one-row products
_NAMES = [f"longshort_tile_{k}{m}" for k in "sd" for m in range(1, MR[k] + 1)]
_NAMES += [f"longshort_row_{k}{n}" for k in "sd" for n in range(1, NP[k] + 1)]
_NAMES += ["longshort_tr_s", "longshort_tr_d", "longshort_prefetch"]
_TSIG = types.void(_P, _I, _P, _I)  # the block transposes


def _compile_native() -> tuple[object, dict[str, int]]:
    """(engine kept alive, {name: address}) of the IR tiles compiled for this CPU."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    tm = llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(), opt=3
    )
    ir = _module_ir(wide=WIDE)
    mod = llvm.parse_assembly(ir)
    mod.verify()
    # No IR optimisation pipeline: the IR already is the schedule, and the code generator alone
    # (opt=3) gave the same or faster tiles (108-111 GFLOP/s) in a third of the time.
    engine = llvm.create_mcjit_compiler(mod, tm)
    _object_cache(engine, ir, tm)
    engine.finalize_object()
    return engine, {n: engine.get_function_address(n) for n in _NAMES}


CACHE_FORMAT = 1  # bump when the cached file's layout or the code generator's options change


def _cache_dir() -> str:
    """Where the tiles' machine code is kept: LONGSHORT_TILE_CACHE, else Numba's NUMBA_CACHE_DIR,
    else beside Numba's own cache of these kernels (kernels/__pycache__)."""
    from numba.core import config

    return (
        os.environ.get("LONGSHORT_TILE_CACHE")
        or (config.CACHE_DIR or None)
        or os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__")
    )


def _object_cache(engine, ir: str, tm) -> None:
    """Keep the machine code in _cache_dir(), keyed by the IR, the CPU and its features, the LLVM
    and llvmlite versions and CACHE_FORMAT, with a SHA-256 of the code appended: a later process
    loads it instead of running the code generator (0.10-0.14 s of every import otherwise; 0.02 s
    cached). An unwritable directory or a file that fails the check just means compiling."""
    import hashlib

    import llvmlite

    key = "\0".join([ir, llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten(),
                     str(llvm.llvm_version_info), llvmlite.__version__, tm.triple,
                     str(CACHE_FORMAT)])  # fmt: skip
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    folder = _cache_dir()
    path = os.path.join(folder, f"_tiles.{digest}.o")

    def notify(module, buffer):
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            os.makedirs(folder, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(bytes(buffer) + hashlib.sha256(buffer).digest())
            os.replace(tmp, path)  # atomic: concurrent imports never read half a file
            for old in os.listdir(folder):  # other keys' files: an older IR, CPU or LLVM
                if (
                    old.startswith("_tiles.")
                    and old.endswith(".o")
                    and old != os.path.basename(path)
                ):
                    os.remove(os.path.join(folder, old))
        except OSError as e:  # pragma: no cover - read-only install
            log.debug("tile object cache not written: %s", e)
            with contextlib.suppress(OSError):
                os.remove(tmp)

    def getbuffer(module):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        obj, check = data[:-32], data[-32:]
        return obj if hashlib.sha256(obj).digest() == check else None  # else: compile again

    engine.set_object_cache(notify, getbuffer)


def _fallback_tiles() -> dict[str, int]:
    """Plain compiled loops with the tiles' signature (used only if the IR does not compile)."""
    from numba import cfunc

    out = {}
    for kind, real in (("s", types.float32), ("d", types.float64)):
        p = types.CPointer(real)
        sig = types.void(_I, p, _I, _I, p, _I, p, _I, types.int32)
        for mr in range(1, MR[kind] + 1):
            out[f"longshort_tile_{kind}{mr}"] = cfunc(sig)(_loop_tile(mr)).address
        rsig = types.void(_I, p, _I, p, _I, _I, p, types.int32)
        for n in range(1, NP[kind] + 1):
            out[f"longshort_row_{kind}{n}"] = cfunc(rsig)(_loop_row(n)).address
        tsig = types.void(p, _I, p, _I)
        out[f"longshort_tr_{kind}"] = cfunc(tsig)(_loop_transpose(_LANES[kind])).address
    out["longshort_prefetch"] = cfunc(types.void(_P, _I))(lambda p, n: None).address
    return out


def _loop_tile(mr: int):
    """The tile as a plain loop over mr rows (fallback)."""
    from numba import carray

    def tile(K, a, ars, aks, bp, ldb, c, ldc, accum):
        A = carray(a, ((mr - 1) * ars + (K - 1) * aks + 1,))
        Bp = carray(bp, ((K - 1) * ldb + NR,))
        C = carray(c, ((mr - 1) * ldc + NR,))
        for r in range(mr):
            for n in range(NR):
                s = 0.0
                for k in range(K):
                    s += A[r * ars + k * aks] * Bp[k * ldb + n]
                C[r * ldc + n] = s + (C[r * ldc + n] if accum else 0.0)

    return tile


def _loop_row(npan: int):
    """The one-row product over npan panels as a plain loop (fallback)."""
    from numba import carray

    def row(K, a, aks, bp, ldb, bps, c, accum):
        A = carray(a, ((K - 1) * aks + 1,))
        Bp = carray(bp, ((npan - 1) * bps + (K - 1) * ldb + NR,))
        C = carray(c, (npan * NR,))
        for q in range(npan):
            for n in range(NR):
                s = 0.0
                for k in range(K):
                    s += A[k * aks] * Bp[q * bps + k * ldb + n]
                C[q * NR + n] = s + (C[q * NR + n] if accum else 0.0)

    return row


def _loop_transpose(n: int):
    """The n x n block transpose as a plain loop (fallback)."""
    from numba import carray

    def tr(src, lds, dst, ldd):
        S = carray(src, ((n - 1) * lds + n,))
        D = carray(dst, ((n - 1) * ldd + n,))
        for r in range(n):
            for c in range(n):
                D[c * ldd + r] = S[r * lds + c]

    return tr


try:
    if os.environ.get("LONGSHORT_TILES") == "fallback":  # for testing the fallback path
        raise RuntimeError("LONGSHORT_TILES=fallback")
    _ENGINE, _ADDRS = _compile_native()
    BACKEND = "llvm-ir tiles"
except Exception as e:  # pragma: no cover - depends on the platform's LLVM
    log.info("packed GEMM tiles did not compile (%s); using plain compiled loops", e)
    _ENGINE, _ADDRS = None, _fallback_tiles()
    BACKEND = "fallback loops"

for _name, _addr in _ADDRS.items():
    llvm.add_symbol(_name, _addr)

_S = [types.ExternalFunction(f"longshort_tile_s{m}", _SIG["s"]) for m in range(1, MR["s"] + 1)]
_D = [types.ExternalFunction(f"longshort_tile_d{m}", _SIG["d"]) for m in range(1, MR["d"] + 1)]
_RS = [types.ExternalFunction(f"longshort_row_s{n}", _RSIG) for n in range(1, NP["s"] + 1)]
_RD = [types.ExternalFunction(f"longshort_row_d{n}", _RSIG) for n in range(1, NP["d"] + 1)]


def _dispatch(fns):
    """A compiled tile(mr, ...) that calls the mr-row tile of `fns` (mr <= len(fns))."""
    f1, f2, f3, f4, f5, f6, f7, f8 = fns + fns[-1:] * (8 - len(fns))  # padding is never called

    @njit(inline="always")
    def tile(mr, K, a, ars, aks, b, ldb, c, ldc, acc):
        if mr == 8:
            f8(K, a, ars, aks, b, ldb, c, ldc, acc)
        elif mr == 7:
            f7(K, a, ars, aks, b, ldb, c, ldc, acc)
        elif mr == 6:
            f6(K, a, ars, aks, b, ldb, c, ldc, acc)
        elif mr == 5:
            f5(K, a, ars, aks, b, ldb, c, ldc, acc)
        elif mr == 4:
            f4(K, a, ars, aks, b, ldb, c, ldc, acc)
        elif mr == 3:
            f3(K, a, ars, aks, b, ldb, c, ldc, acc)
        elif mr == 2:
            f2(K, a, ars, aks, b, ldb, c, ldc, acc)
        else:
            f1(K, a, ars, aks, b, ldb, c, ldc, acc)

    return tile


_tile_s, _tile_d = _dispatch(_S), _dispatch(_D)


def _dispatch_row(fns):
    """A compiled row(npan, ...) that calls the npan-panel one-row product of `fns`."""
    f1, f2, f3, f4 = fns + fns[-1:] * (4 - len(fns))  # padding is never called

    @njit(inline="always")
    def row(npan, K, a, aks, b, ldb, bps, c, acc):
        if npan == 4:
            f4(K, a, aks, b, ldb, bps, c, acc)
        elif npan == 3:
            f3(K, a, aks, b, ldb, bps, c, acc)
        elif npan == 2:
            f2(K, a, aks, b, ldb, bps, c, acc)
        else:
            f1(K, a, aks, b, ldb, bps, c, acc)

    return row


_row_s, _row_d = _dispatch_row(_RS), _dispatch_row(_RD)
_prefetch = types.ExternalFunction("longshort_prefetch", types.void(_P, _I))


@njit(inline="always")
def prefetch(a, off, n):
    """Ask the CPU to bring a[off : off + n] (a C-contiguous) towards L1, 64 bytes at a time: the
    backward pass walks 4 arrays per batch row backwards in time, more streams than the hardware
    prefetcher follows."""
    _prefetch(a.ctypes.data + off * a.itemsize, n * a.itemsize)


_TR = {"s": types.ExternalFunction("longshort_tr_s", _TSIG),
       "d": types.ExternalFunction("longshort_tr_d", _TSIG)}  # fmt: skip


def transpose_into(A, a_off, lda, rows, cols, D, d_off, ldd):
    """D[d_off + c ldd + r] = A[a_off + r lda + c] for r < rows, c < cols (compiled code only):
    the transposing copy in blocks of 16 x 16 (float32) or 8 x 8 (float64) vector shuffles
    (NumPy's strided copy took 63 us for a (512, 128) float32 matrix), the edges element-wise."""
    raise NotImplementedError("only callable from compiled code")  # pragma: no cover


@overload(transpose_into)
def _transpose_into_ov(A, a_off, lda, rows, cols, D, d_off, ldd):
    _check_arrays(A, D)
    f32 = A.dtype == types.float32
    tr, n, size = (_TR["s"], _LANES["s"], 4) if f32 else (_TR["d"], _LANES["d"], 8)

    def impl(A, a_off, lda, rows, cols, D, d_off, ldd):
        a, d = A.ravel(), D.ravel()  # C-contiguous (checked): views
        a0, d0 = A.ctypes.data + a_off * size, D.ctypes.data + d_off * size
        rf, cf = rows - rows % n, cols - cols % n
        for r0 in range(0, rf, n):
            for c0 in range(0, cf, n):
                tr(a0 + (r0 * lda + c0) * size, lda, d0 + (c0 * ldd + r0) * size, ldd)
        for r in range(rows):  # the edges
            for c in range(cf if r < rf else 0, cols):
                d[d_off + c * ldd + r] = a[a_off + r * lda + c]

    return impl


@njit(nogil=True, cache=True)
def transpose(a):
    """a (N, K) C-contiguous -> a.T as a new C-contiguous (K, N) array."""
    N, K = a.shape
    out = np.empty((K, N), a.dtype)
    transpose_into(a, 0, K, N, K, out, 0, N)
    return out


@njit(nogil=True, cache=True)
def pack_t(w):
    """w (N, K) C-contiguous -> pack(w.T): (N // 32, K, 32) panels of w^T, without forming w^T."""
    N, K = w.shape
    P = N // NR
    out = np.empty((P, K, NR), w.dtype)
    for p in range(P):
        transpose_into(w, p * NR * K, K, NR, K, out, p * K * NR, NR)
    return out


def pack_rows(b: np.ndarray) -> np.ndarray:
    """B (K, N) -> the one-row layout: (G, K, nr) groups of nr = 32 NP columns (128 float32,
    64 float64), G = ceil(32 P / nr) over the P = N // 32 full panels; each group's rows are
    contiguous, so a one-row product streams B from L2 front to back (1.6 us for a (1, 128) x
    (128, 512) product against 2.6 us over separate 32-column panels). Padding is zero."""
    K, N = b.shape
    cols, nr = N // NR * NR, NR * NP["s" if b.dtype == np.float32 else "d"]
    out = np.zeros(((cols + nr - 1) // nr, K, nr), b.dtype)
    for g in range(out.shape[0]):
        w = min(nr, cols - g * nr)
        out[g, :, :w] = b[:, g * nr : g * nr + w]
    return out


@njit(nogil=True, cache=True)
def pack_rows_t(w):
    """w (N, K) C-contiguous -> pack_rows(w.T), without forming w^T (padding left unset)."""
    N, K = w.shape
    cols, nr = N // NR * NR, NR * (_NP_S if w.itemsize == 4 else _NP_D)
    out = np.empty(((cols + nr - 1) // nr, K, nr), w.dtype)
    for g in range(out.shape[0]):
        transpose_into(w, g * nr * K, K, min(nr, cols - g * nr), K, out, g * K * nr, nr)
    return out


def grow(P, K, A, a_off, aks, Bg, beta, C, c_off):
    """C[c_off : c_off + 32 P] = A-row @ B[:, :32 P] + beta C over Bg = pack_rows(B) (compiled
    code only), beta in {0, 1}; A's elements at A[a_off + k aks]."""
    raise NotImplementedError("only callable from compiled code")  # pragma: no cover


@overload(grow)
def _grow_ov(P, K, A, a_off, aks, Bg, beta, C, c_off):
    _check_arrays(A, Bg, C)
    f32 = A.dtype == types.float32
    row, size = (_row_s, 4) if f32 else (_row_d, 8)

    def impl(P, K, A, a_off, aks, Bg, beta, C, c_off):
        nr = Bg.shape[2]
        per = nr // NR
        a0, b0, c0 = A.ctypes.data + a_off * size, Bg.ctypes.data, C.ctypes.data + c_off * size
        acc = np.int32(1 if beta != 0 else 0)
        for g in range(Bg.shape[0]):
            row(min(per, P - g * per), K, a0, aks, b0 + g * K * nr * size, nr, NR,
                c0 + g * nr * size, acc)  # fmt: skip

    return impl


@njit(nogil=True, cache=True)
def pgemv_nt(N, K, A, a_off, Wg, W, beta, C, c_off):
    """C[c_off : c_off + N] = A-row @ W^T + beta C, beta in {0, 1}, Wg = pack_rows_t(W);
    W (N, K) row-major."""
    P = N // NR
    grow(P, K, A, a_off, 1, Wg, beta, C, c_off)
    if N > P * NR:
        gemv(NO_TRANS, N - P * NR, K, W, P * NR * K, K, A, a_off, beta, C, c_off + P * NR)


@njit(nogil=True, cache=True)
def pgemv(N, K, A, a_off, Bg, B, beta, C, c_off):
    """C[c_off : c_off + N] = A-row @ B + beta C, beta in {0, 1}, Bg = pack_rows(B);
    B (K, N) row-major."""
    P = N // NR
    grow(P, K, A, a_off, 1, Bg, beta, C, c_off)
    if N > P * NR:
        gemv(TRANS, K, N - P * NR, B, P * NR, N, A, a_off, beta, C, c_off + P * NR)


def tgemm(M, N, K, A, a_off, ars, aks, B, b_off, ldb, bps, beta, C, c_off, ldc, kb):
    """C[M, N] = A[M, K] @ B[K, N] + beta C with the tiles (compiled code only).

    A[m, k] is A[a_off + m ars + k aks] (A or A^T row-major in place; when N % 32 != 0 the
    remainder goes through BLAS, which needs aks == 1 or ars == 1).
    B's columns 32 p .. 32 p + 31 at row k start at b_off + p bps + k ldb: bps = 32 for a
    row-major B (ldb its row length), bps = 32 K, ldb = 32 for pack(B). Columns that do not fill
    a panel go through BLAS (which then needs B row-major: bps = 32). K is cut in blocks of
    min(kb, KC) rows so that a block of B's panels stays in L2 while the row tiles pass over it,
    and a tile's rows of A in L1.
    """
    raise NotImplementedError("tgemm is only callable from compiled code")  # pragma: no cover


@overload(tgemm)
def _tgemm_ov(M, N, K, A, a_off, ars, aks, B, b_off, ldb, bps, beta, C, c_off, ldc, kb):
    _check_arrays(A, B, C)  # raw addresses: one dtype, C-contiguous, or a compile-time error
    f32 = A.dtype == types.float32
    tile, mr_max, size = (_tile_s, MR["s"], 4) if f32 else (_tile_d, MR["d"], 8)
    row, np_max = (_row_s, NP["s"]) if f32 else (_row_d, NP["d"])

    def impl(M, N, K, A, a_off, ars, aks, B, b_off, ldb, bps, beta, C, c_off, ldc, kb):
        P = N // NR
        a0, b0, c0 = A.ctypes.data + a_off * size, B.ctypes.data + b_off * size, C.ctypes.data
        c0 += c_off * size
        kb = min(kb, KC)  # a tile's rows of A (mr x kb) must stay in L1
        # long K, few rows (dh = dz W_hh at H = 512): panels outside, so each block of B is read
        # from L3 once and reused from L2 by every row tile, while A's block fits L2
        outer = M > mr_max and K > 2 * KC and M * kb * size <= A_L2
        for k0 in range(0, K, kb):
            kn = min(kb, K - k0)
            acc = np.int32(1 if beta != 0 or k0 > 0 else 0)
            ak, bk = a0 + k0 * aks * size, b0 + k0 * ldb * size
            if M == 1:  # one row: several panels at once (the row kernels)
                for p in range(0, P, np_max):
                    row(min(np_max, P - p), kn, ak, aks, bk + p * bps * size, ldb, bps,
                        c0 + p * NR * size, acc)  # fmt: skip
                continue
            if outer:
                for p in range(P):
                    for r0 in range(0, M, mr_max):
                        tile(min(mr_max, M - r0), kn, ak + r0 * ars * size, ars, aks,
                             bk + p * bps * size, ldb, c0 + (r0 * ldc + p * NR) * size, ldc,
                             acc)  # fmt: skip
                continue
            for r0 in range(0, M, mr_max):  # rows outside: a tile's rows of A stay in L1
                mr = min(mr_max, M - r0)
                for p in range(P):
                    tile(mr, kn, ak + r0 * ars * size, ars, aks, bk + p * bps * size, ldb,
                         c0 + (r0 * ldc + p * NR) * size, ldc, acc)  # fmt: skip
        if N > P * NR:  # columns that do not fill a panel
            if aks == 1:  # A row-major (one row: any ars, the row is contiguous)
                gemm(NO_TRANS, NO_TRANS, M, N - P * NR, K, A, a_off, ars if M > 1 else K,
                     B, b_off + P * NR, ldb, beta, C, c_off + P * NR, ldc)  # fmt: skip
            else:
                gemm(TRANS, NO_TRANS, M, N - P * NR, K, A, a_off, aks,
                     B, b_off + P * NR, ldb, beta, C, c_off + P * NR, ldc)  # fmt: skip

    return impl


@njit(nogil=True, cache=True)
def pgemm_nt(M, N, K, A, a_off, lda, Wp, W, beta, C, c_off, ldc):
    """C[M, N] = A[M, K] @ W[N, K]^T + beta C, beta in {0, 1}, with Wp = pack_t(W): the full
    panels from Wp, the rows of W that do not fill one through BLAS. A row-major (lda)."""
    P = N // NR
    tgemm(M, P * NR, K, A, a_off, lda, 1, Wp, 0, NR, NR * K, beta, C, c_off, ldc, K)
    if N > P * NR:
        gemm(NO_TRANS, TRANS, M, N - P * NR, K, A, a_off, lda,
             W, P * NR * K, K, beta, C, c_off + P * NR, ldc)  # fmt: skip


@njit(nogil=True, cache=True)
def pgemm(M, N, K, A, a_off, lda, Bp, B, b_off, ldb, beta, C, c_off, ldc):
    """C[M, N] = A[M, K] @ B[K, N] + beta C with Bp = pack(B): the full panels from Bp, the
    columns that do not fill one from B (row-major) through BLAS. A row-major (lda)."""
    P = N // NR
    tgemm(M, P * NR, K, A, a_off, lda, 1, Bp, 0, NR, NR * K, beta, C, c_off, ldc, K)
    if N > P * NR:
        gemm(NO_TRANS, NO_TRANS, M, N - P * NR, K, A, a_off, lda,
             B, b_off + P * NR, ldb, beta, C, c_off + P * NR, ldc)  # fmt: skip
