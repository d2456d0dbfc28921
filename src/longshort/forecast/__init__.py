"""Forecasting real time series from tables: frames, features, baselines, backtests, reports.

The model itself is longshort.models.Forecaster (also `longshort.Forecaster`); this package holds
what it reads and writes: `prepare` (table -> regular series), `features` (scaling, calendar,
windows), `baselines` (naive, seasonal naive, ETS), `backtest` (rolling origin), `metrics`,
`report` (metrics.json, Markdown, plots).
"""

from .backtest import BacktestResult, backtest
from .frame import read_table
from .prepare import prepare

__all__ = ["BacktestResult", "backtest", "prepare", "read_table"]
