"""Geometric mixing (text/geomix.py): each expert the kernel builds against its own reference
(the cache against the token-by-token dictionary model, Kneser-Ney against `logprob`), the online
step against finite differences of the loss, whole rows from `evaluate` and dynamic evaluation."""

import numpy as np
import pytest

from longshort.text import geomix
from longshort.text.geomix import GeometricMixer, cache_tables
from longshort.text.mixture import cache_ngram
from longshort.text.ngram import KneserNey


def random_rows(rng, n, V):
    p = rng.dirichlet(np.full(V, 0.5), n)
    return np.maximum(p, 1e-6) / np.maximum(p, 1e-6).sum(1, keepdims=True)


def one_expert(mixer, name):
    """beta that selects one expert in every bucket, learning off."""
    beta = np.zeros((mixer.cache_order + 1, len(mixer.experts)))
    beta[:, mixer.experts.index(name)] = 1.0
    mixer.beta, mixer.lr = beta, 0.0
    return mixer


@pytest.mark.parametrize("V, N, order", [(3, 400, 4), (6, 900, 7), (5, 60, 2), (4, 9, 8)])
def test_each_expert_alone_matches_its_reference(V, N, order, monkeypatch):
    """With beta one-hot and no learning the product is one expert: the cache of every order it
    feeds equals cache_ngram (itself checked against the dictionary reference), the Kneser-Ney
    levels equal KneserNey.logprob stopped at their level, and the LSTM expert returns the rows given. Chunks of 7
    positions carry the cache's counts across chunk borders."""
    monkeypatch.setattr(geomix, "CHUNK", 7)
    rng = np.random.default_rng(V * N + order)
    train, ids = rng.integers(0, V, 3000), rng.integers(0, V, N)
    rows = random_rows(rng, N - 1, V)
    mixer = GeometricMixer(train, V, kn_order=5, cache_order=order)
    for k in mixer.cache_orders:
        res = one_expert(mixer, f"cache-{k}").score(ids, rows)
        ref = -np.log(cache_ngram(ids, k, V)[0]).sum()
        assert res["nats"] * res["tokens"] == pytest.approx(ref, rel=1e-12), k
    for k in mixer.kn_orders:  # the model's level k: its recursion stopped there
        res = one_expert(mixer, f"kneser-ney-{k}").score(ids, rows)
        kn = KneserNey(5, V).fit(train)
        kn.levels = kn.levels[:k]
        ref = -kn.logprob(ids).sum()
        assert res["nats"] * res["tokens"] == pytest.approx(ref, rel=1e-12), k
    res = one_expert(mixer, "lstm").score(ids, rows)
    ref = -np.log(rows[np.arange(N - 1), ids[1:]]).sum()
    assert res["nats"] * res["tokens"] == pytest.approx(ref, rel=1e-12)


def test_cache_tables_list_every_follower_once():
    V, ids = 5, np.random.default_rng(3).integers(0, 5, 500)
    tab = cache_tables(ids, 4, V)
    start, follow = tab["start"], tab["follow"]
    for k in range(5):
        for t in range(1, len(ids)):
            c, s = tab["ctx"][k, t - 1], tab["pair"][k, t - 1]
            if t < k:
                assert c == -1
                continue
            assert start[c] <= s < start[c + 1] and follow[s] == ids[t]
            fol = follow[start[c] : start[c + 1]]
            assert len(set(fol.tolist())) == len(fol)


def test_kneser_ney_rows_sum_to_one_and_hold_logprob():
    V, rng = 7, np.random.default_rng(5)
    kn = KneserNey(6, V).fit(rng.integers(0, V, 5000))
    ids = rng.integers(0, V, 300)
    rows = kn.distributions(ids, 1, len(ids), [2, 6])
    np.testing.assert_allclose(rows.sum(-1), 1, atol=1e-12)
    got = np.log(rows[np.arange(len(ids) - 1), 1, ids[1:]])
    np.testing.assert_allclose(got, kn.logprob(ids), rtol=1e-12)


