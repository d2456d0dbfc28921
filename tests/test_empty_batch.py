"""A batch of zero sequences goes through every layer kind and path: empty outputs and zero
gradients, no crash (the fused LSTM kernels once wrote row 0 of empty arrays: a heap corruption
that killed the process later)."""

import numpy as np
import pytest

import longshort as ls

VARIANTS = [{}, {"peepholes": True}, {"layer_norm": True}, {"zoneout": 0.1},
            {"proj_size": 2, "peepholes": True}, {"num_layers": 2, "bidirectional": True}]  # fmt: skip


@pytest.mark.parametrize("impl", ["auto", "fused", "reference"])
@pytest.mark.parametrize("kw", VARIANTS, ids=lambda k: ",".join(k) or "plain")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lstm_on_an_empty_batch(impl, kw, dtype):
    m = ls.nn.LSTM(3, 5, impl=impl, dtype=dtype, **kw)
    for T in (1, 7):
        x = np.zeros((0, T, 3), dtype)
        y, (h, c) = m(x)
        assert y.shape[:2] == (0, T) and h.shape[1] == 0 and c.shape[1] == 0
        dx, _ = m.backward(np.zeros_like(y))
        assert dx.shape == x.shape
        assert all(not p.grad.any() for p in m.parameters())
        assert m(x, need_cache=False)[0].shape == y.shape
    if not kw.get("bidirectional"):
        m.eval()
        assert m.step(np.zeros((0, 3), dtype))[0].shape[0] == 0


@pytest.mark.parametrize("impl", ["fused", "reference"])
@pytest.mark.parametrize("cls", [ls.nn.GRU, ls.nn.RNN])
def test_gru_and_rnn_on_an_empty_batch(cls, impl):
    m = cls(3, 5, impl=impl)
    y, h = m(np.zeros((0, 4, 3), np.float32))
    assert y.shape == (0, 4, 5) and h.shape == (1, 0, 5)
    dx, _ = m.backward(np.zeros_like(y))
    assert dx.shape == (0, 4, 3)
    assert all(not p.grad.any() for p in m.parameters())
    assert m.step(np.zeros((0, 3), np.float32))[0].shape == (0, 5)


@pytest.mark.parametrize("B,H", [(1, 64), (4, 512)])
def test_fused_lstm_ops_with_no_steps(B, H):
    """T = 0 at the ops level (the layers refuse it): the fused backward on the batch-parallel
    path once divided by zero steps; both ops now give what the reference gives."""
    from longshort.kernels import lstm as fused
    from longshort.ops import lstm as ref

    rng = np.random.default_rng(0)
    w = ref.LSTMWeights(*(rng.standard_normal(s).astype(np.float32)
                          for s in ((4 * H, 5), (4 * H, H), (4 * H,), (4 * H,))))  # fmt: skip
    s0 = tuple(rng.standard_normal((B, H)).astype(np.float32) for _ in range(2))
    x = np.zeros((B, 0, 5), np.float32)
    for ops in (fused, ref):
        y, (h, c), cache = ops.lstm_forward(x, s0, w)
        assert y.shape == (B, 0, H)
        np.testing.assert_array_equal(h, s0[0])
        dx, (dh, dc), g = ops.lstm_backward(np.zeros_like(y), (s0[0], None), cache)
        assert dx.shape == x.shape and not g.w_hh.any() and not g.b_ih.any()
        np.testing.assert_array_equal(dh, s0[0])
