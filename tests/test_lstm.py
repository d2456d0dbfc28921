"""The reference LSTM against finite differences and torch.nn.LSTM (outputs and every gradient)."""

import numpy as np
import pytest
import torch

import longshort as ls
from longshort.ops.lstm import lstm_backward, lstm_forward, lstm_step
from longshort.ops.sequence import RecurrentWeights
from reference.fd import numerical_grad, rel_error
from reference.torch_ref import CONFIGS, compare_with_torch


def _rand_weights(rng, I, H, dtype=np.float64):
    return RecurrentWeights(
        *(
            rng.uniform(-0.5, 0.5, s).astype(dtype)
            for s in ((4 * H, I), (4 * H, H), (4 * H,), (4 * H,))
        )
    )


@pytest.mark.parametrize("lengths", [None, [5, 1, 3]])
def test_op_finite_differences(lengths):
    """Every parameter, the input and (h0, c0): centred differences, float64, rel err < 1e-6."""
    rng = np.random.default_rng(0)
    B, T, I, H = 3, 5, 4, 3
    w = _rand_weights(rng, I, H)
    x = rng.standard_normal((B, T, I))
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    lg = None if lengths is None else np.array(lengths)
    Py = rng.standard_normal((B, T, H))  # random projections of every output
    Ph, Pc = rng.standard_normal((B, H)), rng.standard_normal((B, H))

    def loss():
        y, (h, c), _ = lstm_forward(x, (h0, c0), w, lg, need_cache=False)
        return np.sum(y * Py) + np.sum(h * Ph) + np.sum(c * Pc)

    _, _, cache = lstm_forward(x, (h0, c0), w, lg)
    dx, (dh0, dc0), g = lstm_backward(Py, (Ph, Pc), cache)
    for name, arr, grad in [("x", x, dx), ("h0", h0, dh0), ("c0", c0, dc0)] + [
        (n, a, gg) for n, a, gg in zip(w._fields, w, g)
    ]:
        assert rel_error(grad, numerical_grad(loss, arr)) < 1e-6, name


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("variant", ["plain", "lengths", "state", "lengths+state"])
@pytest.mark.parametrize("impl", ["reference", "auto"])
def test_against_torch(dtype, tol, cfg, variant, impl):
    rng = np.random.default_rng(1)
    B, T, I, H = 4, 7, 5, 6
    layer = ls.nn.LSTM(I, H, dtype=dtype, seed=3, impl=impl, **cfg)
    x = rng.standard_normal((B, T, I)).astype(dtype)
    lengths = np.array([7, 1, 4, 7]) if "lengths" in variant else None
    state = None
    if "state" in variant:
        LD = cfg["num_layers"] * (2 if cfg["bidirectional"] else 1)
        state = tuple(rng.standard_normal((LD, B, H)).astype(dtype) for _ in range(2))
    errs = compare_with_torch(layer, torch.nn.LSTM, x, lengths, state)
    worst = max(errs, key=errs.get)
    assert errs[worst] < tol, (worst, errs[worst])


def test_state_dict_matches_torch_names_and_shapes():
    layer = ls.nn.LSTM(3, 5, num_layers=2, bidirectional=True)
    tl = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True)
    ours = {k: v.shape for k, v in layer.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in tl.state_dict().items()}
    assert ours == theirs
    assert list(ours) == list(theirs)


def test_step_by_step_equals_whole_sequence():
    rng = np.random.default_rng(2)
    layer = ls.nn.LSTM(3, 5, num_layers=2, dtype=np.float64, seed=0)
    x = rng.standard_normal((2, 9, 3))
    y, (h, c) = layer(x)
    state = None
    for t in range(9):
        yt, state = layer.step(x[:, t], state)
        np.testing.assert_allclose(yt, y[:, t], atol=1e-12)
    np.testing.assert_allclose(state[0], h, atol=1e-12)
    np.testing.assert_allclose(state[1], c, atol=1e-12)
    # the op-level step agrees with the op-level forward too
    w = layer.weights(0)
    (h1, c1), _ = lstm_step(x[:, 0], (np.zeros((2, 5)), np.zeros((2, 5))), w)
    y0, _, _ = lstm_forward(x[:, :1], (np.zeros((2, 5)), np.zeros((2, 5))), w)
    np.testing.assert_allclose(h1, y0[:, 0], atol=1e-12)


