"""Sliding windows over a time series, for next-step (or multi-step) prediction.

A series s (N,) or (N, F) becomes inputs X (M, W, F) and targets Y (M, K) with
X[m] = s[m : m + W] and Y[m] = s[m + W : m + W + K, target column], M = N - W - K + 1.
"""

from __future__ import annotations

import numpy as np


def make_windows(
    series: np.ndarray, window: int, horizon: int = 1, target: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Cut (X (M, W, F), Y (M, K)) from a series (N,) or (N, F)."""
    s = np.asarray(series, dtype=np.float64)
    if s.ndim == 1:
        s = s[:, None]  # (N, 1)
    if s.ndim != 2:
        raise ValueError(f"series must be (N,) or (N, features), got shape {s.shape}")
    if window < 1 or horizon < 1:
        raise ValueError(f"window and horizon must be >= 1, got {window} and {horizon}")
    n = s.shape[0]
    m = n - window - horizon + 1
    if m < 1:
        raise ValueError(
            f"series of length {n} is too short for window={window} and horizon={horizon}; "
            f"it needs at least {window + horizon} values"
        )
    if not np.all(np.isfinite(s)):
        raise ValueError("series contains NaN or inf; fill or drop the missing values first")
    idx = np.arange(m)[:, None] + np.arange(window)[None, :]  # (M, W)
    X = s[idx]  # (M, W, F)
    tidx = np.arange(m)[:, None] + window + np.arange(horizon)[None, :]  # (M, K)
    Y = s[tidx, target]  # (M, K)
    return X, Y


def train_val_split(n: int, val_fraction: float) -> int:
    """Index where the validation part of a length-n series begins (chronological split)."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    return int(round(n * (1.0 - val_fraction)))
