"""Text data: vocabularies, splits, stateful BPTT batches, the Kneser-Ney baseline, sampling
filters and the text properties the cell ranking uses."""

import math

import numpy as np
import pytest

from longshort.text import KneserNey, TextStream, Vocab, split_stream, tokenize
from longshort.text.cells import text_properties
from longshort.text.sampling import filter_probs

TEXT = "ROMEO.\nBut soft! What light through yonder window breaks?\n\nJULIET.\nAy me.\n"


def test_char_vocab_roundtrip_and_unknown():
    v = Vocab.build(TEXT, "char")
    assert v.tokens[0] == "<unk>" and v.decode(v.encode(TEXT)) == TEXT
    assert v.encode("Z")[0] == 0 and v.unknown("Zoo@") == ["Z", "@"]
    assert Vocab.from_json(v.to_json()).tokens == v.tokens
    assert v.tokens[1] == " " or v.tokens[1] == "e"  # most frequent first


def test_word_vocab_tokens_and_cap():
    assert tokenize("Ay me, O'er-thrown!\n", "word") == ["Ay", "me", ",", "O'er", "-", "thrown",
                                                         "!", "\n"]  # fmt: skip
    v = Vocab.build(TEXT * 3, "word", max_size=5)
    assert len(v) == 5
    ids = v.encode("JULIET zzz")
    assert ids[-1] == 0
    w = Vocab.build(TEXT, "word")
    assert w.decode(w.encode("But soft! What light")) == "But soft! What light"


def test_split_is_contiguous():
    tr, va, te = split_stream(np.arange(100), 0.1, 0.2)
    assert (len(tr), len(va), len(te)) == (70, 10, 20)
    assert np.array_equal(np.concatenate([tr, va, te]), np.arange(100))


def test_stream_batches_carry_on_and_targets_shift():
    ids = np.arange(1000)
    s = TextStream(ids, lanes=4, bptt=7)
    b0, b1 = s.batch(0, 0), s.batch(0, 1)
    assert b0["reset"].all() and not b1["reset"].any()
    assert np.array_equal(b0["y"][:, :-1], b0["x"][:, 1:])
    assert np.array_equal(b1["x"][:, 0], b0["x"][:, -1] + 1)  # lanes continue where they stopped
    assert np.array_equal(b0["x"][:, 0], [0, 250, 500, 750])


def test_variable_bptt_deterministic_and_covering():
    s = TextStream(np.arange(5000), lanes=2, bptt=20, variable=True)
    b = s.bounds(3, seed=1)
    assert b[0] == 0 and b[-1] == 2499 and len(b) == len(s) + 1
    assert len(set(np.diff(b))) > 3  # lengths vary
    assert np.array_equal(b, TextStream(np.arange(5000), 2, 20, True).bounds(3, 1))
    assert not np.array_equal(b, s.bounds(4, 1))


def test_stream_too_short_is_an_error():
    with pytest.raises(ValueError, match="too few"):
        TextStream(np.arange(50), lanes=4, bptt=20)


def test_kneser_ney_is_a_distribution_and_beats_unigram():
    rng = np.random.default_rng(0)
    ids = np.concatenate([rng.integers(0, 6, 300), np.tile([1, 2, 3, 4], 200)])
    kn = KneserNey(3, 6).fit(ids)
    for ctx in ([1, 2], [5, 0], [3]):
        total = sum(math.exp(kn.logprob(np.array(ctx + [w]))[-1]) for w in range(6))
        assert total == pytest.approx(1.0, abs=1e-12)
    test = np.tile([1, 2, 3, 4], 20)
    uni = KneserNey(1, 6).fit(ids).evaluate(test)["bpc"]
    assert kn.evaluate(test)["bpc"] < 0.5 * uni


def test_filter_probs():
    z = np.log(np.array([0.5, 0.3, 0.1, 0.06, 0.04]))
    p = filter_probs(z)
    assert p[0] == 0 and p.sum() == pytest.approx(1)
    assert np.count_nonzero(filter_probs(z, top_k=2)) == 2
    assert np.count_nonzero(filter_probs(z, top_p=0.7)) == 2  # 0.6 + 0.2 >= 0.7 after renorm
    assert filter_probs(z, temperature=0.1)[1] > 0.99
    with pytest.raises(ValueError, match="temperature"):
        filter_probs(z, temperature=0)


def test_text_properties():
    p = text_properties('ab\n\nHAM.\nSay "hi" [Exit]\n')
    s = 'ab\n\nHAM.\nSay "hi" [Exit]\n'
    assert p["line_position"][s.index("b")] == 1
    assert p["speaker_turn"][s.index("H")] == 1 and p["speaker_turn"][s.index("S")] == 0
    assert p["inside_quotes"][s.index("h")] == 1 and p["inside_quotes"][s.index("S")] == 0
    assert p["inside_brackets"][s.index("E")] == 1 and p["inside_brackets"][s.index("y")] == 0
