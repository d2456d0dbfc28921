"""Model inputs: calendar features, per-series scaling, and the windows the network reads.

Symbols: N steps of a series, C context (steps the LSTM reads), S output steps (the horizon for
the direct strategy, 1 for the recursive one), Fp past-only covariates, Fk known-future features
(known-future covariates, then calendar features), M windows.

A window ending at e (exclusive) reads steps [e - C, e) and predicts [e, e + S). Targets are
scaled per series, z = (y - loc) / scale with loc, scale from the training part. The network reads
the context minus its own level w = mean(z[e - C : e]) (so a trending series looks the same in
every window) and predicts the residual from a baseline b (M, S), which is added back:

    seasonal  b[h] = z[e - m + (h mod m)]   the last season repeated (m = 1: the last value)
    last      b[h] = z[e - 1]
    none      b[h] = w

so an untrained network (zero head) already forecasts like the baseline and training learns the
corrections. Those corrections are the future of the differenced series d[t] = z[t] - z[t - lag]
(lag m for "seasonal", 1 for "last"), so the network also reads d over the context, and the
windows gather L = C + lag steps before e (the lookback). With baseline "none" there is no d.

    x     (M, C, 1 + D + Fp + Fk)  [z - w, d (D = 1 if lag else 0), past covariates, known features]
    extra (M, (1 + D) C + S + S Fk)  [z - w and d at the context steps, b - w, known features of
                                      the output steps]
    y     (M, S)                z - b at the output steps; mask (M, S) True where observed
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from .frame import Series


def calendar_features(time: pd.Index, freq: str | int) -> np.ndarray:
    """(N, Fc) sin/cos of the time of day, day of week and day of year, those finer than a
    step of `freq` only; integer time axes have none (N, 0)."""
    if not isinstance(time, pd.DatetimeIndex):
        return np.zeros((len(time), 0))
    step = (
        pd.Timedelta(pd.tseries.frequencies.to_offset(freq).nanos, "ns") if _fixed(freq) else None
    )
    cols = []
    day = (time.hour * 3600 + time.minute * 60 + time.second).to_numpy() / 86400.0
    if step is not None and step < pd.Timedelta("1D"):
        cols += [np.sin(2 * np.pi * day), np.cos(2 * np.pi * day)]
    if step is not None and step < pd.Timedelta("7D"):
        week = (time.dayofweek.to_numpy() + day) / 7.0
        cols += [np.sin(2 * np.pi * week), np.cos(2 * np.pi * week)]
    year = (time.dayofyear.to_numpy() - 1 + day) / 365.25
    cols += [np.sin(2 * np.pi * year), np.cos(2 * np.pi * year)]
    return np.stack(cols, axis=1)


def _fixed(freq) -> bool:
    try:
        pd.tseries.frequencies.to_offset(freq).nanos  # noqa: B018 - raises for months, years
        return True
    except ValueError:
        return False


@dataclass
class Scaler:
    """Per-series location and scale of the target and the covariates (from the training part)."""

    loc: float
    scale: float
    cov_loc: np.ndarray  # (Fp + Fk,)
    cov_scale: np.ndarray

    @classmethod
    def fit(cls, s: Series, stop: int) -> Scaler:
        y = s.y[:stop][s.observed[:stop]]
        covs = np.concatenate([s.past, s.future], axis=1)[:stop]  # (stop, Fp + Fk)
        cs = covs.std(axis=0) if len(covs) else np.ones(covs.shape[1])
        return cls(float(y.mean()), float(y.std()) or 1.0, covs.mean(axis=0) if len(covs) else
                   np.zeros(covs.shape[1]), np.where(cs > 0, cs, 1.0))  # fmt: skip

    def to_dict(self) -> dict:
        return {"loc": self.loc, "scale": self.scale, "cov_loc": self.cov_loc.tolist(),
                "cov_scale": self.cov_scale.tolist()}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict) -> Scaler:
        return cls(d["loc"], d["scale"], np.asarray(d["cov_loc"]), np.asarray(d["cov_scale"]))


@dataclass
class Inputs:
    """A series as the network sees it: scaled z (N,), past (N, Fp), known (N, Fk), mask (N,)."""

    z: np.ndarray
    past: np.ndarray
    known: np.ndarray
    observed: np.ndarray


def series_inputs(s: Series, sc: Scaler, freq, calendar: bool) -> Inputs:
    """Scale a series and add its calendar features."""
    fp = s.past.shape[1]
    covs = (np.concatenate([s.past, s.future], axis=1) - sc.cov_loc) / sc.cov_scale
    known = covs[:, fp:]
    if calendar:
        known = np.concatenate([known, calendar_features(s.time, freq)], axis=1)
    return Inputs((s.y - sc.loc) / sc.scale, covs[:, :fp], known, s.observed)


class Window(NamedTuple):
    """Window geometry: C context steps read by the LSTM, `back` = L = C + lag steps gathered
    before the end, S output steps, the seasonal period m of the baseline, the baseline kind and
    the lag of the differenced input (0 = none)."""

    context: int
    back: int
    steps: int
    season: int = 1
    baseline: str = "none"
    lag: int = 0


def window_of(c, season: int, steps: int | None = None) -> Window:
    """The Window of a ForecasterConfig `c` for a detected `season`."""
    m = int(season) if c.baseline == "seasonal" and season > 1 else 1
    lag = {"seasonal": m, "last": 1}.get(c.baseline, 0)
    return Window(c.context, c.context + lag, steps or c.steps, m, c.baseline, lag)


def gather(inp: Inputs, ends: np.ndarray, back: int, steps: int) -> tuple:
    """Per window, the L + S steps around its end: zb (M, L + S) with NaN past the series,
    past covariates pb (M, L + S, Fp) held at their last value from e on (they are unknown
    then), known features kb (M, L + S, Fk), observed mask ob (M, S)."""
    ends = np.asarray(ends, np.int64)
    n = len(inp.z)
    idx = ends[:, None] - back + np.arange(back + steps)[None, :]  # (M, L + S)
    inside = idx < n
    idc = np.minimum(idx, n - 1)
    zb = np.where(inside, inp.z[idc], np.nan)
    held = np.minimum(idx, ends[:, None] - 1)  # past covariates stop at e - 1
    ob = (inside & inp.observed[idc])[:, back:]
    return zb, inp.past[held], inp.known[idc], ob


def baseline_values(past: np.ndarray, w: Window) -> np.ndarray:
    """The baseline b (M, S) from the L gathered steps before each window's end, past (M, L)."""
    L, S = past.shape[1], w.steps
    if w.baseline == "seasonal":
        return past[:, L - w.season + np.arange(S) % w.season]  # (M, S)
    if w.baseline == "last":
        return np.repeat(past[:, -1:], S, axis=1)
    return np.repeat(past[:, L - w.context :].mean(axis=1, keepdims=True), S, axis=1)


