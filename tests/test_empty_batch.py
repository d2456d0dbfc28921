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
