"""Reference Elman RNN (torch.nn.RNN): one layer, one direction, forward and BPTT.

Symbols (batch first):
    B batch, T steps, I input features, H hidden units.
    x (B, T, I); h0 (B, H); y (B, T, H); h_n (B, H).
    w_ih (H, I), w_hh (H, H), b_ih (H,), b_hh (H,): PyTorch's layout (one gate block).

Equations, for t = 0 .. T-1, with phi = tanh (default) or relu:
    a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh          (B, H)
    h_t = phi(a_t)

Variable lengths: with `lengths[b] = L_b`, steps t >= L_b leave the state unchanged and output 0, so
h_n[b] is the state after step L_b - 1 (h0 when L_b = 0) and the backward agrees.

This file is the oracle for any fused kernel; it favours clarity.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .activations import relu, relu_backward, tanh, tanh_backward
from .sequence import RecurrentWeights, step_mask

RNNWeights = RecurrentWeights  # w_ih (H, I), w_hh (H, H), b_ih (H,), b_hh (H,)

# phi and its derivative written in terms of phi's output, by nonlinearity name.
_ACTIVATIONS = {"tanh": (tanh, tanh_backward), "relu": (relu, relu_backward)}


def _activation(nonlinearity: str):
    if nonlinearity not in _ACTIVATIONS:
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return _ACTIVATIONS[nonlinearity]


class RNNCache(NamedTuple):
    """What `rnn_backward` needs. Where a step is valid, h[:, t+1] is phi(a_t) itself."""

    x: np.ndarray  # (B, T, I) input
    h: np.ndarray  # (B, T+1, H) carried hidden state, h[:, 0] = h0
    mask: np.ndarray | None  # (B, T) bool, True where t < length; None means all valid
    weights: RNNWeights
    nonlinearity: str  # "tanh" or "relu"


def rnn_step(
    x_t: np.ndarray, h: np.ndarray, weights: RNNWeights, *, nonlinearity: str = "tanh"
) -> np.ndarray:
    """One step for streaming: x_t (B, I), h (B, H) -> h_t (B, H)."""
    phi, _ = _activation(nonlinearity)
    a = x_t @ weights.w_ih.T + weights.b_ih + h @ weights.w_hh.T + weights.b_hh  # (B, H)
    return phi(a)


def rnn_forward(
    x: np.ndarray,
    h0: np.ndarray,
    weights: RNNWeights,
    lengths: np.ndarray | None = None,
    need_cache: bool = True,
    *,
    nonlinearity: str = "tanh",
) -> tuple[np.ndarray, np.ndarray, RNNCache | None]:
    """Run the RNN over x.

    Args:
        x: (B, T, I) input. h0: (B, H). weights: RNNWeights.
        lengths: optional (B,) ints in [0, T].
        need_cache: keep what the backward needs.
        nonlinearity: "tanh" (default) or "relu", as torch.nn.RNN.

    Returns:
        y (B, T, H), h_n (B, H), cache (None unless need_cache).
    """
    phi, _ = _activation(nonlinearity)
    B, T, _ = x.shape
    H = h0.shape[-1]
    mask = step_mask(lengths, B, T)
    # The input projection for every step at once: one GEMM.
    ax = x @ weights.w_ih.T + (weights.b_ih + weights.b_hh)  # (B, T, H)
    y = np.zeros((B, T, H), dtype=x.dtype)  # (B, T, H)
    if need_cache:
        hs = np.empty((B, T + 1, H), dtype=x.dtype)
        hs[:, 0] = h0
    h = h0
    for t in range(T):
        h_new = phi(ax[:, t] + h @ weights.w_hh.T)  # (B, H)
        if mask is None:
            h = h_new
            y[:, t] = h_new
        else:
            m = mask[:, t, None]  # (B, 1)
            h = np.where(m, h_new, h)
            y[:, t] = np.where(m, h_new, 0.0)
        if need_cache:
            hs[:, t + 1] = h
    cache = RNNCache(x, hs, mask, weights, nonlinearity) if need_cache else None
    return y, h, cache


def rnn_backward(
    dy: np.ndarray | None, dh_n: np.ndarray | None, cache: RNNCache
) -> tuple[np.ndarray, np.ndarray, RNNWeights]:
    """Backpropagation through time for `rnn_forward`.

    Args:
        dy: (B, T, H) gradient of the loss w.r.t. y, or None. dh_n: (B, H) or None.
        cache: from the forward.

    Returns:
        dx (B, T, I), dh0 (B, H), and the parameter gradients as RNNWeights.
    """
    x, hs, mask, w, nonlinearity = cache
    _, dphi = _activation(nonlinearity)
    B, T, _ = x.shape
    H = hs.shape[-1]
    dh = np.zeros((B, H), x.dtype) if dh_n is None else dh_n.astype(x.dtype, copy=True)
    da_all = np.empty((B, T, H), dtype=x.dtype)  # gradient w.r.t. pre-activations
    for t in reversed(range(T)):
        dh_t = dh if dy is None else dh + dy[:, t]  # y[:, t] is h_t where valid, 0 elsewhere
        # h_t = phi(a_t); at padded steps hs[:, t+1] is not phi(a_t), but da is masked there.
        da = dphi(dh_t, hs[:, t + 1])  # (B, H)
        if mask is None:
            dh = da @ w.w_hh  # (B, H)
        else:
            # Past a sequence's end the state is carried unchanged: pass its gradient straight on.
            m = mask[:, t, None]  # (B, 1)
            da = da * m
            dh = np.where(m, da @ w.w_hh, dh)
        da_all[:, t] = da
    # Weight gradients: one GEMM each after the loop.
    da2 = da_all.reshape(B * T, H)  # (B*T, H)
    dx = da_all @ w.w_ih  # (B, T, I)
    dw_ih = da2.T @ x.reshape(B * T, x.shape[-1])  # (H, I)
    dw_hh = da2.T @ hs[:, :-1].reshape(B * T, H)  # (H, H)
    db = da2.sum(axis=0)  # (H,)
    return dx, dh, RNNWeights(dw_ih, dw_hh, db, db.copy())
