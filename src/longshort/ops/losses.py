"""Losses, each a forward/backward pair reducing by the mean over valid entries.

Symbols: N... any leading axes (batch, time, ...), C classes, Q quantiles. `pred` is the model's
output; `mask` (boolean, True = counts) has the shape of the leading axes of `pred` (all of them or
a prefix, e.g. (B, T) for pred (B, T, F)), and n is the number of valid entries of `pred`.

    mse     L = (1/n) sum m (p - y)^2                        dL/dp = 2 m (p - y) / n
    mae     L = (1/n) sum m |p - y|                          dL/dp = m sign(p - y) / n
    huber   L = (1/n) sum m h(p - y),                        dL/dp = m clip(p - y, -d, d) / n
            h(e) = e^2 / 2 if |e| < d else d (|e| - d / 2)   (torch.nn.HuberLoss, delta = d)
    cross_entropy  logits z (N..., C), integer targets k (N...):
            L = -(1/n) sum_valid log softmax(z)_k            dL/dz = (softmax(z) - onehot(k)) / n
            valid = mask and k != ignore_index; log-softmax is shifted by max(z) so exp never
            overflows.
    pinball pred (N..., Q) for quantile levels q (Q,), target y (N...), e = y - p:
            L = (1/(n Q)) sum max(q e, (q - 1) e)            dL/dp = ([e < 0] - q) / (n Q)

Masked entries are replaced by zeros before any arithmetic, so NaN targets there are harmless.
Every `<name>_forward` returns (loss as a Python float, cache); `<name>_backward(cache, dloss)`
returns dL/dpred scaled by dloss, in pred's dtype.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class LossCache(NamedTuple):
    """What every backward needs: the residual-like array, the valid entries and their count."""

    kind: str  # "mse" | "mae" | "huber" | "cross_entropy" | "pinball"
    a: np.ndarray  # mse/mae/huber: p - y; cross_entropy: softmax; pinball: e = y - p
    valid: np.ndarray | None  # bool, broadcastable to `a`; None = all valid
    n: int  # number of valid entries that the mean divides by
    extra: object = None  # huber: delta; cross_entropy: (targets, C); pinball: q


def _as_pred(pred) -> np.ndarray:
    p = np.asarray(pred)
    if not np.issubdtype(p.dtype, np.floating):
        raise TypeError(f"pred must be a float array, got dtype {p.dtype}")
    return p


def _check_mask(mask, shape: tuple[int, ...], what: str) -> np.ndarray | None:
    """mask (shape[:k]) -> bool array with trailing singleton axes, broadcastable to `shape`."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != bool:
        if not np.issubdtype(m.dtype, np.integer) or not np.all((m == 0) | (m == 1)):
            raise TypeError(f"mask must be boolean (True = counts in the loss), got {m.dtype}")
        m = m.astype(bool)
    if m.shape != shape[: m.ndim]:
        raise ValueError(
            f"mask of shape {m.shape} does not match {what} of shape {shape}; it must have the "
            f"shape of its leading axes, e.g. {shape[:-1] or shape}"
        )
    return m.reshape(m.shape + (1,) * (len(shape) - m.ndim))


def _count(valid: np.ndarray | None, shape: tuple[int, ...]) -> int:
    n = int(np.prod(shape)) if valid is None else int(np.broadcast_to(valid, shape).sum())
    if n == 0:
        raise ValueError(
            "the loss has no valid entries (empty input, or the mask / ignore_index excludes "
            "everything); skip this batch or check the mask"
        )
    return n


def _residual(pred, target, mask, name: str) -> tuple[np.ndarray, np.ndarray | None, int]:
    """(p - y) with masked entries zeroed, the mask, and the count."""
    p = _as_pred(pred)
    y = np.asarray(target)
    if y.shape != p.shape:
        raise ValueError(
            f"{name}: pred has shape {p.shape} but target has shape {y.shape}; they must match "
            "(add or drop a trailing axis with y[..., None] or y[..., 0])"
        )
    valid = _check_mask(mask, p.shape, "pred")
    d = p - y.astype(p.dtype, copy=False)
    if valid is not None:
        d = np.where(valid, d, 0).astype(p.dtype, copy=False)
    return d, valid, _count(valid, p.shape)


def _mean_grad(g: np.ndarray, valid, n: int, dloss: float) -> np.ndarray:
    """Scale a per-entry derivative by dloss / n and zero the masked entries."""
    g = g * g.dtype.type(dloss / n)
    if valid is not None:
        g = np.where(valid, g, 0).astype(g.dtype, copy=False)
    return g


# --- mean squared error ---------------------------------------------------------------------------
def mse_forward(pred, target, mask=None) -> tuple[float, LossCache]:
    """L = mean over valid entries of (pred - target)^2. pred, target: same shape."""
    d, valid, n = _residual(pred, target, mask, "mse")
    return float(np.sum(d * d) / n), LossCache("mse", d, valid, n)


def mse_backward(cache: LossCache, dloss: float = 1.0) -> np.ndarray:
    return _mean_grad(2 * cache.a, cache.valid, cache.n, dloss)


# --- mean absolute error --------------------------------------------------------------------------
def mae_forward(pred, target, mask=None) -> tuple[float, LossCache]:
    """L = mean over valid entries of |pred - target| (torch's l1_loss)."""
    d, valid, n = _residual(pred, target, mask, "mae")
    return float(np.sum(np.abs(d)) / n), LossCache("mae", d, valid, n)


def mae_backward(cache: LossCache, dloss: float = 1.0) -> np.ndarray:
    return _mean_grad(np.sign(cache.a), cache.valid, cache.n, dloss)