def test_online_step_is_the_loss_gradient():
    """One learning step moves beta[b] by eta * (-d loss / d beta[b]) (central differences of
    the loss at fixed beta, float64), and only the bucket of the position scored."""
    rng = np.random.default_rng(0)
    n, J0, V, K = 1, 2, 6, 3
    LP = np.log(random_rows(rng, n * J0, V)).reshape(n, J0, V)
    ids = np.array([1, 2, 1, 3, 2])  # t0 = 4 predicts ids[4] from a seen context
    y = ids[4:5]
    tab = cache_tables(ids, K, V)
    counts = [np.zeros(m, np.int64) for m in (len(tab["follow"]), len(tab["start"]) - 1)]

    def run(beta, learn):
        cnt, tot, typ = counts[0].copy(), counts[1].copy(), counts[1].copy()
        for t in range(3):  # the cache reads the first three positions
            for k in range(K + 1):
                c = tab["ctx"][k, t]
                if c >= 0:
                    s = tab["pair"][k, t]
                    typ[c] += cnt[s] == 0
                    cnt[s] += 1
                    tot[c] += 1
        out = np.empty(n)
        geomix._mix_chunk(LP, y, 3, tab["ctx"], tab["pair"], tab["start"], tab["follow"], cnt,
                          tot, typ, np.array([1, 3]), beta, 0.1, learn, out)  # fmt: skip
        return out[0]

    beta = rng.normal(0, 0.5, (K + 1, J0 + 2))
    after = beta.copy()
    run(after, True)
    moved = (after - beta) / 0.1
    b = int(np.flatnonzero(np.any(moved != 0, axis=1))[0])
    assert np.count_nonzero(np.any(moved != 0, axis=1)) == 1
    grad = np.zeros(J0 + 2)
    for j in range(J0 + 2):
        up, down = beta.copy(), beta.copy()
        up[b, j] += 1e-6
        down[b, j] -= 1e-6
        grad[j] = (run(up, False) - run(down, False)) / 2e-6
    np.testing.assert_allclose(moved[b], -grad, rtol=1e-6, atol=1e-9)


def test_learning_beats_every_single_expert():
    """A phrase repeated with 10 % noise: the cache knows the phrase, the "LSTM" rows know the
    token that comes at a random half of the positions (noise included); the learnt product
    beats the best expert alone, with beta moved away from (1, 0, ...)."""
    rng = np.random.default_rng(2)
    V = 8
    phrase = rng.integers(0, V, 40)
    text = np.concatenate([np.where(rng.random(40) < 0.1, rng.integers(0, V, 40), phrase)
                           for _ in range(60)])  # fmt: skip
    rows = random_rows(rng, len(text) - 1, V) * 0.5 + 0.5 / V
    hint = rng.random(len(text) - 1) < 0.5
    rows[hint, text[1:][hint]] += 1.0
    rows /= rows.sum(1, keepdims=True)
    train = rng.integers(0, V, 4000)
    mixer = GeometricMixer(train, V, kn_order=3, cache_order=6, lr=3e-2)
    mixer.fit(text[:1200], rows[:1199])
    res = mixer.score(text[1200:], rows[1200:])
    assert np.abs(mixer.beta - np.eye(len(mixer.experts))[0]).max() > 0.1  # it learnt
    singles = [one_expert(GeometricMixer(train, V, kn_order=3, cache_order=6), name)
               .score(text[1200:], rows[1200:])["bpc"] for name in mixer.experts]  # fmt: skip
    assert res["bpc"] < min(singles) - 0.1, (res["bpc"], singles)
    with pytest.raises(ValueError, match=r"shape \(2, 8\)"):
        mixer.score(text[:3], rows[:3])
    with pytest.raises(RuntimeError, match="fit"):
        GeometricMixer(text, V).score(text, rows)
    with pytest.raises(ValueError, match="step size"):
        GeometricMixer(text, V, lr=-1)
