"""Model inputs: calendar features, per-series scaling, and the windows the network reads.

Symbols: N steps of a series, C context (steps the LSTM reads), S output steps (the horizon for
the direct strategy, 1 for the recursive one), Fp past-only covariates, Fk known-future features
(known-future covariates, then calendar features), M windows.

A window ending at e (exclusive) reads steps [e - C, e) and predicts [e, e + S). Targets are
scaled per series, z = (y - loc) / scale with loc, scale from the training part, and then shifted
by the window's own level w = mean(z[e - C : e]) so that a trending series looks the same in every
window (the level is added back to the prediction):

    x     (M, C, 1 + Fp + Fk)   [z - w, past covariates, known features] at the context steps
    extra (M, C + S Fk)         [z - w at the context steps, known features of the S output steps]
    y     (M, S)                z - w at the output steps; mask (M, S) True where observed
"""

from __future__ import annotations

from dataclasses import dataclass

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


def gather(inp: Inputs, ends: np.ndarray, context: int, steps: int) -> tuple:
    """Per window, the C + S steps around its end: zb (M, C + S) with NaN past the series,
    past covariates pb (M, C + S, Fp) held at their last value from e on (they are unknown
    then), known features kb (M, C + S, Fk), observed mask ob (M, S)."""
    ends = np.asarray(ends, np.int64)
    n = len(inp.z)
    idx = ends[:, None] - context + np.arange(context + steps)[None, :]  # (M, C + S)
    inside = idx < n
    idc = np.minimum(idx, n - 1)
    zb = np.where(inside, inp.z[idc], np.nan)
    held = np.minimum(idx, ends[:, None] - 1)  # past covariates stop at e - 1
    ob = (inside & inp.observed[idc])[:, context:]
    return zb, inp.past[held], inp.known[idc], ob


def assemble(zb, pb, kb, k: int, context: int, steps: int, dtype=np.float32) -> tuple:
    """Network inputs for the window that starts k steps into the gathered buffers:
    x (M, C, I), extra (M, C + S Fk), level (M, 1)."""
    ctx = zb[:, k : k + context]  # (M, C)
    level = ctx.mean(axis=1, keepdims=True)  # (M, 1)
    zc = ctx - level
    x = np.concatenate([zc[..., None], pb[:, k : k + context], kb[:, k : k + context]], axis=2)
    fut = kb[:, k + context : k + context + steps].reshape(len(zb), -1)  # (M, S * Fk)
    return x.astype(dtype), np.concatenate([zc, fut], axis=1).astype(dtype), level


def windows(inp: Inputs, ends: np.ndarray, context: int, steps: int, dtype=np.float32) -> dict:
    """Training arrays of the windows ending at `ends` (M,) (see the module docstring)."""
    zb, pb, kb, ob = gather(inp, ends, context, steps)
    x, extra, level = assemble(zb, pb, kb, 0, context, steps, dtype)
    y = np.nan_to_num(zb[:, context:] - level)  # (M, S)
    return {"x": x, "extra": extra, "y": y.astype(dtype), "mask": ob}


def train_ends(n_stop: int, context: int, steps: int, stride: int = 1) -> np.ndarray:
    """Window ends e with the context inside the series and the outputs before n_stop."""
    last = n_stop - steps
    if last < context:
        return np.zeros(0, np.int64)
    return np.arange(last, context - 1, -stride)[::-1]
