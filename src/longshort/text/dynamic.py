"""Dynamic evaluation (Krause et al. 2018): the model keeps learning from the text it is scored on.

Symbols: N tokens, B lanes (1 = the paper's single stream), n the segment length, theta_0 the
trained parameters, g_i the gradient of the mean cross entropy of segment s_i (B, n) at theta_i.

The stream is cut into segments s_1, s_2, ... of n tokens with the LSTM state carried across them,
exactly as the static evaluation does. Each segment is scored with the current parameters BEFORE
they learn from it, so every token is still predicted from what precedes it only; then one step:

    sgd:  theta_{i+1} = theta_i - lr * g_i + decay * (theta_0 - theta_i)
    rms:  theta_{i+1} = theta_i - lr * g_i / (R + eps) + decay * r * (theta_0 - theta_i)

R (same shape as each parameter) = sqrt(mean of g^2) over `stat_batches` training segments of
`stat_lanes` lanes (the paper's gradient statistics, at the same n); r = R / mean_p(mean(R_p)),
clipped at 1 / decay, so weights that move a lot in training are allowed to move more and decay
toward theta_0 faster ("RMS with a global prior"). The model's own `backward` gives g_i; the
parameters are restored to theta_0 on return and nothing is written to disk.
"""

from __future__ import annotations

import time

import numpy as np

from .._blas_threads import blas_threads
from ..models.language_model import LanguageModel
from ..ops.losses import cross_entropy_backward, cross_entropy_forward
from .data import TextStream
from .workflow import stack_rows, summarize, token_nats_each

RULES = ("rms", "sgd")
# Picked for char models at n ~ 100 on the Shakespeare validation split (docs/text.md). The authors' released word-level defaults (lr 5e-5, lambda 2e-3 at n = 5,
# scaled by n / 5 as their grid search does) moved a char model too far; eps is theirs.
DEFAULTS = {"rms": {"lr": 1e-4, "decay": 0.01}, "sgd": {"lr": 0.2, "decay": 0.0}}
EPS = 2e-5


def resolve(rule: str, lr: float | None, decay: float | None) -> tuple[float, float]:
    """(lr, decay), each None replaced by DEFAULTS[rule] (0 for an unknown rule: check_settings
    then names the rule)."""
    d = DEFAULTS.get(rule, {})
    return (d.get("lr", 0.0) if lr is None else float(lr),
            d.get("decay", 0.0) if decay is None else float(decay))  # fmt: skip


def check_settings(rule: str, lr: float, decay: float, bptt: int, lanes: int) -> None:
    """A ValueError naming the first bad setting."""
    if rule not in RULES:
        raise ValueError(f"dynamic evaluation rule must be one of {RULES}, got {rule!r}")
    if not (np.isfinite(lr) and lr >= 0):
        raise ValueError(f"the dynamic learning rate must be a number >= 0, got {lr}")
    if not (np.isfinite(decay) and 0 <= decay <= 1):
        raise ValueError(f"the dynamic decay must be in [0, 1], got {decay}")
    if bptt < 1 or lanes < 1:
        raise ValueError(f"segment length and lanes must be >= 1, got {bptt} and {lanes}")