def test_chunks_with_state_carried_equal_whole_sequence():
    rng = np.random.default_rng(3)
    layer = ls.nn.LSTM(2, 4, num_layers=3, dtype=np.float64, seed=1)
    x = rng.standard_normal((3, 20, 2))
    y, (h, c) = layer(x)
    state, ys = None, []
    for a in range(0, 20, 6):
        yc, state = layer(x[:, a : a + 6], state)
        ys.append(yc)
    np.testing.assert_allclose(np.concatenate(ys, 1), y, atol=1e-12)
    np.testing.assert_allclose(state[0], h, atol=1e-12)
    np.testing.assert_allclose(state[1], c, atol=1e-12)


def test_lengths_semantics():
    """Outputs past the end are zero; the final state is the state at the last valid step."""
    rng = np.random.default_rng(4)
    layer = ls.nn.LSTM(2, 3, dtype=np.float64, seed=0)
    x = rng.standard_normal((3, 6, 2))
    y, (h, c) = layer(x, lengths=[6, 2, 0])
    assert np.all(y[1, 2:] == 0) and np.all(y[2] == 0)
    y2, (h2, c2) = layer(x[1:2, :2])
    np.testing.assert_allclose(y[1, :2], y2[0], atol=1e-12)
    np.testing.assert_allclose(h[0, 1], h2[0, 0], atol=1e-12)
    assert np.all(h[0, 2] == 0) and np.all(c[0, 2] == 0)  # length 0 keeps the zero initial state


def test_gradients_accumulate_until_zero_grad():
    rng = np.random.default_rng(5)
    layer = ls.nn.LSTM(2, 3, dtype=np.float64, seed=0)
    x = rng.standard_normal((2, 4, 2))
    y, _ = layer(x)
    layer.backward(np.ones_like(y))
    g1 = layer.weight_hh_l0.grad.copy()
    y, _ = layer(x)
    layer.backward(np.ones_like(y))
    np.testing.assert_allclose(layer.weight_hh_l0.grad, 2 * g1)
    layer.zero_grad()
    assert not layer.weight_hh_l0.grad.any()


def test_gate_trace_is_consistent():
    rng = np.random.default_rng(6)
    layer = ls.nn.LSTM(2, 3, dtype=np.float64, seed=0)
    x = rng.standard_normal((2, 5, 2))
    y, (h, c) = layer(x)
    tr = layer.gate_trace()[0]
    np.testing.assert_allclose(tr["h"], y, atol=1e-12)
    np.testing.assert_allclose(tr["c"][:, -1], c[0], atol=1e-12)
    c_prev = np.concatenate([np.zeros((2, 1, 3)), tr["c"][:, :-1]], 1)
    np.testing.assert_allclose(tr["c"], tr["f"] * c_prev + tr["i"] * tr["g"], atol=1e-12)
    assert np.all((tr["f"] > 0) & (tr["f"] < 1))


def test_interlayer_dropout_gradient_by_finite_differences():
    """With the dropout mask held fixed (same RNG state each pass), backward matches FD."""
    rng = np.random.default_rng(7)
    layer = ls.nn.LSTM(2, 3, num_layers=2, dropout=0.4, dtype=np.float64, seed=0)
    x = rng.standard_normal((2, 4, 2))
    P = rng.standard_normal((2, 4, 3))

    def loss():
        layer._rng = np.random.default_rng(123)
        y, _ = layer(x, need_cache=False)
        return np.sum(y * P)

    layer._rng = np.random.default_rng(123)
    layer(x)
    layer.zero_grad()
    dx, _ = layer.backward(P)
    assert rel_error(dx, numerical_grad(loss, x)) < 1e-6
    for name, p in layer.named_parameters():
        assert rel_error(p.grad, numerical_grad(loss, p.data)) < 1e-6, name


