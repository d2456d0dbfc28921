"""`longshort inspect gates|gradient-flow`: look inside trained recurrent nets.

longshort inspect gates --model DIR --input seq.npy|seq.csv [--out DIR]
    (DIR from longshort.io.save, `lab run`, `classify train` (the sequence is scaled as the
    classifier scales it) or `forecast train` (--input is then its data file, and the trace is
    of the window its LSTM reads for the forecast after the first series))
longshort inspect gradient-flow --task adding --length 200 --out DIR [--from LAB_DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .._validate import no_file
from . import UserError, out_dir, seed_type


def _model_dir(path: str) -> Path:
    """A model directory, or a lab run directory holding one in model/."""
    d = Path(path)
    if not (d / "config.json").is_file() and (d / "model" / "config.json").is_file():
        d = d / "model"
    if not (d / "config.json").is_file():
        raise UserError(f"{path} holds no saved model (config.json + model.safetensors); pass the "
                        "directory written by `longshort lab run --out DIR` or longshort.io.save")  # fmt: skip
    return d


def read_sequence(path: str, input_size: int) -> np.ndarray:
    """One input sequence (T, I) from .npy ((T, I) or (1, T, I)) or .csv (a row per step)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(no_file(p, "--input takes a .npy or .csv file"))
    if p.suffix == ".npy":
        try:
            x = np.load(p, allow_pickle=False)
        except ValueError as e:
            raise UserError(f"{path} is not a plain .npy array: {e}") from None
    elif p.suffix == ".csv":
        rows = [ln for ln in p.read_text().splitlines() if ln.strip()]
        try:
            float(rows[0].split(",")[0])
        except (ValueError, IndexError):
            rows = rows[1:]  # a header line
        try:
            x = np.array([[float(v) for v in ln.split(",")] for ln in rows])
        except ValueError as e:
            raise UserError(f"{path}: every row must hold {input_size} numbers ({e})") from None
    else:
        raise UserError(f"--input must be a .npy or .csv file, got {path}")
    if x.ndim == 3 and x.shape[0] == 1:
        x = x[0]
    if x.ndim == 1 and input_size == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] != input_size or x.shape[0] < 1:
        raise UserError(f"{path} holds an array of shape {x.shape}, but the model reads sequences "
                        f"(T, {input_size}): one row per step, {input_size} features")  # fmt: skip
    if not np.all(np.isfinite(x)):
        raise UserError(f"{path} contains NaN or infinite values")
    return x.astype(np.float32)


