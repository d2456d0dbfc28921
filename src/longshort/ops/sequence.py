"""Helpers shared by the recurrent ops: the weight tuple, step masks, per-sequence reversal.

Symbols: B batch, T steps, G gates (4 LSTM, 3 GRU, 1 RNN), H hidden units, I input features.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class RecurrentWeights(NamedTuple):
    """One layer-direction's parameters (or their gradients), PyTorch layout."""

    w_ih: np.ndarray  # (G*H, I)
    w_hh: np.ndarray  # (G*H, H)
    b_ih: np.ndarray  # (G*H,)
    b_hh: np.ndarray  # (G*H,)


def step_mask(lengths: np.ndarray | None, batch: int, steps: int) -> np.ndarray | None:
    """(B, T) boolean mask, True at valid steps; None when every sequence is full length."""
    if lengths is None:
        return None
    mask = np.arange(steps)[None, :] < np.asarray(lengths)[:, None]  # (B, T)
    return None if mask.all() else mask


def reverse_padded(x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """Reverse each sequence within its own length; padding steps stay where they are.

    x (B, T, ...) -> (B, T, ...). The map is its own inverse, so the backward of a reversal is the
    same reversal. This is how the backward direction of a bidirectional layer reads padded batches
    (as PyTorch does for packed sequences).
    """
    if lengths is None:
        return x[:, ::-1]
    B, T = x.shape[:2]
    t = np.arange(T)[None, :]  # (1, T)
    lg = np.asarray(lengths)[:, None]  # (B, 1)
    idx = np.where(t < lg, lg - 1 - t, t)  # (B, T)
    idx = idx.reshape(B, T, *([1] * (x.ndim - 2)))
    return np.take_along_axis(x, idx, axis=1)
