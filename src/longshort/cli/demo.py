"""`longshort demo`: a backtested LSTM forecast of the bundled yearly sunspots, with baselines."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from . import out_dir, seed_type


def _demo(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..data import load_sunspots
    from ..forecast.report import metrics_table, write_backtest
    from ..models.forecaster import Forecaster

    years, values = load_sunspots()
    df = pd.DataFrame({"year": years, "sunspots": values})
    h = 11  # one solar cycle ahead
    model = Forecaster(horizon=h, context=3 * h, hidden_size=32, epochs=args.epochs,
                       max_seconds=args.max_seconds, seed=args.seed)  # fmt: skip
    print(
        f"longshort demo: yearly sunspots {years[0]}-{years[-1]} ({len(values)} values, NOAA, "
        f"public domain)\nLSTM({model.config.hidden_size}) quantile forecaster, {h} years ahead "
        f"from {3 * h} years of context; rolling-origin backtest, {args.folds} folds, against "
        "naive, seasonal naive and ETS on the same origins",
        flush=True,
    )
    t0 = time.perf_counter()
    res = model.backtest(df, folds=args.folds, step=h, time="year", target="sunspots")
    out = Path(args.out)
    paths = write_backtest(res, out, f"Yearly sunspots, {h} years ahead ({args.folds} folds)")
    m = res.metrics
    cov = m["coverage"]
    print(f"\nseasonal period detected: {m['season']} years\n")
    print(metrics_table(m))
    lstm, snaive = m["models"]["lstm"]["mase"], m["models"]["seasonal_naive"]["mase"]
    print(
        f"\nLSTM MASE {lstm:.3f} vs seasonal naive {snaive:.3f} "
        f"({'better' if lstm < snaive else 'worse'}); {cov['nominal']:.0%} interval covered "
        f"{cov['lstm']:.0%} of the truths; training {m['train_seconds']:.1f} s, "
        f"total {time.perf_counter() - t0:.1f} s\nwrote {paths['metrics']}, {paths['plot']}, "
        f"{paths['report']}"
    )
    return 0


def register(sub) -> None:
    """Add `longshort demo` to the subcommand parser."""
    d = sub.add_parser("demo", help="backtest an LSTM forecaster on bundled real data")
    d.add_argument(
        "--out", default="demo-output", type=out_dir, help="output directory (default demo-output)"
    )
    d.add_argument("--folds", type=int, default=5, help="backtest folds (default 5)")
    d.add_argument("--epochs", type=int, default=200, help="maximum epochs (default 200)")
    d.add_argument("--max-seconds", type=float, default=90.0, help="training budget (default 90)")
    d.add_argument("--seed", type=seed_type, default=0, help="random seed (default 0)")
    d.set_defaults(func=_demo)
