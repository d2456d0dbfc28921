"""Geometric mixing: the LSTM and n-gram models as a product of experts, weights learnt online.

Symbols: V vocabulary, t a scored position (predicting w_t from w_<t), J experts, b_t a context
bucket, beta (buckets, J) the weights, eta the step size.

    log q_t(w) = sum_j beta[b_t, j] * log p_j(w | w_<t),      p(w | w_<t) = q_t(w) / sum_v q_t(v)

(geometric mixing, Mattern 2013; the multi-symbol form of PAQ's logistic mixing). The experts are
the LSTM's full distribution (static or adapting), an interpolated Kneser-Ney model of the
training split read at several orders (its intermediate levels, ngram.py), and the cache (the
Witten-Bell n-gram model of the text read so far, mixture.py) at several orders; b_t is the
longest context the cache has seen. After each token is scored, one gradient step on its loss:

    beta[b_t, j] += eta * (log p_j(w_t) - sum_w p(w) log p_j(w))

which is -d(-log p(w_t)) / d beta[b_t, j]; the loss is convex in beta. `fit` reads the validation
split from beta = (1, 0, ..., 0) (the LSTM alone), again if it is short (until FIT_TOKENS have been
read, at most MAX_PASSES times); `score` goes on learning while it reads the
split being scored, each token predicted before its step, so nothing comes from a token's
future. Unlike the linear mixture's weights (mixture.py), a product lets an expert veto (a
near-zero n-gram probability pulls a symbol down) and its exponents need not sum to one (a
sharper or flatter product).

The cache runs inside the loop: per order k, dense ids for each position's context and for each
(context, next token) pair that occurs in the text, a CSR list of every context's followers, and
running counts, so a position's whole distribution costs its followers, and memory is O(N) per
order; the Kneser-Ney distributions come in chunks of CHUNK positions.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .mixture import context_ids
from .ngram import KneserNey
from .workflow import summarize

CHUNK = 8192
LR = 3e-4  # eta; on the 640-unit Shakespeare model's validation split 1e-4..3e-4 are level
MAX_VOCAB = 1024  # larger vocabularies (words) use the linear mixture: full rows cost N x V
FIT_TOKENS, MAX_PASSES = 250_000, 50  # fit reads a shorter validation split again, up to 50 times


def cache_tables(ids: np.ndarray, order: int, V: int) -> dict:
    """The cache's static structure for ids (N,): positions t = 1..N-1 predict ids[t].

    ctx (order + 1, N - 1): the global id of the last k tokens' context (-1 where t < k);
    pair (order + 1, N - 1): the global id of (context, ids[t]); start (n_ctx + 1,): CSR offsets
    of each context's followers in follow (n_pairs,), the tokens seen after it anywhere in ids.
    """
    ids = np.asarray(ids, np.int64)
    n = len(ids) - 1
    ctx_all = np.full((order + 1, n), -1, np.int64)
    pair_all = np.full((order + 1, n), -1, np.int64)
    starts, follows, n_ctx, n_pair = [], [], 0, 0
    for k, dense in context_ids(ids, order, V):
        tail = n - len(dense)  # positions t-1 >= tail have k tokens of context
        pairs, pinv = np.unique(dense * V + ids[1 + tail :], return_inverse=True)
        c_of_pair = pairs // V
        nc = int(dense.max()) + 1
        start = np.searchsorted(c_of_pair, np.arange(nc + 1))
        ctx_all[k, tail:] = dense + n_ctx
        pair_all[k, tail:] = pinv.ravel() + n_pair
        starts.append(start[:-1] + n_pair)
        follows.append(pairs % V)
        n_ctx, n_pair = n_ctx + nc, n_pair + len(pairs)
    start = np.concatenate(starts + [np.array([n_pair])])
    return {"ctx": ctx_all, "pair": pair_all, "start": start, "follow": np.concatenate(follows)}


@nb.njit(cache=True)
def _mix_chunk(LP, y, t0, ctx, pair, start, follow, cnt, tot, typ, cache_sel, beta, eta, learn,
               out):  # fmt: skip
    """Score positions t0..t0+len(y)-1; LP (n, J0, V) the other experts' log-probabilities."""
    n, J0, V = LP.shape
    K = ctx.shape[0]
    J = J0 + len(cache_sel)
    feats = np.empty((J, V))
    p, q, z = np.empty(V), np.empty(V), np.empty(V)
    for i in range(n):
        t = t0 + i
        for v in range(V):
            p[v] = 1.0 / V
        b, j = 0, J0
        for k in range(K):
            c = ctx[k, t]
            if c < 0:
                break
            if tot[c] > 0:
                b = k
                for v in range(V):
                    q[v] = typ[c] * p[v]
                for s in range(start[c], start[c + 1]):
                    q[follow[s]] += cnt[s]
                den = tot[c] + typ[c]
                for v in range(V):
                    p[v] = q[v] / den
            if j < J and cache_sel[j - J0] == k:
                for v in range(V):
                    feats[j, v] = np.log(p[v])
                j += 1
        while j < J:  # orders with no context yet: the highest order reached
            for v in range(V):
                feats[j, v] = np.log(p[v])
            j += 1
        for jj in range(J0):
            for v in range(V):
                feats[jj, v] = LP[i, jj, v]
        m = -np.inf
        for v in range(V):
            s = 0.0
            for jj in range(J):
                s += beta[b, jj] * feats[jj, v]
            z[v] = s
            m = max(m, s)
        total = 0.0
        for v in range(V):
            z[v] = np.exp(z[v] - m)
            total += z[v]
        out[i] = -np.log(max(z[y[i]] / total, 1e-300))
        if learn:
            for jj in range(J):
                e = 0.0
                for v in range(V):
                    e += z[v] * feats[jj, v]
                beta[b, jj] += eta * (feats[jj, y[i]] - e / total)
        for k in range(K):  # the cache reads w_t
            c = ctx[k, t]
            if c < 0:
                break
            s = pair[k, t]
            if cnt[s] == 0:
                typ[c] += 1
            cnt[s] += 1
            tot[c] += 1