@pytest.mark.parametrize("impl", ["reference", "fused"])
@pytest.mark.parametrize("B,T", [(1, 1), (1, 30), (3, 1), (4, 12)])
def test_plain_inference_call_matches_torch(impl, B, T):
    """layer(x, need_cache=False) on one plain layer from a zero state takes a short path
    (nn/lstm.py): same outputs and final state as torch.nn.LSTM, no cache left behind."""
    layer = ls.nn.LSTM(5, 40, seed=3, impl=impl)  # 4H = 160: five panels, one-row groups 4 + 1
    tl = torch.nn.LSTM(5, 40, batch_first=True)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            getattr(tl, name).copy_(torch.from_numpy(p.data))
    x = np.random.default_rng(B * T).standard_normal((B, T, 5)).astype(np.float32)
    y, (h, c) = layer(x, need_cache=False)
    with torch.no_grad():
        ty, (th, tc) = tl(torch.from_numpy(x))
    for a, b in ((y, ty), (h, th), (c, tc)):
        assert a.shape == tuple(b.shape) and np.abs(a - b.numpy()).max() < 2e-6
    with pytest.raises(RuntimeError, match="need_cache=True"):
        layer.backward(np.ones_like(y))
    with pytest.raises(ValueError, match="NaN"):
        layer(np.full((B, T, 5), np.nan, np.float32), need_cache=False)


@pytest.mark.parametrize("impl", ["reference", "fused"])
@pytest.mark.parametrize("kind, kw", [
    ("LSTM", dict(num_layers=2)),
    ("LSTM", dict(bidirectional=True)),
    ("LSTM", dict(num_layers=2, dropout=0.3)),
    ("LSTM", dict(proj_size=5)),  # a variant: its kernel gives dx, which is dropped
    ("GRU", dict(num_layers=2)),
])  # fmt: skip
def test_backward_without_input_grad(impl, kind, kw):
    """need_input_grad=False: dx is None, every parameter gradient and dstate as with dx."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 9, 6)).astype(np.float32)
    lengths = np.array([9, 3, 7, 1])
    grads, states = [], []
    for need in (True, False):
        m = getattr(ls.nn, kind)(6, 11, seed=0, impl=impl, **kw)
        m.train()
        m._rng = np.random.default_rng(5)  # the same dropout masks in both runs
        y, _ = m(x, lengths=lengths)
        dy = np.random.default_rng(4).standard_normal(y.shape).astype(np.float32)
        dx, dstate = m.backward(dy, need_input_grad=need)
        assert (dx is None) == (not need)
        grads.append({n: p.grad.copy() for n, p in m.named_parameters()})
        states.append(dstate if isinstance(dstate, tuple) else (dstate,))
    for n in grads[0]:
        np.testing.assert_array_equal(grads[0][n], grads[1][n], err_msg=n)
    for a, b in zip(*states):
        np.testing.assert_array_equal(a, b)


def test_fused_kernel_without_dx_matches_reference():
    from longshort.kernels import get_ops

    rng = np.random.default_rng(1)
    B, T, I, H = 3, 12, 5, 33
    x = rng.standard_normal((B, T, I))
    w = RecurrentWeights(*(0.3 * rng.standard_normal(s) for s in [(4 * H, I), (4 * H, H),
                                                                    (4 * H,), (4 * H,)]))  # fmt: skip
    s0 = (rng.standard_normal((B, H)), rng.standard_normal((B, H)))
    dy = rng.standard_normal((B, T, H))
    _, _, cache = lstm_forward(x, s0, w, np.array([12, 4, 9]))
    ref = lstm_backward(dy, (None, None), cache, need_dx=False)
    fwd, bwd, _ = get_ops("lstm", "fused")
    out = bwd(dy, (None, None), fwd(x, s0, w, np.array([12, 4, 9]))[2], need_dx=False)
    assert ref[0] is None and out[0] is None
    for a, b in zip([*ref[1], *ref[2]], [*out[1], *out[2]]):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)
