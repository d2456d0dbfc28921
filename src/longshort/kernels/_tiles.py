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
The driver loops over row tiles outside and panels inside: one tile's rows of A stay in L1 while
the panels stream from L2 (or L3); at M = 32 the other order fell to 82 GFLOP/s.

    pgemm(M, N, K, A, a_off, lda, Bp, B, b_off, ldb, beta, C, c_off, ldc)
        C[M, N] = A[M, K] @ B[K, N] + beta C,  beta in {0, 1}; Bp = pack(B) (panels), B the
        original (its last N - 32 P columns go through BLAS gemm).
    tgemm(M, N, K, A, a_off, ars, aks, B, b_off, ldb, bps, beta, C, c_off, ldc, kb)
        the general form: A or A^T in place, B packed or row-major, K in blocks of kb;
        the weight gradients use it for dz W_ih, x^T dz and h^T dz.
"""

from __future__ import annotations

import logging
import os

import llvmlite.binding as llvm
import numpy as np
from numba import njit, types
from numba.extending import overload

from ._blas import NO_TRANS, TRANS
from ._jit import _check_arrays, gemm

log = logging.getLogger(__name__)

NR = 32  # columns per panel
MR = {"s": 8, "d": 4}  # rows per tile: 8 x 2 <16 x float> = 4 x 4 <8 x double> = 16 accumulators
_LANES = {"s": 16, "d": 8}
_LLTYPE = {"s": "float", "d": "double"}


def pack(b: np.ndarray) -> np.ndarray:
    """B (K, N) -> (N // 32, K, 32) panels of 32 columns (the remainder columns are left out)."""
    K, N = b.shape
    P = N // NR
    return np.ascontiguousarray(b[:, : P * NR].reshape(K, P, NR).transpose(1, 0, 2))


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


def _module_ir() -> str:
    decls = [
        "declare <16 x float> @llvm.fmuladd.v16f32(<16 x float>, <16 x float>, <16 x float>)",
        "declare <8 x double> @llvm.fmuladd.v8f64(<8 x double>, <8 x double>, <8 x double>)",
    ]
    tiles = [_tile_ir(kind, mr) for kind in "sd" for mr in range(1, MR[kind] + 1)]
    return "\n".join(tiles + decls) + "\n"


_I, _P = types.int64, types.uint64
_SIG = {kind: types.void(_I, _P, _I, _I, _P, _I, _P, _I, types.int32) for kind in "sd"}


def _compile_native() -> tuple[object, dict[str, int]]:
    """(engine kept alive, {name: address}) of the IR tiles compiled for this CPU."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    tm = llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(), opt=3
    )
    mod = llvm.parse_assembly(_module_ir())
    mod.verify()
    # No IR optimisation pipeline: the IR already is the schedule, and the code generator alone
    # (opt=3) gave the same or faster tiles (108-111 GFLOP/s) in a third of the time (0.08 s).
    engine = llvm.create_mcjit_compiler(mod, tm)
    engine.finalize_object()
    names = [f"longshort_tile_{k}{m}" for k in "sd" for m in range(1, MR[k] + 1)]
    return engine, {n: engine.get_function_address(n) for n in names}


def _fallback_tiles() -> dict[str, int]:
    """Plain compiled loops with the tiles' signature (used only if the IR does not compile)."""
    from numba import cfunc

    out = {}
    for kind, real in (("s", types.float32), ("d", types.float64)):
        p = types.CPointer(real)
        sig = types.void(_I, p, _I, _I, p, _I, p, _I, types.int32)
        for mr in range(1, MR[kind] + 1):
            out[f"longshort_tile_{kind}{mr}"] = cfunc(sig)(_loop_tile(mr)).address
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


def tgemm(M, N, K, A, a_off, ars, aks, B, b_off, ldb, bps, beta, C, c_off, ldc, kb):
    """C[M, N] = A[M, K] @ B[K, N] + beta C with the tiles (compiled code only).

    A[m, k] is A[a_off + m ars + k aks] (A or A^T row-major in place; when N % 32 != 0 the
    remainder goes through BLAS, which needs aks == 1 or ars == 1).
    B's columns 32 p .. 32 p + 31 at row k start at b_off + p bps + k ldb: bps = 32 for a
    row-major B (ldb its row length), bps = 32 K, ldb = 32 for pack(B). Columns that do not fill
    a panel go through BLAS (which then needs B row-major: bps = 32). K is cut in blocks of kb
    rows so that a block of B's panels stays in L2 while the row tiles pass over it.
    """
    raise NotImplementedError("tgemm is only callable from compiled code")  # pragma: no cover


@overload(tgemm)
def _tgemm_ov(M, N, K, A, a_off, ars, aks, B, b_off, ldb, bps, beta, C, c_off, ldc, kb):
    _check_arrays(A, B, C)  # raw addresses: one dtype, C-contiguous, or a compile-time error
    f32 = A.dtype == types.float32
    tile, mr_max, size = (_tile_s, MR["s"], 4) if f32 else (_tile_d, MR["d"], 8)

    def impl(M, N, K, A, a_off, ars, aks, B, b_off, ldb, bps, beta, C, c_off, ldc, kb):
        P = N // NR
        a0, b0, c0 = A.ctypes.data + a_off * size, B.ctypes.data + b_off * size, C.ctypes.data
        c0 += c_off * size
        for k0 in range(0, K, kb):
            kn = min(kb, K - k0)
            acc = np.int32(1 if beta != 0 or k0 > 0 else 0)
            ak, bk = a0 + k0 * aks * size, b0 + k0 * ldb * size
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
def pgemm(M, N, K, A, a_off, lda, Bp, B, b_off, ldb, beta, C, c_off, ldc):
    """C[M, N] = A[M, K] @ B[K, N] + beta C with Bp = pack(B): the full panels from Bp, the
    columns that do not fill one from B (row-major) through BLAS. A row-major (lda)."""
    P = N // NR
    tgemm(M, P * NR, K, A, a_off, lda, 1, Bp, 0, NR, NR * K, beta, C, c_off, ldc, K)
    if N > P * NR:
        gemm(NO_TRANS, NO_TRANS, M, N - P * NR, K, A, a_off, lda,
             B, b_off + P * NR, ldb, beta, C, c_off + P * NR, ldc)  # fmt: skip
