"""Affine map on the last axis: the output projection of every model.

Symbols: N any leading axes (batch, time, ...), I input features, O output features.

    y = x W^T + b                       x (N..., I), W (O, I), b (O,), y (N..., O)

Backward, with dy = dL/dy (N..., O) and the leading axes flattened to rows:

    dx = dy W                           (N..., I)
    dW = dy^T x                         (O, I)   one GEMM over all rows
    db = sum over rows of dy            (O,)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class LinearCache(NamedTuple):
    """What `linear_backward` needs."""

    x: np.ndarray  # (N..., I) input
    w: np.ndarray  # (O, I) weight
    has_bias: bool


def linear_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None
) -> tuple[np.ndarray, LinearCache]:
    """y = x W^T + b on the last axis of x.

    Args:
        x: (..., I). w: (O, I). b: (O,) or None.

    Returns:
        y (..., O) and the cache for `linear_backward`.
    """
    if w.ndim != 2:
        raise ValueError(f"weight must have shape (out_features, in_features), got {w.shape}")
    if x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"x has shape {x.shape} but the weight {w.shape} expects {w.shape[1]} features "
            "on the last axis"
        )
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"bias must have shape ({w.shape[0]},), got {b.shape}")
    y = x @ w.T  # (..., O)
    if b is not None:
        y += b
    return y, LinearCache(x, w, b is not None)


def linear_backward(
    dy: np.ndarray, cache: LinearCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of y = x W^T + b.

    Args:
        dy: (..., O), the gradient w.r.t. y.

    Returns:
        dx (..., I), dw (O, I), db (O,) (None when the forward had no bias).
    """
    x, w, has_bias = cache
    out_shape = x.shape[:-1] + (w.shape[0],)
    if dy.shape != out_shape:
        raise ValueError(f"dy must have the output's shape {out_shape}, got {dy.shape}")
    dx = dy @ w  # (..., I)
    dy2 = dy.reshape(-1, w.shape[0])  # (N, O)
    x2 = x.reshape(-1, w.shape[1])  # (N, I)
    dw = dy2.T @ x2  # (O, I)
    db = dy2.sum(axis=0) if has_bias else None  # (O,)
    return dx, dw, db
