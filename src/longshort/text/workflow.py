"""Train, save, load and evaluate a LanguageModel on a text file: what `longshort text` runs.

A model directory holds
    text_model.json        {"format": "longshort-text-model-1", "model": LanguageModelConfig,
                            "data": {sha256, fractions, ...}, "train": options}
    vocab.json             the Vocab            model.safetensors   the weights (for eval/sample)
    checkpoint.safetensors, train_config.json, metrics.jsonl       the training loop's (resume)
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
from safetensors.numpy import save as st_save

from .._blas_threads import blas_threads
from ..io._read import check_format, read_json_object, read_safetensors, require_keys
from ..models.language_model import LanguageModel, LanguageModelConfig
from ..optim import NTASGD
from ..train import TrainConfig, Trainer
from ..train.checkpoint import atomic_write_bytes
from .data import TextStream, split_stream
from .vocab import Vocab

FORMAT = "longshort-text-model-1"
META_NAME, VOCAB_NAME, WEIGHTS_NAME = "text_model.json", "vocab.json", "model.safetensors"
LN2 = math.log(2.0)
RETRAIN = "retrain with `longshort text train --data FILE.txt --out DIR`"


def split_text(text: str, val_fraction: float = 0.05, test_fraction: float = 0.05):
    """(train, val, test) texts: contiguous pieces by character position."""
    pieces = split_stream(np.arange(len(text)), val_fraction, test_fraction)
    return tuple(text[p[0] : p[-1] + 1] if len(p) else "" for p in pieces)


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def save_model(model: LanguageModel, vocab: Vocab, directory, meta: dict) -> None:
    """Write text_model.json, vocab.json and model.safetensors into `directory`."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    body = {"format": FORMAT, "model": json.loads(model.config.to_json()), **meta}
    atomic_write_bytes(d / VOCAB_NAME, vocab.to_json().encode())
    # atomic, and with the usual file mode (safetensors' save_file creates files 0600)
    atomic_write_bytes(d / WEIGHTS_NAME, st_save(model.state_dict()))
    atomic_write_bytes(d / META_NAME, json.dumps(body, indent=2).encode())


def read_meta(directory) -> dict:
    """text_model.json of a model directory, with a one-line error for anything else."""
    d = Path(directory)
    if d.exists() and not d.is_dir():
        raise ValueError(f"{d} is a file, not a model directory; pass the directory written by "
                         "`longshort text train --out DIR`")  # fmt: skip
    if not d.is_dir():
        raise FileNotFoundError(f"no model directory at {d}; train one with `longshort text train`")
    p = d / META_NAME
    if not p.is_file():
        raise ValueError(
            f"{d} is not a text model directory (no {META_NAME}); it may come from another "
            "command. Train one with `longshort text train --data FILE.txt --out DIR`"
        )
    meta = read_json_object(p, RETRAIN)
    check_format(meta, p, FORMAT, RETRAIN)
    require_keys(meta, p, ["model"], RETRAIN)
    return meta


