"""`longshort demo`: the forecaster on the bundled sunspot series."""

from __future__ import annotations

import argparse
import time


def _demo(args: argparse.Namespace) -> int:
    from ..data import load_sunspots
    from ..models import Forecaster, ForecasterConfig

    years, values = load_sunspots()
    cfg = ForecasterConfig(epochs=args.epochs, seed=args.seed)
    print(
        f"longshort demo: yearly sunspots {years[0]}-{years[-1]} ({len(values)} values, NOAA, "
        f"public domain)\nLSTM(1 -> {cfg.hidden_size}) + Linear, window {cfg.window} years, "
        f"one-step-ahead; split train | validation {cfg.val_fraction:.0%} | test "
        f"{cfg.test_fraction:.0%}"
    )
    t0 = time.perf_counter()

    def on_epoch(r: dict) -> None:
        if r["epoch"] == 1 or r["epoch"] % 10 == 0 or r["epoch"] == cfg.epochs:
            print(
                f"  epoch {r['epoch']:4d}/{cfg.epochs}  train mse {r['train_mse']:.4f}  "
                f"val rmse {r['val_rmse']:6.2f}  ({time.perf_counter() - t0:5.1f} s)",
                flush=True,
            )

    model = Forecaster(cfg)
    rep = model.fit(values, on_epoch=on_epoch)
    test = len(values) - rep["n"]
    print(
        f"\ntest, years {years[test]}-{years[-1]} ({rep['n']} one-step forecasts, never seen "
        "in training or model selection):"
    )
    print(f"  {'model':<30}{'RMSE':>8}{'MAE':>8}")
    for name, key in (
        ("persistence (naive)", "naive_"),
        (f"linear AR({cfg.window})", "ar_"),
        ("longshort LSTM", ""),
    ):
        print(f"  {name:<30}{rep[key + 'rmse']:8.2f}{rep[key + 'mae']:8.2f}")
    gain = 1 - rep["rmse"] / rep["naive_rmse"]
    print(f"  LSTM RMSE is {gain:.0%} below persistence; {time.perf_counter() - t0:.1f} s total")
    return 0


def register(sub) -> None:
    """Add `longshort demo` to the subcommand parser."""
    d = sub.add_parser("demo", help="train an LSTM forecaster on bundled real data")
    d.add_argument("--epochs", type=int, default=150, help="training epochs (default 150)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.set_defaults(func=_demo)
