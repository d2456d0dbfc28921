"""The packed-panel GEMM tiles (kernels/_tiles.py) against NumPy in float64.

The recurrent kernels' own tests (test_kernels*.py) check the whole LSTM/GRU/RNN against the
reference; here the products themselves: strides, remainder columns, K blocking, beta, dtypes,
and the plain-loop fallback used when the LLVM IR does not compile.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")
from numba import njit  # noqa: E402

from longshort.kernels import _tiles  # noqa: E402
from longshort.kernels._jit import JIT  # noqa: E402

TOL = {np.float32: 2e-6, np.float64: 1e-13}


@njit(**JIT)
def _pgemm(M, N, K, A, a_off, lda, Bp, B, beta, C, c_off, ldc):
    _tiles.pgemm(M, N, K, A, a_off, lda, Bp, B, 0, N, beta, C, c_off, ldc)


@njit(**JIT)
def _tgemm_t(M, N, K, A, B, beta, C, kb):
    """C = A^T B with A (K, M) row-major read in place (ars = 1, aks = M)."""
    _tiles.tgemm(M, N, K, A, 0, 1, M, B, 0, N, 32, beta, C, 0, N, kb)


def _rel(a, ref):
    return np.abs(a - ref).max() / max(np.abs(ref).max(), 1e-30)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "M,K,N",
    [
        (1, 1, 1),
        (1, 5, 3),
        (1, 7, 96),
        (1, 40, 170),
        (1, 128, 512),
        (3, 7, 40),
        (9, 64, 32),
        (13, 33, 100),
        (17, 128, 512),
        (20, 1100, 70),  # K > 2 KC, few rows: panels outside (_tiles.A_L2)
        (300, 1100, 40),  # K > 2 KC, A's block too big for L2: rows outside
    ],  # one row: the row kernels, 1-4 panels at once
)
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_pgemm_matches_numpy_and_leaves_the_rest(dtype, M, K, N, beta):
    rng = np.random.default_rng(M * 1000 + K)
    A = rng.standard_normal((M + 2, K + 1)).astype(dtype)  # a block inside a bigger array
    B = rng.standard_normal((K, N)).astype(dtype)
    C0 = rng.standard_normal((M + 1, N + 3)).astype(dtype)
    C = C0.copy()
    _pgemm(M, N, K, A, K + 1, K + 1, _tiles.pack(B), B, beta, C, N + 4, N + 3)
    ref = A[1 : M + 1, :K].astype(np.float64) @ B + beta * C0[1 : M + 1, 1 : N + 1]
    assert _rel(C[1 : M + 1, 1 : N + 1], ref) < TOL[dtype] * np.sqrt(K)
    out = np.ones(C.shape, bool)
    out[1 : M + 1, 1 : N + 1] = False
    assert np.array_equal(C[out], C0[out])  # nothing written outside the block


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "M,K,N", [(5, 300, 64), (32, 257, 96), (8, 1, 40), (1, 30, 48), (19, 1100, 64)]
)
@pytest.mark.parametrize("kb", [1, 64, 10**9])
def test_tgemm_transposed_a_and_k_blocks(dtype, M, K, N, kb):
    rng = np.random.default_rng(K)
    A = rng.standard_normal((K, M)).astype(dtype)
    B = rng.standard_normal((K, N)).astype(dtype)
    C0 = rng.standard_normal((M, N)).astype(dtype)
    for beta in (0.0, 1.0):
        C = C0.copy()
        _tgemm_t(M, N, K, A, B, beta, C, kb)
        ref = A.T.astype(np.float64) @ B + beta * C0
        assert _rel(C, ref) < TOL[dtype] * np.sqrt(K)


@njit(**JIT)
def _pgemm_nt(M, N, K, A, W, beta, C):
    _tiles.pgemm_nt(M, N, K, A, 0, K, _tiles.pack_t(W), W, beta, C, 0, N)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("M,K,N", [(1, 32, 512), (1, 9, 100), (4, 33, 70), (16, 128, 512)])
def test_pgemm_nt_against_the_untransposed_weights(dtype, M, K, N):
    """C = A W^T from pack_t(W) panels and, for the rows of W past the last panel, W itself."""
    rng = np.random.default_rng(N)
    A, W = rng.standard_normal((M, K)).astype(dtype), rng.standard_normal((N, K)).astype(dtype)
    C0 = rng.standard_normal((M, N)).astype(dtype)
    for beta in (0.0, 1.0):
        C = C0.copy()
        _pgemm_nt(M, N, K, A, W, beta, C)
        assert _rel(C, A.astype(np.float64) @ W.T + beta * C0) < TOL[dtype] * np.sqrt(K)


@njit(**JIT)
def _pgemv_both(N, K, a, Wg, W, Bg, B, beta, C1, C2):
    _tiles.pgemv_nt(N, K, a, 0, Wg, W, beta, C1, 0)
    _tiles.pgemv(N, K, a, 0, Bg, B, beta, C2, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N,K", [(512, 128), (100, 9), (44, 11), (160, 7), (20, 5), (288, 33)])
def test_one_row_layout_products(dtype, N, K):
    """A batch of one: a @ W^T and a @ B over pack_rows_t / pack_rows groups (1-4 panels per
    group, a partial last group) plus the columns past the last panel through BLAS."""
    rng = np.random.default_rng(N + K)
    a, W = rng.standard_normal(K).astype(dtype), rng.standard_normal((N, K)).astype(dtype)
    B = np.ascontiguousarray(W.T)  # (K, N): both products are a @ W^T
    C0 = rng.standard_normal(N).astype(dtype)
    ref = a.astype(np.float64) @ W.T
    for beta in (0.0, 1.0):
        C1, C2 = C0.copy(), C0.copy()
        _pgemv_both(N, K, a, _tiles.pack_rows_t(W), W, _tiles.pack_rows(B), B, beta, C1, C2)
        for C in (C1, C2):
            assert _rel(C, ref + beta * C0) < TOL[dtype] * np.sqrt(K)
    g = _tiles.pack_rows(B)
    assert g.shape[2] == 32 * _tiles.NP["s" if dtype == np.float32 else "d"]
    valid = N // 32 * 32
    if valid:  # group g holds columns g nr .. g nr + nr - 1
        flat_t = np.concatenate(list(_tiles.pack_rows_t(W)), axis=1)[:, :valid]
        assert np.array_equal(flat_t, B[:, :valid])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (7, 3), (16, 16), (37, 53), (512, 128), (96, 7)])
def test_transpose_and_pack_t_are_exact(dtype, shape):
    """The shuffle-network block transpose (and its edges) moves every element exactly."""
    w = np.random.default_rng(shape[0]).standard_normal(shape).astype(dtype)
    t = _tiles.transpose(w)
    assert t.flags.c_contiguous and np.array_equal(t, w.T)
    assert np.array_equal(_tiles.pack_t(w), _tiles.pack(np.ascontiguousarray(w.T)))


def test_pack_layout():
    b = np.arange(5 * 70, dtype=np.float32).reshape(5, 70)
    p = _tiles.pack(b)
    assert p.shape == (2, 5, 32) and p.flags.c_contiguous
    assert np.array_equal(p[1, 3], b[3, 32:64])


FALLBACK = """
import numpy as np
from longshort.kernels import _tiles, lstm as fused
from longshort.ops import lstm as ref
rng = np.random.default_rng(0)
B, T, I, H = 9, 4, 5, 11
w = ref.LSTMWeights(*(rng.uniform(-0.5, 0.5, s).astype(np.float32)
                      for s in ((4 * H, I), (4 * H, H), (4 * H,), (4 * H,))))
