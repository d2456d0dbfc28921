"""LanguageModel: every gradient by finite differences in float64 (each AWD regulariser with its
masks held fixed), the regularisers' determinism and eval identity, NT-ASGD, stateful carry."""

import numpy as np
import pytest

import longshort as ls
from longshort.models.language_model import Masks
from longshort.optim import NTASGD

V, B, T = 7, 3, 5


def make(**opts):
    base = dict(embedding_size=4, hidden_size=5, num_layers=2, vocab_size=V, dtype="float64",
                impl="reference", seed=1)  # fmt: skip
    base.update(opts)
    return ls.LanguageModel("char", **base)


def batch(seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.integers(0, V, (B, T)), "y": rng.integers(0, V, (B, T))}


def check_grads(model, masks, state=None, eps=1e-6, tol=1e-6):
    """Centred differences of the whole loss for every parameter entry (sampled)."""
    b = batch()
    model.zero_grad()
    out = model.loss(b, state, masks=masks)
    out.backward()
    rng = np.random.default_rng(0)
    for name, p in model.named_parameters():
        flat = p.data.reshape(-1)
        for i in rng.choice(flat.size, size=min(flat.size, 12), replace=False):
            old = flat[i]
            flat[i] = old + eps
            up = model.loss(b, state, masks=masks).value
            flat[i] = old - eps
            down = model.loss(b, state, masks=masks).value
            flat[i] = old
            num = (up - down) / (2 * eps)
            ana = p.grad.reshape(-1)[i]
            err = abs(num - ana) / max(abs(num) + abs(ana), 1e-8)
            assert err < tol or abs(num - ana) < 1e-9, (name, i, num, ana)


REGULARISERS = [
    {},
    {"dropout_input": 0.3},
    {"dropout_hidden": 0.3},
    {"dropout_output": 0.3},
    {"weight_drop": 0.4},
    {"embedding_dropout": 0.3},
    {"ar": 2.0},
    {"tar": 3.0},
    {"tie_weights": True},
    {
        "tie_weights": True,
        "dropout_input": 0.2,
        "dropout_hidden": 0.2,
        "dropout_output": 0.2,
        "weight_drop": 0.3,
        "embedding_dropout": 0.2,
        "ar": 1.0,
        "tar": 1.0,
    },
]


@pytest.mark.parametrize("opts", REGULARISERS, ids=lambda o: ",".join(o) or "plain")
def test_finite_differences_whole_loss(opts):
    model = make(**opts)
    masks = model.sample_masks(B)
    if any(k in opts for k in ("dropout_input", "weight_drop", "embedding_dropout")):
        assert any(m is not None for m in (masks.emb, masks.inp, *masks.whh))
    rng = np.random.default_rng(3)
    state = tuple((rng.standard_normal((1, B, h)), rng.standard_normal((1, B, h)))
                  for h in model.sizes)  # fmt: skip
    check_grads(model, masks, state)


def test_weight_drop_zeroes_gradient_of_dropped_weights():
    model = make(weight_drop=0.5)
    masks = model.sample_masks(B)
    model.zero_grad()
    model.loss(batch(), masks=masks).backward()
    for rnn, m in zip(model.rnns, masks.whh):
        assert np.all(rnn.weight_hh_l0.grad[m == 0] == 0)
        assert np.any(rnn.weight_hh_l0.grad[m != 0] != 0)
        assert not np.any(rnn.weight_hh_l0.data == 0)  # the raw weights are untouched


def test_regularisers_seeded_and_identity_at_eval():
    opts = dict(dropout_input=0.3, dropout_hidden=0.3, dropout_output=0.3, weight_drop=0.3,
                embedding_dropout=0.3, ar=1.0, tar=1.0)  # fmt: skip
    a, b, plain = make(**opts), make(**opts), make()
    la, lb = a.loss(batch()).value, b.loss(batch()).value
    assert la == lb  # same seed, same masks
    assert a.loss(batch()).value != la  # fresh masks on the next batch
    for m in (a, plain):
        m.eval()
    np.testing.assert_allclose(a.forward(batch()["x"])[0], plain.forward(batch()["x"])[0])
    none = Masks(None, None, [None], None, [None, None])
    np.testing.assert_allclose(a.loss(batch()).value, plain.loss(batch(), masks=none).value)


def test_state_carry_equals_one_long_sequence():
    model = make().eval()
    x = np.random.default_rng(0).integers(0, V, (B, 2 * T))
    full, _ = model.forward(x)
    first, st = model.forward(x[:, :T])
    second, _ = model.forward(x[:, T:], st)
    np.testing.assert_allclose(np.concatenate([first, second], 1), full, atol=1e-12)


def test_ntasgd_triggers_and_averages():
    model = make()
    opt = NTASGD(model.parameters(), lr=0.5, nonmono=2)
    for v in (3.0, 2.0, 1.0, 1.5):
        assert not opt.observe(v)
    assert opt.observe(2.5)  # worse than the best before the last 2
    snaps = []
    for k in range(3):
        model.zero_grad()
        model.loss(batch(k)).backward()
        opt.step()
        snaps.append(model.state_dict())
    opt.swap_average()
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.data, np.mean([s[name] for s in snaps], 0), atol=1e-12)
    state = opt.state_dict()
    opt2 = NTASGD(model.parameters(), lr=0.5, nonmono=2)
    opt2.load_state_dict(state)
    assert opt2.trigger_step == opt.trigger_step and opt2.n_avg == 3 and opt2.averaged()
