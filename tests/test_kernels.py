"""Fused kernels against the reference ops: forward, cache and every gradient on awkward shapes;
dispatch; bounded-memory BPTT; disk caching. No timing assertions here (see benchmarks/)."""

import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import longshort as ls
from longshort import kernels
from longshort.kernels import lstm as fused
from longshort.kernels.checkpoint import CheckpointCache
from longshort.ops import lstm as ref
from longshort.ops.sequence import RecurrentWeights

# relative to the largest magnitude of the reference; float32: a few units of its 6e-8 rounding
# over the K-term sums of up to 33 recurrent steps (the order of the sums differs by CPU: on an
# AVX2 Zen 3 the tiles and OpenBLAS gave 1.2e-5 at (T, I, H) = (33, 5, 192))
TOL = {np.float32: 3e-5, np.float64: 1e-12}


def assert_close(a, b, dtype, what=""):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (what, a.shape, b.shape)
    scale = max(1.0, float(np.abs(b).max(initial=0.0)))
    err = float(np.abs(a - b).max(initial=0.0)) / scale
    assert err <= TOL[dtype], (what, err)


def _weights(rng, I, H, dtype):
    shapes = ((4 * H, I), (4 * H, H), (4 * H,), (4 * H,))
    return RecurrentWeights(*(rng.uniform(-0.6, 0.6, s).astype(dtype) for s in shapes))


# (B, T, I, H, lengths): B=1, T=1, H not a multiple of 8, lengths 0, 1 and T, and a batch large
# enough (B*H >= PARALLEL_MIN_WORK) to take the two-core path, with an odd B.
SHAPES = [
    (1, 1, 3, 5, None),
    (1, 9, 2, 13, None),
    (1, 6, 4, 7, [0]),
    (1, 6, 4, 7, [1]),
    (3, 1, 4, 6, [1, 0, 1]),
    (5, 8, 3, 11, [8, 1, 0, 3, 8]),
    (4, 7, 5, 9, [7, 7, 7, 7]),
    (17, 5, 40, 32, None),  # full 32-column panels only (kernels/_tiles.py)
    (6, 3, 1, 12, None),  # one input feature: x^T has both strides 1
    (9, 6, 64, 40, [6, 2, 0, 6, 5, 6, 1, 6, 3]),  # I % 32 == 0: dW_ih = dz^T x, x in place
    (4, 5, 32, 33, None),
    (33, 12, 6, 70, None),
    (33, 12, 6, 70, list(range(12)) * 2 + [12] * 9),
]
# G H >= JOINT_WGRAD_MIN, I and H multiples of 32: [dW_ih dW_hh] as one product over gathered
# [x_t, h_(t-1)] panels (_lstm_loops._joint_grads); an RNN (G = H) takes it from H = 512
JOINT_SHAPES = [(5, 6, 32, 256, [6, 2, 0, 6, 5]), (3, 4, 64, 512, None)]
# one row, T >= 16, H % 64 == 0: the LSTM forward on two cores (_row2.py) with two TBB threads
PAIR_SHAPES = [(1, 16, 3, 64, None), (1, 40, 7, 128, [23])]


def _run_both(dtype, B, T, I, H, lengths, seed=0, with_dy=True, with_dstate=True):
    rng = np.random.default_rng(seed)
    w = _weights(rng, I, H, dtype)
    x = rng.standard_normal((B, T, I)).astype(dtype)
    s0 = tuple(rng.standard_normal((B, H)).astype(dtype) for _ in range(2))
    lg = None if lengths is None else np.array(lengths)
    dy = rng.standard_normal((B, T, H)).astype(dtype) if with_dy else None
    ds = tuple(rng.standard_normal((B, H)).astype(dtype) for _ in range(2))
    ds = ds if with_dstate else (None, None)
    out = {}
    for name, mod in (("fused", fused), ("ref", ref)):
        y, st, cache = mod.lstm_forward(x, s0, w, lg)
        dx, ds0, g = mod.lstm_backward(dy, ds, cache)
        out[name] = dict(y=y, h_n=st[0], c_n=st[1], dx=dx, dh0=ds0[0], dc0=ds0[1], cache=cache)
        out[name].update({"d" + k: v for k, v in g._asdict().items()})
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape", SHAPES + PAIR_SHAPES + JOINT_SHAPES, ids=lambda s: "B{}T{}I{}H{}L{}".format(*s)
)
def test_fused_op_matches_reference(dtype, shape):
    out = _run_both(dtype, *shape)
    f, r = out["fused"], out["ref"]
    for k in r:
        if k != "cache":
            assert f[k].dtype == dtype, k
            assert_close(f[k], r[k], dtype, k)
    for field in ("h", "c", "gates", "tanh_c"):  # the cache means the same thing (gate traces)
        assert_close(getattr(f["cache"], field), getattr(r["cache"], field), dtype, field)
    assert (f["cache"].mask is None) == (r["cache"].mask is None)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chunks", [2, 3])
