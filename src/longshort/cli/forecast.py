"""`longshort forecast train|predict|backtest`: the Forecaster on CSV or Parquet tables.

    longshort forecast train --data F.csv --time COL --target COL [--id COL] [--covariates A,B]
                             [--future-covariates C,D] --horizon H --out DIR
    longshort forecast predict --model DIR --data F.csv --out FORECAST.csv
    longshort forecast backtest --data F.csv --time COL --target COL --horizon H --folds K --out DIR

Warnings from the data checks (gaps, missing values) are printed as `longshort: warning: ...`.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from . import UserError, out_dir, out_file, seed_type


def _list(text: str | None) -> list[str]:
    return [c.strip() for c in (text or "").split(",") if c.strip()]


def _quantiles(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(q) for q in _list(text))
    except ValueError:
        raise UserError(f"--quantiles must be numbers like 0.1,0.5,0.9, got {text!r}") from None


def _model(args: argparse.Namespace):
    from ..models.forecaster import Forecaster

    for flag, value in (("--horizon", args.horizon), ("--context", args.context),
                        ("--hidden-size", args.hidden_size), ("--layers", args.layers),
                        ("--ensemble", args.ensemble), ("--epochs", args.epochs),
                        ("--season", args.season)):  # fmt: skip
        if value is not None and value < 1:  # None: not given (context, season: the default)
            hint = {"--context": " (leave it out for 3 x horizon)",
                    "--season": " (leave it out to detect it)"}.get(flag, "")  # fmt: skip
            raise UserError(f"{flag} must be a positive integer, got {value}{hint}")
    context = max(3 * args.horizon, 8) if args.context is None else args.context
    return Forecaster(
        horizon=args.horizon, context=context, hidden_size=args.hidden_size,
        num_layers=args.layers, quantiles=_quantiles(args.quantiles), strategy=args.strategy,
        baseline=args.baseline, ensemble=args.ensemble,
        calendar=args.calendar, season=args.season, freq=args.freq, epochs=args.epochs,
        max_seconds=args.max_seconds, seed=args.seed,
    )  # fmt: skip


def _columns(args: argparse.Namespace) -> dict:
    return {"time": args.time, "target": args.target, "id": args.id,
            "covariates": _list(args.covariates),
            "future_covariates": _list(args.future_covariates)}  # fmt: skip


def _warned(fn):
    """Run fn() printing each data warning as one line on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            return fn()
        finally:
            for w in caught:
                if issubclass(w.category, UserWarning):
                    print(f"longshort: warning: {w.message}", file=sys.stderr)


STOPS = {
    "epochs": "the epoch limit",
    "early_stopping": "early stopping",
    "max_seconds": "the time budget",
    "max_steps": "the step limit",
}


def _train(args: argparse.Namespace) -> int:
    from ..forecast import read_table

    df = read_table(args.data)
    model = _warned(lambda: _model(args).fit(df, **_columns(args)))
    model.save(args.out)
    rs = model.train_results or [model.train_result]
    ep = [r.epoch for r in rs]
    runs = (
        f"{ep[0]:g} epochs"
        if len(rs) == 1
        else f"{len(rs)} networks, {min(ep):g}-{max(ep):g} epochs"
    )
    stops = ", ".join(sorted({STOPS.get(r.stop_reason, r.stop_reason) for r in rs}))
    print(f"trained in {model.fit_seconds:.1f} s ({runs}; stopped by {stops}); baseline "
          f"{model.window.baseline}; frequency {model.freq}, season {model.season}; "
          f"model written to {args.out}")  # fmt: skip
    return 0


def _predict(args: argparse.Namespace) -> int:
    from ..forecast import read_table
    from ..models.forecaster import Forecaster

    model = Forecaster.load(args.model)
    df = read_table(args.data)
    out = _warned(lambda: model.predict(df))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.out, index=False)
    print(f"{len(out)} forecasts written to {args.out}")
    return 0