def gradient_rms(model: LanguageModel, train_ids, bptt: int, lanes: int = 100, batches: int = 20):
    """R per parameter: sqrt(mean over `batches` training segments (lanes, bptt) of g^2)."""
    lanes = max(1, min(lanes, (len(train_ids) - 1) // (bptt + 1)))
    stream = TextStream(train_ids, lanes, bptt)
    params = model.parameters()
    ms, state, k = [np.zeros(p.shape) for p in params], None, min(batches, len(stream))
    for j in range(k):
        b = stream.batch(0, j)
        model.zero_grad()
        logits, state = model.forward(b["x"], state)  # (lanes, bptt, V)
        model.backward(cross_entropy_backward(cross_entropy_forward(logits, b["y"])[1]))
        for m, p in zip(ms, params):
            m += p.grad.astype(np.float64) ** 2
    return [np.sqrt(m / k) for m in ms]


def step_sizes(model: LanguageModel, rule: str, lr: float, decay: float, eps: float = EPS,
               rms=None) -> tuple[list, list]:  # fmt: skip
    """(scale, pull) per parameter: lr / (R + eps) and min(decay * r, 1) for "rms" (R = `rms`,
    from gradient_rms), lr and decay for "sgd"."""
    params = model.parameters()
    if rule == "sgd":
        return [lr] * len(params), [decay] * len(params)
    mean = float(np.mean([r.mean() for r in rms]))
    scale = [(lr / (r + eps)).astype(p.data.dtype) for r, p in zip(rms, params)]
    pull = [np.minimum(decay * r / mean, 1.0).astype(p.data.dtype) for r, p in zip(rms, params)]
    return scale, pull


def adapt_step(model: LanguageModel, x, y, state, theta0, scale, pull, each: bool = False,
               tops: list | None = None, rows: list | None = None):  # fmt: skip
    """Score one segment x, y (B, n) with the current weights, then update them on it.

    theta <- theta + pull * (theta0 - theta) - scale * dL/dtheta, L the segment's mean cross
    entropy from `state` (not differentiated through: truncated BPTT). Returns (sum of nats, state),
    or with each=True (nats per position (B, n), state). tops: a list that gets the model's
    largest probability per position (B, n) appended; rows: one that gets its whole distribution
    (B, n, V) float32.
    """
    model.zero_grad()
    logits, state = model.forward(x, state)  # (B, n, V), before any update on this segment
    nats = token_nats_each(logits, y, tops, rows)
    nats = nats if each else float(nats.sum())
    model.backward(cross_entropy_backward(cross_entropy_forward(logits, y)[1]))
    for p, p0, s, q in zip(model.parameters(), theta0, scale, pull):
        p.data += q * (p0 - p.data) - s * p.grad
    return nats, state


def dynamic_evaluate(model: LanguageModel, ids, *, rule: str = "rms", lr: float | None = None,
                     decay: float | None = None, eps: float = EPS, bptt: int = 100,
                     lanes: int = 1, train_ids=None, stat_batches: int = 20,
                     stat_lanes: int = 100, keep: bool = False, rows: bool = False) -> dict:  # fmt: skip
    """Score ids[1:] (N,) segment by segment, adapting a copy of the weights as it reads.

    Args:
        model: a trained LanguageModel; its parameters are the same on return.
        ids: (N,) token ids. rule: "rms" (the paper's) or "sgd". lr, decay: default DEFAULTS[rule].
        bptt: n, tokens per segment. lanes: B parallel streams (1 scores ids[1:] exactly like
            `evaluate(model, ids, lanes=1)`; B > 1 scores the same tokens as evaluate with B).
        train_ids: training tokens for R (needed by "rms"); stat_batches, stat_lanes: their size.
        keep: add "token_nats" and "token_top", the nats of every scored token and the model's
            largest probability there (as `evaluate(keep=True)`). rows: add "token_probs", the
            whole distribution at each of them (tokens, V) float32 (as `evaluate(rows=True)`).

    Returns:
        {"nats", "bpc", "perplexity", "tokens"} as `evaluate` returns them, plus "settings" and
        "seconds" (wall time, including the gradient statistics).
    """
    lr, decay = resolve(rule, lr, decay)
    check_settings(rule, lr, decay, bptt, lanes)
    if rule == "rms" and (train_ids is None or len(train_ids) < bptt + 2):
        raise ValueError("the rms rule needs training tokens (train_ids) for its gradient scale")
    start, params, was = time.perf_counter(), model.parameters(), model.training
    theta0 = [p.data.copy() for p in params]
    model.eval()  # no dropout: the adapted model is scored exactly as the static one
    with blas_threads(1):  # NumPy's idle BLAS threads would spin on the kernels' cores
        try:
            rms = None
            if rule == "rms":
                rms = gradient_rms(model, train_ids, bptt, stat_lanes, stat_batches)
            scale, pull = step_sizes(model, rule, lr, decay, eps, rms)
            stream = TextStream(ids, lanes, min(bptt, max(1, len(ids) // lanes - 1)))
            total, n, state, each, tops, full = 0.0, 0, None, [], [], []
            for j in range(len(stream)):
                b = stream.batch(0, j)
                nats, state = adapt_step(model, b["x"], b["y"], state, theta0, scale, pull, True,
                                         tops if keep else None, full if rows else None)  # fmt: skip
                total += float(nats.sum())
                n += b["y"].size
                if keep:
                    each.append(nats)
        finally:
            for p, p0 in zip(params, theta0):
                p.data[...] = p0
            model.zero_grad()
            model.train(was)
    settings = {"rule": rule, "lr": lr, "decay": decay, "segment": stream.bptt, "lanes": lanes}
    if rule == "rms":
        settings.update(eps=eps, stat_batches=stat_batches, stat_lanes=stat_lanes)
    out = summarize(total, n)
    if keep:
        out["token_nats"] = np.concatenate(each, axis=1).ravel()
        out["token_top"] = np.concatenate(tops, axis=1).ravel()
    if rows:
        out["token_probs"] = stack_rows(full)
    return {**out, "settings": settings, "seconds": time.perf_counter() - start}


__all__ = [
    "DEFAULTS",
    "RULES",
    "adapt_step",
    "check_settings",
    "dynamic_evaluate",
    "gradient_rms",
    "resolve",
    "step_sizes",
]
