"""The reference RNN and GRU against finite differences and torch.nn.RNN / torch.nn.GRU."""

from functools import partial

import numpy as np
import pytest
import torch

import longshort as ls
from longshort.ops.gru import gru_backward, gru_forward, gru_step
from longshort.ops.rnn import rnn_backward, rnn_forward, rnn_step
from longshort.ops.sequence import RecurrentWeights
from reference.fd import numerical_grad, rel_error
from reference.torch_ref import CONFIGS, compare_with_torch

KINDS = ["rnn_tanh", "rnn_relu", "gru"]

# kind -> (gates, forward, backward, step) at the op level
OPS = {
    "rnn_tanh": (
        1,
        partial(rnn_forward, nonlinearity="tanh"),
        rnn_backward,
        partial(rnn_step, nonlinearity="tanh"),
    ),
    "rnn_relu": (
        1,
        partial(rnn_forward, nonlinearity="relu"),
        rnn_backward,
        partial(rnn_step, nonlinearity="relu"),
    ),
    "gru": (3, gru_forward, gru_backward, gru_step),
}


def _make(kind, I, H, **kw):
    """(our layer, the torch class to compare with) for a kind."""
    if kind == "gru":
        return ls.nn.GRU(I, H, **kw), torch.nn.GRU
    nl = kind.split("_")[1]
    return ls.nn.RNN(I, H, nonlinearity=nl, **kw), partial(torch.nn.RNN, nonlinearity=nl)


def _rand_weights(rng, G, I, H, dtype=np.float64):
    return RecurrentWeights(
        *(
            rng.uniform(-0.5, 0.5, s).astype(dtype)
            for s in ((G * H, I), (G * H, H), (G * H,), (G * H,))
        )
    )