@pytest.mark.parametrize(
    "shape",
    [
        (7, 9, 64, 33, [9, 2, 0, 9, 5, 1, 9]),
        (5, 6, 32, 40, None),
        (6, 5, 6, 70, None),
        (7, 4, 32, 256, [4, 1, 4, 0, 3, 4, 2]),  # the joint weight-gradient product per chunk
    ],
)
def test_batch_split_in_chunks_matches_reference(monkeypatch, dtype, chunks, shape):
    """The batch split over cores (each chunk's partial weight gradients, dW_ih = dz^T x for
    I % 32 == 0, the sums folded in the kernel), forced at any thread count: chunks run one after
    another when Numba has fewer threads."""
    monkeypatch.setattr(fused, "_chunks", lambda B, H: min(B, chunks))
    out = _run_both(dtype, *shape)
    f, r = out["fused"], out["ref"]
    for k in r:
        if k != "cache":
            assert_close(f[k], r[k], dtype, k)


@pytest.mark.parametrize("with_dy,with_dstate", [(True, False), (False, True)])
def test_fused_backward_without_some_gradients(with_dy, with_dstate):
    out = _run_both(np.float64, 5, 8, 3, 11, [8, 1, 0, 3, 8], 1, with_dy, with_dstate)
    for k in ("dx", "dh0", "dc0", "dw_ih", "dw_hh", "db_ih"):
        assert_close(out["fused"][k], out["ref"][k], np.float64, k)