x = rng.standard_normal((B, T, I)).astype(np.float32)
s0 = (np.zeros((B, H), np.float32),) * 2
a, _, ca = fused.lstm_forward(x, s0, w)
b, _, cb = ref.lstm_forward(x, s0, w)
ga, gb = fused.lstm_backward(b, (None, None), ca), ref.lstm_backward(b, (None, None), cb)
assert np.abs(a - b).max() < 1e-5, np.abs(a - b).max()
assert np.abs(ga[2].w_hh - gb[2].w_hh).max() < 1e-4
assert np.abs(ga[2].w_ih - gb[2].w_ih).max() < 1e-4
x1 = x[:1].repeat(5, axis=1)  # one row, 20 steps: the row kernels on packed weights
s1 = (np.zeros((1, H), np.float32),) * 2
a, _, ca = fused.lstm_forward(x1, s1, w)
b, _, cb = ref.lstm_forward(x1, s1, w)
ga, gb = fused.lstm_backward(b, (None, None), ca), ref.lstm_backward(b, (None, None), cb)
assert np.abs(a - b).max() < 1e-5 and np.abs(ga[0] - gb[0]).max() < 1e-5
m = rng.standard_normal((37, 21)).astype(np.float32)
assert np.array_equal(_tiles.transpose(m), m.T)
print(_tiles.BACKEND)
"""


@pytest.mark.parametrize("mode", ["native", "fallback"])
def test_lstm_through_native_and_fallback_tiles(mode):
    """LONGSHORT_TILES=fallback swaps the compiled IR for plain loops under the same names; the
    cached kernels must give the reference's numbers with either."""
    env = dict(os.environ, LONGSHORT_TILES=mode)
    r = subprocess.run([sys.executable, "-c", FALLBACK], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-1] == ("loops" if mode == "fallback" else "tiles")