def _backtest(args: argparse.Namespace) -> int:
    from ..forecast import read_table
    from ..forecast.report import metrics_table, write_backtest

    if args.folds < 1:
        raise UserError(f"--folds must be a positive integer, got {args.folds}")
    if args.step is not None and args.step < 1:
        raise UserError(
            f"--step must be a positive integer, got {args.step} (leave it out for the horizon)"
        )
    df = read_table(args.data)
    model = _model(args)
    res = _warned(lambda: model.backtest(df, args.folds, args.step, ets=not args.no_ets,
                                         **_columns(args)))  # fmt: skip
    paths = write_backtest(
        res, Path(args.out), f"Backtest of {args.target} ({Path(args.data).name})"
    )
    cov = res.metrics["coverage"]
    print(metrics_table(res.metrics))
    print(f"{cov['nominal']:.0%} interval coverage {cov['lstm']:.1%}; LSTM trained in "
          f"{res.metrics['train_seconds']:.1f} s; wrote {', '.join(str(p) for p in paths.values())}")  # fmt: skip
    return 0


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="CSV or Parquet file (.parquet)")
    p.add_argument("--time", required=True, help="timestamp column (dates or integers)")
    p.add_argument("--target", required=True, help="numeric column to forecast")
    p.add_argument("--id", help="series id column (several series, one global model)")
    p.add_argument("--covariates", help="past-only covariate columns, comma separated")
    p.add_argument("--future-covariates", help="known-future covariate columns, comma separated")
    p.add_argument("--freq", help="frequency (pandas alias such as 30min, h, D, W, MS or an "
                   "integer step); default: inferred")  # fmt: skip
    p.add_argument("--horizon", type=int, required=True, help="steps to forecast")
    p.add_argument(
        "--context", type=int, help="steps the LSTM reads (default 3 x horizon, at least 8)"
    )
    p.add_argument("--hidden-size", type=int, default=32)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--quantiles", default="0.1,0.5,0.9")
    p.add_argument("--strategy", choices=["direct", "recursive"], default="direct")
    p.add_argument(
        "--baseline",
        choices=["seasonal", "seasonal_level", "last", "none", "auto"],
        default="seasonal",
        help="the network forecasts the residual from this (default seasonal naive; "
        "seasonal_level: plus the last seasonal change; auto: the better of the two on the "
        "validation part)",
    )
    p.add_argument("--ensemble", type=int, default=1, help="networks averaged (seeds)")
    p.add_argument("--calendar", action="store_true", help="add calendar features")
    p.add_argument("--season", type=int, help="seasonal period (default: detected)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--max-seconds", type=float, help="training time budget")
    p.add_argument("--seed", type=seed_type, default=0)


def register(sub) -> None:
    """Add `longshort forecast train|predict|backtest` to the subcommand parser."""
    f = sub.add_parser("forecast", help="train, predict and backtest an LSTM forecaster")
    fs = f.add_subparsers(dest="forecast_command", metavar="<train|predict|backtest>")
    f.set_defaults(func=lambda a: (f.print_help(), 2)[1])
    t = fs.add_parser("train", help="train a forecaster on a table and save it")
    _data_args(t)
    t.add_argument("--out", required=True, type=out_dir, help="model directory to write")
    t.set_defaults(func=_train)
    p = fs.add_parser("predict", help="forecast the steps after each series' last value")
    p.add_argument("--model", required=True, help="directory written by `forecast train`")
    p.add_argument("--data", required=True, help="history (and future covariates), CSV/Parquet")
    p.add_argument("--out", required=True, type=out_file, help="forecast CSV to write")
    p.set_defaults(func=_predict)
    b = fs.add_parser("backtest", help="rolling-origin backtest against the baselines")
    _data_args(b)
    b.add_argument("--folds", type=int, required=True, help="forecast origins")
    b.add_argument("--step", type=int, help="steps between origins (default: horizon)")
    b.add_argument("--no-ets", action="store_true", help="skip the ETS baseline")
    b.add_argument(
        "--out", required=True, type=out_dir, help="directory for metrics.json, forecast.png, ..."
    )
    b.set_defaults(func=_backtest)
