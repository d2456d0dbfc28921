"""Inverted dropout: zero each entry with probability p and scale survivors by 1 / (1 - p).

    m = [u >= p] / (1 - p),  u ~ U[0, 1)        (same shape as x)
    y = x * m                                   so E[y] = x and evaluation needs no rescaling
    dx = dy * m

In evaluation mode (training=False) or with p = 0 the op is the identity and the mask is None.
With p = 1 every entry is dropped (mask of zeros), as in PyTorch.
"""

from __future__ import annotations

import numpy as np


def dropout_forward(
    x: np.ndarray, p: float, rng: np.random.Generator, training: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply inverted dropout.

    Args:
        x: any shape. p: drop probability in [0, 1]. rng: the source of the mask.
        training: False makes this the identity.

    Returns:
        y (same shape as x) and the scaled mask m (None when nothing was dropped).
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"dropout needs a float array, got dtype {x.dtype}")
    if not training or p == 0.0:
        return x, None
    if p == 1.0:
        mask = np.zeros(x.shape, dtype=x.dtype)
    else:
        mask = (rng.random(x.shape) >= p).astype(x.dtype) / x.dtype.type(1.0 - p)
    return x * mask, mask


def dropout_backward(dy: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """dx = dy * m (dy unchanged when the forward dropped nothing)."""
    if mask is None:
        return dy
    if dy.shape != mask.shape:
        raise ValueError(f"dy has shape {dy.shape} but the dropout mask has shape {mask.shape}")
    return dy * mask
