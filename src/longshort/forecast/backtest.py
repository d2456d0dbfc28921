"""Rolling-origin backtest of a Forecaster against naive, seasonal naive and ETS.

Each series of length N gets K forecast origins, the last one H steps before its end:

    o_k = N - H - (K - 1 - k) * step,  k = 0 .. K-1        (step defaults to H)

The LSTM is trained once on everything before the first origin o_0 (its validation part is the
tail of that stretch; `backtest` trains the model it is given, and Forecaster.backtest gives it
an unfitted copy, so the user's fitted forecaster is never changed); at each origin every model forecasts the next H steps from the history up
to the origin only (ETS is refitted at every origin). Scores are computed on the observed truths of
all folds; MASE is scaled by the seasonal naive error on the history before o_0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import baselines as B
from .features import series_inputs
from .frame import Series
from .metrics import combine, coverage, mase_scale, point_metrics
from .predict import forecast_scaled, median_index
from .prepare import prepare
from .training import check_length

MODELS = ("lstm", "naive", "seasonal_naive", "ets")


@dataclass
class BacktestResult:
    """metrics: the metrics.json dict; forecasts: one row per series, fold and step;
    history: the prepared series (for plots)."""

    metrics: dict
    forecasts: pd.DataFrame
    history: list


def _cut(s: Series, stop: int) -> Series:
    return Series(s.key, s.time[:stop], s.y[:stop], s.observed[:stop], s.past[:stop],
                  s.future[:stop], min(stop, s.n_hist))  # fmt: skip


def origins(n: int, horizon: int, folds: int, step: int, context: int) -> np.ndarray:
    """The K origins of a series of n values; an error when the first leaves no training data."""
    o = n - horizon - step * np.arange(folds - 1, -1, -1)
    if o[0] < context + horizon:
        raise ValueError(
            f"a series of {n} values cannot hold {folds} folds of step {step} after a training "
            f"part of context + horizon = {context + horizon}; use fewer --folds or a smaller step"
        )
    return o


def _fold_rows(model, s: Series, ends: np.ndarray, season: int, run_ets: bool) -> pd.DataFrame:
    """Every model's forecasts of one series at the origins `ends`."""
    c, H = model.config, model.config.horizon
    sc = model.scalers[s.key]
    q = forecast_scaled(model, series_inputs(s, sc, model.freq, model.cycles), ends)
    q = q * sc.scale + sc.loc  # (K, H, Q)
    rows = []
    for k, o in enumerate(ends):
        hist = s.y[:o]
        f = {"id": s.key, "fold": k, "origin": s.time[o - 1], "time": s.time[o : o + H],
             "step": np.arange(1, H + 1), "truth": s.y[o : o + H], "observed": s.observed[o : o + H],
             "lstm": q[k, :, median_index(c.quantiles)], "naive": B.naive(hist, H),
             "seasonal_naive": B.seasonal_naive(hist, H, season)}  # fmt: skip
        f["ets"] = B.ets(hist, H, season) if run_ets else np.full(H, np.nan)
        for j, level in enumerate(c.quantiles):
            f[f"lstm_q{level:g}"] = q[k, :, j]
        rows.append(pd.DataFrame(f))
    return pd.concat(rows, ignore_index=True)


def score(fc: pd.DataFrame, scales: dict, quantiles, models=MODELS) -> dict:
    """The metrics.json dict from the forecast rows (observed truths only)."""
    fc = fc[fc["observed"]]
    per = {m: [] for m in models}
    weights = []
    for key, g in fc.groupby("id", sort=False):
        weights.append(len(g))
        for m in models:
            per[m].append(point_metrics(g["truth"].to_numpy(), g[m].to_numpy(), scales[key]))
    lo, hi = f"lstm_q{quantiles[0]:g}", f"lstm_q{quantiles[-1]:g}"
    cov = {
        "interval": [quantiles[0], quantiles[-1]],
        "nominal": round(quantiles[-1] - quantiles[0], 6),
        "lstm": round(coverage(fc["truth"], fc[lo], fc[hi]), 6),
        "below_low": round(float(np.mean(fc["truth"] < fc[lo])), 6),
        "above_high": round(float(np.mean(fc["truth"] > fc[hi])), 6),
    }
    return {"models": {m: combine(per[m], weights) for m in models}, "coverage": cov}


def backtest(model, df, folds: int = 3, step: int | None = None, ets: bool = True,
             **columns) -> BacktestResult:  # fmt: skip
    """Fit `model` (in place) before the first origin, forecast K folds, score every model (see
    the module docstring); `step` None means the horizon."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 1:
        raise ValueError(f"folds must be a positive integer, got {folds!r}")
    c = model.config
    if step is None:
        step = c.horizon
    elif isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 1:
        raise ValueError(
            f"step must be a positive integer (steps between origins), got {step!r}; leave it "
            "out for the horizon"
        )
    cols = {"id": None, "covariates": [], "future_covariates": [], **c.columns, **columns}
    for need in ("time", "target"):
        if not cols.get(need):
            raise ValueError(f"backtest needs the {need} column: pass {need}=... ")
    series, freq = prepare(df, cols["time"], cols["target"], cols["id"], cols["covariates"],
                           cols["future_covariates"], c.freq)  # fmt: skip
    series = [_cut(s, s.n_hist) for s in series]
    for s in series:
        check_length(s, c)
    ends = {s.key: origins(s.n_hist, c.horizon, folds, step, c.context) for s in series}
    model.fit_series([_cut(s, ends[s.key][0]) for s in series], freq, cols)
    season = model.season
    scales = {s.key: mase_scale(s.y[: ends[s.key][0]], season) for s in series}
    fc = pd.concat([_fold_rows(model, s, ends[s.key], season, ets) for s in series],
                   ignore_index=True)  # fmt: skip
    metrics = score(fc, scales, c.quantiles, MODELS if ets else MODELS[:3])
    metrics.update(
        horizon=c.horizon, folds=folds, step=step, season=int(season), freq=str(freq),
        series=len(series), train_seconds=round(model.fit_seconds, 2),
        train_stop=", ".join(sorted({r.stop_reason for r in model.train_results})),
        epochs=[round(r.epoch, 2) for r in model.train_results] if c.ensemble > 1
        else round(model.train_result.epoch, 2), baseline=model.window.baseline,
    )  # fmt: skip
    return BacktestResult(metrics, fc, series)