def _saved_format(d: Path) -> str | None:
    try:
        meta = json.loads((d / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return meta.get("format") if isinstance(meta, dict) else None


def _classifier_input(d: Path, path: str):
    """(its LSTM, the scaled sequence (T, F) it reads) for a `classify train` directory."""
    from ..models.classifier import SequenceClassifier

    clf = SequenceClassifier.load(d)
    x = read_sequence(path, len(clf.mean))
    return clf.net.rnn, clf._prepare(x[None])[0][0]


def _forecaster_input(d: Path, path: str):
    """(its LSTM, the window (C, I) it reads for the forecast after the first series in the
    CSV) for a `forecast train` directory; an ensemble shows its first member."""
    from ..forecast.frame import read_table
    from ..forecast.predict import lstm_window
    from ..models.forecaster import Forecaster

    if Path(path).suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise UserError(f"{d} holds a forecaster: --input takes its data file (CSV or Parquet, "
                        f"the columns it was trained on), got {path}")  # fmt: skip
    model = Forecaster.load(d)
    x, _ = lstm_window(model, read_table(path))
    net = model.net.members[0] if hasattr(model.net, "members") else model.net
    return net.lstm, x


def _gates(args: argparse.Namespace) -> int:
    from ..inspect import forget_stats, gate_trace, layer_names, plot_gate_heatmaps
    from ..io.store import load
    from ..models.classifier import FORMAT as CLASSIFIER
    from ..models.forecaster import FORMAT as FORECASTER
    from ..nn import LSTM

    d = _model_dir(args.model)
    fmt = _saved_format(d)
    if fmt in (CLASSIFIER, FORECASTER):
        model, x = (_classifier_input if fmt == CLASSIFIER else _forecaster_input)(d, args.input)
        rnn = model
    else:
        model = load(d)
        rnn = getattr(model, "rnn", model)
        x = None
    if not isinstance(rnn, LSTM):
        raise UserError(f"{d} holds a {type(rnn).__name__}; gate traces need an LSTM")
    if x is None:
        x = read_sequence(args.input, rnn.input_size)
    trace = gate_trace(model, x)
    names = layer_names(rnn)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    png = plot_gate_heatmaps(trace, out / "gates.png", names=names)
    arrays = {f"l{k}_{g}": v for k, layer in enumerate(trace) for g, v in layer.items()}
    np.savez(out / "gates.npz", x=x, **arrays)
    stats = [{"layer": n, **s} for n, s in zip(names, forget_stats(trace))]
    (out / "forget_stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    print(f"gate traces of {d} on {args.input} ({x.shape[0]} steps):")
    for s in stats:
        print(f"  {s['layer']}: forget gate mean {s['mean']:.3f}, f < 0.1 {100 * s['frac_low']:.1f} %"
              f", f > 0.9 {100 * s['frac_high']:.1f} %")  # fmt: skip
    print(f"wrote {png}, {out / 'gates.npz'} (keys l<layer>_<i|f|g|o|c|h>, x), "
          f"{out / 'forget_stats.json'}")  # fmt: skip
    return 0


def _flow(args: argparse.Namespace) -> int:
    from ..lab.flow import flow_models, flow_report

    out = Path(args.out)

    def training(cfg) -> None:
        if args.from_dir is not None:
            print(f"no saved {cfg.model.upper()} model for {cfg.task} T={cfg.length} in "
                  f"{args.from_dir}", flush=True)  # fmt: skip
        print(f"training {cfg.model.upper()} on {cfg.task} T={cfg.length} for at most "
              f"{cfg.budget_minutes:g} min / {cfg.budget_sequences:,} sequences", flush=True)  # fmt: skip

    if args.recall is not None and args.task != "copy":
        raise ValueError(f"--recall applies to --task copy only, not {args.task}")
    if args.from_dir is not None and not Path(args.from_dir).is_dir():
        raise ValueError(f"--from {args.from_dir}: no such directory (a `longshort lab compare` "
                         "output directory; leave --from out to train the models here)")  # fmt: skip
    models = flow_models(args.task, args.length, args.models, args.from_dir, out / "models",
                         args.train_minutes, args.train_sequences, args.seed, training,
                         recall=args.recall)  # fmt: skip
    rep = flow_report(models, args.task, args.length, out, args.batch, args.seed,
                      recall=args.recall)  # fmt: skip
    print(
        f"gradient flow on {args.task} T={args.length} ({args.batch} sequences): "
        "||dL/dh_t|| relative to the last step"
    )
    for cell, s in rep["models"].items():
        ratios = ", ".join(f"lag {k}: {v:.2e}" for k, v in s["dh_relative"].items())
        print(f"  {cell.upper()} ({s['source']}): {ratios}")
    print(f"wrote {rep['png']}, {rep['csv']}, {out / 'gradient_flow.json'}")
    return 0


def _positive(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return v


def register(sub) -> None:
    """Add `longshort inspect gates` and `longshort inspect gradient-flow`."""
    ins = sub.add_parser("inspect", help="gate traces and gradient flow of trained models")
    isub = ins.add_subparsers(
        dest="inspect_command", metavar="<gates|gradient-flow>", required=True
    )
    g = isub.add_parser("gates", help="gate heatmaps, arrays and forget-gate stats of an LSTM")
    g.add_argument("--model", required=True,
                   help="a saved model directory: longshort.io.save, a lab run, "
                        "`classify train` or `forecast train`")  # fmt: skip
    g.add_argument("--input", required=True,
                   help="one sequence: .npy (T, I) or .csv (row per step); for a forecaster "
                        "its data file (the window its LSTM reads for the forecast)")  # fmt: skip
    g.add_argument(
        "--out", default="gates", type=out_dir, help="output directory (default ./gates)"
    )
    g.set_defaults(func=_gates)
    f = isub.add_parser("gradient-flow", help="||dL/dh_t|| against the lag, LSTM beside RNN")
    f.add_argument("--task", choices=("adding", "copy", "temporal_order"), default="adding")
    f.add_argument("--length", type=_positive, required=True, help="the task's length T")
    f.add_argument("--out", required=True, type=out_dir, help="output directory")
    f.add_argument("--from", dest="from_dir", default=None,
                   help="a `lab compare` directory whose saved models to use")  # fmt: skip
    f.add_argument("--models", type=lambda s: s.split(","), default=["lstm", "rnn"],
                   help="cells to compare (default lstm,rnn)")  # fmt: skip
    f.add_argument("--train-minutes", type=float, default=2.0, help="training cap per model (2)")
    f.add_argument("--train-sequences", type=_positive, default=50_000, help="cap (50,000)")
    f.add_argument("--batch", type=_positive, default=64, help="sequences measured (64)")
    f.add_argument("--seed", type=seed_type, default=0, help="random seed (0)")
    f.add_argument("--recall", type=_positive, default=None,
                   help="copy task: symbols recalled (default 10, as in lab --recall)")  # fmt: skip
    f.set_defaults(func=_flow)
