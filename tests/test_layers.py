"""Linear, Embedding, Dropout and the losses: finite differences and torch, values and gradients."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import longshort as ls
from longshort.ops import losses as L
from longshort.ops.dropout import dropout_backward, dropout_forward
from longshort.ops.embedding import embedding_backward, embedding_forward
from longshort.ops.linear import linear_backward, linear_forward
from reference.fd import numerical_grad, rel_error
from reference.torch_ref import max_abs, to_t

TOL64 = 1e-10


# --- finite differences (float64) -----------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
def test_linear_op_finite_differences(bias):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 4)), rng.standard_normal((5, 4))
    b = rng.standard_normal(5) if bias else None
    P = rng.standard_normal((2, 3, 5))

    def loss():
        return np.sum(linear_forward(x, w, b)[0] * P)

    dx, dw, db = linear_backward(P, linear_forward(x, w, b)[1])
    assert rel_error(dx, numerical_grad(loss, x)) < 1e-6
    assert rel_error(dw, numerical_grad(loss, w)) < 1e-6
    if bias:
        assert rel_error(db, numerical_grad(loss, b)) < 1e-6
    else:
        assert db is None


def test_embedding_op_finite_differences():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 3))
    idx = np.array([[0, 2, 2], [5, 0, 2]])  # repeated ids must accumulate
    P = rng.standard_normal((2, 3, 3))

    def loss():
        return np.sum(embedding_forward(idx, w)[0] * P)

    dw = embedding_backward(P, embedding_forward(idx, w)[1])
    assert rel_error(dw, numerical_grad(loss, w)) < 1e-6
    assert np.all(dw[[1, 3, 4]] == 0)  # unused rows get no gradient


def test_dropout_op_finite_differences():
    rng = np.random.default_rng(2)
    x, P = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 4, 5))

    def loss():  # the same mask every call: a fresh generator with a fixed seed
        return np.sum(dropout_forward(x, 0.3, np.random.default_rng(7))[0] * P)

    _, mask = dropout_forward(x, 0.3, np.random.default_rng(7))
    assert rel_error(dropout_backward(P, mask), numerical_grad(loss, x)) < 1e-6


def _loss_cases(rng):
    """(name, forward(pred) -> (loss, cache), backward, pred) for every loss, with and without masks."""
    pred = rng.standard_normal((3, 4, 2)) * 2
    target = rng.standard_normal((3, 4, 2)) * 2
    m_full = rng.random((3, 4, 2)) > 0.3
    m_prefix = rng.random((3, 4)) > 0.3
    logits = rng.standard_normal((3, 4, 5)) * 3
    classes = rng.integers(0, 5, (3, 4))
    qs = np.array([0.1, 0.5, 0.9])
    qpred, qtarget = rng.standard_normal((3, 4, 3)), rng.standard_normal((3, 4))
    cases = []
    for mname, m in (("", None), ("mask", m_full), ("prefixmask", m_prefix)):
        for name in ("mse", "mae", "huber"):
            fwd, bwd = getattr(L, name + "_forward"), getattr(L, name + "_backward")
            cases.append((f"{name}{mname}", lambda p, f=fwd, m=m: f(p, target, m), bwd, pred))
    ce, ceb = L.cross_entropy_forward, L.cross_entropy_backward
    cases += [
        ("ce", lambda z: ce(z, classes), ceb, logits),
        ("ce_mask", lambda z: ce(z, classes, mask=m_prefix), ceb, logits),
        ("ce_ignore", lambda z: ce(z, classes, ignore_index=2), ceb, logits),
        ("pinball", lambda p: L.pinball_forward(p, qtarget, qs), L.pinball_backward, qpred),
        (
            "pinball_mask",
            lambda p: L.pinball_forward(p, qtarget, qs, mask=m_prefix),
            L.pinball_backward,
            qpred,
        ),
    ]
    return cases


LOSS_CASES = [c[0] for c in _loss_cases(np.random.default_rng(3))]


@pytest.mark.parametrize("case", LOSS_CASES)
def test_loss_finite_differences(case):
    cases = {c[0]: c[1:] for c in _loss_cases(np.random.default_rng(3))}
    fwd, bwd, pred = cases[case]
    name = case
    pred = pred.copy()
    grad = bwd(fwd(pred)[1], 2.5) / 2.5  # dloss scales the gradient
    num = numerical_grad(lambda: fwd(pred)[0], pred)
    assert rel_error(grad, num) < 1e-6, name


# --- against torch (float64) ----------------------------------------------------------------------
def test_linear_layer_matches_torch_and_accumulates():
    rng = np.random.default_rng(4)
    lin = ls.nn.Linear(4, 3, dtype=np.float64, seed=0)
    tl = torch.nn.Linear(4, 3, dtype=torch.float64)
    tl.load_state_dict({k: torch.tensor(v) for k, v in lin.state_dict().items()})
    x, dy = rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 5, 3))
    xt = to_t(x, True)
    yt = tl(xt)
    (yt * to_t(dy)).sum().backward()
    y = lin(x)
    dx = lin.backward(dy)
    assert max_abs(y, yt) < TOL64 and max_abs(dx, xt.grad) < TOL64
    assert max_abs(lin.weight.grad, tl.weight.grad) < TOL64
    assert max_abs(lin.bias.grad, tl.bias.grad) < TOL64
    lin(x)
    lin.backward(dy)  # a second backward adds to .grad
    assert max_abs(lin.weight.grad, 2 * tl.weight.grad) < TOL64
    assert [n for n, _ in lin.named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in ls.nn.Linear(4, 3, bias=False).named_parameters()] == ["weight"]


def test_linear_init_is_torch_default():
    w = ls.nn.Linear(400, 300, seed=0)
    bound = 1 / np.sqrt(400)
    assert w.weight.data.dtype == np.float32
    assert np.abs(w.weight.data).max() <= bound and np.abs(w.bias.data).max() <= bound
    assert abs(w.weight.data.std() - bound / np.sqrt(3)) < 0.01 * bound  # U(-a, a): std a/sqrt(3)


def test_embedding_layer_matches_torch():
    rng = np.random.default_rng(5)
    emb = ls.nn.Embedding(7, 4, dtype=np.float64, seed=0)
    te = torch.nn.Embedding(7, 4, dtype=torch.float64)
    te.load_state_dict({"weight": torch.tensor(emb.weight.data)})
    idx = rng.integers(0, 7, (3, 6))
    dy = rng.standard_normal((3, 6, 4))
    yt = te(torch.tensor(idx))
    (yt * to_t(dy)).sum().backward()
    y = emb(idx)
    assert emb.backward(dy) is None
    assert max_abs(y, yt) < TOL64
    assert max_abs(emb.weight.grad, te.weight.grad) < TOL64
    big = ls.nn.Embedding(1000, 100, seed=0).weight.data
    assert abs(big.mean()) < 0.01 and abs(big.std() - 1) < 0.01  # N(0, 1) like torch


def test_embedding_rejects_out_of_range_ids():
    emb = ls.nn.Embedding(5, 2)
    with pytest.raises(IndexError, match=r"\[0, 5\).*\[5, -1\]"):
        emb(np.array([0, 5, -1]))
    with pytest.raises(TypeError, match="integers"):
        emb(np.array([0.5]))


def _tt(a):
    return to_t(a, True)


def test_regression_losses_match_torch():
    rng = np.random.default_rng(6)
    p, y = rng.standard_normal((3, 5, 2)) * 2, rng.standard_normal((3, 5, 2)) * 2
    m = rng.random((3, 5)) > 0.4  # prefix mask over (B, T)
    refs = {
        "mse": lambda a, b: F.mse_loss(a, b),
        "mae": lambda a, b: F.l1_loss(a, b),
        "huber": lambda a, b: F.huber_loss(a, b, delta=0.7),
    }
    for name, ref in refs.items():
        kw = {"delta": 0.7} if name == "huber" else {}
        fwd, bwd = getattr(L, name + "_forward"), getattr(L, name + "_backward")
        for mask in (None, m):
            pt = _tt(p)
            yt = to_t(y)
            lt = (
                ref(pt, yt) if mask is None else ref(pt[torch.tensor(mask)], yt[torch.tensor(mask)])
            )
            lt.backward()
            loss, cache = fwd(p, y, mask, **kw)
            assert abs(loss - lt.item()) < TOL64, name
            assert max_abs(bwd(cache), pt.grad) < TOL64, name


@pytest.mark.parametrize("use_mask", [False, True])
def test_cross_entropy_matches_torch(use_mask):
    rng = np.random.default_rng(7)
    z = rng.standard_normal((4, 6, 5)) * 4
    z[0, 0, 0] = 800.0  # a huge logit: the log-softmax must stay finite
    k = rng.integers(0, 5, (4, 6))
    k[1, :3] = -100  # torch's default ignore_index
    mask = rng.random((4, 6)) > 0.3 if use_mask else None
    kt = k.copy()
    if use_mask:
        kt[~mask] = -100  # torch has no mask: express it as ignored targets
    zt = _tt(z.reshape(-1, 5))
    lt = F.cross_entropy(zt, torch.tensor(kt.reshape(-1)), ignore_index=-100)
    lt.backward()
    loss, cache = L.cross_entropy_forward(z, k, mask=mask, ignore_index=-100)
    assert np.isfinite(loss) and abs(loss - lt.item()) < TOL64
    assert max_abs(L.cross_entropy_backward(cache), zt.grad.reshape(4, 6, 5)) < TOL64


def test_pinball_matches_handwritten_torch():
    rng = np.random.default_rng(8)
    q = np.array([0.05, 0.5, 0.95])
    p, y = rng.standard_normal((4, 7, 3)), rng.standard_normal((4, 7))
    pt = _tt(p)
    e = to_t(y)[..., None] - pt
    qt = to_t(q)
    lt = torch.maximum(qt * e, (qt - 1) * e).mean()
    lt.backward()
    loss, cache = L.pinball_forward(p, y, q)
    assert abs(loss - lt.item()) < TOL64
    assert max_abs(L.pinball_backward(cache), pt.grad) < TOL64


def test_losses_in_float32_return_float32_gradients():
    rng = np.random.default_rng(9)
    p = rng.standard_normal((2, 3)).astype(np.float32)
    loss, cache = L.mse_forward(p, np.zeros((2, 3)))
    assert isinstance(loss, float) and L.mse_backward(cache).dtype == np.float32


def test_loss_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        L.mse_forward(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"\(2, 3, 3\).*\(2, 3\).*\(2, 4\)"):
        L.pinball_forward(np.zeros((2, 3, 3)), np.zeros((2, 4)), [0.1, 0.5, 0.9])
    with pytest.raises(ValueError, match=r"\(2, 3, 4\).*\(3,\)"):
        L.pinball_forward(np.zeros((2, 3, 4)), np.zeros((2, 3)), [0.1, 0.5, 0.9])
    with pytest.raises(ValueError, match=r"\(2, 3, 'C'\).*\(2, 3\).*\(3, 2\)"):
        L.cross_entropy_forward(np.zeros((2, 3, 4)), np.zeros((3, 2), int))
    with pytest.raises(IndexError, match=r"\[0, 4\)"):
        L.cross_entropy_forward(np.zeros((2, 4)), np.array([1, 4]))
    with pytest.raises(ValueError, match="no valid entries"):
        L.mae_forward(np.zeros(3), np.zeros(3), mask=np.zeros(3, bool))
    with pytest.raises(ValueError, match=r"mask of shape \(4,\)"):
        L.mse_forward(np.zeros((2, 3)), np.zeros((2, 3)), mask=np.ones(4, bool))


def test_masked_nan_targets_are_ignored():
    p, y = np.array([1.0, 2.0, 3.0]), np.array([0.0, np.nan, 1.0])
    loss, cache = L.mse_forward(p, y, mask=np.array([True, False, True]))
    assert loss == pytest.approx(2.5)
    assert np.array_equal(L.mse_backward(cache), [1.0, 0.0, 2.0])


def test_dropout_layer_train_and_eval():
    x = np.ones((200, 50), np.float32)
    drop = ls.nn.Dropout(0.25, seed=0)
    y = drop(x)
    kept = y != 0
    assert np.allclose(y[kept], 1 / 0.75) and abs(kept.mean() - 0.75) < 0.01
    assert np.array_equal(drop.backward(x), y)  # dx = dy * mask
    drop.eval()
    assert drop(x) is x and drop.backward(x) is x
    assert np.all(ls.nn.Dropout(1.0).forward(x) == 0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ls.nn.Dropout(1.5)


def test_linear_and_cross_entropy_float32_match_torch():
    rng = np.random.default_rng(10)
    lin = ls.nn.Linear(6, 5, seed=0)  # float32 by default
    tl = torch.nn.Linear(6, 5)
    tl.load_state_dict({k: torch.tensor(v) for k, v in lin.state_dict().items()})
    x, k = rng.standard_normal((4, 6)).astype(np.float32), rng.integers(0, 5, 4)
    xt = to_t(x, True)
    lt = F.cross_entropy(tl(xt), torch.tensor(k))
    lt.backward()
    loss, cache = L.cross_entropy_forward(lin(x), k)
    dx = lin.backward(L.cross_entropy_backward(cache))
    assert dx.dtype == np.float32 and lin.weight.grad.dtype == np.float32
    assert abs(loss - lt.item()) < 1e-5 and max_abs(dx, xt.grad) < 1e-5
    assert max_abs(lin.weight.grad, tl.weight.grad) < 1e-5
    assert max_abs(lin.bias.grad, tl.bias.grad) < 1e-5
