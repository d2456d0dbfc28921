"""Baselines scored on the same folds as the LSTM, and the detection of the seasonal period.

naive            y_hat[n + h] = y[n - 1]
seasonal naive   y_hat[n + h] = y[n - m + (h mod m)]   (the last full season repeated)
ets              Holt-Winters exponential smoothing (statsmodels): additive damped trend,
                 additive season of period m when the history holds two seasons
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .frame import SEASONS, base_unit


def acf(y: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelation at lags 0..max_lag."""
    d = np.asarray(y, np.float64) - np.mean(y)
    denom = float(d @ d) or 1.0
    return np.array([float(d[: len(d) - k] @ d[k:]) / denom for k in range(max_lag + 1)])


def season_candidates(freq) -> list[int]:
    """The usual seasonal periods of a frequency: steps per day and per week for fixed steps
    (48 and 336 for 30min), 52 for weekly, 12 for monthly, 4 for quarterly; [] otherwise."""
    unit = base_unit(freq)
    if unit in ("W", "M", "Q"):
        return SEASONS[unit]
    if unit is None:
        return []
    step = pd.tseries.frequencies.to_offset(freq).nanos
    out = [p // step for p in (86_400 * 10**9, 7 * 86_400 * 10**9) if p % step == 0]
    return [m for m in out if m > 1] or ([365] if unit == "D" else [])


def detect_season(y: np.ndarray, freq) -> int:
    """The seasonal period: among `season_candidates` the one with the highest autocorrelation
    that fits twice in the series; for integer or yearly time axes the highest autocorrelation
    peak after the first dip below zero (e.g. the ~11-year sunspot cycle). 1 = no season."""
    n = len(y)
    allc = season_candidates(freq)
    cands = [m for m in allc if 2 * m <= n]
    if cands:
        r = acf(y, max(cands))
        return max(cands, key=lambda m: r[m])
    if allc or base_unit(freq) is not None:
        return 1
    r = acf(y, max(2, min(n // 3, 400)))
    neg = np.flatnonzero(r < 0)
    if len(neg) == 0:
        return 1
    m = int(neg[0] + np.argmax(r[neg[0] :]))
    return m if r[m] > 0.1 else 1


def naive(history: np.ndarray, horizon: int) -> np.ndarray:
    """The last value, repeated: (H,)."""
    return np.repeat(float(history[-1]), horizon)


def seasonal_naive(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """The last full season, repeated: (H,)."""
    if season <= 1 or season > len(history):
        return naive(history, horizon)
    n = len(history)
    return history[n - season + np.arange(horizon) % season].astype(np.float64)


def ets(history: np.ndarray, horizon: int, season: int, max_history: int = 3000) -> np.ndarray:
    """Holt-Winters forecast (H,) fitted on the last `max_history` values of `history`."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    y = np.asarray(history, np.float64)[-max(max_history, 3 * season) :]
    seasonal = season > 1 and len(y) >= 2 * season + 2
    init = "heuristic" if seasonal and season > 24 and len(y) >= 4 * season else "estimated"
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            fit = ExponentialSmoothing(
                y, trend="add", damped_trend=True, seasonal="add" if seasonal else None,
                seasonal_periods=season if seasonal else None, initialization_method=init,
            ).fit()  # fmt: skip
            out = np.asarray(fit.forecast(horizon), np.float64)
        except (ValueError, np.linalg.LinAlgError):
            out = np.full(horizon, np.nan)
    return out if np.all(np.isfinite(out)) else naive(y, horizon)
