"""Contiguous splits of a token stream and stateful truncated-BPTT batches over it.

Symbols: N tokens, B lanes (parallel streams), K the BPTT length (steps per batch).

The stream is cut into B contiguous lanes of N // B tokens; batch j holds, for every lane, the
inputs x = lane[s_j : s_j + K_j] and targets y = lane[s_j + 1 : s_j + K_j + 1], so the state
carried from batch j to j + 1 continues exactly where it stopped (char-rnn / AWD-LSTM batching).
With `variable=True` the lengths K_j are drawn per epoch as in AWD-LSTM (K with probability 0.95,
else K / 2, plus N(0, 5) noise, at least 5) and the starts rescaled to cover the lane exactly,
so every epoch has the same number of batches and batch (epoch, j) is a pure function of
(seed, epoch, j): a resumed run sees the same batches.
"""

from __future__ import annotations

import numpy as np


def split_stream(ids: np.ndarray, val_fraction: float = 0.05, test_fraction: float = 0.05):
    """(train, val, test): contiguous pieces of `ids` (N,), in that order, never shuffled."""
    n = len(ids)
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError("val_fraction and test_fraction must be in [0, 1) and sum to below 1")
    n_test, n_val = int(round(n * test_fraction)), int(round(n * val_fraction))
    n_train = n - n_val - n_test
    return ids[:n_train], ids[n_train : n_train + n_val], ids[n_train + n_val :]


class TextStream:
    """Stateful batches {"x", "y", "mask": (B, K_j), "reset": (B,)} for the training loop.

    Args:
        ids: (N,) token ids. lanes: B. bptt: K. variable: AWD-style random lengths.
    """

    stateful = True

    def __init__(self, ids: np.ndarray, lanes: int, bptt: int, variable: bool = False):
        ids = np.asarray(ids, np.int64)
        if lanes < 1 or bptt < 1:
            raise ValueError(f"lanes and bptt must be >= 1, got {lanes} and {bptt}")
        piece = len(ids) // lanes
        if piece < bptt + 1:
            raise ValueError(
                f"the text has {len(ids)} tokens: too few for {lanes} lanes of at least one BPTT "
                f"window of {bptt} (+1) tokens; use a longer text, fewer lanes (--batch) or a "
                "shorter --bptt"
            )
        self.lanes, self.bptt, self.variable = lanes, bptt, variable
        self.data = ids[: piece * lanes].reshape(lanes, piece)  # (B, N // B)
        self.n_batches = (piece - 1) // bptt
        self._starts: tuple[tuple[int, int], np.ndarray] | None = None

    def __len__(self) -> int:
        return self.n_batches

    @property
    def tokens(self) -> int:
        """Targets per epoch (every lane position but the last)."""
        return self.lanes * (self.data.shape[1] - 1)

    def bounds(self, epoch: int, seed: int) -> np.ndarray:
        """Start of every batch plus the end, (n_batches + 1,) ints, for one epoch."""
        if self._starts is not None and self._starts[0] == (epoch, seed):
            return self._starts[1]
        total = self.data.shape[1] - 1
        if not self.variable:
            b = np.minimum(np.arange(self.n_batches + 1) * self.bptt, total)
            b[-1] = total
        else:
            rng = np.random.default_rng([seed, epoch, 7])
            base = np.where(rng.random(self.n_batches) < 0.95, self.bptt, self.bptt / 2)
            lens = np.maximum(5, base + 5 * rng.standard_normal(self.n_batches))
            b = np.round(np.concatenate([[0], np.cumsum(lens)]) * total / lens.sum()).astype(int)
        self._starts = ((epoch, seed), b)
        return b

    def batch(self, epoch: int, index: int, seed: int = 0) -> dict[str, np.ndarray]:
        if not 0 <= index < self.n_batches:
            raise IndexError(f"batch {index} out of range for {self.n_batches} batches")
        b = self.bounds(epoch, seed)
        s, e = int(b[index]), int(b[index + 1])
        x, y = self.data[:, s:e], self.data[:, s + 1 : e + 1]  # (B, K_j) each
        reset = np.full(self.lanes, index == 0)  # (B,) every epoch starts from a zero state
        return {"x": x, "y": y, "mask": np.ones(x.shape, bool), "reset": reset}
