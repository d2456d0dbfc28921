"""What a backtest writes for people: the plot's date ticks and the benchmark summary's bolding."""

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from longshort.forecast.backtest import BacktestResult
from longshort.forecast.frame import Series
from longshort.forecast.report import figure

ROOT = Path(__file__).resolve().parent.parent


def _result(start: str, periods: int, freq: str, horizon: int, folds: int) -> BacktestResult:
    """A hand-made backtest of one series: the last `folds` x `horizon` steps forecast."""
    t = pd.date_range(start, periods=periods, freq=freq)
    y = np.sin(np.arange(periods) / 4.0)
    s = Series("series", t, y, np.ones(periods, bool), np.zeros((periods, 0)),
               np.zeros((periods, 0)))  # fmt: skip
    rows = []
    for k in range(folds):
        o = periods - (folds - k) * horizon
        f = y[o - 1] * np.ones(horizon)
        rows.append(pd.DataFrame({"id": "series", "fold": k, "time": t[o : o + horizon],
                                  "step": np.arange(1, horizon + 1), "truth": y[o : o + horizon],
                                  "lstm": f, "lstm_q0.1": f - 0.1, "lstm_q0.9": f + 0.1,
                                  "seasonal_naive": f, "ets": f}))  # fmt: skip
    return BacktestResult({}, pd.concat(rows, ignore_index=True), [s])


@pytest.mark.parametrize(
    "start, periods, freq, horizon, folds",
    [
        ("2010-12-10", 24 * 22 + 1, "h", 24, 14),  # Seattle: hourly, ends on 2011-01-01 00:00
        ("2000-07-30", 48 * 30, "30min", 48, 7),  # electricity: half-hourly across a month end
        ("1958-03-29", 52 * 8, "W-SAT", 52, 5),  # CO2: weekly over years
    ],
)  # fmt: skip
def test_plot_date_labels_do_not_overlap(start, periods, freq, horizon, folds):
    """The default locator put ticks on the 31st and the 1st with full dates: their labels
    overlapped at the end of the Seattle plot."""
    import matplotlib.pyplot as plt

    fig = figure(_result(start, periods, freq, horizon, folds), "title")
    try:
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        ax = fig.axes[0]
        lo, hi = ax.get_xlim()
        boxes = sorted(
            (lab.get_window_extent(r) for lab in ax.get_xticklabels()
             if lab.get_text() and lo <= lab.get_position()[0] <= hi),
            key=lambda b: b.x0,
        )  # fmt: skip
        assert len(boxes) >= 3
        for a, b in zip(boxes, boxes[1:], strict=False):
            assert a.x1 < b.x0, "tick labels overlap"
    finally:
        plt.close(fig)


def _benchmarks():
    spec = importlib.util.spec_from_file_location(
        "forecast_benchmarks", ROOT / "scripts" / "forecast_benchmarks.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_summary_bolds_the_lowest_mase_of_each_row():
    """Seattle's row bolded the LSTM's 0.440 although ETS had 0.433."""
    bold = _benchmarks().bold_best
    row = bold({"lstm": 0.4401, "naive": 8.521, "ets": 0.4329, "alone": 0.2951})
    assert row == {"lstm": "0.440", "naive": "8.521", "ets": "0.433", "alone": "**0.295**"}
    assert bold({"lstm": 0.440, "ets": 0.433})["ets"] == "**0.433**"
    assert bold({"a": 0.5, "b": 0.5004, "c": float("nan")}) == {"a": "**0.500**", "b": "**0.500**",
                                                                "c": "nan"}  # fmt: skip


def test_committed_summary_bolds_only_row_minima():
    """Every bold value in docs/forecast/summary.md's table is the lowest MASE of its row."""
    lines = (ROOT / "docs" / "forecast" / "summary.md").read_text().splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("| dataset |"))
    cols = [c.strip() for c in lines[head].strip("|").split("|")]
    mase = [cols.index(c) for c in ("LSTM MASE", "naive", "seasonal naive (m)", "ETS",
                                    "seasonal_level alone")]  # fmt: skip
    rows = list(itertools.takewhile(lambda line: line.startswith("|"), lines[head + 2 :]))
    assert len(rows) == 4
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        values = {j: float(cells[j].strip("*").split()[0]) for j in mase}
        best = min(values.values())
        assert {j for j in mase if cells[j].startswith("**")} == {
            j for j, v in values.items() if v == best
        }, line


def test_user_facing_help_names_no_internal_references():
    help_text = _benchmarks().__doc__
    assert "issue" not in help_text.lower()
