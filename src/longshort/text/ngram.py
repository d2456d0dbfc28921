"""An interpolated Kneser-Ney n-gram model over token ids: the baseline beside the LSTM.

Symbols: V vocabulary, N order, h a context of up to N-1 tokens, h' h without its first token.
With one absolute discount D_k per order k (D_k = n1 / (n1 + 2 n2) from the count-of-counts),

    P_k(w | h) = (max(c_k(h w) - D_k, 0) + D_k * N1+(h .) * P_{k-1}(w | h')) / c_k(h .)
    P_0(w) = 1 / V                                (an unseen context: P_k = P_{k-1})

where c_N are plain counts and, for k < N, c_k(h w) = N1+(. h w) is the number of distinct
tokens seen before h w (continuation counts); N1+(h .) counts distinct w after h and c_k(h .) is
the sum of c_k(h w) over w (Chen & Goodman 1998, interpolated KN). Every table is a sorted array of
n-gram keys (sum of ids times powers of V) with np.searchsorted lookups, so training on millions
of tokens and scoring every position is vectorised.
"""

from __future__ import annotations

import math

import numpy as np


def _keys(ids: np.ndarray, k: int, V: int) -> np.ndarray:
    """Keys of all k-grams of ids (N,) -> (N - k + 1,) int64."""
    n = len(ids) - k + 1
    key = np.zeros(max(n, 0), np.int64)
    for j in range(k):
        key = key * V + ids[j : j + n]
    return key


def _lookup(table: np.ndarray, values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """values[table == key] for each key, 0 where the key is absent."""
    if len(table) == 0:
        return np.zeros(len(keys), values.dtype)
    i = np.minimum(np.searchsorted(table, keys), len(table) - 1)
    return np.where(table[i] == keys, values[i], 0)


class KneserNey:
    """Interpolated Kneser-Ney model of order `order` over ids in [0, V)."""

    def __init__(self, order: int, vocab_size: int):
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        if vocab_size**order >= 2**62:
            raise ValueError(f"order {order} is too high for a vocabulary of {vocab_size}")
        self.order, self.V = order, vocab_size
        self.levels: list[dict] = []

    def fit(self, ids) -> KneserNey:
        """Count n-grams of orders 1..N in ids (N_tokens,)."""
        ids = np.asarray(ids, np.int64)
        V, N = self.V, self.order
        grams = [np.unique(_keys(ids, k, V), return_counts=True) for k in range(1, N + 2)]
        self.levels = []
        for k in range(1, N + 1):
            keys, counts = grams[k - 1]
            if k < N:  # continuation counts: distinct left extensions of each k-gram
                ext = grams[k][0] % V**k  # (k+1)-grams without their first token
                keys, counts = np.unique(ext, return_counts=True)
            ctx, inv = np.unique(keys // V, return_inverse=True)
            total = np.bincount(inv, weights=counts).astype(np.int64)  # c_k(h .)
            types = np.bincount(inv).astype(np.int64)  # N1+(h .)
            n1, n2 = np.sum(counts == 1), np.sum(counts == 2)
            D = float(n1 / (n1 + 2 * n2)) if n1 + n2 > 0 else 0.5
            self.levels.append(dict(keys=keys, counts=counts, ctx=ctx, total=total, types=types,
                                    D=min(max(D, 0.05), 0.95)))  # fmt: skip
        return self

    def logprob(self, ids) -> np.ndarray:
        """Natural-log probability of ids[t] given ids[:t] for t = 1..N-1 -> (N_tokens - 1,)."""
        if not self.levels:
            raise RuntimeError("KneserNey.fit() must be called first")
        ids = np.asarray(ids, np.int64)
        V, n = self.V, len(ids)
        p = np.full(n - 1, 1.0 / V)
        for k, lv in enumerate(self.levels, start=1):
            pos = np.arange(max(k - 1, 1), n)  # predicted positions with k-1 tokens of context
            key = np.zeros(len(pos), np.int64)
            for j in range(k):
                key = key * V + ids[pos - (k - 1) + j]
            c = _lookup(lv["keys"], lv["counts"], key)
            tot = _lookup(lv["ctx"], lv["total"], key // V)
            typ = _lookup(lv["ctx"], lv["types"], key // V)
            lower = p[pos - 1]
            with np.errstate(divide="ignore", invalid="ignore"):
                mix = (np.maximum(c - lv["D"], 0) + lv["D"] * typ * lower) / tot
            p[pos - 1] = np.where(tot > 0, mix, lower)
        return np.log(p)

    def distributions(self, ids, start: int, stop: int, orders) -> np.ndarray:
        """P_k(. | h_t) for t = start..stop-1 (1 <= start) and each k in orders (each <= N)
        -> (stop - start, len(orders), V): whole rows, the same recursion as `logprob`."""
        if not self.levels:
            raise RuntimeError("KneserNey.fit() must be called first")
        ids = np.asarray(ids, np.int64)
        V, pos = self.V, np.arange(start, stop)
        want = {k: i for i, k in enumerate(orders)}
        out = np.empty((len(pos), len(want), V))
        p = np.full((len(pos), V), 1.0 / V)
        for k, lv in enumerate(self.levels, start=1):
            h = np.zeros(len(pos), np.int64)  # the last k-1 tokens before t
            for j in range(k - 1):
                h = h * V + ids[np.maximum(pos - (k - 1) + j, 0)]
            tot = np.where(pos >= k - 1, _lookup(lv["ctx"], lv["total"], h), 0)
            typ = _lookup(lv["ctx"], lv["types"], h)
            c = _lookup(lv["keys"], lv["counts"], (h[:, None] * V + np.arange(V)).ravel())
            with np.errstate(divide="ignore", invalid="ignore"):
                mix = (np.maximum(c.reshape(len(pos), V) - lv["D"], 0)
                       + lv["D"] * typ[:, None] * p) / tot[:, None]  # fmt: skip
            p = np.where((tot > 0)[:, None], mix, p)
            if k in want:
                out[:, want[k]] = p
        return out

    def evaluate(self, ids) -> dict:
        """{"nats", "bpc" (bits per token), "perplexity", "tokens"} over ids[1:]."""
        lp = self.logprob(ids)
        nats = float(-lp.mean())
        return {"nats": nats, "bpc": nats / math.log(2), "perplexity": math.exp(nats),
                "tokens": int(len(lp))}  # fmt: skip
