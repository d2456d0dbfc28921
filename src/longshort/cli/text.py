"""`longshort text train|eval|sample|cells`: language models on any UTF-8 text file."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from . import Interrupted, out_dir, out_file, seed_type

CHECKPOINT = "checkpoint.safetensors"


# `text train` options saved with a run (in text_model.json's "model" or "train"): their parser
# default is None, so a resumed run can tell a setting the user gave from one left out
MODEL_OPTIONS = {  # option dest -> (key in "model", default for a new run)
    "level": ("level", "char"),
    "hidden_size": ("hidden_size", 256),
    "layers": ("num_layers", 1),
    "tie": ("tie_weights", False),
    "forget_bias": ("forget_bias", None),
    **{
        k: (k, 0.0)
        for k in (
            "dropout_input",
            "dropout_hidden",
            "dropout_output",
            "weight_drop",
            "embedding_dropout",
            "ar",
            "tar",
        )
    },  # fmt: skip
}
TRAIN_OPTIONS = {"lanes": 32, "bptt": 100, "variable_bptt": False, "optimizer": "adam",
                 "lr": 2e-3, "clip": 1.0, "seed": 0}  # fmt: skip


def _resume_conflicts(args, meta: dict) -> list[str]:
    """The saved settings that `args` gives other values: ["--hidden-size 128 (saved 64)", ...]."""
    given = [(d, meta["model"][k]) for d, (k, _) in MODEL_OPTIONS.items()]
    given += [("embedding_size", meta["model"]["embedding_size"])]
    given += [(d, meta["train"][d]) for d in TRAIN_OPTIONS]
    return [f"--{d.replace('_', '-')} {getattr(args, d)} (saved {saved})" for d, saved in given
            if getattr(args, d) is not None and getattr(args, d) != saved]  # fmt: skip


def _fill_defaults(args) -> None:
    """A new run: every saved option left out takes its default."""
    for d, default in [*((d, v) for d, (_, v) in MODEL_OPTIONS.items()), *TRAIN_OPTIONS.items()]:
        if getattr(args, d) is None:
            setattr(args, d, default)


def _fresh_or_resume(out: Path, text: str, args):
    """(model, vocab, meta, resuming) for `text train`: a new model, or the one in `out`."""
    from ..models.language_model import LanguageModelConfig
    from ..text.vocab import Vocab
    from ..text.workflow import build_model, read_meta, split_text, text_sha256

    sha = text_sha256(text)
    if (out / CHECKPOINT).is_file():
        meta = read_meta(out)
        if meta["data"]["sha256"] != sha:
            raise ValueError(f"{out} was trained on another text; use a new --out to start afresh")
        bad = _resume_conflicts(args, meta)
        if bad:
            raise ValueError(f"{out} holds a run saved with other settings: {', '.join(bad)}; "
                             "leave these options out to resume it, or use a new --out to start "
                             "afresh")  # fmt: skip
        vocab = Vocab.load(out / "vocab.json")
        return build_model(LanguageModelConfig(**meta["model"]), vocab), vocab, meta, True
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        read_meta(out)  # a one-line error unless it is ours
    _fill_defaults(args)
    train_text = split_text(text, args.val_fraction, args.test_fraction)[0]
    word = args.level == "word"
    max_size = args.max_vocab or (10000 if word else None)
    vocab = Vocab.build(train_text, args.level, args.min_count, max_size)
    emb = args.embedding_size or (200 if word else 64)
    cfg = LanguageModelConfig(args.level, len(vocab), emb, args.hidden_size, args.layers,
                              args.tie, args.dropout_input, args.dropout_hidden,
                              args.dropout_output, args.weight_drop, args.embedding_dropout,
                              args.ar, args.tar, forget_bias=args.forget_bias,
                              seed=args.seed)  # fmt: skip
    meta = {
        "data": {"path": str(args.data), "sha256": sha, "chars": len(text),
                 "val_fraction": args.val_fraction, "test_fraction": args.test_fraction},
        "train": {k: getattr(args, k) for k in ("lanes", "bptt", "variable_bptt", "optimizer",
                                                "lr", "clip", "seed")},
    }  # fmt: skip
    return build_model(cfg, vocab), vocab, meta, False


def _show(nats: float | None, unit: str) -> str:
    """Nats per token as bits per character ("bpc") or perplexity ("ppl")."""
    if nats is None:
        return "-"
    return f"{math.exp(nats) if unit == 'ppl' else nats / math.log(2):.3f}"


def _reporter(args, unit: str, save):
    """(on_row, bar): a progress bar in steps (or seconds) showing train/val bpc or perplexity,
    a log line per metrics row, and the model saved after each validation."""
    from tqdm import tqdm

    by_steps = args.steps is not None
    total = args.steps if by_steps else round(args.minutes * 60)
    bar = tqdm(total=total, unit="step" if by_steps else "s", file=sys.stderr,
               disable=not (args.progress and sys.stderr.isatty()), dynamic_ncols=True)  # fmt: skip

    def on_row(row):
        if row.get("val") is not None:
            save()
            bar.set_postfix_str(f"val {unit} {_show(row['val'], unit)}", refresh=False)
        bar.n = min(row["step"] if by_steps else int(row["seconds"]), total)
        bar.set_description(f"train {unit} {_show(row['loss'], unit)}", refresh=False)
        bar.refresh()
        tqdm.write(f"step {row['step']:6d}  epoch {row['epoch']:.3f}  train {unit} "
                   f"{_show(row['loss'], unit)}  val {unit} {_show(row.get('val'), unit)}  "
                   f"{row['seconds']:.0f} s", file=sys.stderr)  # fmt: skip

    return on_row, bar


SCHEDULE_FIELDS = ("schedule", "lr_gamma", "lr_step_size", "plateau_patience", "lr_min", "lr_t_max")
SCHEDULE_DEFAULTS = {"lr_gamma": 0.5, "lr_step_size": 1000, "plateau_patience": 1}


def _given(args) -> dict:
    """The schedule options as TrainConfig fields, None where left out."""
    return {"lr_gamma": args.lr_gamma, "lr_step_size": args.lr_step,
            "plateau_patience": args.patience}  # fmt: skip


def _saved_schedule(out: Path, args) -> dict:
    """The lr schedule a resumed run started with (its train_config.json), {} for none: a rerun
    without --schedule keeps it, as it keeps the model's sizes; --lr-gamma, --lr-step and
    --patience given on the rerun still apply. A cosine schedule keeps its period (the first
    run's --steps); a rerun with a larger --steps is told that the lr rises again past it."""
    try:
        saved = json.loads((out / "train_config.json").read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(saved, dict) or saved.get("schedule") in (None, "none"):
        return {}
    fields = {k: saved[k] for k in SCHEDULE_FIELDS if k in saved}
    fields.update({k: v for k, v in _given(args).items() if v is not None})
    if fields["schedule"] == "cosine" and fields.get("lr_t_max") is None:
        period = saved.get("max_steps")
        if args.steps != period:  # the same --steps keeps the same setting (no warning)
            fields["lr_t_max"] = period
    period = fields.get("lr_t_max") or saved.get("max_steps")
    if fields["schedule"] == "cosine" and args.steps is not None and period and args.steps > period:
        print(f"note: the cosine schedule anneals over the first run's {period} steps; past them "
              "its lr rises again. To anneal over the new budget instead, rerun with --schedule "
              "cosine", file=sys.stderr)  # fmt: skip
    return fields


def _schedule(args, out: Path, resuming: bool) -> dict:
    """TrainConfig fields of --schedule: "plateau" halves lr after --patience flat validations.
    Left out on a resumed run: the schedule the run started with."""
    if args.schedule is None:
        return _saved_schedule(out, args) if resuming else {}
    if args.schedule == "none":
        return {}
    if args.schedule == "cosine" and args.steps is None:
        raise ValueError("--schedule cosine anneals over --steps; give --steps (or use plateau)")
    opts = {k: SCHEDULE_DEFAULTS[k] if v is None else v for k, v in _given(args).items()}
    return {"schedule": args.schedule, **opts, "lr_min": 0.0}


def _train(args: argparse.Namespace) -> int:
    from ..text.vocab import read_text
    from ..text.workflow import finish_training, make_trainer, save_model, split_text
    from ..train import TrainConfig

    if args.minutes is None and args.steps is None:
        raise ValueError("give a budget: --minutes M or --steps N")
    if (args.minutes is not None and not args.minutes > 0) or (args.steps is not None
                                                               and args.steps < 1):  # fmt: skip
        raise ValueError("the budget must be positive: --minutes M > 0 or --steps N >= 1")
    text, out = read_text(args.data), Path(args.out)
    model, vocab, meta, resuming = _fresh_or_resume(out, text, args)
    d, t = meta["data"], meta["train"]
    train_t, val_t, _ = split_text(text, d["val_fraction"], d["test_fraction"])
    train_ids, val_ids = vocab.encode(train_t), vocab.encode(val_t)
    word = model.config.level == "word"
    cfg = TrainConfig(epochs=None, max_steps=args.steps,
                      max_seconds=None if args.minutes is None else args.minutes * 60,
                      optimizer="sgd" if t["optimizer"] == "sgd" else "adam", lr=t["lr"],
                      clip_norm=t["clip"], val_every=args.val_every, seed=t["seed"],
                      log_every=args.log_every, metrics_path=str(out / "metrics.jsonl"),
                      checkpoint_dir=str(out), checkpoint_every=args.checkpoint_every,
                      progress=False,
                      restore_best=t["optimizer"] != "ntasgd",
                      **_schedule(args, out, resuming))  # fmt: skip
    meta = {k: v for k, v in meta.items() if k != "format"}
    if not resuming:
        save_model(model, vocab, out, meta)
    unit = "ppl" if word else "bpc"
    on_row, bar = _reporter(args, unit, lambda: save_model(model, vocab, out, meta))
    opt = {**t, "optimizer": t["optimizer"], "val_tokens": args.val_tokens}
    trainer = make_trainer(model, train_ids, val_ids, cfg, opt, on_row)
    print(f"text train: {model.config.level} level, vocabulary {len(vocab)}, "
          f"{model.num_parameters():,} parameters, {len(train_ids):,} training tokens"
          + (f", resuming from the checkpoint in {out}" if resuming else ""), flush=True)  # fmt: skip
    try:
        res = trainer.fit()
    except KeyboardInterrupt:
        raise Interrupted(_interrupted(trainer.step, out)) from None
    finally:
        bar.close()
    finish_training(trainer)
    save_model(model, vocab, out, meta)
    best = "-" if res.best_val is None else _show(res.best_val, unit)
    print(f"stopped ({res.stop_reason}) at step {res.step}, epoch {res.epoch:.3f}, "
          f"{res.seconds:.0f} s of training; best val {unit} {best}; model in {out}")  # fmt: skip
    return 0


def _interrupted(step: int, out: Path) -> str:
    """Where a Ctrl-C left `text train`: the step reached and the checkpoint a rerun resumes."""
    from safetensors import safe_open

    try:  # the header only: the step the checkpoint holds
        with safe_open(str(out / CHECKPOINT), framework="np") as f:
            saved = json.loads((f.metadata() or {})["longshort"])["step"]
    except Exception:  # no checkpoint yet (or unreadable): nothing to resume from
        saved = None
    if saved is None:
        return (f"interrupted at step {step}, before the first checkpoint; rerun the same command "
                "to start again")  # fmt: skip
    return (f"interrupted at step {step}; the last checkpoint is at {out / CHECKPOINT} (step "
            f"{saved}); rerun the same command to resume")  # fmt: skip


def _warn_unknown(vocab, ids, text: str, split: str) -> None:
    """One stderr line when `text` (encoded as ids) holds tokens the vocabulary lacks: they are
    scored as <unk>, which the model may never have been trained to predict."""
    n = int((ids == 0).sum())
    if n:
        kinds = vocab.unknown(text)
        shown = ", ".join(repr(t) for t in kinds[:5]) + (", ..." if len(kinds) > 5 else "")
        what = "character" if vocab.level == "char" else "token"
        print(f"longshort: warning: {n:,} of {len(ids):,} tokens of the {split} split are not in "
              f"the model's vocabulary ({len(kinds)} distinct {what}s: {shown}); they are scored "
              "as <unk>", file=sys.stderr)  # fmt: skip


def _eval(args: argparse.Namespace) -> int:
    from ..text.ngram import KneserNey
    from ..text.vocab import read_text
    from ..text.workflow import evaluate, load_model, split_text, text_sha256

    dyn = _dynamic_options(args)
    if args.ngram_order is not None and args.ngram_order < 1:
        raise ValueError(f"--ngram-order must be >= 1, got {args.ngram_order}")
    for flag in ("mix_orders", "mix_rule"):
        if getattr(args, flag) and not args.mix:
            raise ValueError(f"--{flag.replace('_', '-')} needs --mix")
    if args.mix and (args.split != "test" or args.lanes != 1):
        raise ValueError("--mix fits its weights on the validation split and scores one stream: "
                         "use it with --split test and --lanes 1")  # fmt: skip
    model, vocab, meta = load_model(args.model)
    text = read_text(args.data)
    d = meta["data"]
    train_t, val_t, test_t = split_text(text, d["val_fraction"], d["test_fraction"])
    target = {"test": test_t, "val": val_t, "all": text}[args.split]
    ids = vocab.encode(target)
    _warn_unknown(vocab, ids, target, args.split)
    if len(ids) < 2:
        raise ValueError(f"the {args.split} split of {args.data} has fewer than 2 tokens")
    train_ids = vocab.encode(train_t)
    val_ids = vocab.encode(val_t) if args.mix else None
    mixer = _mixer(args, model, vocab, train_ids, val_ids) if args.mix else None
    rows = mixer is not None and mixer.needs_rows  # geometric: the LSTM's whole distributions
    res = evaluate(model, ids, lanes=args.lanes, keep=args.mix, rows=rows)
    order = args.ngram_order or (5 if model.config.level == "char" else 3)
    ng = KneserNey(order, len(vocab)).fit(train_ids).evaluate(ids)
    out = {"bpc": res["bpc"], "perplexity": res["perplexity"], "tokens": res["tokens"],
           "split": args.split, "level": model.config.level,
           "same_text_as_training": text_sha256(text) == d["sha256"],
           "ngram": {"order": order, "smoothing": "interpolated Kneser-Ney", "bpc": ng["bpc"],
                     "perplexity": ng["perplexity"], "tokens": ng["tokens"]}}  # fmt: skip
    if mixer is not None:
        out["mix"] = _mix_score(mixer, val_ids, evaluate(model, val_ids, keep=True, rows=rows),
                                ids, res)  # fmt: skip
    if dyn is not None:
        from ..text.dynamic import dynamic_evaluate

        bptt = dyn.pop("bptt") or meta["train"]["bptt"]  # None: the training length
        kw = dict(**dyn, bptt=bptt, lanes=args.lanes, train_ids=train_ids, keep=args.mix,
                  rows=rows)  # fmt: skip
        out["dynamic"] = dynamic_evaluate(model, ids, **kw)
        if mixer is not None:  # the weights refitted on the validation split read dynamically
            fit = dynamic_evaluate(model, val_ids, **kw)
            out["dynamic"]["mix"] = _mix_score(mixer, val_ids, fit, ids, out["dynamic"])
            out["dynamic"]["mix"]["seconds_fitting"] = fit["seconds"]
    print(json.dumps(out, indent=2))
    return 0


def _mix_score(mixer, val_ids, fit: dict, ids, res: dict) -> dict:
    """Fit the mixer on the validation pass `fit`, score the pass `res` (whose per-token keys
    are removed), as `text eval` prints it."""
    nats, top, probs = (res.pop(k, None) for k in ("token_nats", "token_top", "token_probs"))
    if probs is not None:  # geometric
        return mixer.fit(val_ids, fit["token_probs"]).score(ids, probs)
    return mixer.fit(val_ids, fit["token_nats"], fit["token_top"]).score(ids, nats, top)


def _mixer(args: argparse.Namespace, model, vocab, train_ids, val_ids):
    """The n-gram mixture of --mix (weights fitted later, on the validation split), after
    checking what would otherwise fail only after the long passes."""
    from ..text.geomix import MAX_VOCAB, GeometricMixer
    from ..text.mixture import MIN_BUCKET, NgramMixer

    if len(val_ids) <= MIN_BUCKET:
        raise ValueError(
            f"--mix fits its weights on the validation split, which has {len(val_ids)} tokens "
            f"here; it needs more than {MIN_BUCKET} (a longer text, or train with a larger "
            "--val-fraction)"
        )
    char = model.config.level == "char"
    top = max(k for k in range(1, 10) if len(vocab) ** k < 2**62)  # n-gram keys fit in int64
    # characters: 9-gram (Shakespeare, two layers of 448, dynamic + mixture: 7-gram 1.634,
    # 9-gram 1.630), or the highest order the vocabulary allows
    kn, cache = args.mix_orders or ((min(9, top), 8) if char else (3, 3))
    if len(vocab) ** kn >= 2**62:
        top = max(k for k in range(1, kn) if len(vocab) ** k < 2**62)
        raise ValueError(f"--mix-orders: a Kneser-Ney order of {kn} is too high for a vocabulary "
                         f"of {len(vocab)} (at most {top})")  # fmt: skip
    rule = args.mix_rule or ("geometric" if len(vocab) <= MAX_VOCAB else "linear")
    if rule == "linear":
        return NgramMixer(train_ids, len(vocab), kn_order=kn, cache_order=cache)
    if len(vocab) > MAX_VOCAB:
        raise ValueError(f"--mix-rule geometric keeps the LSTM's whole distribution at every "
                         f"position; with a vocabulary of {len(vocab):,} (more than {MAX_VOCAB}) "
                         "use --mix-rule linear")  # fmt: skip
    return GeometricMixer(train_ids, len(vocab), kn_order=kn, cache_order=cache)


MAX_CACHE_ORDER = 32


def _mix_orders(text: str) -> tuple[int, int]:
    """'KN,CACHE' -> (kn order >= 1, cache order in 0..MAX_CACHE_ORDER), an argparse type."""
    try:
        kn, cache = (int(v) for v in text.split(","))
    except ValueError:
        msg = f"expected two integers KN,CACHE such as 7,8, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if kn < 1 or not 0 <= cache <= MAX_CACHE_ORDER:
        raise argparse.ArgumentTypeError(
            f"need a Kneser-Ney order >= 1 and a cache order in 0..{MAX_CACHE_ORDER}, got {text!r}"
        )
    return kn, cache


def _dynamic_options(args: argparse.Namespace) -> dict | None:
    """dynamic_evaluate's keyword arguments from --dynamic*, checked before any loading."""
    from ..text.dynamic import check_settings, resolve

    given = [f for f in ("dynamic_lr", "dynamic_decay", "dynamic_bptt", "dynamic_rule")
             if getattr(args, f) is not None]  # fmt: skip
    if not args.dynamic:
        if given:
            raise ValueError(f"--{given[0].replace('_', '-')} needs --dynamic")
        return None
    rule = args.dynamic_rule or "rms"
    lr, decay = resolve(rule, args.dynamic_lr, args.dynamic_decay)
    check_settings(
        rule, lr, decay, 1 if args.dynamic_bptt is None else args.dynamic_bptt, args.lanes
    )
    return {"rule": rule, "lr": lr, "decay": decay, "bptt": args.dynamic_bptt}


def _sample(args: argparse.Namespace) -> int:
    from ..text.sampling import generate
    from ..text.workflow import load_model

    model, vocab, _ = load_model(args.model)
    prime = args.prime if args.prime is not None else "\n"
    text = generate(model, vocab, prime, args.length, args.temperature, args.top_k, args.top_p,
                    args.seed)  # fmt: skip
    sys.stdout.write((prime if args.prime is not None else "") + text + "\n")
    return 0


def _cells(args: argparse.Namespace) -> int:
    from ..text.cells import write_cell_page
    from ..text.vocab import read_text
    from ..text.workflow import load_model

    model, vocab, _ = load_model(args.model)
    text = read_text(args.data)[: args.chars]
    ranking = write_cell_page(model, vocab, text, args.out, top=args.top)
    for r in ranking[:10]:
        print(f"{r['property']:<16} layer {r['layer']} cell {r['cell']:4d}  r = {r['r']:+.3f}")
    print(f"wrote {args.out}")
    return 0


def _add_train(sub) -> None:
    t = sub.add_parser("train", help="train a language model on a UTF-8 text file")
    t.add_argument("--data", required=True, help="UTF-8 text file")
    t.add_argument(
        "--out",
        required=True,
        type=out_dir,
        help="model directory (resumes if it has a checkpoint)",
    )
    t.add_argument("--level", choices=["char", "word"], help="default char")
    t.add_argument("--minutes", type=float, help="training-time budget in minutes")
    t.add_argument("--steps", type=int, help="optimiser-step budget")
    t.add_argument("--embedding-size", type=int, help="default 64 (char) / 200 (word)")
    # the options saved with a run (MODEL_OPTIONS, TRAIN_OPTIONS) default to None: see there
    t.add_argument("--hidden-size", type=int, help="default 256")
    t.add_argument("--layers", type=int, help="default 1")
    t.add_argument("--tie", action="store_true", default=None,
                   help="tie input and output embeddings")  # fmt: skip
    t.add_argument(
        "--forget-bias",
        type=float,
        help="the forget gates' initial bias (default: PyTorch's init, ~0)",
    )
    for name in ("dropout-input", "dropout-hidden", "dropout-output", "weight-drop",
                 "embedding-dropout", "ar", "tar"):  # fmt: skip
        t.add_argument(f"--{name}", type=float, help="default 0")
    t.add_argument("--lanes", "--batch", type=int, help="parallel streams B (default 32)")
    t.add_argument("--bptt", type=int, help="truncated BPTT length (default 100)")
    t.add_argument("--variable-bptt", action="store_true", default=None,
                   help="AWD-style random BPTT lengths")  # fmt: skip
    t.add_argument("--optimizer", choices=["adam", "sgd", "ntasgd"], help="default adam")
    t.add_argument("--lr", type=float, help="default 2e-3")
    t.add_argument("--clip", type=float, help="gradient norm clip (default 1)")
    t.add_argument(
        "--schedule",
        choices=["none", "plateau", "step", "cosine"],
        default=None,
        help="lr schedule (default none; a resumed run keeps the one it started with)",
    )
    t.add_argument("--lr-gamma", type=float, default=None, help="lr factor (plateau, step; 0.5)")
    t.add_argument("--lr-step", type=int, default=None, help="steps between decays (step; 1000)")
    t.add_argument("--patience", type=int, default=None, help="flat validations (plateau; 1)")
    t.add_argument("--val-every", type=int, default=200, help="validate every N steps")
    t.add_argument("--val-tokens", type=int, default=100_000, help="validation tokens used")
    t.add_argument("--log-every", type=int, default=50)
    t.add_argument("--checkpoint-every", type=int, default=100)
    t.add_argument("--val-fraction", type=float, default=0.05)
    t.add_argument("--test-fraction", type=float, default=0.05)
    t.add_argument("--max-vocab", type=int, help="word level default 10000 (rest -> <unk>)")
    t.add_argument("--min-count", type=int, default=1)
    t.add_argument("--seed", type=seed_type, help="default 0")
    t.add_argument("--no-progress", dest="progress", action="store_false")
    t.set_defaults(func=_train)


def register(sub) -> None:
    """Add `longshort text {train,eval,sample,cells}` to the subcommand parser."""
    p = sub.add_parser("text", help="character / word language models: train, eval, sample, cells")
    s = p.add_subparsers(dest="text_command", metavar="<text command>", required=True)
    _add_train(s)
    e = s.add_parser("eval", help="bpc / perplexity on the test split, beside an n-gram baseline")
    e.add_argument("--model", required=True)
    e.add_argument("--data", required=True)
    e.add_argument("--split", choices=["test", "val", "all"], default="test")
    e.add_argument("--ngram-order", type=int, help="default 5 (char) / 3 (word)")
    e.add_argument("--lanes", type=int, default=1, help="parallel streams (faster, approximate)")
    e.add_argument(
        "--dynamic",
        action="store_true",
        help="also score with dynamic evaluation (adapts to the split as it reads it)",
    )
    e.add_argument("--dynamic-rule", choices=["rms", "sgd"], help="update rule (default rms)")
    e.add_argument("--dynamic-lr", type=float, help="learning rate (default 1e-4 rms, 0.2 sgd)")
    e.add_argument(
        "--dynamic-decay",
        type=float,
        help="pull back toward the trained weights per segment (default 0.01 rms, 0 sgd)",
    )
    e.add_argument("--dynamic-bptt", type=int,
                   help="tokens per segment (default: the model's training --bptt)")  # fmt: skip
    e.add_argument("--mix", action="store_true",
                   help="also score the LSTM mixed with a Kneser-Ney model of the training split "
                   "and a cache n-gram of the text read so far (weights fitted on the validation "
                   "split; the geometric rule goes on learning as it reads; see --mix-rule)")  # fmt: skip
    e.add_argument(
        "--mix-orders",
        type=_mix_orders,
        metavar="KN,CACHE",
        help="orders of the two n-gram models of --mix (default 9,8 char, 3,3 word)",
    )
    e.add_argument("--mix-rule", choices=["geometric", "linear"],
                   help="how --mix combines the models: a product with weights learnt online "
                   "(default for vocabularies up to 1,024) or a weighted sum fitted on the "
                   "validation split (default for larger ones)")  # fmt: skip
    e.set_defaults(func=_eval)
    g = s.add_parser("sample", help="generate text")
    g.add_argument("--model", required=True)
    g.add_argument("--prime", help="text to start from (default: a newline)")
    g.add_argument("--length", type=int, default=500)
    g.add_argument("--temperature", type=float, default=0.8)
    g.add_argument("--top-k", type=int)
    g.add_argument("--top-p", type=float)
    g.add_argument("--seed", type=seed_type, default=0)
    g.set_defaults(func=_sample)
    c = s.add_parser("cells", help="HTML page of cell activations and a ranking of cells")
    c.add_argument("--model", required=True)
    c.add_argument("--data", required=True)
    c.add_argument("--out", required=True, type=out_file, help="the HTML file to write")
    c.add_argument("--chars", type=int, default=3000, help="characters of the text to show")
    c.add_argument("--top", type=int, default=5, help="best cells kept per property")
    c.set_defaults(func=_cells)
