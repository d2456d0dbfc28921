"""The LSTM interpolated with two n-gram models: what `text eval --mix` scores.

Symbols: N tokens ids[0..N-1], t = 1..N-1 the scored positions, V vocabulary, K the cache
order, M components, b_t a context bucket.

    p(w_t | w_<t) = sum_j lambda[b_t, j] * p_j(w_t | w_<t),   sum_j lambda[b, j] = 1

with three components: the LSTM (static or adapting, text/dynamic.py), an interpolated
Kneser-Ney model fitted on the training split (ngram.py), and a *cache*: an n-gram model of the
text read so far (Kuhn & De Mori 1990; Jelinek et al. 1991), smoothed by Witten-Bell,

    P_k(w | h) = (c_t(h w) + u_t(h) * P_{k-1}(w | h')) / (c_t(h) + u_t(h))   if c_t(h) > 0
    P_k(w | h) = P_{k-1}(w | h')                                              otherwise
    P_{-1}(w) = 1 / V,  k = 0..K (h the last k tokens, h' its last k-1)

where c_t counts only ids[:t] (the tokens before the one predicted) and u_t(h) is the number of
distinct tokens seen after h. A play's names and phrases, absent from the training split, are
in the cache after their first use. The bucket b_t is the longest k <= K whose context the cache
has seen (0..K): where it has seen a long match it is worth more. Given the LSTM's confidence
(its largest probability at each position, `evaluate(keep=True)["token_top"]`), each of those
buckets is split further into CONF_BINS bins of it (edges: the validation split's quantiles):
where the LSTM is unsure the n-grams get more weight (test bpc of the two-layer 448-unit model,
static: 1.7277 -> 1.7196 with 4 bins; 2 bins 1.7229, 8 bins 1.7196). lambda is fitted by EM on the
validation split (one set per bucket; a bucket with fewer than MIN_BUCKET tokens uses the
weights fitted on all tokens) and then applied unchanged to the split being scored, so every
token is still predicted from the tokens before it and from nothing fitted on the test text.
"""

from __future__ import annotations

import numpy as np

from .ngram import KneserNey
from .workflow import summarize

MIN_BUCKET = 200
CONF_BINS = 4
COMPONENTS = ("lstm", "kneser-ney", "cache")


def _earlier(keys: np.ndarray) -> np.ndarray:
    """For each i, how many j < i have keys[j] == keys[i] -> (n,) int64."""
    order = np.argsort(keys, kind="stable")
    s = keys[order]
    start = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # first index of each run
    run = np.repeat(start, np.diff(np.r_[start, len(s)]))
    out = np.empty(len(keys), np.int64)
    out[order] = np.arange(len(s)) - run
    return out


