"""Sampling text from a LanguageModel: temperature, top-k and nucleus (top-p) filtering.

For logits z (V,): p = softmax(z / temperature); top-k keeps the k most likely tokens, top-p the
smallest set of most likely tokens whose probability reaches p; the rest get probability 0 and p
is renormalised. `<unk>` (id 0) is never sampled.
"""

from __future__ import annotations

import numpy as np


def filter_probs(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None) -> np.ndarray:  # fmt: skip
    """logits (V,) -> probabilities (V,) float64 after temperature, top-k, top-p; p[0] = 0."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    z = np.asarray(logits, np.float64) / temperature  # (V,)
    z[0] = -np.inf  # <unk>
    z -= z.max()
    p = np.exp(z)
    p /= p.sum()
    order = np.argsort(-p, kind="stable")  # most likely first
    keep = np.ones(len(p), bool)
    if top_k is not None:
        keep[order[top_k:]] = False
    if top_p is not None:
        cum = np.cumsum(p[order])
        cut = int(np.searchsorted(cum, top_p)) + 1  # smallest prefix with mass >= top_p
        keep[order[cut:]] = False
    p = np.where(keep, p, 0.0)
    return p / p.sum()


def generate(model, vocab, prime: str, length: int, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, seed: int = 0) -> str:  # fmt: skip
    """Continue `prime` by `length` sampled tokens; returns only the new text (at word level
    starting with the space that separates it from the prime, so prime + result reads right).

    Raises:
        ValueError: prime is empty or holds tokens outside the vocabulary (named in the message).
    """
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    bad = vocab.unknown(prime)
    if bad:
        shown = ", ".join(repr(t) for t in bad[:10])
        raise ValueError(f"the prime text has {len(bad)} token(s) not in the model's vocabulary: "
                         f"{shown}; use only tokens the model was trained on")  # fmt: skip
    ids = vocab.encode(prime)
    if len(ids) == 0:
        raise ValueError("the prime text is empty (after tokenising); give at least one token")
    rng = np.random.default_rng(seed)
    was = model.training
    model.eval()
    try:
        logits, state = model.forward(ids[None, :], None, need_cache=False)  # (1, T, V)
        z, out = logits[:, -1], []  # (1, V)
        for _ in range(length):
            p = filter_probs(z[0], temperature, top_k, top_p)
            nxt = int(rng.choice(len(p), p=p))
            out.append(nxt)
            z, state = model.step(np.array([nxt]), state)  # the prime is never recomputed
    finally:
        model.train(was)
    return vocab.decode(out, after=prime)