class GeometricMixer:
    """The LSTM, a Kneser-Ney model and the cache mixed geometrically; `fit`, then `score`.

    Args:
        train_ids: the training split the Kneser-Ney model counts. vocab_size: V.
        kn_order: its highest order; its levels kn_order, kn_order - 2, ... >= 1 are experts.
        cache_order: K; the cache at orders K, K - 2, ... >= 1 are experts, b_t in 0..K.
        lr: eta.
    """

    needs_rows = True  # fit/score take the LSTM's whole distribution at every position

    def __init__(self, train_ids, vocab_size: int, kn_order: int = 9, cache_order: int = 8,
                 lr: float = LR):  # fmt: skip
        if not (np.isfinite(lr) and lr >= 0):
            raise ValueError(f"the mixing step size must be a number >= 0, got {lr}")
        self.V, self.cache_order, self.lr = vocab_size, cache_order, float(lr)
        self.kn = KneserNey(kn_order, vocab_size).fit(train_ids)
        self.kn_orders = list(range(kn_order, 0, -2))[::-1]
        self.cache_orders = list(range(cache_order, 0, -2))[::-1] or [0]
        self.experts = (["lstm"] + [f"kneser-ney-{k}" for k in self.kn_orders]
                        + [f"cache-{k}" for k in self.cache_orders])  # fmt: skip
        self.beta: np.ndarray | None = None
        self.fit_tokens = self.fit_passes = 0

    def _read(self, ids, lstm_probs, learn: bool, passes: int = 1) -> np.ndarray:
        """Nats per position of ids[1:] (of the last pass), beta updated in place when learn;
        each pass reads the text from an empty cache. The cache's tables are built once, and the
        experts' rows too when the text fits one chunk (a short validation split read again)."""
        ids = np.asarray(ids, np.int64)
        n = len(ids) - 1
        lstm_probs = np.asarray(lstm_probs)
        if lstm_probs.shape != (n, self.V):
            raise ValueError(f"need the LSTM's distribution at all {n} positions of one stream "
                             f"(lanes 1): shape ({n}, {self.V}), got {lstm_probs.shape}")  # fmt: skip
        tab = cache_tables(ids, self.cache_order, self.V)
        sel = np.array(self.cache_orders, np.int64)
        out, rows = np.empty(n), {}
        for _ in range(passes):
            n_ctx, n_pair = len(tab["start"]) - 1, len(tab["follow"])
            cnt, tot, typ = (np.zeros(m, np.int64) for m in (n_pair, n_ctx, n_ctx))
            for s in range(0, n, CHUNK):
                e = min(n, s + CHUNK)
                LP = rows.get(s)
                if LP is None:
                    kn = self.kn.distributions(ids, s + 1, e + 1, self.kn_orders)  # (e-s, k, V)
                    lp = np.log(np.maximum(lstm_probs[s:e].astype(np.float64), 1e-30))[:, None]
                    LP = np.ascontiguousarray(np.concatenate([lp, np.log(kn)], axis=1))
                    if n <= CHUNK:
                        rows[s] = LP
                _mix_chunk(LP, ids[s + 1 : e + 1], s, tab["ctx"], tab["pair"], tab["start"],
                           tab["follow"], cnt, tot, typ, sel, self.beta, self.lr, learn,
                           out[s:e])  # fmt: skip
        return out

    def fit(self, ids, lstm_probs) -> GeometricMixer:
        """Learn beta reading ids (N,) (validation), lstm_probs (N-1, V) the LSTM's rows."""
        self.beta = np.zeros((self.cache_order + 1, len(self.experts)))
        self.beta[:, 0] = 1.0
        self.fit_passes = max(1, min(MAX_PASSES, -(-FIT_TOKENS // max(1, len(ids) - 1))))
        self._read(ids, lstm_probs, True, self.fit_passes)  # a short split is read again
        self.fit_tokens = len(ids) - 1
        return self

    def score(self, ids, lstm_probs) -> dict:
        """{"nats", "bpc", "perplexity", "tokens"} of the mixture, learning on as it reads, plus
        "weights": beta after validation (by bucket), the experts, the rule."""
        if self.beta is None:
            raise RuntimeError("GeometricMixer.fit() must be called first")
        fitted = self.beta.copy()
        beta, self.beta = self.beta, self.beta.copy()  # the fitted weights stay for a re-score
        try:
            nats = self._read(ids, lstm_probs, self.lr > 0)
        finally:
            self.beta = beta
        out = summarize(float(nats.sum()), len(nats))
        out["rule"] = "geometric"
        out["weights"] = {"learnt": "online, on validation and then on the scored text",
                          "experts": self.experts,
                          "bucket": f"longest context the cache has seen, 0..{self.cache_order}",
                          "beta_after_validation": np.round(fitted, 4).tolist(),
                          "lr": self.lr}  # fmt: skip
        out["kn_order"], out["cache_order"] = self.kn.order, self.cache_order
        out["validation_tokens"], out["validation_passes"] = self.fit_tokens, self.fit_passes
        return out


__all__ = ["GeometricMixer", "MAX_VOCAB", "cache_tables"]
