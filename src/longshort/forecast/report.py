"""What a backtest writes: metrics.json, forecasts.csv, forecast.png and a Markdown report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

LABELS = {"lstm": "LSTM (longshort)", "naive": "naive", "seasonal_naive": "seasonal naive",
          "ets": "ETS (Holt-Winters)"}  # fmt: skip


def metrics_table(metrics: dict) -> str:
    """The Markdown table of MAE, RMSE, sMAPE and MASE per model."""
    lines = ["| model | MAE | RMSE | sMAPE % | MASE |", "|---|---:|---:|---:|---:|"]
    for name, m in metrics["models"].items():
        lines.append(f"| {LABELS.get(name, name)} | {m['mae']:.4g} | {m['rmse']:.4g} | "
                     f"{m['smape']:.2f} | {m['mase']:.3f} |")  # fmt: skip
    return "\n".join(lines)


def _epochs(e) -> str:
    """'12 epochs', or for an ensemble '5 networks, 9-14 epochs each'."""
    if isinstance(e, list | tuple):
        return f"{len(e)} networks, {min(e):g}-{max(e):g} epochs each"
    return f"{e:g} epochs"


def markdown(metrics: dict, title: str, plot: str | None = "forecast.png") -> str:
    """A short report: setup, the table, interval coverage, training time, the plot."""
    m, cov = metrics, metrics["coverage"]
    lstm, snaive = m["models"]["lstm"]["mase"], m["models"]["seasonal_naive"]["mase"]
    verdict = "below" if lstm < snaive else "not below"
    lines = [
        f"# {title}",
        "",
        f"Rolling-origin backtest: {m['folds']} folds of {m['horizon']} steps (origins "
        f"{m['step']} steps apart), {m['series']} series, frequency {m['freq']}, seasonal "
        f"period {m['season']}. All models forecast from the same origins with the history up "
        "to the origin only; MASE is scaled by the in-sample seasonal naive error.",
        "",
        metrics_table(m),
        "",
        f"LSTM MASE {lstm:.3f} is {verdict} the seasonal naive's {snaive:.3f}. "
        f"The {cov['nominal']:.0%} interval (quantiles {cov['interval'][0]:g}-"
        f"{cov['interval'][1]:g}) covered {cov['lstm']:.1%} of the truths "
        f"({cov['below_low']:.1%} below, {cov['above_high']:.1%} above).",
        f"LSTM training: {m['train_seconds']:.1f} s ({_epochs(m['epochs'])}, stopped by "
        f"{m['train_stop']}); the network corrects the {m.get('baseline', 'seasonal')} "
        "baseline.",
    ]
    if plot:
        lines += ["", f"![forecast]({plot})"]
    return "\n".join(lines) + "\n"


def plot(result, path: Path, title: str, max_history: int | None = None) -> Path:
    """Write `figure(result, title, max_history)` as a PNG."""
    import matplotlib.pyplot as plt

    fig = figure(result, title, max_history)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def figure(result, title: str, max_history: int | None = None):
    """History, truth, LSTM median and interval of every fold of the first series, with the
    seasonal naive and ETS medians dashed (a matplotlib Figure; close it when done)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fc = result.forecasts
    key = fc["id"].iloc[0]
    g = fc[fc["id"] == key]
    s = next(s for s in result.history if s.key == key)
    first = int(np.searchsorted(np.asarray(s.time), np.asarray(g["time"].iloc[0])))
    h = max(0, first - (max_history or 3 * int(g["step"].max())))
    fig, ax = plt.subplots(figsize=(11, 4))
    ax.plot(s.time[h:], s.y[h:], color="0.35", lw=0.9, label="observed")
    qs = [c for c in fc.columns if c.startswith("lstm_q")]
    for k, f in g.groupby("fold"):
        lab = k == 0
        ax.fill_between(f["time"], f[qs[0]], f[qs[-1]], color="tab:blue", alpha=0.25,
                        label="LSTM interval" if lab else None)  # fmt: skip
        ax.plot(
            f["time"], f["lstm"], color="tab:blue", lw=1.4, label="LSTM median" if lab else None
        )
        ax.plot(f["time"], f["seasonal_naive"], color="tab:orange", lw=0.9, ls="--",
                label="seasonal naive" if lab else None)  # fmt: skip
        if f["ets"].notna().all():
            ax.plot(f["time"], f["ets"], color="tab:green", lw=0.9, ls=":",
                    label="ETS" if lab else None)  # fmt: skip
        ax.axvline(f["time"].iloc[0], color="0.8", lw=0.6)
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8, ncol=5)
    if isinstance(s.time, pd.DatetimeIndex):
        _date_ticks(ax)
    fig.tight_layout()
    return fig


def _date_ticks(ax) -> None:
    """At most 8 evenly spaced date ticks with short labels. The default locator restarts its
    day count at each month (ticks on the 31st and the 1st) and writes the full date at each, so
    the labels at a month's end overlapped."""
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=8, interval_multiples=False)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def write_backtest(result, out: Path, title: str) -> dict[str, Path]:
    """metrics.json, forecasts.csv, forecast.png and report.md in `out` (created)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": out / "metrics.json", "forecasts": out / "forecasts.csv",
             "plot": out / "forecast.png", "report": out / "report.md"}  # fmt: skip
    paths["metrics"].write_text(json.dumps(result.metrics, indent=2) + "\n")
    result.forecasts.to_csv(paths["forecasts"], index=False)
    plot(result, paths["plot"], title)
    paths["report"].write_text(markdown(result.metrics, title))
    return paths
