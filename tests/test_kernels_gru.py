"""The fused GRU kernel (kernels/gru.py) against the reference (ops/gru.py): forward, every
gradient and the step, on awkward shapes; and the GRU layer with impl="fused" vs "reference"."""

from __future__ import annotations

import numpy as np
import pytest

import longshort as ls
from longshort import kernels
from longshort.kernels import gru as fgru
from longshort.ops import gru as rgru
from longshort.ops.sequence import RecurrentWeights
from test_kernels import SHAPES, assert_close


def _case(dtype, B, T, I, H, lengths, seed=11):
    rng = np.random.default_rng(seed)
    shapes = ((3 * H, I), (3 * H, H), (3 * H,), (3 * H,))
    w = RecurrentWeights(*(rng.uniform(-0.6, 0.6, s).astype(dtype) for s in shapes))
    x = rng.standard_normal((B, T, I)).astype(dtype)
    h0, dh = (rng.standard_normal((B, H)).astype(dtype) for _ in range(2))
    dy = rng.standard_normal((B, T, H)).astype(dtype)
    return w, x, h0, dh, dy, None if lengths is None else np.array(lengths)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}T{}I{}H{}L{}".format(*s))
def test_fused_gru_matches_reference(dtype, shape):
    w, x, h0, dh, dy, lg = _case(dtype, *shape)
    res = []
    for mod in (fgru, rgru):
        y, h_n, cache = mod.gru_forward(x, h0, w, lg)
        dx, dh0, g = mod.gru_backward(dy, dh, cache)
        step = mod.gru_step(x[:, 0], h0, w)
        y2, h_n2, none = mod.gru_forward(x, h0, w, lg, need_cache=False)
        assert none is None
        res.append([y, h_n, cache.h, dx, dh0, *g, step, y2, h_n2])
    for k, (a, b) in enumerate(zip(*res)):
        assert a.dtype == dtype, k
        assert_close(a, b, dtype, k)


@pytest.mark.parametrize("with_dy,with_dh", [(True, False), (False, True)])
def test_fused_gru_backward_without_some_gradients(with_dy, with_dh):
    w, x, h0, dh, dy, lg = _case(np.float64, 5, 8, 3, 11, [8, 1, 0, 3, 8])
    dy, dh = (dy if with_dy else None), (dh if with_dh else None)
    res = []
    for mod in (fgru, rgru):
        dx, dh0, g = mod.gru_backward(dy, dh, mod.gru_forward(x, h0, w, lg)[2])
        res.append([dx, dh0, *g])
    for a, b in zip(*res):
        assert_close(a, b, np.float64)


def test_each_gru_backward_accepts_the_other_forwards_cache():
    w, x, h0, dh, dy, lg = _case(np.float64, 4, 6, 3, 7, [6, 0, 1, 3])
    cf, cr = fgru.gru_forward(x, h0, w, lg)[2], rgru.gru_forward(x, h0, w, lg)[2]
    for a, b in zip(fgru.gru_backward(dy, dh, cr)[2], rgru.gru_backward(dy, dh, cf)[2]):
        assert_close(a, b, np.float64)


def test_gru_dispatch():
    assert kernels.get_ops("gru", "fused")[0] is fgru.gru_forward
    assert kernels.get_ops("gru", "auto")[0] is fgru.gru_forward
    assert kernels.get_ops("gru", "reference")[0] is rgru.gru_forward
    ls.nn.GRU(2, 3, impl="fused")  # no longer an error


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gru_layer_fused_equals_reference(dtype):
    """Stacked, bidirectional, variable lengths (0, 1 and T), given h0, gradients of everything."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((5, 9, 4)).astype(dtype)
    lengths, dy = np.array([9, 1, 0, 5, 9]), rng.standard_normal((5, 9, 10)).astype(dtype)
    h0 = rng.standard_normal((4, 5, 5)).astype(dtype)
    res = []
    for impl in ("fused", "reference"):
        layer = ls.nn.GRU(4, 5, 2, True, dtype=dtype, seed=2, impl=impl)
        y, h = layer(x, h0, lengths=lengths)
        dx, dh0 = layer.backward(dy, np.ones_like(h))
        res.append([y, h, dx, dh0] + [p.grad for p in layer.parameters()])
        uni = ls.nn.GRU(4, 5, 2, dtype=dtype, seed=2, impl=impl)
        res[-1] += list(uni.step(x[:, 0]))
    for a, b in zip(*res):
        assert_close(a, b, dtype)


@pytest.mark.parametrize("cls", [ls.nn.LSTM, ls.nn.GRU])
def test_layer_sees_parameter_updates(cls):
    """Nothing derived from the weights is kept between calls: an in-place optimiser step, a
    new .data array and a new Parameter all change the next forward's output."""
    x = np.random.default_rng(13).standard_normal((2, 3, 4)).astype(np.float32)
    layer, other = cls(4, 5, seed=0), cls(4, 5, seed=1)
    y0 = layer(x, need_cache=False)[0]
    layer.weight_hh_l0.data *= 0.5  # in place, as the optimisers do
    y1 = layer(x, need_cache=False)[0]
    assert not np.allclose(y0, y1)
    for name, p in other.named_parameters():
        getattr(layer, name).data = p.data.copy()
    np.testing.assert_allclose(layer(x)[0], other(x)[0], rtol=1e-6)
    layer.weight_ih_l0 = ls.nn.Parameter(np.zeros_like(other.weight_ih_l0.data))
    y3, _ = layer(x)
    assert not np.allclose(y3, other(x)[0])
