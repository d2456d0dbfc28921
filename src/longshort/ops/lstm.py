"""Reference LSTM: one layer, one direction, forward and backpropagation through time.

Symbols (batch first):
    B batch, T steps, I input features, H hidden units.
    x (B, T, I); h0, c0 (B, H); y (B, T, H); h_n, c_n (B, H).
    w_ih (4H, I), w_hh (4H, H), b_ih (4H,), b_hh (4H,): PyTorch's layout, gate blocks i, f, g, o.

Equations, for t = 0 .. T-1:
    z_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh          (B, 4H)
    i_t = sigmoid(z_i)   f_t = sigmoid(z_f)   g_t = tanh(z_g)   o_t = sigmoid(z_o)
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)

Variable lengths: with `lengths[b] = L_b`, steps t >= L_b leave the state unchanged and output 0, so
h_n[b] is the state after step L_b - 1 (h0 when L_b = 0) and the backward agrees.

This file is the oracle that the fused kernels are tested against; it favours clarity.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .activations import sigmoid
from .sequence import RecurrentWeights, step_mask

LSTMWeights = RecurrentWeights  # w_ih (4H, I), w_hh (4H, H), b_ih (4H,), b_hh (4H,)


class LSTMCache(NamedTuple):
    """What `lstm_backward` needs; also the gate trace for inspection."""

    x: np.ndarray  # (B, T, I) input
    h: np.ndarray  # (B, T+1, H) carried hidden state, h[:, 0] = h0
    c: np.ndarray  # (B, T+1, H) carried cell state, c[:, 0] = c0
    gates: np.ndarray  # (B, T, 4H) activated i, f, g, o
    tanh_c: np.ndarray  # (B, T, H) tanh of the new cell state
    mask: np.ndarray | None  # (B, T) bool, True where t < length; None means all valid
    weights: LSTMWeights


def lstm_step(
    x_t: np.ndarray, state: tuple[np.ndarray, np.ndarray], weights: LSTMWeights
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """One step for streaming: x_t (B, I), state (h, c) each (B, H).

    Returns:
        ((h_t, c_t), gates) with gates (B, 4H) the activated i, f, g, o.
    """
    h, c = state
    H = h.shape[-1]
    z = x_t @ weights.w_ih.T + weights.b_ih + h @ weights.w_hh.T + weights.b_hh  # (B, 4H)
    gates = np.empty_like(z)
    gates[:, : 2 * H] = sigmoid(z[:, : 2 * H])  # i, f
    gates[:, 2 * H : 3 * H] = np.tanh(z[:, 2 * H : 3 * H])  # g
    gates[:, 3 * H :] = sigmoid(z[:, 3 * H :])  # o
    i, f, g, o = (gates[:, k * H : (k + 1) * H] for k in range(4))
    c_t = f * c + i * g  # (B, H)
    h_t = o * np.tanh(c_t)  # (B, H)
    return (h_t, c_t), gates


def lstm_forward(
    x: np.ndarray,
    state0: tuple[np.ndarray, np.ndarray],
    weights: LSTMWeights,
    lengths: np.ndarray | None = None,
    need_cache: bool = True,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], LSTMCache | None]:
    """Run the LSTM over x.

    Args:
        x: (B, T, I) input. state0: (h0, c0), each (B, H). weights: LSTMWeights.
        lengths: optional (B,) ints in [0, T].
        need_cache: keep what the backward (and gate inspection) needs.

    Returns:
        y (B, T, H), (h_n, c_n) each (B, H), cache (None unless need_cache).
    """
    B, T, _ = x.shape
    h0, c0 = state0
    H = h0.shape[-1]
    mask = step_mask(lengths, B, T)
    # The input projection for every step at once: one GEMM.
    zx = x @ weights.w_ih.T + (weights.b_ih + weights.b_hh)  # (B, T, 4H)
    y = np.zeros((B, T, H), dtype=x.dtype)  # (B, T, H)
    if need_cache:
        hs = np.empty((B, T + 1, H), dtype=x.dtype)
        cs = np.empty((B, T + 1, H), dtype=x.dtype)
        gates_all = np.empty((B, T, 4 * H), dtype=x.dtype)
        tanh_all = np.empty((B, T, H), dtype=x.dtype)
        hs[:, 0], cs[:, 0] = h0, c0
    h, c = h0, c0
    for t in range(T):
        z = zx[:, t] + h @ weights.w_hh.T  # (B, 4H)
        g4 = np.empty_like(z)
        g4[:, : 2 * H] = sigmoid(z[:, : 2 * H])
        g4[:, 2 * H : 3 * H] = np.tanh(z[:, 2 * H : 3 * H])
        g4[:, 3 * H :] = sigmoid(z[:, 3 * H :])
        i, f, g, o = (g4[:, k * H : (k + 1) * H] for k in range(4))
        c_new = f * c + i * g  # (B, H)
        tc = np.tanh(c_new)  # (B, H)
        h_new = o * tc  # (B, H)
        if mask is None:
            h, c = h_new, c_new
            y[:, t] = h_new
        else:
            m = mask[:, t, None]  # (B, 1)
            h = np.where(m, h_new, h)
            c = np.where(m, c_new, c)
            y[:, t] = np.where(m, h_new, 0.0)
        if need_cache:
            hs[:, t + 1], cs[:, t + 1] = h, c
            gates_all[:, t], tanh_all[:, t] = g4, tc
    cache = None
    if need_cache:
        cache = LSTMCache(x, hs, cs, gates_all, tanh_all, mask, weights)
    return y, (h, c), cache


def lstm_backward(
    dy: np.ndarray | None,
    dstate: tuple[np.ndarray | None, np.ndarray | None],
    cache: LSTMCache,
    need_dx: bool = True,
) -> tuple[np.ndarray | None, tuple[np.ndarray, np.ndarray], LSTMWeights]:
    """Backpropagation through time for `lstm_forward`.

    Args:
        dy: (B, T, H) gradient of the loss w.r.t. y, or None. dstate: (dh_n, dc_n), each (B, H)
            or None. cache: from the forward. need_dx: False skips dx = dz W_ih (the input's
            gradient, not needed when the input is data): None is returned in its place.

    Returns:
        dx (B, T, I), (dh0, dc0) each (B, H), and the parameter gradients as LSTMWeights.
    """
    x, hs, cs, gates_all, tanh_all, mask, w = cache
    B, T, _ = x.shape
    H = hs.shape[-1]
    dh = np.zeros((B, H), x.dtype) if dstate[0] is None else dstate[0].astype(x.dtype, copy=True)
    dc = np.zeros((B, H), x.dtype) if dstate[1] is None else dstate[1].astype(x.dtype, copy=True)
    dz_all = np.empty((B, T, 4 * H), dtype=x.dtype)  # gradient w.r.t. pre-activations
    for t in reversed(range(T)):
        m = None if mask is None else mask[:, t, None]  # (B, 1)
        dh_t = dh if dy is None else dh + dy[:, t]  # y[:, t] is h_new where valid, 0 elsewhere
        g4 = gates_all[:, t]
        i, f, g, o = (g4[:, k * H : (k + 1) * H] for k in range(4))
        tc = tanh_all[:, t]
        # h_t = o * tanh(c_t)
        do = dh_t * tc
        dc_t = dc + dh_t * o * (1.0 - tc * tc)
        # c_t = f * c_{t-1} + i * g
        di, df, dg = dc_t * g, dc_t * cs[:, t], dc_t * i
        dz = np.empty_like(g4)  # (B, 4H)
        dz[:, :H] = di * i * (1.0 - i)
        dz[:, H : 2 * H] = df * f * (1.0 - f)
        dz[:, 2 * H : 3 * H] = dg * (1.0 - g * g)
        dz[:, 3 * H :] = do * o * (1.0 - o)
        dh_prev = dz @ w.w_hh  # (B, H)
        dc_prev = dc_t * f  # (B, H)
        if m is None:
            dh, dc = dh_prev, dc_prev
        else:
            # Past a sequence's end the state is carried unchanged: pass its gradient straight on.
            dz *= m
            dh = np.where(m, dh_prev, dh)
            dc = np.where(m, dc_prev, dc)
        dz_all[:, t] = dz
    # Weight gradients: one GEMM each after the loop.
    dz2 = dz_all.reshape(B * T, 4 * H)  # (B*T, 4H)
    dx = dz_all @ w.w_ih if need_dx else None  # (B, T, I)
    dw_ih = dz2.T @ x.reshape(B * T, x.shape[-1])  # (4H, I)
    dw_hh = dz2.T @ hs[:, :-1].reshape(B * T, H)  # (4H, H)
    db = dz2.sum(axis=0)  # (4H,)
    return dx, (dh, dc), LSTMWeights(dw_ih, dw_hh, db, db.copy())
