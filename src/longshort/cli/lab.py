"""`longshort lab run|compare`: LSTM, GRU and plain RNN on the long-time-lag tasks.

longshort lab run --task adding --length 200 --model lstm [--budget-minutes M] [--out DIR]
longshort lab compare --task adding --lengths 50,100,200 --models lstm,gru,rnn --out DIR
longshort lab compare --task copy --recall 5 --lengths 10,20,50 --models lstm,rnn --out DIR
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from . import UserError, out_dir, seed_type

TASK_NAMES = ("adding", "copy", "temporal_order")
MODEL_NAMES = ("lstm", "gru", "rnn")


def _int_list(text: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers separated by commas, got {text!r}"
        ) from None
    if not vals or min(vals) < 1:
        raise argparse.ArgumentTypeError(f"lengths must be positive integers, got {text!r}")
    return vals


def _model_list(text: str) -> list[str]:
    vals = [v.strip().lower() for v in text.split(",") if v.strip()]
    bad = [v for v in vals if v not in MODEL_NAMES]
    if bad or not vals:
        raise argparse.ArgumentTypeError(
            f"models must be among {','.join(MODEL_NAMES)}, got {text!r}"
        )
    return vals


def _config(args: argparse.Namespace, **fields):
    from ..lab import LabConfig

    opts = {"task": args.task, "hidden_size": args.hidden_size, "batch_size": args.batch_size,
            "lr": args.lr, "budget_minutes": args.budget_minutes, "seed": args.seed,
            "budget_sequences": args.budget_sequences, "val_every": args.val_every,
            "val_size": args.val_size, "test_size": args.test_size, "lstm_init": args.lstm_init}  # fmt: skip
    if args.recall is not None:
        if args.task != "copy":
            raise UserError(f"--recall applies to --task copy only, not {args.task}")
        opts["recall"] = args.recall
    try:
        return LabConfig(**opts, **fields)
    except ValueError as e:
        raise UserError(str(e)) from None


def _printer(prefix: str):
    def show(p: dict) -> None:
        print(f"  {prefix} step {p['step']:6d}  seen {p['sequences_seen']:>9,}  "
              f"loss {p['loss']:.4g}  val success {100 * p['val_success']:5.1f} %, error "
              f"{p['val_error']:.4f}  "
              f"({p['seconds']:.0f} s)", flush=True)  # fmt: skip

    return show


def _what(task: str, model: str, length: int, recall: int | None) -> str:
    tail = f", recall {recall}" if task == "copy" and recall is not None else ""
    return f"{model.upper()} on {task}, T={length}{tail}"


def _row_line(r: dict) -> str:
    tail = f" recall={r['recall']}" if r.get("recall") is not None else ""
    return (f"{r['task']} {r['model']} T={r['length']}{tail}: test success {100 * r['success_rate']:.1f} % "
            f"(chance {100 * r['chance_success']:.1f} %), error {r['test_error']:.4f} "
            f"(chance {r['chance_error']:.4f}), {'solved' if r['solved'] else 'NOT solved'} after "
            f"{r['sequences_seen']:,} sequences, {r['seconds']:.0f} s")  # fmt: skip


def _run(args: argparse.Namespace) -> int:
    from ..lab import run

    cfg = _config(args, model=args.model, length=args.length)
    print(f"lab run: {_what(cfg.task, cfg.model, cfg.length, cfg.recall)} (hidden {cfg.hidden_size}), "
          f"budget {cfg.budget_sequences:,} sequences / {cfg.budget_minutes:g} min", flush=True)  # fmt: skip
    row = run(cfg, args.out, _printer(cfg.model), progress_bar=None if args.bar else False)
    print(_row_line(row))
    if args.out is not None:
        print(f"model and result.json written to {args.out}")
    if args.json:
        print(json.dumps(row))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from ..lab.report import compare

    base = _config(args)
    t0 = time.perf_counter()

    def start(cfg, i: int, n: int) -> None:
        print(f"[{i + 1}/{n}] {_what(cfg.task, cfg.model, cfg.length, cfg.recall)} "
              f"({time.perf_counter() - t0:.0f} s so far)", flush=True)  # fmt: skip

    rows = compare(base, args.lengths, args.models, args.out, start,
                   lambda r: print("  " + _row_line(r), flush=True),
                   None if args.quiet else _printer(""))  # fmt: skip
    print(f"{len(rows)} rows in {args.out}/results.json, results.png, results.md")
    sys.stdout.write("\n" + _markdown(rows))
    return 0


def _markdown(rows) -> str:
    from ..lab.report import markdown_table

    return markdown_table(rows)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", choices=TASK_NAMES, default="adding", help="the task (default adding)")
    p.add_argument(
        "--budget-minutes", type=float, default=30.0, help="training minutes per run (30)"
    )
    p.add_argument("--budget-sequences", type=int, default=1_000_000,
                   help="training sequences per run (1,000,000)")  # fmt: skip
    p.add_argument("--hidden-size", type=int, default=32, help="hidden units, all models (32)")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per step (32)")
    p.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate (0.01)")
    p.add_argument("--val-every", type=int, default=50, help="validate every N steps (50)")
    p.add_argument("--val-size", type=int, default=1000, help="validation sequences (1000)")
    p.add_argument("--test-size", type=int, default=2560, help="test sequences (2560)")
    p.add_argument("--lstm-init", choices=("chrono", "forget1", "uniform"), default="chrono",
                   help="LSTM gate-bias init (chrono)")  # fmt: skip
    p.add_argument("--seed", type=seed_type, default=0, help="random seed (0)")
    p.add_argument("--recall", type=int, default=None, metavar="N",
                   help="copy task: symbols to recall after the delay (10, Arjovsky et al.)")  # fmt: skip


def register(sub) -> None:
    """Add `longshort lab run` and `longshort lab compare`."""
    lab = sub.add_parser("lab", help="long-time-lag tasks: LSTM vs GRU vs RNN")
    lsub = lab.add_subparsers(dest="lab_command", metavar="<run|compare>", required=True)
    r = lsub.add_parser("run", help="train and test one model on one task and length")
    _common(r)
    r.add_argument("--length", type=int, required=True, help="the task's length T")
    r.add_argument("--model", choices=MODEL_NAMES, default="lstm", help="lstm, gru or rnn")
    r.add_argument("--out", default=None, type=out_dir, help="save the model and result.json here")
    r.add_argument("--json", action="store_true", help="also print the result row as JSON")
    r.add_argument("--bar", action="store_true", help="show a progress bar on a terminal")
    r.set_defaults(func=_run)
    c = lsub.add_parser("compare", help="a grid of lengths x models; resumable")
    _common(c)
    c.add_argument("--lengths", type=_int_list, required=True, help="e.g. 50,100,200,500,1000")
    c.add_argument("--models", type=_model_list, default=list(MODEL_NAMES), help="lstm,gru,rnn")
    c.add_argument(
        "--out", required=True, type=out_dir, help="directory for results.json/png/md and models"
    )
    c.add_argument("--quiet", action="store_true", help="no per-validation progress lines")
    c.set_defaults(func=_compare)
