"""Reference GRU (torch.nn.GRU): one layer, one direction, forward and BPTT.

Symbols (batch first):
    B batch, T steps, I input features, H hidden units.
    x (B, T, I); h0 (B, H); y (B, T, H); h_n (B, H).
    w_ih (3H, I), w_hh (3H, H), b_ih (3H,), b_hh (3H,): PyTorch's layout, gate blocks r, z, n.

Equations, for t = 0 .. T-1 (Cho et al. 2014, in PyTorch's form):
    gx_t = x_t W_ih^T + b_ih                  gh_t = h_{t-1} W_hh^T + b_hh        (B, 3H)
    r_t = sigmoid(gx_r + gh_r)
    z_t = sigmoid(gx_z + gh_z)
    n_t = tanh(gx_n + r_t * gh_n)             (b_hn sits inside the reset: not a plain sum)
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

Variable lengths: with `lengths[b] = L_b`, steps t >= L_b leave the state unchanged and output 0, so
h_n[b] is the state after step L_b - 1 (h0 when L_b = 0) and the backward agrees.

This file is the oracle for any fused kernel; it favours clarity.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .activations import sigmoid
from .sequence import RecurrentWeights, step_mask

GRUWeights = RecurrentWeights  # w_ih (3H, I), w_hh (3H, H), b_ih (3H,), b_hh (3H,)


class GRUCache(NamedTuple):
    """What `gru_backward` needs; also the gate trace for inspection."""

    x: np.ndarray  # (B, T, I) input
    h: np.ndarray  # (B, T+1, H) carried hidden state, h[:, 0] = h0
    gates: np.ndarray  # (B, T, 3H) activated r, z, n
    gh_n: np.ndarray  # (B, T, H) W_hn h_{t-1} + b_hn, the part the reset gate scales
    mask: np.ndarray | None  # (B, T) bool, True where t < length; None means all valid
    weights: GRUWeights


def _cell(gx: np.ndarray, h: np.ndarray, w: GRUWeights):
    """One step from the input projection gx (B, 3H) and h (B, H): (h_t, gates, gh_n)."""
    H = h.shape[-1]
    gh = h @ w.w_hh.T + w.b_hh  # (B, 3H)
    gates = np.empty_like(gh)  # (B, 3H)
    gates[:, : 2 * H] = sigmoid(gx[:, : 2 * H] + gh[:, : 2 * H])  # r, z
    r, z = gates[:, :H], gates[:, H : 2 * H]
    gh_n = gh[:, 2 * H :]  # (B, H)
    gates[:, 2 * H :] = np.tanh(gx[:, 2 * H :] + r * gh_n)  # n
    n = gates[:, 2 * H :]
    h_t = n + z * (h - n)  # (1 - z) n + z h, (B, H)
    return h_t, gates, gh_n


def gru_step(x_t: np.ndarray, h: np.ndarray, weights: GRUWeights) -> np.ndarray:
    """One step for streaming: x_t (B, I), h (B, H) -> h_t (B, H)."""
    gx = x_t @ weights.w_ih.T + weights.b_ih  # (B, 3H)
    h_t, _, _ = _cell(gx, h, weights)
    return h_t


def gru_forward(
    x: np.ndarray,
    h0: np.ndarray,
    weights: GRUWeights,
    lengths: np.ndarray | None = None,
    need_cache: bool = True,
) -> tuple[np.ndarray, np.ndarray, GRUCache | None]:
    """Run the GRU over x.

    Args:
        x: (B, T, I) input. h0: (B, H). weights: GRUWeights.
        lengths: optional (B,) ints in [0, T].
        need_cache: keep what the backward (and gate inspection) needs.

    Returns:
        y (B, T, H), h_n (B, H), cache (None unless need_cache).
    """
    B, T, _ = x.shape
    H = h0.shape[-1]
    mask = step_mask(lengths, B, T)
    # The input projection for every step at once: one GEMM. b_hh stays in the loop (see b_hn).
    gx_all = x @ weights.w_ih.T + weights.b_ih  # (B, T, 3H)
    y = np.zeros((B, T, H), dtype=x.dtype)  # (B, T, H)
    if need_cache:
        hs = np.empty((B, T + 1, H), dtype=x.dtype)
        gates_all = np.empty((B, T, 3 * H), dtype=x.dtype)
        ghn_all = np.empty((B, T, H), dtype=x.dtype)
        hs[:, 0] = h0
    h = h0
    for t in range(T):
        h_new, gates, gh_n = _cell(gx_all[:, t], h, weights)
        if mask is None:
            h = h_new
            y[:, t] = h_new
        else:
            m = mask[:, t, None]  # (B, 1)
            h = np.where(m, h_new, h)
            y[:, t] = np.where(m, h_new, 0.0)
        if need_cache:
            hs[:, t + 1] = h
            gates_all[:, t], ghn_all[:, t] = gates, gh_n
    cache = GRUCache(x, hs, gates_all, ghn_all, mask, weights) if need_cache else None
    return y, h, cache


def gru_backward(
    dy: np.ndarray | None, dh_n: np.ndarray | None, cache: GRUCache
) -> tuple[np.ndarray, np.ndarray, GRUWeights]:
    """Backpropagation through time for `gru_forward`.

    Args:
        dy: (B, T, H) gradient of the loss w.r.t. y, or None. dh_n: (B, H) or None.
        cache: from the forward.

    Returns:
        dx (B, T, I), dh0 (B, H), and the parameter gradients as GRUWeights.
    """
    x, hs, gates_all, ghn_all, mask, w = cache
    B, T, _ = x.shape
    H = hs.shape[-1]
    dh = np.zeros((B, H), x.dtype) if dh_n is None else dh_n.astype(x.dtype, copy=True)
    dgx_all = np.empty((B, T, 3 * H), dtype=x.dtype)  # gradient w.r.t. gx (input side)
    dgh_all = np.empty((B, T, 3 * H), dtype=x.dtype)  # gradient w.r.t. gh (recurrent side)
    for t in reversed(range(T)):
        dh_t = dh if dy is None else dh + dy[:, t]  # y[:, t] is h_t where valid, 0 elsewhere
        g3 = gates_all[:, t]
        r, z, n = g3[:, :H], g3[:, H : 2 * H], g3[:, 2 * H :]
        h_prev = hs[:, t]
        # h_t = (1 - z) * n + z * h_{t-1}
        dn = dh_t * (1.0 - z)
        dz = dh_t * (h_prev - n)
        # n = tanh(gx_n + r * gh_n)
        dan = dn * (1.0 - n * n)  # (B, H)
        dr = dan * ghn_all[:, t]
        dgx = np.empty_like(g3)  # (B, 3H)
        dgx[:, :H] = dr * r * (1.0 - r)
        dgx[:, H : 2 * H] = dz * z * (1.0 - z)
        dgx[:, 2 * H :] = dan
        dgh = dgx.copy()  # r and z see gx + gh; n sees r * gh_n
        dgh[:, 2 * H :] = dan * r
        dh_prev = dh_t * z + dgh @ w.w_hh  # (B, H)
        if mask is None:
            dh = dh_prev
        else:
            # Past a sequence's end the state is carried unchanged: pass its gradient straight on.
            m = mask[:, t, None]  # (B, 1)
            dgx *= m
            dgh *= m
            dh = np.where(m, dh_prev, dh)
        dgx_all[:, t], dgh_all[:, t] = dgx, dgh
    # Weight gradients: one GEMM each after the loop.
    dgx2 = dgx_all.reshape(B * T, 3 * H)  # (B*T, 3H)
    dgh2 = dgh_all.reshape(B * T, 3 * H)  # (B*T, 3H)
    dx = dgx_all @ w.w_ih  # (B, T, I)
    dw_ih = dgx2.T @ x.reshape(B * T, x.shape[-1])  # (3H, I)
    dw_hh = dgh2.T @ hs[:, :-1].reshape(B * T, H)  # (3H, H)
    return dx, dh, GRUWeights(dw_ih, dw_hh, dgx2.sum(axis=0), dgh2.sum(axis=0))
