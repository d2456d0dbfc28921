"""Backtest the LSTM forecaster on four real series and write docs/forecast/.

    python scripts/forecast_benchmarks.py [--only NAME ...] [--budget SECONDS] [--ensemble K]

Datasets (all load offline from installed packages; `pip install -e '.[data]'`):
    electricity  half-hourly demand, England & Wales, 5 Jun - 27 Aug 2000 (pmdarima load_taylor)
    seattle      hourly temperature, Seattle 2010 (vega_datasets local_data.seattle_temps)
    co2          weekly Mauna Loa CO2 1958-2001 (statsmodels datasets.co2, 59 missing)
    sunspots     monthly sunspots 1749-1983 (pmdarima load_sunspots)

Writes docs/forecast/<name>/{metrics.json, report.md, forecast.png} and docs/forecast/summary.md.
Every series gets the same model settings (SETTINGS); only the data's own geometry (horizon,
context, stride, calendar, folds) differs. The baseline the network corrects is chosen per series
on the validation part of its training data (baseline="auto"), never on the test folds.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from longshort import Forecaster
from longshort.forecast.report import write_backtest

OUT = Path(__file__).resolve().parent.parent / "docs" / "forecast"


def electricity() -> pd.DataFrame:
    from pmdarima.datasets import load_taylor

    y = load_taylor(as_series=True).to_numpy()
    # Taylor (2003): 12 weeks from Monday 5 June 2000, half-hourly.
    return pd.DataFrame({"time": pd.date_range("2000-06-05", periods=len(y), freq="30min"), "y": y})


def seattle() -> pd.DataFrame:
    from vega_datasets import local_data

    return local_data.seattle_temps().rename(columns={"date": "time", "temp": "y"})


def co2() -> pd.DataFrame:
    import statsmodels.api as sm

    d = sm.datasets.co2.load_pandas().data
    return pd.DataFrame({"time": d.index, "y": d["co2"].to_numpy()})


def sunspots() -> pd.DataFrame:
    from pmdarima.datasets import load_sunspots

    s = load_sunspots(as_series=True)
    return pd.DataFrame({"time": pd.to_datetime(s.index, format="%b %Y"), "y": s.to_numpy()})


# name: (loader, title, model options, backtest folds)
DATASETS = {
    "electricity": (electricity, "Half-hourly electricity demand (Taylor 2003), day-ahead",
                    dict(horizon=48, context=336, calendar=True, stride=2), 7),
    "seattle": (seattle, "Hourly Seattle temperature 2010, day-ahead",
                dict(horizon=24, context=168, calendar=True, stride=3), 14),
    "co2": (co2, "Weekly Mauna Loa CO2, one year ahead",
            dict(horizon=52, context=156, calendar=False, stride=1), 5),
    "sunspots": (sunspots, "Monthly sunspots, two years ahead",
                 dict(horizon=24, context=144, calendar=False, stride=1), 6),
}  # fmt: skip


# The model settings shared by every series.
SETTINGS = dict(hidden_size=32, epochs=200, patience=8, baseline="auto")


def run(name: str, budget: float, seed: int, ensemble: int) -> dict:
    load, title, opts, folds = DATASETS[name]
    df = load()
    model = Forecaster(max_seconds=budget, seed=seed, ensemble=ensemble, **SETTINGS, **opts)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = model.backtest(df, folds=folds, time="time", target="y")
    res.metrics["warnings"] = [str(w.message) for w in caught if w.category is UserWarning]
    res.metrics["dataset"], res.metrics["options"] = name, {**SETTINGS, **opts}
    res.metrics["ensemble"], res.metrics["seed"] = ensemble, seed
    res.metrics["total_seconds"] = round(time.perf_counter() - t0, 1)
    write_backtest(res, OUT / name, title)
    print(name, json.dumps(res.metrics), flush=True)
    return res.metrics


def baseline_alone(name: str, m: dict) -> float:
    """MASE of the seasonal_level baseline by itself (the untrained network) on the same folds:
    y[o - s + (h mod s)] + (1 + h div s)(y[o - 1] - y[o - 1 - s]), s the seasonal period."""
    from longshort.forecast.metrics import mase_scale
    from longshort.forecast.prepare import prepare

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (ser,), _ = prepare(DATASETS[name][0](), "time", "y")
    y, obs, s, H = ser.y, ser.observed, m["season"], m["horizon"]
    origins = len(y) - H - m["step"] * np.arange(m["folds"] - 1, -1, -1)
    h = np.arange(H)
    err = [np.abs(y[o : o + H] - y[o - s + h % s] - (1 + h // s) * (y[o - 1] - y[o - 1 - s]))[
        obs[o : o + H]] for o in origins]  # fmt: skip
    return float(np.mean(np.concatenate(err)) / mase_scale(y[: origins[0]], s))


# The MASE columns of the summary table, in order (the last one computed by baseline_alone).
MASE_COLUMNS = ("lstm", "naive", "seasonal_naive", "ets", "seasonal_level alone")


def bold_best(values: dict[str, float]) -> dict[str, str]:
    """Each value to 3 decimals, the lowest of the row (all of them on a tie) in bold."""
    text = {k: f"{v:.3f}" for k, v in values.items()}
    finite = [t for t in text.values() if np.isfinite(float(t))]
    best = min(finite, key=float) if finite else None
    return {k: f"**{t}**" if t == best else t for k, t in text.items()}


def summary(rows: dict[str, dict]) -> str:
    """The table: one row per dataset; bold marks the lowest MASE of the row, whichever model
    (the seasonal_level baseline alone included)."""
    head = ("| dataset | H | folds | LSTM MASE | naive | seasonal naive (m) | ETS | baseline "
            "| seasonal_level alone | 80% coverage | LSTM train s |\n"
            "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")  # fmt: skip
    lines = [head]
    for name, m in rows.items():
        mm = m["models"]
        values = {k: mm[k]["mase"] for k in MASE_COLUMNS[:4]}
        values["seasonal_level alone"] = baseline_alone(name, m)
        v = bold_best(values)
        lines.append(
            f"| {name} | {m['horizon']} | {m['folds']} | {v['lstm']} | {v['naive']} | "
            f"{v['seasonal_naive']} ({m['season']}) | {v['ets']} | "
            f"{m.get('baseline', 'seasonal')} | {v['seasonal_level alone']} | "
            f"{m['coverage']['lstm']:.1%} | {m['train_seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def full_tables(rows: dict[str, dict]) -> str:
    """Every model's MAE, RMSE, sMAPE and MASE per dataset (the tables of the reports)."""
    from longshort.forecast.report import metrics_table

    return "\n".join(f"### {name}\n\n{metrics_table(m)}\n" for name, m in rows.items())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", default=list(DATASETS), choices=list(DATASETS),
                   help="datasets to run (none: only rebuild summary.md)")  # fmt: skip
    p.add_argument("--budget", type=float, default=240.0, help="LSTM training seconds per series")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ensemble", type=int, default=5, help="networks averaged per series")
    a = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    rows = {}
    for name in a.only:
        rows[name] = run(name, a.budget, a.seed, a.ensemble)
    done = {}
    for name in DATASETS:  # the summary covers every dataset run so far
        path = OUT / name / "metrics.json"
        if path.is_file():
            done[name] = json.loads(path.read_text())
    head = (
        "# Forecasting benchmarks\n\nWritten by `python scripts/forecast_benchmarks.py` "
        "(`--only` with no names rebuilds this page from the metrics.json files). MASE, lower is "
        "better; train s: wall seconds of LSTM training (all ensemble members) on one thread; "
        "seasonal_level alone: the baseline the network corrects, without the network. Bold: "
        "the lowest MASE of the row, whichever model it is.\n\n"
    )
    (OUT / "summary.md").write_text(head + summary(done) + "\n" + full_tables(done))
    print(summary(done))


if __name__ == "__main__":
    main()
