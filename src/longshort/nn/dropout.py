"""Inverted dropout as a layer: active in training mode, the identity after `eval()`.

y = x * m,  m = [u >= p] / (1 - p),  u ~ U[0, 1)        dx = dy * m
"""

from __future__ import annotations

import numpy as np

from ..ops.dropout import dropout_backward, dropout_forward
from .module import Module


class Dropout(Module):
    """Zero each entry with probability p while training; scale survivors by 1 / (1 - p)."""

    def __init__(self, p: float = 0.5, seed: int | None = None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = float(p)
        self._rng = np.random.default_rng(seed)
        self._mask = None

    def forward(self, x) -> np.ndarray:
        """x (any shape) -> y (same shape); a fresh mask each call in training mode."""
        x = np.asarray(x)
        y, self._mask = dropout_forward(x, self.p, self._rng, self.training)
        return y

    def backward(self, dy) -> np.ndarray:
        """dy -> dx with the mask of the last forward pass."""
        return dropout_backward(np.asarray(dy), self._mask)

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"
