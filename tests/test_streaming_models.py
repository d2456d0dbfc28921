"""Streaming the application models: `state = m.init_state(B)`, `out_t, state = m.step(x_t, state)`.

Step t must give what the whole-sequence model gives on the prefix x[:, :t+1] (for per-step
outputs: forward(x)[:, t]), stacked, with sequences of different lengths stepped only up to their
own length.
"""

import numpy as np
import pytest

import longshort as ls
from longshort.models.classifier import SequenceClassifier
from longshort.models.sequence_model import SequenceModel
from longshort.text import Vocab
from longshort.text.sampling import generate

LENGTHS = np.array([7, 3, 5, 1])


def err(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


def stream(model, x) -> np.ndarray:
    """Step every row through all of x (B, T, ...) -> outputs (T, B, ...)."""
    state, outs = model.init_state(len(x)), []
    for t in range(x.shape[1]):
        out, state = model.step(x[:, t], state)
        outs.append(out)
    return np.stack(outs)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("readout", ["last", "all"])
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-10), ("float32", 1e-5)])
def test_sequence_model_steps_equal_forward(cell, readout, dtype, tol):
    model = SequenceModel(cell=cell, input_size=3, hidden_size=6, output_size=2, num_layers=2,
                          readout=readout, dtype=dtype, seed=1)  # fmt: skip
    x = np.random.default_rng(0).standard_normal((4, 7, 3)).astype(dtype)
    outs = stream(model, x)  # (T, B, O)
    assert outs.shape == (7, 4, 2) and outs.dtype == dtype
    rows = np.arange(4)
    if readout == "all":
        full = model.predict(x, LENGTHS)  # (B, T, O)
        for b, n in enumerate(LENGTHS):
            assert err(outs[:n, b], full[b, :n]) < tol
    else:
        assert err(outs[LENGTHS - 1, rows], model.predict(x, LENGTHS)) < tol
        for t in range(7):
            assert err(outs[t], model.predict(x[:, : t + 1])) < tol
    assert err(model.step(x[:, 0])[0], outs[0]) == 0  # no state: zeros


def fitted_classifier(pooling, cell="lstm", **options) -> tuple[SequenceClassifier, list]:
    rng = np.random.default_rng(2)
    X = [3 + 2 * rng.standard_normal((n, 3)) for n in (7, 3, 5, 1, 6, 4)]  # not standardised
    y = ["a", "b", "a", "c", "b", "c"]
    clf = SequenceClassifier(hidden_size=5, num_layers=2, pooling=pooling, cell=cell, epochs=2,
                             batch_size=3, dtype="float64", seed=3, **options)  # fmt: skip
    return clf.fit(X, y), X


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_classifier_steps_give_the_prefix_probabilities(pooling, cell):
    clf, X = fitted_classifier(pooling, cell, dropout=0.3)
    lengths = np.array([len(s) for s in X])
    x = np.zeros((len(X), lengths.max(), 3))  # padded (N, T, F)
    for b, s in enumerate(X):
        x[b, : len(s)] = s
    probs = stream(clf, x)  # (T, N, C)
    assert probs.shape == (7, 6, 3) and np.allclose(probs.sum(axis=-1), 1)
    whole = clf.predict_proba(X)  # (N, C)
    assert err(probs[lengths - 1, np.arange(len(X))], whole) < 1e-10
    for t in range(lengths.max()):
        live = np.flatnonzero(lengths > t)  # rows whose sequence reaches step t
        prefix = clf.predict_proba([X[b][: t + 1] for b in live])
        assert err(probs[t, live], prefix) < 1e-10


def test_classifier_streaming_errors():
    with pytest.raises(RuntimeError, match="not fitted"):
        SequenceClassifier().init_state(1)
    clf, _ = fitted_classifier("mean")
    with pytest.raises(ValueError, match=r"shape \(B, 3\)"):
        clf.step(np.zeros((2, 4)))
    bi, _ = fitted_classifier("max", bidirectional=True)
    with pytest.raises(ValueError, match="unidirectional"):
        bi.step(np.zeros((2, 3)))


def language_model(**options) -> ls.LanguageModel:
    drop = {"dropout_input": 0.3, "dropout_hidden": 0.2, "dropout_output": 0.4,
            "weight_drop": 0.5, "embedding_dropout": 0.1}  # fmt: skip
    return ls.LanguageModel("char", 6, 8, num_layers=3, vocab_size=11, tie_weights=True,
                            dtype="float64", seed=4, **drop, **options)  # fmt: skip


def test_language_model_steps_equal_eval_forward():
    lm = language_model()
    x = np.random.default_rng(5).integers(0, 11, (3, 9))
    lm.eval()
    logits, final = lm.forward(x, need_cache=False)  # (B, T, V)
    lm.train()  # step() has eval semantics whatever the mode: no dropout
    out = stream(lm, x)  # (T, B, V)
    assert out.shape == (9, 3, 11) and lm.training
    assert err(out, logits.transpose(1, 0, 2)) < 1e-10
    # continue after a forward pass over a prefix, and hand the state back to forward()
    lm.eval()
    _, state = lm.forward(x[:, :4], need_cache=False)
    for t in range(4, 9):
        z, state = lm.step(x[:, t], state)
        assert err(z, logits[:, t]) < 1e-10
    for (h, c), (h_n, c_n) in zip(state, final):
        assert err(h, h_n) < 1e-10 and err(c, c_n) < 1e-10
    more, _ = lm.forward(x[:, :2], state, need_cache=False)
    z, _ = lm.step(x[:, 0], state)
    assert err(z, more[:, 0]) < 1e-10


def test_generate_streams_after_the_prime():
    """Sampling runs the prime once through forward(), then one step() per new token."""
    text = "the cat sat on the mat. "
    vocab = Vocab.build(text, "char")
    lm = ls.LanguageModel("char", 6, 8, num_layers=2, vocab_size=len(vocab), dtype="float64",
                          seed=6)  # fmt: skip
    calls = []
    forward = lm.forward
    lm.forward = lambda *a, **k: calls.append(1) or forward(*a, **k)
    new = generate(lm, vocab, "the ", 12, temperature=0.8, seed=7)
    assert len(calls) == 1 and len(new) == 12
    assert generate(lm, vocab, "the ", 12, temperature=0.8, seed=7) == new