def test_each_backward_accepts_the_other_forwards_cache():
    rng = np.random.default_rng(2)
    B, T, I, H = 3, 6, 2, 5
    w = _weights(rng, I, H, np.float64)
    x = rng.standard_normal((B, T, I))
    s0 = (np.zeros((B, H)), np.zeros((B, H)))
    dy, lg = rng.standard_normal((B, T, H)), np.array([6, 2, 4])
    *_, cf = fused.lstm_forward(x, s0, w, lg)
    *_, cr = ref.lstm_forward(x, s0, w, lg)
    a, b = fused.lstm_backward(dy, (None, None), cr), ref.lstm_backward(dy, (None, None), cf)
    for u, v in zip((a[0], *a[1], *a[2]), (b[0], *b[1], *b[2])):
        assert_close(u, v, np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("B", [1, 4])
def test_fused_step_matches_reference(dtype, B):
    rng = np.random.default_rng(3)
    I, H = 3, 10
    w = _weights(rng, I, H, dtype)
    x = rng.standard_normal((B, I)).astype(dtype)
    st = tuple(rng.standard_normal((B, H)).astype(dtype) for _ in range(2))
    (hf, cf), gf = fused.lstm_step(x, st, w)
    (hr, cr), gr = ref.lstm_step(x, st, w)
    for a, b in ((hf, hr), (cf, cr), (gf, gr)):
        assert_close(a, b, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layers,bidi", [(1, True), (3, False), (2, True)])
def test_layer_fused_equals_reference(dtype, layers, bidi):
    """nn.LSTM with impl='fused' vs 'reference': stacked, bidirectional, lengths, given state."""
    rng = np.random.default_rng(4)
    B, T, I, H = 5, 9, 4, 7
    D = 2 if bidi else 1
    lengths = np.array([9, 1, 0, 5, 9])
    x = rng.standard_normal((B, T, I)).astype(dtype)
    state = tuple(rng.standard_normal((layers * D, B, H)).astype(dtype) for _ in range(2))
    dy = rng.standard_normal((B, T, D * H)).astype(dtype)
    dst = tuple(rng.standard_normal((layers * D, B, H)).astype(dtype) for _ in range(2))
    res = {}
    for impl in ("fused", "reference"):
        layer = ls.nn.LSTM(I, H, layers, bidi, dtype=dtype, seed=7, impl=impl)
        y, (h, c) = layer(x, state, lengths=lengths)
        dx, (dh0, dc0) = layer.backward(dy, dst)
        res[impl] = [y, h, c, dx, dh0, dc0] + [p.grad for _, p in layer.named_parameters()]
        res[impl] += [v for tr in layer.gate_trace() for v in tr.values()]
    for a, b in zip(res["fused"], res["reference"]):
        assert_close(a, b, dtype)


def _pair_buffers(rng, T, I, H, dtype, cache):
    from longshort.kernels import _row2

    x = rng.standard_normal((1, T, I)).astype(dtype)
    w = _weights(rng, I, H, dtype)
    s0 = tuple(rng.standard_normal((1, H)).astype(dtype) for _ in range(2))
    S = T + 1 if cache else 2
    hbuf, cbuf = np.empty((1, S, H), dtype), np.empty((1, S, H), dtype)
    hbuf[:, 0], cbuf[:, 0] = s0
    bufs = (np.empty((2, T, 2 * H), dtype), hbuf, cbuf, np.empty((1, T if cache else 1, H), dtype))
    bufs += (np.empty((1, T, H), dtype), np.empty((1, T, 4 * H), dtype))
    args = (x, *_row2.pack_parts(w.w_ih, w.w_hh, w.b_ih + w.b_hh), *bufs)
    return args, (x, s0, w)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cache", [True, False])
@pytest.mark.parametrize("T,I,H,length", [(16, 1, 64, 16), (33, 5, 192, 20), (20, 32, 128, 0)])
def test_two_core_single_row_forward(monkeypatch, dtype, cache, T, I, H, length):
    """The batch of one split by hidden units over two cores (_row2.forward_pair), called
    directly so that it runs at any thread count: outputs, final state and cached gates match
    the reference, and the one-core kernel bit for bit (the same products, element by element)."""
    from longshort.kernels import _row2

    _, (x, s0, w) = _pair_buffers(np.random.default_rng(T), T, I, H, dtype, cache)
    y, hbuf, cbuf, tbuf, z = _row2.forward_pair(x, *w, *s0, np.array([length], np.int64), cache)
    y_r, (h_r, c_r), _ = ref.lstm_forward(x, s0, w, np.array([length]))
    monkeypatch.setattr(_row2, "usable", lambda B, T, I, H: False)
    y_1, (h_1, c_1), cache_1 = fused.lstm_forward(x, s0, w, np.array([length]))
    S = hbuf.shape[1]
    assert_close(y, y_r, dtype, "y")
    assert_close(hbuf[:, T % S], h_r, dtype, "h_n")
    assert_close(cbuf[:, T % S], c_r, dtype, "c_n")
    for a, b in ((y, y_1), (hbuf[:, T % S], h_1), (cbuf[:, T % S], c_1)):
        np.testing.assert_array_equal(a, b)
    if cache:
        np.testing.assert_array_equal(z, cache_1.gates)
        np.testing.assert_array_equal(hbuf, cache_1.h)
        np.testing.assert_array_equal(cbuf, cache_1.c)
        np.testing.assert_array_equal(tbuf, cache_1.tanh_c)


def test_two_core_forward_survives_one_thread():
    """When the thread pool runs both parts on one thread, one after the other, the first
    computes the other's half-steps itself after waiting for them (no deadlock), and the second
    finds every half-step claimed and changes nothing; the result is still right."""
    from longshort.kernels import _row2

    T, I, H = 24, 4, 64
    args, (x, s0, w) = _pair_buffers(np.random.default_rng(5), T, I, H, np.float64, True)
    sync = np.zeros(_row2.SYNC, np.int64)
    lens = np.array([T], np.int64)
    _row2._part(0, *args, lens, True, sync)  # alone: part 1's thread never comes
    for p in range(2):  # every half-step of both parts claimed and published
        assert sync[_row2.CLAIM + 8 * p] == T and sync[_row2.DONE + 8 * p] == T
    y = args[8].copy()
    _row2._part(1, *args, lens, True, sync)  # the late thread: nothing left to do
    np.testing.assert_array_equal(args[8], y)
    y_r, (h_r, _), _ = ref.lstm_forward(x, s0, w)
    assert_close(args[8], y_r, np.float64, "y")
    assert_close(args[5][:, T], h_r, np.float64, "h_n")


def test_concurrent_python_threads_are_safe():
    """Two threads calling the batch-parallel path at once: one runs it, the other runs serially
    (Numba's workqueue layer would abort the process on concurrent parallel regions)."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(8)
    B, T, I, H = 40, 30, 4, 64  # B*H large enough for the two-core path
    w = _weights(rng, I, H, np.float32)
    xs = [rng.standard_normal((B, T, I)).astype(np.float32) for _ in range(6)]
    s0 = (np.zeros((B, H), np.float32),) * 2
    with ThreadPoolExecutor(3) as pool:
        outs = list(pool.map(lambda x: fused.lstm_forward(x, s0, w, None, False)[0], xs))
    for x, y in zip(xs, outs):
        assert_close(y, ref.lstm_forward(x, s0, w, None, False)[0], np.float32)


@pytest.mark.parametrize("every", [1, 3, 9, 40, "sqrt"])
@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_checkpointed_bptt_gives_the_same_gradients(every, impl):
    rng = np.random.default_rng(5)
    B, T, I, H = 4, 9, 3, 6
    x = rng.standard_normal((B, T, I))
    lengths = np.array([9, 4, 0, 1])
    state = tuple(rng.standard_normal((4, B, H)) for _ in range(2))
    dy, dst = (
        rng.standard_normal((B, T, 2 * H)),
        tuple(rng.standard_normal((4, B, H)) for _ in "hc"),
    )
    res = []
    for ck in (None, every):
        layer = ls.nn.LSTM(I, H, 2, True, dtype=np.float64, seed=1, impl=impl, checkpoint_every=ck)
        y, (h, c) = layer(x, state, lengths=lengths)
        dx, (dh0, dc0) = layer.backward(dy, dst)
        res.append([y, h, c, dx, dh0, dc0] + [p.grad.copy() for p in layer.parameters()])
        if ck is not None:
            assert all(isinstance(cache, CheckpointCache) for cache in layer._ctx[0])
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_checkpoint_memory_grows_with_sqrt_t():
    """The cache of a 2,500-step sequence holds sqrt(T) + 1 states, not T."""
    B, T, H = 2, 2500, 8
    layer = ls.nn.LSTM(1, H, checkpoint_every="sqrt", seed=0)
    x = np.random.default_rng(0).standard_normal((B, T, 1)).astype(np.float32)
    y, _ = layer(x)
    (cache,) = layer._ctx[0]
    assert cache.every == 50 and len(cache.states) == 50
    kept = sum(a.nbytes for st in cache.states for a in st)
    assert kept == 50 * 2 * B * H * 4  # vs a full cache of ~7 * T * B * H numbers
    layer.backward(np.ones_like(y))
    assert np.isfinite(layer.weight_hh_l0.grad).all() and layer.weight_hh_l0.grad.any()
    with pytest.raises(RuntimeError, match="checkpoint_every = None"):
        layer.gate_trace()


@pytest.mark.parametrize("bad", [0, -2, 1.5, "log", True])
def test_bad_checkpoint_every_is_rejected(bad):
    with pytest.raises(ValueError, match="checkpoint_every"):
        ls.nn.LSTM(2, 3, checkpoint_every=bad)


def test_dispatch():
    assert kernels.get_lstm_ops("fused")[0] is fused.lstm_forward
    assert kernels.get_lstm_ops("auto")[0] is fused.lstm_forward
    assert kernels.get_lstm_ops("reference") == (ref.lstm_forward, ref.lstm_backward, ref.lstm_step)
    with pytest.raises(ValueError, match="impl must be one of"):
        kernels.get_lstm_ops("fast")
    with pytest.raises(ValueError, match="impl must be one of"):
        ls.nn.LSTM(2, 3, impl="fast")


def test_missing_fused_kernels(monkeypatch, caplog, request):
    """'fused' is an error that says why; 'auto' falls back and logs it once."""
    monkeypatch.setattr(kernels, "_load_fused", lambda kind: (None, "Numba is not installed"))
    kernels.get_ops.cache_clear()
    request.addfinalizer(kernels.get_ops.cache_clear)
    with pytest.raises(RuntimeError, match="Numba is not installed.*impl='auto'"):
        kernels.get_lstm_ops("fused")
    with pytest.raises(RuntimeError, match="Numba is not installed"):
        ls.nn.LSTM(2, 3, impl="fused")
    kernels._warn_fallback.cache_clear()
    with caplog.at_level(logging.INFO, logger="longshort.kernels"):
        for _ in range(3):
            assert kernels.get_lstm_ops("auto")[0] is ref.lstm_forward
    assert sum("reference LSTM ops" in r.getMessage() for r in caplog.records) == 1
    layer = ls.nn.LSTM(2, 3, seed=0)  # still works, on the reference ops
    y, _ = layer(np.ones((1, 4, 2), np.float32))
    assert y.shape == (1, 4, 3)


SCRIPT = textwrap.dedent(
    """
    import numpy as np
    from longshort.kernels import _blas, _lstm_loops, lstm as fused
    from longshort.ops import lstm as ref
    rng = np.random.default_rng(0)
    w = tuple(rng.uniform(-.5, .5, s).astype(np.float32) for s in ((20, 3), (20, 5), (20,), (20,)))
    x = rng.standard_normal((4, 6, 3)).astype(np.float32)
    s0 = (np.zeros((4, 5), np.float32),) * 2
    a, _, ca = fused.lstm_forward(x, s0, ref.LSTMWeights(*w), np.array([6, 0, 1, 3]))
    b, _, cb = ref.lstm_forward(x, s0, ref.LSTMWeights(*w), np.array([6, 0, 1, 3]))
    ga, gb = fused.lstm_backward(b, (None, None), ca), ref.lstm_backward(b, (None, None), cb)
    assert np.abs(a - b).max() < 1e-5 and np.abs(ga[2].w_hh - gb[2].w_hh).max() < 1e-5
    print(_blas.BACKEND.split()[0], len(_lstm_loops._forward_one.stats.cache_hits))
    """
)


@pytest.mark.parametrize("blas", ["numpy", "fallback"])
def test_fresh_process_loads_cached_kernels(blas):
    """A new process gets correct results, loading the kernels from the disk cache (no JIT);
    LONGSHORT_BLAS=fallback exercises the compiled BLAS stand-ins used without NumPy's OpenBLAS."""
    env = dict(os.environ, LONGSHORT_BLAS=blas)
    runs = [
        subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True)
        for _ in range(2)
    ]
    for r in runs:
        assert r.returncode == 0, r.stderr
    backend, hits = runs[1].stdout.split()[-2:]
    assert backend == ("fallback" if blas == "fallback" else "numpy-openblas")
    assert int(hits) > 0  # the second process found the compiled kernel on disk


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape", SHAPES + JOINT_SHAPES[1:], ids=lambda s: "B{}T{}I{}H{}L{}".format(*s)
)
def test_fused_rnn_matches_reference(nonlinearity, dtype, shape):
    from longshort.kernels import rnn as frnn
    from longshort.ops import rnn as rrnn

    B, T, I, H, lengths = shape
    rng = np.random.default_rng(9)
    shapes = ((H, I), (H, H), (H,), (H,))
    k = min(0.4, 3 / np.sqrt(H))  # a wide tanh RNN at 0.4 is chaotic: float32 noise grows
    w = RecurrentWeights(*(rng.uniform(-k, k, s).astype(dtype) for s in shapes))
    x = rng.standard_normal((B, T, I)).astype(dtype)
    h0, dh = (rng.standard_normal((B, H)).astype(dtype) for _ in range(2))
    dy = rng.standard_normal((B, T, H)).astype(dtype)
    lg = None if lengths is None else np.array(lengths)
    res = []
    for mod in (frnn, rrnn):
        y, h_n, cache = mod.rnn_forward(x, h0, w, lg, nonlinearity=nonlinearity)
        dx, dh0, g = mod.rnn_backward(dy, dh, cache)
        step = mod.rnn_step(x[:, 0], h0, w, nonlinearity=nonlinearity)
        res.append([y, h_n, cache.h, dx, dh0, *g, step])
    for a, b in zip(*res):
        assert a.dtype == dtype
        assert_close(a, b, dtype)