def _earlier_sum(keys: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """For each i, the sum of flags[j] over j < i with keys[j] == keys[i] -> (n,) int64."""
    order = np.argsort(keys, kind="stable")
    s, f = keys[order], flags[order].astype(np.int64)
    cum = np.cumsum(f) - f  # exclusive running sum over the sorted array
    start = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    base = np.repeat(cum[start], np.diff(np.r_[start, len(s)]))
    out = np.empty(len(keys), np.int64)
    out[order] = cum - base
    return out


def context_ids(ids: np.ndarray, order: int, V: int):
    """For k = 0..order (fewer for a text shorter than the order): (k, ctx) with ctx the dense id
    of the last k tokens before each predicted position t = len(ids) - len(ctx) .. len(ids) - 1
    (the positions with k tokens of context, the last ones): the pair (the order k-1 id, the
    token k back) numbered by np.unique, so the ids never overflow."""
    n = len(ids) - 1
    ctx = np.zeros(n, np.int64)  # order-0 context: the same (empty) one everywhere
    for k in range(order + 1):
        if k > 0:  # position i = t - 1 predicts ids[i + 1] from ids[i + 1 - k : i + 1], i >= k - 1
            prev = ctx[1:] if k > 1 else ctx  # the order k-1 ids of positions i >= k - 1
            if len(prev) == 0:  # a text shorter than the order
                return
            ctx = np.unique(prev * V + ids[: n - k + 1], return_inverse=True)[1].ravel()
        yield k, ctx


def cache_ngram(ids, order: int, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The cache model on ids (N,): (probabilities (N-1,) of ids[1:], buckets (N-1,) in 0..order).

    Vectorised: for each k the context of position t gets a dense id (the pair (id of the last
    k-1 tokens, the token k back) numbered by np.unique), and the counts "before t" are ranks
    within equal keys in a stable sort, so the whole text is scored in a few sorts per order.
    """
    ids = np.asarray(ids, np.int64)
    if order < 0:
        raise ValueError(f"cache order must be >= 0, got {order}")
    n = len(ids) - 1
    if n < 1:
        return np.zeros(0), np.zeros(0, np.int64)
    V, w = vocab_size, ids[1:]
    p = np.full(n, 1.0 / V)
    bucket = np.zeros(n, np.int64)
    for k, ctx in context_ids(ids, order, V):
        tail = slice(n - len(ctx), n)  # the positions with k tokens of context: the last ones
        c = _earlier(ctx * V + w[tail])
        total = _earlier(ctx)
        types = _earlier_sum(ctx, c == 0)
        lower = p[tail]
        seen = total > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            pk = (c + types * lower) / (total + types)
        p[tail] = np.where(seen, pk, lower)
        bucket[tail] = np.where(seen, k, bucket[tail])
    return p, bucket


def fit_weights(probs: np.ndarray, buckets: np.ndarray, n_buckets: int, iters: int = 100):
    """lambda (n_buckets, M) maximising sum_t log sum_j lambda[b_t, j] probs[j, t] by EM.

    probs: (M, N) each component's probability of the token that came; buckets: (N,) ints.
    """

    def em(P):
        lam = np.full(len(P), 1.0 / len(P))
        for _ in range(iters):
            r = lam[:, None] * P / np.maximum(lam @ P, 1e-300)
            lam = r.mean(1)
        return lam

    overall = em(probs)
    lam = np.tile(overall, (n_buckets, 1))
    for b in range(n_buckets):
        sel = buckets == b
        if sel.sum() >= MIN_BUCKET:
            lam[b] = em(probs[:, sel])
    return lam


def mix_nats(probs: np.ndarray, buckets: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """-log of the mixture's probability per token: probs (M, N), buckets (N,), lam (B, M)."""
    return -np.log(np.maximum(np.einsum("nm,mn->n", lam[buckets], probs), 1e-300))


class NgramMixer:
    """The two n-gram components and the fitted lambda; `fit` on validation, `score` on test.

    Args:
        train_ids: the training split the Kneser-Ney model counts. vocab_size: V.
        kn_order: its order (default 7 for characters). cache_order: K (default 8).
        conf_bins: bins of the LSTM's confidence per cache bucket (used when `fit` is given the
            LSTM's top probabilities; 1 = buckets by the cache alone).
    """

    needs_rows = False  # fit/score take the LSTM's nats of the tokens that came

    def __init__(self, train_ids, vocab_size: int, kn_order: int = 7, cache_order: int = 8,
                 conf_bins: int = CONF_BINS):  # fmt: skip
        if conf_bins < 1:
            raise ValueError(f"conf_bins must be >= 1, got {conf_bins}")
        self.V, self.cache_order, self.conf_bins = vocab_size, cache_order, conf_bins
        self.kn = KneserNey(kn_order, vocab_size).fit(train_ids)
        self.lam: np.ndarray | None = None
        self.edges: np.ndarray | None = None  # confidence bin edges (conf_bins - 1,), or None
        self.fit_tokens = 0

    def components(self, ids, lstm_nats, lstm_top=None) -> tuple[np.ndarray, np.ndarray]:
        """(probs (3, N-1), buckets (N-1,)) for ids (N,) and the LSTM's nats per token (N-1,);
        with the LSTM's top probabilities (N-1,) and fitted edges, buckets include their bin."""
        lstm_nats = np.asarray(lstm_nats, np.float64)
        if lstm_nats.shape != (len(ids) - 1,):
            raise ValueError(f"need the LSTM's nats for all {len(ids) - 1} tokens of one stream "
                             f"(lanes 1), got shape {lstm_nats.shape}")  # fmt: skip
        cache, buckets = cache_ngram(ids, self.cache_order, self.V)
        if self.edges is not None:
            if lstm_top is None or np.shape(lstm_top) != lstm_nats.shape:
                raise ValueError("this mixer was fitted with the LSTM's confidence: pass its "
                                 f"top probabilities for all {len(lstm_nats)} tokens too")  # fmt: skip
            buckets = buckets * self.conf_bins + np.searchsorted(self.edges, lstm_top)
        return np.stack([np.exp(-lstm_nats), np.exp(self.kn.logprob(ids)), cache]), buckets

    def fit(self, ids, lstm_nats, lstm_top=None) -> NgramMixer:
        bins = self.conf_bins if lstm_top is not None else 1
        self.edges = None
        if bins > 1:
            self.edges = np.quantile(np.asarray(lstm_top, np.float64),
                                     np.linspace(0, 1, bins + 1)[1:-1])  # fmt: skip
        probs, buckets = self.components(ids, lstm_nats, lstm_top)
        self.lam = fit_weights(probs, buckets, (self.cache_order + 1) * bins)
        self.fit_tokens = len(buckets)
        return self

    def score(self, ids, lstm_nats, lstm_top=None) -> dict:
        """{"nats", "bpc", "perplexity", "tokens"} of the mixture, plus "weights" per bucket."""
        if self.lam is None:
            raise RuntimeError("NgramMixer.fit() must be called first")
        probs, buckets = self.components(ids, lstm_nats, lstm_top)
        nats = mix_nats(probs, buckets, self.lam)
        out = summarize(float(nats.sum()), len(nats))
        what = f"longest context the cache has seen, 0..{self.cache_order}"
        if self.edges is not None:
            what = (f"({what}) x {self.conf_bins} + bin of the LSTM's top probability (edges "
                    f"{np.round(self.edges, 4).tolist()}, the validation split's quantiles)")  # fmt: skip
        out["rule"] = "linear"
        out["weights"] = {"components": list(COMPONENTS), "bucket": what,
                          "lambda": np.round(self.lam, 4).tolist()}  # fmt: skip
        out["kn_order"], out["cache_order"] = self.kn.order, self.cache_order
        out["validation_tokens"] = self.fit_tokens  # the tokens lambda was fitted on
        return out


__all__ = [
    "COMPONENTS",
    "CONF_BINS",
    "NgramMixer",
    "cache_ngram",
    "context_ids",
    "fit_weights",
    "mix_nats",
]