def load_model(directory, impl: str = "auto") -> tuple[LanguageModel, Vocab, dict]:
    """(model in eval mode, vocab, meta) from a directory written by `save_model`."""
    d = Path(directory)
    meta = read_meta(d)
    if not (d / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(f"{d} has no {WEIGHTS_NAME}: its training never finished a save")
    vocab = Vocab.load(d / VOCAB_NAME)
    cfg = model_config(meta, d / META_NAME)
    model = build_model(cfg, vocab, impl)
    model.load_state_dict(read_safetensors(d / WEIGHTS_NAME, RETRAIN))
    return model.eval(), vocab, meta


def model_config(meta: dict, path) -> LanguageModelConfig:
    """The LanguageModelConfig in meta["model"] (read from `path`), with a one-line error."""
    try:
        if not isinstance(meta["model"], dict):
            raise TypeError(f"'model' is a {type(meta['model']).__name__}, not an object")
        return LanguageModelConfig(**meta["model"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path} holds an invalid model config ({e}); {RETRAIN}") from None


def build_model(cfg: LanguageModelConfig, vocab: Vocab, impl: str = "auto") -> LanguageModel:
    opts = {k: v for k, v in vars(cfg).items() if k not in ("level", "vocab_size")}
    return LanguageModel(cfg.level, vocab_size=cfg.vocab_size, vocab=vocab, impl=impl, **opts)


def evaluate(model: LanguageModel, ids: np.ndarray, lanes: int = 1, bptt: int = 500,
             keep: bool = False, rows: bool = False) -> dict:  # fmt: skip
    """Mean cross entropy of ids[1:] given what precedes it, state carried throughout.

    Returns {"nats", "bpc" (bits per token), "perplexity", "tokens"}; lanes > 1 is faster but
    scores lanes * (N // lanes - 1) tokens, each lane starting from a zero state. keep=True adds
    "token_nats": (tokens,) the nats of every scored token, lane after lane (with lanes = 1 the
    nats of ids[1], ids[2], ... in order), and "token_top": the model's largest probability at
    each of those positions (its confidence, which text/mixture.py buckets on). rows=True adds
    "token_probs": (tokens, V) float32, the model's whole distribution at each of them (for
    text/geomix.py).
    """
    stream = TextStream(ids, lanes, min(bptt, max(1, len(ids) // lanes - 1)))
    was, total, n, state, each, tops, full = model.training, 0.0, 0, None, [], [], []
    model.eval()
    try:
        with blas_threads(1):  # NumPy's idle BLAS threads would spin on the kernels' cores
            for j in range(len(stream)):
                b = stream.batch(0, j)
                logits, state = model.forward(b["x"], state, need_cache=False)  # (B, K, V)
                nats = token_nats_each(
                    logits, b["y"], tops if keep else None, full if rows else None
                )  # (B, K); fmt: skip
                total += float(nats.sum())
                n += b["y"].size
                if keep:
                    each.append(nats)
    finally:
        model.train(was)
    out = summarize(total, n)
    if keep:
        out["token_nats"] = np.concatenate(each, axis=1).ravel()
        out["token_top"] = np.concatenate(tops, axis=1).ravel()
    if rows:
        out["token_probs"] = stack_rows(full)
    return out


def stack_rows(full: list) -> np.ndarray:
    """Per-segment distributions [(B, K, V), ...] -> (B * sum K, V), lane after lane."""
    cat = np.concatenate(full, axis=1)
    return cat.reshape(-1, cat.shape[-1])


def token_nats_each(logits: np.ndarray, y: np.ndarray, tops: list | None = None,
                    rows: list | None = None) -> np.ndarray:  # fmt: skip
    """-log softmax(logits)[y] per position, float64: logits (B, K, V), y (B, K) -> (B, K).
    tops: if a list, the largest probability per position (B, K) is appended to it; rows: if a
    list, the whole softmax (B, K, V) as float32."""
    z = logits.astype(np.float64)
    z -= z.max(-1, keepdims=True)
    log_total = np.log(np.exp(z).sum(-1, keepdims=True))  # (B, K, 1)
    if tops is not None:
        tops.append(np.exp(-log_total[..., 0]))  # max_v p_v = exp(0 - log sum exp z)
    logp = z - log_total  # (B, K, V)
    if rows is not None:
        rows.append(np.exp(logp).astype(np.float32))
    return -np.take_along_axis(logp, y[..., None], -1)[..., 0]


def summarize(total_nats: float, tokens: int) -> dict:
    """{"nats", "bpc" (bits per token), "perplexity", "tokens"} from a sum of nats."""
    nats = total_nats / tokens
    return {"nats": nats, "bpc": nats / LN2, "perplexity": math.exp(nats), "tokens": tokens}


def make_trainer(model, train_ids, val_ids, config: TrainConfig, opt: dict, on_row=None):
    """A Trainer over stateful text batches; opt: lanes, bptt, variable_bptt, optimizer
    ("adam" | "ntasgd"), val_tokens (validation prefix used while training)."""
    data = TextStream(train_ids, opt["lanes"], opt["bptt"], opt.get("variable_bptt", False))
    val = None
    if len(val_ids) > 2:
        vt = val_ids[: opt.get("val_tokens", 100_000)]
        vl = max(1, min(16, (len(vt) - 1) // (opt["bptt"] + 1)))
        val = TextStream(vt, vl, min(opt["bptt"], len(vt) // vl - 1))
    optimizer = None
    if opt.get("optimizer") == "ntasgd":
        optimizer = NTASGD(model.parameters(), config.lr, weight_decay=config.weight_decay)

    def row_hook(row):
        if optimizer is not None and row.get("val") is not None:
            optimizer.observe(row["val"])
        if on_row is not None:
            on_row(row)

    if val is None:
        config = config.replace(val_every=0)
    return Trainer(model, data, config, val_data=val, optimizer=optimizer, on_row=row_hook)


def finish_training(trainer: Trainer) -> None:
    """Leave the model with NT-ASGD's averaged weights when averaging has started."""
    opt = trainer.optimizer
    if isinstance(opt, NTASGD) and opt.averaged():
        opt.swap_average()
