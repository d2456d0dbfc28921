"""Training windows for the Forecaster, and the conformal calibration of its intervals.

Each series is split in time: the windows whose outputs end before the last `val_fraction` of the
series (at least one horizon) train the network; the windows whose outputs lie in that last part
validate it (early stopping) and calibrate the intervals:

    E[m, h] = max(q_low - y, y - q_high)          two-sided score of window m at step h
    L[m, h] = q_low - y,  U[m, h] = y - q_high     one-sided scores
    q(S, p)[h] = the ceil((M + 1) p) / M empirical quantile of S[:, h]
    lower[h] = max(q(E, q_high - q_low), q(L, 1 - q_low))
    upper[h] = max(q(E, q_high - q_low), q(U, q_high))

[q_low - lower, q_high + upper] is never narrower than conformalised quantile regression's
symmetric interval (Romano, Patterson & Candes 2019), so it covers at least q_high - q_low of the
validation truths, and each side is widened further until it alone misses at most its own share
(q_low below, 1 - q_high above): a skewed series is then not missed on one side only. Offsets
(2, H) are in scaled units, per step.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .features import (
    Scaler,
    Window,
    baseline_values,
    calendar_cycles,
    gather,
    series_inputs,
    train_ends,
    window_of,
    windows,
)

MAX_CALIBRATION_ORIGINS = 300  # per series: enough for a stable quantile, cheap to predict


def check_length(s, c, back: int | None = None) -> None:
    """An error when series `s` is shorter than the lookback (default the context) + horizon."""
    back = back or c.context
    need = back + c.horizon
    if s.n_hist < need:
        what = "the series" if s.key == "series" else f"series {s.key!r}"
        look = (
            f"context {back}"
            if back == c.context
            else f"a lookback of {back} (context {c.context} + {back - c.context} for the baseline)"
        )
        raise ValueError(
            f"{what} has {s.n_hist} values but {look} + horizon {c.horizon} = {need} are "
            "needed; use a smaller --context or --horizon, or more data"
        )


def fit_cycles(c, freq, series: list | None = None) -> tuple:
    """The calendar cycles a model reads: none without `c.calendar`; else those of the step
    (calendar_cycles) that the longest of the training `series` covers at least twice (all of
    them when `series` is None)."""
    if not c.calendar:
        return ()
    spans = [s.time[s.n_hist - 1] - s.time[0] for s in series or []
             if isinstance(s.time, pd.DatetimeIndex) and s.n_hist > 0]  # fmt: skip
    return calendar_cycles(freq, max(spans) if spans else None)


def split_point(n: int, c, back: int) -> int:
    """Where the validation part of a length-n series starts (n when there is none)."""
    if c.val_fraction <= 0:
        return n
    start = n - max(c.horizon, int(round(c.val_fraction * n)))
    return start if start - c.steps >= back else n


def choose_baseline(series: list, c, freq, season: int) -> str:
    """baseline="auto": "seasonal" or "seasonal_level", whichever forecasts the validation part
    of the series (all of it when there is none) with the lower mean absolute error over the
    horizon, in scaled units; a tie keeps "seasonal". Only training data is used."""
    errors = {}
    for kind in ("seasonal", "seasonal_level"):
        w = window_of(c, season, steps=c.horizon, baseline=kind)
        total, count = 0.0, 0
        for s in series:
            check_length(s, c, w.back)
            n = s.n_hist
            start = split_point(n, c, w.back)
            ends = (np.arange(max(start, w.back), n - c.horizon + 1) if start < n
                    else train_ends(n, w.back, c.horizon))  # fmt: skip
            zb, _, _, ob = gather(series_inputs(s, Scaler.fit(s, n), freq), ends, w.back, c.horizon)
            err = np.abs(zb[:, w.back :] - baseline_values(zb[:, : w.back], w))[ob]
            total, count = total + float(err.sum()), count + err.size
        errors[kind] = total / max(count, 1)
    return min(errors, key=errors.get)


def _stack(parts: list[dict]) -> dict:
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    keep = out["mask"].any(axis=1)  # a window with no observed target teaches nothing
    return {k: v[keep] for k, v in out.items()}


def build_training(series: list, c, freq, w: Window, cycles: tuple = ()) -> tuple:
    """(train arrays, validation arrays or {}, scalers by series key) for ForecastNet.loss;
    `cycles`: the calendar features (calendar_cycles)."""
    train, val, scalers = [], [], {}
    for s in series:
        check_length(s, c, w.back)
        n = s.n_hist
        sc = scalers[s.key] = Scaler.fit(s, n, w.lag if c.scale_residuals else 0)
        inp = series_inputs(s, sc, freq, cycles)
        start = split_point(n, c, w.back)
        train.append(windows(inp, train_ends(start, w.back, c.steps, c.stride), w))
        if start < n:
            ends = np.arange(max(start, w.back), n - c.steps + 1, c.stride)
            val.append(windows(inp, ends, w))
    train_arrays = _stack(train)
    if len(train_arrays["x"]) == 0:
        raise ValueError("no training windows: the series are too short for this context/horizon")
    val_arrays = _stack(val) if val else {}
    return train_arrays, (val_arrays if val_arrays and len(val_arrays["x"]) else {}), scalers


def calibrate(model, series: list) -> np.ndarray | None:
    """Per-step conformal offsets (2, H), lower and upper, from the validation windows; None
    without any."""
    from .predict import forecast_scaled

    c = model.config
    scores = []
    for s in series:
        n = s.n_hist
        start = split_point(n, c, model.window.back)
        ends = np.arange(max(start, model.window.back), n - c.horizon + 1)
        if len(ends) == 0:
            continue
        if len(ends) > MAX_CALIBRATION_ORIGINS:
            ends = ends[np.linspace(0, len(ends) - 1, MAX_CALIBRATION_ORIGINS).astype(int)]
        inp = series_inputs(s, model.scalers[s.key], model.freq, model.cycles)
        q = forecast_scaled(model, inp, ends, offsets=False)  # (M, H, Q)
        idx = ends[:, None] + np.arange(c.horizon)[None, :]  # (M, H)
        y = inp.z[idx]
        ok = inp.observed[idx]
        scores.append(
            np.stack([np.where(ok, q[..., 0] - y, np.nan), np.where(ok, y - q[..., -1], np.nan)])
        )
    if not scores:
        return None
    lo, hi = np.concatenate(scores, axis=1)  # (M, H) each: below q_low, above q_high
    sym = _offsets(np.fmax(lo, hi), c.quantiles[-1] - c.quantiles[0])  # two-sided (NaN stays)
    side = np.stack([_offsets(lo, 1.0 - c.quantiles[0]), _offsets(hi, c.quantiles[-1])])
    return np.maximum(side, sym[None, :])


def _offsets(E: np.ndarray, p: float) -> np.ndarray:
    """(H,) the ceil((m + 1) p) / m empirical quantile of each column of E (NaN = missing)."""
    m = np.sum(~np.isnan(E), axis=0)
    level = np.minimum(np.ceil((m + 1) * p) / np.maximum(m, 1), 1.0)
    return np.array([np.nanquantile(E[:, h], level[h]) if m[h] else 0.0 for h in range(E.shape[1])])