# --- Huber ----------------------------------------------------------------------------------------
def huber_forward(pred, target, mask=None, delta: float = 1.0) -> tuple[float, LossCache]:
    """L = mean of 0.5 e^2 where |e| < delta, else delta (|e| - delta / 2); e = pred - target."""
    if not delta > 0:
        raise ValueError(f"huber delta must be positive, got {delta}")
    d, valid, n = _residual(pred, target, mask, "huber")
    ad = np.abs(d)
    per = np.where(ad < delta, 0.5 * d * d, delta * (ad - 0.5 * delta))
    return float(np.sum(per) / n), LossCache("huber", d, valid, n, float(delta))


def huber_backward(cache: LossCache, dloss: float = 1.0) -> np.ndarray:
    delta = cache.extra
    return _mean_grad(np.clip(cache.a, -delta, delta), cache.valid, cache.n, dloss)


# --- cross entropy --------------------------------------------------------------------------------
def _check_targets(targets, shape: tuple[int, ...]) -> np.ndarray:
    k = np.asarray(targets)
    if k.shape != shape:
        raise ValueError(
            f"cross_entropy: logits have shape {shape + ('C',)} so targets must have shape "
            f"{shape}, got {k.shape}"
        )
    if not np.issubdtype(k.dtype, np.integer):
        raise TypeError(f"cross_entropy targets must be integer class ids, got dtype {k.dtype}")
    return k.astype(np.int64, copy=False)


def cross_entropy_forward(
    logits, targets, mask=None, ignore_index: int | None = None
) -> tuple[float, LossCache]:
    """Mean negative log-likelihood of integer targets under softmax(logits).

    Args:
        logits: (N..., C) unnormalised scores. targets: (N...) ids in [0, C).
        mask: optional (N...) boolean, True = counts. ignore_index: targets equal to it are skipped
            (like torch's ignore_index).
    """
    z = _as_pred(logits)
    if z.ndim < 1:
        raise ValueError("cross_entropy: logits must have a class axis (..., C)")
    C = z.shape[-1]
    k = _check_targets(targets, z.shape[:-1])
    valid = np.ones(k.shape, bool) if mask is None else _check_mask(mask, k.shape, "targets")
    if ignore_index is not None:
        valid = valid & (k != ignore_index)
    bad = valid & ((k < 0) | (k >= C))
    if np.any(bad):
        raise IndexError(
            f"cross_entropy targets must lie in [0, {C}) for logits with {C} classes; found "
            f"{k[bad].ravel()[:5].tolist()}. Mask them out or pass ignore_index"
        )
    n = _count(valid, k.shape)
    k_safe = np.where(valid, k, 0)  # (N...)
    shifted = z - z.max(axis=-1, keepdims=True)  # (N..., C), max entry 0: exp cannot overflow
    logsum = np.log(np.exp(shifted).sum(axis=-1, keepdims=True))  # (N..., 1)
    logp = shifted - logsum  # (N..., C) log-softmax
    picked = np.take_along_axis(logp, k_safe[..., None], axis=-1)[..., 0]  # (N...)
    loss = -float(np.sum(np.where(valid, picked, 0)) / n)
    return loss, LossCache("cross_entropy", np.exp(logp), valid, n, (k_safe, C))


def cross_entropy_backward(cache: LossCache, dloss: float = 1.0) -> np.ndarray:
    k_safe, _ = cache.extra
    g = cache.a.copy()  # (N..., C) softmax
    np.put_along_axis(g, k_safe[..., None], np.take_along_axis(g, k_safe[..., None], -1) - 1, -1)
    return _mean_grad(g, cache.valid[..., None], cache.n, dloss)


# --- pinball (quantile) ---------------------------------------------------------------------------
def pinball_forward(pred, target, quantiles, mask=None) -> tuple[float, LossCache]:
    """Quantile loss: mean of max(q e, (q - 1) e), e = target - pred, over entries and quantiles.

    Args:
        pred: (N..., Q), one column per quantile level. target: (N...). quantiles: (Q,) in (0, 1).
        mask: optional boolean of the shape of target (or a prefix of it).
    """
    p = _as_pred(pred)
    q = np.asarray(quantiles, dtype=p.dtype)
    if q.ndim != 1 or p.ndim < 1 or p.shape[-1] != q.shape[0]:
        raise ValueError(
            f"pinball: pred has shape {p.shape} but quantiles have shape {q.shape}; pred's last "
            "axis must hold one column per quantile"
        )
    if np.any((q <= 0) | (q >= 1)):
        raise ValueError(f"pinball quantiles must lie strictly in (0, 1), got {q.tolist()}")
    y = np.asarray(target)
    if y.shape != p.shape[:-1]:
        raise ValueError(
            f"pinball: pred has shape {p.shape} so target must have shape {p.shape[:-1]}, "
            f"got {y.shape}"
        )
    m = _check_mask(mask, y.shape, "target")
    valid = None if m is None else m[..., None]  # broadcastable to (N..., Q)
    e = y.astype(p.dtype, copy=False)[..., None] - p  # (N..., Q)
    if valid is not None:
        e = np.where(valid, e, 0).astype(p.dtype, copy=False)
    n = _count(valid, p.shape)
    per = np.maximum(q * e, (q - 1) * e)  # (N..., Q)
    return float(np.sum(per) / n), LossCache("pinball", e, valid, n, q)


def pinball_backward(cache: LossCache, dloss: float = 1.0) -> np.ndarray:
    q = cache.extra
    g = (cache.a < 0).astype(cache.a.dtype) - q  # (N..., Q): d/dpred of max(q e, (q-1) e)
    return _mean_grad(g, cache.valid, cache.n, dloss)
