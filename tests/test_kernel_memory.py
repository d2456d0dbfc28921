"""The fused kernels tune glibc's malloc once (kernels/_memory.py), unless the user opts out."""

import os
import platform
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")
CODE = "import longshort.kernels.lstm, longshort.kernels._memory as m, ctypes;print(m.APPLIED)"


def _applied(**env) -> str:
    e = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    e.update(env)
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=e)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.mark.skipif(platform.system() != "Linux" or not platform.libc_ver()[0] == "glibc",
                    reason="glibc only")  # fmt: skip
def test_applied_on_glibc_and_opt_outs():
    assert _applied() == "True"
    assert _applied(LONGSHORT_MALLOC="system") == "False"
    assert _applied(MALLOC_TRIM_THRESHOLD_="131072") == "False"


def test_results_do_not_depend_on_it():
    """Same numbers with and without the tuning (it only changes where memory comes from)."""
    code = (
        "import numpy as np, longshort as ls;"
        "m = ls.nn.LSTM(3, 5, seed=0); x = np.random.default_rng(0).standard_normal((4, 6, 3));"
        "y, _ = m(x.astype(np.float32)); m.backward(np.ones_like(y));"
        "print(float(y.sum()), float(m.weight_hh_l0.grad.sum()))"
    )
    outs = []
    for env in ({}, {"LONGSHORT_MALLOC": "system"}):
        e = dict(os.environ, **env)
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e)
        assert r.returncode == 0, r.stderr
        outs.append(r.stdout)
    assert outs[0] == outs[1]


def test_pool_reuses_a_block_only_when_nothing_views_it():
    from longshort.kernels._memory import MMAP_THRESHOLD, reusable_empty

    shape = (MMAP_THRESHOLD // 4 // 1000 + 1, 1000)  # just over the threshold in float32
    a = reusable_empty(shape, np.float32)
    addr = a.ctypes.data
    del a
    b = reusable_empty(shape, np.float32)
    assert b.ctypes.data == addr  # freed: handed out again
    c = reusable_empty(shape, np.float32)
    assert c.ctypes.data != addr  # b still holds it
    view = b[1:]
    del b
    d = reusable_empty(shape, np.float32)
    assert d.ctypes.data != addr  # a view keeps the block busy
    assert view.base is not None
    small = reusable_empty((10, 10), np.float64)
    assert small.shape == (10, 10) and small.dtype == np.float64
    from longshort.kernels._memory import release_pool

    del c, d, view
    assert release_pool() >= 3 * shape[0] * shape[1] * 4  # three blocks were pooled
    assert release_pool() == 0


def test_a_held_cache_is_not_overwritten_by_the_next_forward():
    """(64, 130, 4 x 256) float32 gates: 34 MB, from the pool; a second forward on other data
    must get another block while the first cache is alive, and both backward passes must
    match the reference."""
    from longshort.kernels import lstm as fused
    from longshort.ops import lstm as ref

    rng = np.random.default_rng(3)
    B, T, I, H = 64, 130, 32, 256
    w = ref.LSTMWeights(*(rng.standard_normal(s).astype(np.float32) * 0.1
                          for s in ((4 * H, I), (4 * H, H), (4 * H,), (4 * H,))))  # fmt: skip
    s0 = (np.zeros((B, H), np.float32), np.zeros((B, H), np.float32))
    x1, x2 = (rng.standard_normal((B, T, I)).astype(np.float32) for _ in range(2))
    _, _, c1 = fused.lstm_forward(x1, s0, w)
    gates1 = c1.gates.copy()
    _, _, c2 = fused.lstm_forward(x2, s0, w)
    assert c1.gates.ctypes.data != c2.gates.ctypes.data
    np.testing.assert_array_equal(c1.gates, gates1)
    dy = rng.standard_normal((B, T, H)).astype(np.float32)
    for x, c in ((x1, c1), (x2, c2)):
        got = fused.lstm_backward(dy, (None, None), c)[2]
        want = ref.lstm_backward(dy, (None, None), ref.lstm_forward(x, s0, w)[2])[2]
        for g, r in zip(got, want):
            np.testing.assert_allclose(g, r, rtol=2e-3, atol=2e-3)
