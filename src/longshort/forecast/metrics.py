"""Point and interval metrics over the observed steps of the forecast windows.

mae = mean |y - p|     rmse = sqrt(mean (y - p)^2)     smape = 100 mean 2|y - p| / (|y| + |p|)
mase = mae / mean |y[t] - y[t - m]| over the training history (m: the seasonal period; the
       M4 competition's definition), computed per series and averaged over series
coverage = share of the truth inside [q_low, q_high]
"""

from __future__ import annotations

import numpy as np


def mase_scale(history: np.ndarray, season: int) -> float:
    """In-sample mean absolute seasonal difference (lag 1 when the history is too short)."""
    y = np.asarray(history, np.float64)
    m = season if len(y) > season > 1 else 1
    d = np.abs(y[m:] - y[:-m])
    scale = float(d.mean()) if len(d) else 0.0
    return scale if scale > 0 else 1.0


def point_metrics(truth: np.ndarray, pred: np.ndarray, scale: float) -> dict[str, float]:
    """mae, rmse, smape (%) and mase of one series' observed forecasts (1-D, NaN-free)."""
    err = np.asarray(truth, np.float64) - np.asarray(pred, np.float64)
    denom = np.abs(truth) + np.abs(pred)
    sm = np.where(denom > 0, 2 * np.abs(err) / np.where(denom > 0, denom, 1), 0.0)
    mae = float(np.mean(np.abs(err)))
    return {
        "mae": mae,
        "rmse": float(np.sqrt(np.mean(err**2))),
        "smape": float(100 * np.mean(sm)),
        "mase": mae / scale,
    }


def combine(per_series: list[dict[str, float]], weights: list[int]) -> dict[str, float]:
    """Average per-series metrics, weighted by their number of forecasts (rmse via its square)."""
    w = np.asarray(weights, np.float64) / np.sum(weights)
    out = {k: float(sum(wi * m[k] for wi, m in zip(w, per_series))) for k in ("mae", "smape")}
    out["rmse"] = float(np.sqrt(sum(wi * m["rmse"] ** 2 for wi, m in zip(w, per_series))))
    out["mase"] = float(np.mean([m["mase"] for m in per_series]))
    return {k: round(out[k], 6) for k in ("mae", "rmse", "smape", "mase")}


def coverage(truth: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """Share of the truth inside [low, high]."""
    t = np.asarray(truth)
    return float(np.mean((t >= low) & (t <= high)))
