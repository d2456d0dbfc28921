"""SequenceClassifier: exact variable lengths, hand-written pooling gradients, learning on real data."""

from __future__ import annotations

import numpy as np
import pytest

import longshort as ls
from longshort.models.classifier import ClassifierConfig, ClassifierNet, pool_backward, pool_forward

POOLINGS = ("last", "mean", "max")


def digits():
    """scikit-learn's 1,797 handwritten digits read row by row: 8 steps of 8 pixels."""
    datasets = pytest.importorskip("sklearn.datasets", reason="pip install -e '.[test]'")
    d = datasets.load_digits()
    X, y = d.images / 16.0, d.target  # (N, 8, 8), (N,)
    order = np.random.default_rng(0).permutation(len(X))
    return X[order[:1300]], y[order[:1300]], X[order[1300:]], y[order[1300:]]


def ragged(n=12, F=3, seed=0):
    rng = np.random.default_rng(seed)
    X = [rng.normal(size=(int(t), F)) for t in rng.integers(1, 9, size=n)]
    y = np.array(["a", "b", "c"] * (n // 3))
    return X, y


def test_learns_digits_read_row_by_row():
    Xtr, ytr, Xte, yte = digits()
    m = ls.SequenceClassifier(32, epochs=12, batch_size=32, lr=5e-3).fit(Xtr, ytr)
    acc = m.score(Xte, yte)
    assert acc > 0.9, acc  # chance is 0.1; 12 epochs give ~0.96
    assert m.history.losses[-1][1] < 0.5 * m.history.losses[0][1]


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_padding_changes_nothing(pooling, cell):
    X, y = ragged()
    m = ls.SequenceClassifier(6, bidirectional=True, pooling=pooling, cell=cell, epochs=2,
                              batch_size=4, dtype="float64").fit(X, y)  # fmt: skip
    p_list = m.predict_proba(X)
    T = max(len(s) for s in X) + 4
    junk = np.random.default_rng(1).normal(50, 30, size=(len(X), T, 3))  # padding: big junk
    junk[0, -1, 0] = np.nan  # even NaN in padding is never read
    lengths = np.array([len(s) for s in X])
    for i, s in enumerate(X):
        junk[i, : len(s)] = s
    np.testing.assert_allclose(m.predict_proba(junk, lengths), p_list, rtol=0, atol=1e-12)
    one_by_one = np.concatenate([m.predict_proba([s]) for s in X])  # no batch effects either
    np.testing.assert_allclose(one_by_one, p_list, rtol=0, atol=1e-12)
    assert np.allclose(p_list.sum(axis=1), 1)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_pool_forward_ignores_padding(pooling):
    rng = np.random.default_rng(0)
    y = rng.normal(size=(3, 6, 4))
    lengths = np.array([6, 1, 3])
    p, cache = pool_forward(y, lengths, pooling, directions=2)
    for b, L in enumerate(lengths):
        seq = y[b, :L]
        want = {"mean": seq.mean(0), "max": seq.max(0),
                "last": np.r_[seq[-1, :2], seq[0, 2:]]}[pooling]  # fmt: skip
        np.testing.assert_allclose(p[b], want)
    dy = pool_backward(rng.normal(size=p.shape), cache)
    for b, L in enumerate(lengths):
        assert not dy[b, L:].any()  # no gradient into padding


@pytest.mark.parametrize("pooling", POOLINGS)
def test_gradients_match_finite_differences(pooling):
    """Every parameter and the input, float64, centred differences, relative error < 1e-6."""
    rng = np.random.default_rng(3)
    layers = 2 if pooling == "last" else 1  # the stack once; each pooling on one layer
    c = ClassifierConfig(hidden_size=3, num_layers=layers, bidirectional=True, pooling=pooling,
                         dtype="float64", impl="reference", seed=2)  # fmt: skip
    net = ClassifierNet(c, input_size=2, num_classes=3)
    batch = {"x": rng.normal(size=(3, 5, 2)), "lengths": np.array([5, 2, 3]),
             "y": np.array([0, 2, 1])}  # fmt: skip
    net.zero_grad()
    net.loss(batch).backward()  # the training loop's path
    via_loss = {n: p.grad.copy() for n, p in net.named_parameters()}
    net.zero_grad()
    dx = net.backward(_dlogits(net, batch))  # (B, T', F): the same, and dL/dx as well
    for n, p in net.named_parameters():
        np.testing.assert_allclose(p.grad, via_loss[n], rtol=1e-12, atol=1e-15)

    def loss():
        return net.loss(batch).value

    for name, p in net.named_parameters():
        _check(p.data, p.grad.copy(), loss, name)
    dx_full = np.zeros_like(batch["x"])
    dx_full[:, : dx.shape[1]] = dx
    _check(batch["x"], dx_full, loss, "x")


def _dlogits(net, batch):
    """dL/dlogits of the mean cross entropy, by hand: (softmax - onehot) / B."""
    z = net.forward(batch["x"], batch["lengths"])  # (B, C)
    e = np.exp(z - z.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    p[np.arange(len(z)), batch["y"]] -= 1
    return p / len(z)


def _check(a, grad, loss, name, eps=1e-6):
    num = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + eps
        hi = loss()
        a[i] = old - eps
        lo = loss()
        a[i] = old
        num[i] = (hi - lo) / (2 * eps)
    err = np.abs(num - grad).max() / max(np.abs(num).max(), 1e-12)
    assert err < 1e-6, f"{name}: relative error {err:.2e}"


def test_save_load_round_trip(tmp_path):
    X, y = ragged(n=9)
    m = ls.SequenceClassifier(5, pooling="max", epochs=2, batch_size=3).fit(X, y)
    m.save(tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} == {"config.json", "model.safetensors"}
    back = ls.SequenceClassifier.load(tmp_path / "m")
    np.testing.assert_array_equal(back.predict_proba(X), m.predict_proba(X))
    assert back.predict(X).tolist() == m.predict(X).tolist()
    assert back.classes_.tolist() == ["a", "b", "c"]


@pytest.mark.parametrize(
    "X, y, lengths, match",
    [
        ([np.zeros((3, 2)), np.zeros((4, 3))], [0, 1], None, "ragged features"),
        ([np.zeros((3, 2)), np.zeros((0, 2))], [0, 1], None, "sequence 1 is empty"),
        ([np.zeros((3, 2)), np.full((2, 2), np.nan)], [0, 1], None, "NaN"),
        ([np.zeros((3, 2)), np.ones((2, 2))], [1, 1], None, "single class"),
        ([np.zeros((3, 2)), np.ones((2, 2))], [1, None], None, "missing"),
        ([np.zeros((3, 2)), np.ones((2, 2))], [1], None, "one label per sequence"),
        (np.zeros((2, 4, 2)), [0, 1], [4, 0], "sequence 1 has length 0"),
    ],
)
def test_bad_input_is_a_clear_error(X, y, lengths, match):
    with pytest.raises(ValueError, match=match):
        ls.SequenceClassifier(4, epochs=1).fit(X, y, lengths)


def test_wrong_feature_count_at_predict():
    X, y = ragged(n=6)
    m = ls.SequenceClassifier(4, epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="has 2 features but the classifier was fitted on 3"):
        m.predict([np.zeros((3, 2))])
    with pytest.raises(RuntimeError, match="not fitted"):
        ls.SequenceClassifier(4).predict(X)