@pytest.mark.parametrize("lengths", [None, [5, 1, 3], [5, 0, 2]])
@pytest.mark.parametrize("kind", KINDS)
def test_op_finite_differences(kind, lengths):
    """Every parameter, the input and h0: centred differences, float64, rel err < 1e-6."""
    G, fwd, bwd, _ = OPS[kind]
    rng = np.random.default_rng(0)
    B, T, I, H = 3, 5, 4, 3
    w = _rand_weights(rng, G, I, H)
    x = rng.standard_normal((B, T, I))
    h0 = rng.standard_normal((B, H))
    lg = None if lengths is None else np.array(lengths)
    Py = rng.standard_normal((B, T, H))  # random projections of every output
    Ph = rng.standard_normal((B, H))

    def loss():
        y, h, _ = fwd(x, h0, w, lg, need_cache=False)
        return np.sum(y * Py) + np.sum(h * Ph)

    _, _, cache = fwd(x, h0, w, lg)
    dx, dh0, g = bwd(Py, Ph, cache)
    for name, arr, grad in [("x", x, dx), ("h0", h0, dh0)] + list(zip(w._fields, w, g)):
        assert rel_error(grad, numerical_grad(loss, arr)) < 1e-6, name


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("variant", ["plain", "lengths", "state", "lengths+state"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("impl", ["reference", "auto"])
def test_against_torch(kind, dtype, tol, cfg, variant, impl):
    rng = np.random.default_rng(1)
    B, T, I, H = 4, 7, 5, 6
    layer, torch_cls = _make(kind, I, H, dtype=dtype, seed=3, impl=impl, **cfg)
    x = rng.standard_normal((B, T, I)).astype(dtype)
    lengths = np.array([7, 1, 4, 7]) if "lengths" in variant else None  # 1 and full length
    state = None
    if "state" in variant:
        LD = cfg["num_layers"] * (2 if cfg["bidirectional"] else 1)
        state = rng.standard_normal((LD, B, H)).astype(dtype)
    errs = compare_with_torch(layer, torch_cls, x, lengths, state)
    worst = max(errs, key=errs.get)
    assert errs[worst] < tol, (worst, errs[worst])


@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_matches_torch_names_and_shapes(kind):
    layer, torch_cls = _make(kind, 3, 5, num_layers=2, bidirectional=True)
    tl = torch_cls(3, 5, num_layers=2, bidirectional=True)
    ours = {k: v.shape for k, v in layer.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in tl.state_dict().items()}
    assert ours == theirs
    assert list(ours) == list(theirs)


@pytest.mark.parametrize("kind", KINDS)
def test_step_by_step_equals_whole_sequence(kind):
    rng = np.random.default_rng(2)
    layer, _ = _make(kind, 3, 5, num_layers=2, dtype=np.float64, seed=0)
    x = rng.standard_normal((2, 9, 3))
    y, h = layer(x)
    state = None
    for t in range(9):
        yt, state = layer.step(x[:, t], state)
        np.testing.assert_allclose(yt, y[:, t], atol=1e-12)
    np.testing.assert_allclose(state, h, atol=1e-12)
    # the op-level step agrees with the op-level forward too
    _, fwd, _, step = OPS[kind]
    w, h0 = layer.weights(0), rng.standard_normal((2, 5))
    h1 = step(x[:, 0], h0, w)
    y0, _, _ = fwd(x[:, :1], h0, w)
    np.testing.assert_allclose(h1, y0[:, 0], atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_chunks_with_state_carried_equal_whole_sequence(kind):
    rng = np.random.default_rng(3)
    layer, _ = _make(kind, 2, 4, num_layers=3, dtype=np.float64, seed=1)
    x = rng.standard_normal((3, 20, 2))
    y, h = layer(x)
    state, ys = None, []
    for a in range(0, 20, 6):
        yc, state = layer(x[:, a : a + 6], state)
        ys.append(yc)
    np.testing.assert_allclose(np.concatenate(ys, 1), y, atol=1e-12)
    np.testing.assert_allclose(state, h, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_lengths_semantics(kind):
    """Outputs past the end are zero; the final state is the state at the last valid step."""
    rng = np.random.default_rng(4)
    layer, _ = _make(kind, 2, 3, dtype=np.float64, seed=0)
    x = rng.standard_normal((3, 6, 2))
    y, h = layer(x, lengths=[6, 2, 0])
    assert np.all(y[1, 2:] == 0) and np.all(y[2] == 0)
    y2, h2 = layer(x[1:2, :2])
    np.testing.assert_allclose(y[1, :2], y2[0], atol=1e-12)
    np.testing.assert_allclose(h[0, 1], h2[0, 0], atol=1e-12)
    assert np.all(h[0, 2] == 0)  # length 0 keeps the zero initial state


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_accumulate_until_zero_grad(kind):
    rng = np.random.default_rng(5)
    layer, _ = _make(kind, 2, 3, dtype=np.float64, seed=0)
    x = rng.standard_normal((2, 4, 2))
    y, _ = layer(x)
    layer.backward(np.ones_like(y))
    g1 = layer.weight_hh_l0.grad.copy()
    y, _ = layer(x)
    layer.backward(np.ones_like(y))
    np.testing.assert_allclose(layer.weight_hh_l0.grad, 2 * g1)
    layer.zero_grad()
    assert not layer.weight_hh_l0.grad.any()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="nonlinearity"):
        ls.nn.RNN(2, 3, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="nonlinearity"):
        w = _rand_weights(np.random.default_rng(0), 1, 2, 3)
        rnn_forward(np.zeros((1, 2, 2)), np.zeros((1, 3)), w, nonlinearity="gelu")
    with pytest.raises(ValueError, match="forget_bias"):
        ls.nn.GRU(2, 3, forget_bias=1.0)
    with pytest.raises(ValueError, match="tuple"):
        ls.nn.GRU(2, 3)(np.zeros((1, 2, 2)), (np.zeros((1, 1, 3)), np.zeros((1, 1, 3))))
    with pytest.raises(ValueError, match="unidirectional"):
        ls.nn.RNN(2, 3, bidirectional=True).step(np.zeros((1, 2)))