PIN = """
import os
import numpy as np
import longshort as ls
from longshort.kernels import _affinity
layer = ls.nn.LSTM(5, 64, seed=0)  # B * H = 2048: two batch chunks, so pin_chunk runs
x = np.random.default_rng(0).standard_normal((32, 6, 5)).astype(np.float32)
y, _ = layer(x)
layer.backward(np.ones_like(y))
from longshort.kernels import _threads
import numba
print(_affinity.ENABLED, _threads.LAYER, numba.threading_layer(), float(np.abs(y).sum()),
      float(layer.weight_hh_l0.grad.sum()))
"""


def test_threading_layers_and_pinning_give_the_same_numbers():
    """The batch chunks run on Numba's TBB layer when the tbb wheel is installed, else on
    workqueue (kernels/_threads.py); LONGSHORT_PIN=1 binds workqueue's chunk threads to their own
    CPUs (kernels/_affinity.py). The kernels' results must not change with either."""
    outs = []
    for threads, pin in (("workqueue", "1"), ("workqueue", "0"), ("", "1")):
        env = dict(os.environ, LONGSHORT_PIN=pin, LONGSHORT_THREADS=threads, NUMBA_NUM_THREADS="2")
        env.pop("NUMBA_THREADING_LAYER", None)
        r = subprocess.run([sys.executable, "-c", PIN], env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        outs.append(r.stdout.split())
    assert outs[0][3:] == outs[1][3:] == outs[2][3:]
    assert outs[0][1:3] == outs[1][1:3] == ["workqueue", "workqueue"]
    assert outs[1][0] == "False" and outs[2][0] == "False"  # pinning: workqueue only
    if sys.platform.startswith("linux") and len(os.sched_getaffinity(0)) > 1:
        assert outs[0][0] == "True"
    try:
        import importlib.metadata

        importlib.metadata.version("tbb")
    except importlib.metadata.PackageNotFoundError:
        return
    assert outs[2][1:3] == ["tbb", "tbb"]  # the wheel is installed: its layer is used


def test_tile_object_cache_is_checked_and_rebuilt(tmp_path):
    """The tiles' machine code is cached (here in LONGSHORT_TILE_CACHE) with a SHA-256 trailer; a
    damaged file is ignored (the IR is compiled again and the file rewritten), results unchanged."""
    import glob
    import hashlib

    if _tiles.BACKEND != "llvm-ir tiles":
        pytest.skip("the IR tiles did not compile here")
    env = dict(os.environ, LONGSHORT_TILES="native", LONGSHORT_TILE_CACHE=str(tmp_path))
    (tmp_path / "_tiles.0123.o").write_bytes(b"an older key's file")
    for damage in (False, True, False):
        if damage:
            (f,) = glob.glob(str(tmp_path / "_tiles.*.o"))
            with open(f, "r+b") as fh:
                fh.seek(64)
                fh.write(b"damaged")
        r = subprocess.run(
            [sys.executable, "-c", FALLBACK], env=env, capture_output=True, text=True
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.split()[-1] == "tiles"
        files = glob.glob(str(tmp_path / "_tiles.*"))
        assert len(files) == 1 and files[0].endswith(".o")  # no stale keys, no .tmp left
        data = open(files[0], "rb").read()
        assert hashlib.sha256(data[:-32]).digest() == data[-32:]  # whole, rewritten if damaged


@pytest.mark.parametrize("wide", [True, False])
def test_both_vector_widths_tiles_and_rows(wide):
    """Both forms of the IR where this CPU runs them (the narrow ones everywhere): the 512-bit tiles (8 x 32 accumulated in
    <16 x float>) and the narrow ones used without AVX-512 (chunks of 16 columns, up to 6 rows;
    one-row products over pairs of panels), compiled here under other names and called directly
    with strides, K = 0, accumulation and every row count, against NumPy in float64."""
    import ctypes

    import llvmlite.binding as llvm

    if wide and not _tiles.WIDE:  # lowered to AVX2 the 7-row 512-bit tile crashed at K = 0
        pytest.skip("the 512-bit tiles run only where the CPU has AVX-512; this one has not")
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    tm = llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(), opt=3
    )  # as _tiles compiles them
    ir = _tiles._module_ir(wide=wide).replace("@longshort_", "@t_longshort_")
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(ir), tm)
    engine.finalize_object()
    mr_max = {"s": 8 if wide else 6, "d": 4}  # MR and NP of that width
    np_max = {"s": 4, "d": 2} if wide else {"s": 2, "d": 1}
    rng = np.random.default_rng(1 + wide)
    for dtype, kind in ((np.float32, "s"), (np.float64, "d")):
        c_real = ctypes.c_float if kind == "s" else ctypes.c_double
        p = ctypes.POINTER(c_real)
        i64 = ctypes.c_int64
        tile_t = ctypes.CFUNCTYPE(None, i64, p, i64, i64, p, i64, p, i64, ctypes.c_int32)
        row_t = ctypes.CFUNCTYPE(None, i64, p, i64, p, i64, i64, p, ctypes.c_int32)
        ptr = lambda a, p=p: a.ctypes.data_as(p)  # noqa: E731
        for mr in range(1, mr_max[kind] + 1):
            fn = tile_t(engine.get_function_address(f"t_longshort_tile_{kind}{mr}"))
            for K in (0, 1, 37):
                A = rng.standard_normal((mr, K + 3)).astype(dtype)  # row stride K + 3
                B = rng.standard_normal((K, 32)).astype(dtype)
                C0 = rng.standard_normal((mr, 40)).astype(dtype)  # row stride 40
                for acc in (0, 1):
                    C = C0.copy()
                    fn(K, ptr(A), K + 3, 1, ptr(B), 32, ptr(C), 40, acc)
                    ref = A[:, :K].astype(np.float64) @ B + acc * C0[:, :32]
                    assert _rel(C[:, :32], ref) < TOL[dtype] * max(1, np.sqrt(K)), (mr, K, acc)
                    assert np.array_equal(C[:, 32:], C0[:, 32:])  # nothing written past 32
        for npan in range(1, np_max[kind] + 1):
            fn = row_t(engine.get_function_address(f"t_longshort_row_{kind}{npan}"))
            K, bps = 29, 32 * 29 + 8  # panels apart by more than one panel
            a = rng.standard_normal(2 * K).astype(dtype)  # every other element: aks = 2
            Bp = rng.standard_normal(npan * bps).astype(dtype)
            C0 = rng.standard_normal(32 * npan).astype(dtype)
            for acc in (0, 1):
                C = C0.copy()
                fn(K, ptr(a), 2, ptr(Bp), 32, bps, ptr(C), acc)
                for q in range(npan):
                    panel = Bp[q * bps : q * bps + 32 * K].reshape(K, 32).astype(np.float64)
                    ref = a[::2] @ panel + acc * C0[32 * q : 32 * q + 32]
                    assert _rel(C[32 * q : 32 * q + 32], ref) < TOL[dtype] * np.sqrt(K)
    _ENGINES.append(engine)  # kept, as _tiles keeps its own: destroying one corrupted the heap


_ENGINES: list = []