def test_rnn_layer_fused_equals_reference():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((5, 9, 4))
    lengths, dy = np.array([9, 1, 0, 5, 9]), rng.standard_normal((5, 9, 12))
    res = []
    for impl in ("fused", "reference"):
        layer = ls.nn.RNN(4, 6, 2, True, dtype=np.float64, seed=2, impl=impl, nonlinearity="relu")
        y, h = layer(x, lengths=lengths)
        dx, dh0 = layer.backward(dy, np.ones_like(h))
        res.append([y, h, dx, dh0] + [p.grad for p in layer.parameters()])
        uni = ls.nn.RNN(4, 6, 2, dtype=np.float64, seed=2, impl=impl, nonlinearity="relu")
        res[-1].append(uni.step(x[:, 0])[0])
    for a, b in zip(*res):
        assert_close(a, b, np.float64)


@pytest.mark.parametrize("cls", [ls.nn.GRU, ls.nn.RNN])
@pytest.mark.parametrize("chunks", [2, 3])
def test_gru_and_rnn_batch_split_in_chunks_match_reference(monkeypatch, cls, chunks):
    """Every kind's chunks fold their partial weight gradients in the kernel: forced chunks,
    layers through the fused kernels against the reference, every gradient."""
    monkeypatch.setattr(fused, "_chunks", lambda B, H: min(B, chunks))
    rng = np.random.default_rng(chunks)
    x = rng.standard_normal((7, 6, 32)).astype(np.float64)
    dy = rng.standard_normal((7, 6, 9))
    lengths = np.array([6, 2, 0, 6, 5, 1, 6])
    outs = []
    for impl in ("fused", "reference"):
        layer = cls(32, 9, dtype=np.float64, seed=0, impl=impl)
        y, _ = layer(x, lengths=lengths)
        dx, _ = layer.backward(dy)
        outs.append([y, dx] + [p.grad.copy() for p in layer.parameters()])
    for a, b in zip(*outs):
        assert_close(a, b, np.float64)


