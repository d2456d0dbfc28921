"""Model inputs: calendar features, per-series scaling, and the windows the network reads.

Symbols: N steps of a series, C context (steps the LSTM reads), S output steps (the horizon for
the direct strategy, 1 for the recursive one), Fp past-only covariates, Fk known-future features
(known-future covariates, then calendar features), M windows.

A window ending at e (exclusive) reads steps [e - C, e) and predicts [e, e + S). Targets are
scaled per series, z = (y - loc) / scale with loc, scale from the training part. The network reads
the context minus its own level w = mean(z[e - C : e]) (so a trending series looks the same in
every window) and predicts the residual from a baseline b (M, S), which is added back:

    seasonal        b[h] = z[e - m + (h mod m)]   the last season repeated (m = 1: the last value)
    seasonal_level  b[h] = z[e - m + (h mod m)] + (1 + h div m) (z[e - 1] - z[e - 1 - m])
                    (the last season moved by its last seasonal change: the forecast of
                    (1 - B)(1 - B^m) z = noise)
    last            b[h] = z[e - 1]
    none            b[h] = w

so an untrained network (zero head) already forecasts like the baseline and training learns the
corrections. Those corrections are the future of the differenced series d[t] = z[t] - z[t - lag]
(lag m for the seasonal baselines, 1 for "last"), so the network also reads d over the context,
and the windows gather L = C + lag steps before e (the lookback). With baseline "none" there is no
d. The corrections are small next to the swings of z on a smooth or strongly seasonal series (an
hourly temperature: z std 1, d RMS 0.02), so d and the targets are divided by the residual scale
r = RMS of d over the training part (Scaler.rscale; 1 when `scale_residuals` is off): in units of
z the network would have to learn outputs of 0.01 with weights that Adam moves by 0.003 a step.

    x     (M, C, 1 + D + Fp + Fk)  [z - w, d / r (D = 1 if lag else 0), past covariates, known
                                    features]
    extra (M, (1 + D) C + S + S Fk)  [z - w and d / r at the context steps, b - w, known features
                                      of the output steps]
    y     (M, S)                (z - b) / r at the output steps; mask (M, S) True where observed

Calendar features (sin/cos of the time of day, day of week, day of year) are those finer than a
step and covered at least twice by the training data (calendar_cycles): with one year of data the
day of year is a trend that the network would extrapolate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from .frame import Series

CYCLES = {"day": pd.Timedelta("1D"), "week": pd.Timedelta("7D"), "year": pd.Timedelta("365.25D")}


def calendar_cycles(freq, span: pd.Timedelta | None = None, min_periods: float = 2.0) -> tuple:
    """The calendar cycles of a step `freq` ("day", "week" finer than a fixed step; "year"
    always; none for integer axes); with `span`, the time the training data covers, only those
    it covers at least `min_periods` times: a cycle seen once (day of year in a single year)
    can only be learnt as a trend, and is then extrapolated to unseen dates."""
    if isinstance(freq, int | np.integer):
        return ()
    step = (
        pd.Timedelta(pd.tseries.frequencies.to_offset(freq).nanos, "ns") if _fixed(freq) else None
    )
    out = [k for k in ("day", "week") if step is not None and step < CYCLES[k]] + ["year"]
    return tuple(k for k in out if span is None or span >= min_periods * CYCLES[k])


def calendar_features(time: pd.Index, freq: str | int, cycles: tuple | None = None) -> np.ndarray:
    """(N, 2 len(cycles)) sin/cos of the time of day, day of week and day of year, for the
    `cycles` named (default: calendar_cycles(freq)); integer time axes have none (N, 0)."""
    if not isinstance(time, pd.DatetimeIndex):
        return np.zeros((len(time), 0))
    cycles = calendar_cycles(freq) if cycles is None else cycles
    day = (time.hour * 3600 + time.minute * 60 + time.second).to_numpy() / 86400.0
    phase = {"day": day, "week": (time.dayofweek.to_numpy() + day) / 7.0,
             "year": (time.dayofyear.to_numpy() - 1 + day) / 365.25}  # fmt: skip
    cols = [f(2 * np.pi * phase[k]) for k in cycles for f in (np.sin, np.cos)]
    return np.stack(cols, axis=1) if cols else np.zeros((len(time), 0))


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
    rscale: float = 1.0  # residual scale r, in units of z (1 = residuals not rescaled)

    @classmethod
    def fit(cls, s: Series, stop: int, lag: int = 0) -> Scaler:
        """From the first `stop` values; `lag` > 0 also sets `rscale` (see residual_scale)."""
        y = s.y[:stop][s.observed[:stop]]
        covs = np.concatenate([s.past, s.future], axis=1)[:stop]  # (stop, Fp + Fk)
        cs = covs.std(axis=0) if len(covs) else np.ones(covs.shape[1])
        loc, scale = float(y.mean()), float(y.std()) or 1.0
        r = residual_scale(s.y[:stop], s.observed[:stop], lag) / scale if lag else 1.0
        return cls(loc, scale, covs.mean(axis=0) if len(covs) else np.zeros(covs.shape[1]),
                   np.where(cs > 0, cs, 1.0), r)  # fmt: skip

    def to_dict(self) -> dict:
        return {"loc": self.loc, "scale": self.scale, "cov_loc": self.cov_loc.tolist(),
                "cov_scale": self.cov_scale.tolist(), "rscale": self.rscale}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict) -> Scaler:
        return cls(d["loc"], d["scale"], np.asarray(d["cov_loc"]), np.asarray(d["cov_scale"]),
                   float(d.get("rscale", 1.0)))  # fmt: skip


def residual_scale(y: np.ndarray, observed: np.ndarray, lag: int) -> float:
    """The root mean square of the lag-differenced target y[t] - y[t - lag] over the pairs with
    both values observed (1.0 when there are none or all are zero)."""
    if len(y) <= lag:
        return 1.0
    d = (y[lag:] - y[:-lag])[observed[lag:] & observed[:-lag]]
    r = float(np.sqrt(np.mean(d**2))) if len(d) else 0.0
    return r if np.isfinite(r) and r > 0 else 1.0


@dataclass
class Inputs:
    """A series as the network sees it: scaled z (N,), past (N, Fp), known (N, Fk), mask (N,)."""

    z: np.ndarray
    past: np.ndarray
    known: np.ndarray
    observed: np.ndarray
    rscale: float = 1.0  # residual scale r (see the module docstring)


def series_inputs(s: Series, sc: Scaler, freq, cycles: tuple = ()) -> Inputs:
    """Scale a series and add the calendar features of `cycles` (see calendar_cycles)."""
    fp = s.past.shape[1]
    covs = (np.concatenate([s.past, s.future], axis=1) - sc.cov_loc) / sc.cov_scale
    known = covs[:, fp:]
    if cycles:
        known = np.concatenate([known, calendar_features(s.time, freq, tuple(cycles))], axis=1)
    return Inputs((s.y - sc.loc) / sc.scale, covs[:, :fp], known, s.observed, sc.rscale)


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


def window_of(c, season: int, steps: int | None = None, baseline: str | None = None) -> Window:
    """The Window of a ForecasterConfig `c` for a detected `season`; `baseline` replaces
    `c.baseline` (the choice of "auto")."""
    baseline = baseline or c.baseline
    seasonal = baseline in ("seasonal", "seasonal_level")
    m = int(season) if seasonal and season > 1 else 1
    lag = m if seasonal else (1 if baseline == "last" else 0)
    return Window(c.context, c.context + lag, steps or c.steps, m, baseline, lag)


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
    h, m = np.arange(S), w.season
    if w.baseline == "seasonal":
        return past[:, L - m + h % m]  # (M, S)
    if w.baseline == "seasonal_level":  # the seasonal change of the last step carried on
        return past[:, L - m + h % m] + (1 + h // m) * (past[:, -1:] - past[:, -1 - m : -m])
    if w.baseline == "last":
        return np.repeat(past[:, -1:], S, axis=1)
    return np.repeat(past[:, L - w.context :].mean(axis=1, keepdims=True), S, axis=1)


def assemble(zb, pb, kb, k: int, w: Window, dtype=np.float32, rscale: float = 1.0) -> tuple:
    """Network inputs for the window that starts k steps into the gathered buffers:
    x (M, C, I), extra (M, (1 + D) C + S + S Fk), baseline (M, S); the differences d are
    divided by the residual scale `rscale`."""
    C, L, S, lag = w.context, w.back, w.steps, w.lag
    sl = slice(k + L - C, k + L)
    ctx = zb[:, sl]  # (M, C)
    level = ctx.mean(axis=1, keepdims=True)  # (M, 1)
    zc = ctx - level
    base = baseline_values(zb[:, k : k + L], w)  # (M, S)
    seqs = [zc]
    if lag:  # d over the context (M, C), in units of r
        seqs.append((ctx - zb[:, k + L - C - lag : k + L - lag]) / rscale)
    x = np.concatenate([np.stack(seqs, axis=2), pb[:, sl], kb[:, sl]], axis=2)  # (M, C, I)
    fut = kb[:, k + L : k + L + S].reshape(len(zb), -1)  # (M, S * Fk)
    extra = np.concatenate([*seqs, base - level, fut], axis=1)
    return x.astype(dtype), extra.astype(dtype), base


def windows(inp: Inputs, ends: np.ndarray, w: Window, dtype=np.float32) -> dict:
    """Training arrays of the windows ending at `ends` (M,) (see the module docstring)."""
    zb, pb, kb, ob = gather(inp, ends, w.back, w.steps)
    x, extra, base = assemble(zb, pb, kb, 0, w, dtype, inp.rscale)
    y = np.nan_to_num(zb[:, w.back :] - base) / inp.rscale  # (M, S)
    return {"x": x, "extra": extra, "y": y.astype(dtype), "mask": ob}


def train_ends(n_stop: int, back: int, steps: int, stride: int = 1) -> np.ndarray:
    """Window ends e with the lookback inside the series and the outputs before n_stop."""
    last = n_stop - steps
    if last < back:
        return np.zeros(0, np.int64)
    return np.arange(last, back - 1, -stride)[::-1]