def assemble(zb, pb, kb, k: int, w: Window, dtype=np.float32) -> tuple:
    """Network inputs for the window that starts k steps into the gathered buffers:
    x (M, C, I), extra (M, (1 + D) C + S + S Fk), baseline (M, S)."""
    C, L, S, lag = w.context, w.back, w.steps, w.lag
    sl = slice(k + L - C, k + L)
    ctx = zb[:, sl]  # (M, C)
    level = ctx.mean(axis=1, keepdims=True)  # (M, 1)
    zc = ctx - level
    base = baseline_values(zb[:, k : k + L], w)  # (M, S)
    seqs = [zc]
    if lag:
        seqs.append(ctx - zb[:, k + L - C - lag : k + L - lag])  # d over the context (M, C)
    x = np.concatenate([np.stack(seqs, axis=2), pb[:, sl], kb[:, sl]], axis=2)  # (M, C, I)
    fut = kb[:, k + L : k + L + S].reshape(len(zb), -1)  # (M, S * Fk)
    extra = np.concatenate([*seqs, base - level, fut], axis=1)
    return x.astype(dtype), extra.astype(dtype), base


def windows(inp: Inputs, ends: np.ndarray, w: Window, dtype=np.float32) -> dict:
    """Training arrays of the windows ending at `ends` (M,) (see the module docstring)."""
    zb, pb, kb, ob = gather(inp, ends, w.back, w.steps)
    x, extra, base = assemble(zb, pb, kb, 0, w, dtype)
    y = np.nan_to_num(zb[:, w.back :] - base)  # (M, S)
    return {"x": x, "extra": extra, "y": y.astype(dtype), "mask": ob}


def train_ends(n_stop: int, back: int, steps: int, stride: int = 1) -> np.ndarray:
    """Window ends e with the lookback inside the series and the outputs before n_stop."""
    last = n_stop - steps
    if last < back:
        return np.zeros(0, np.int64)
    return np.arange(last, back - 1, -stride)[::-1]