def test_reused_dz_scratch_leaves_no_trace():
    """lstm_backward's dz is a per-thread buffer kept between calls (_scratch_dz): backward twice
    on one cache, and two caches taken in turns, give the same results as the first call."""
    rng = np.random.default_rng(3)
    B, T, I, H = 6, 7, 32, 40
    w = _weights(rng, I, H, np.float32)
    s0 = tuple(np.zeros((B, H), np.float32) for _ in range(2))
    xs = [rng.standard_normal((B, T, I)).astype(np.float32) for _ in range(2)]
    dy = rng.standard_normal((B, T, H)).astype(np.float32)
    caches = [fused.lstm_forward(x, s0, w)[2] for x in xs]
    first = [fused.lstm_backward(dy, (None, None), c) for c in caches]
    for c, want in zip(caches * 2, first * 2):
        dx, (dh, dc), g = fused.lstm_backward(dy, (None, None), c)
        for a, b in zip((dx, dh, dc, *g), (want[0], *want[1], *want[2])):
            np.testing.assert_array_equal(a, b)
    shape = (B, T, fused._padded(4 * H, np.float32))
    assert np.shares_memory(
        fused._scratch_dz(shape, np.dtype(np.float32)),
        fused._scratch_dz(shape, np.dtype(np.float32)),
    )
