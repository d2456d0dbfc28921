"""Bounded-memory BPTT: keep the state every K steps, recompute each segment in the backward.

Symbols: B batch, T steps, I inputs, H hidden units, K segment length, n = ceil(T / K) segments.

A full cache holds every step's states and gates, O(T B H) memory (the LSTM keeps about 7 T B H
numbers). Checkpointing keeps only the n + 1 boundary states during the forward pass (run with
need_cache=False), then in the backward pass, for the segments in reverse order:
    cache_k = forward(x[:, a_k : a_k + K], state_{a_k}, need_cache=True)      (recompute)
    dx[:, a_k : a_k + K], dstate, grads_k = backward(dy[:, a_k : a_k + K], dstate, cache_k)
    grads += grads_k
The carried state gradient links the segments, so the gradients equal the full backward's (up to
float rounding of the segmented GEMMs). The cost is one extra forward pass; memory besides x, y and
dx is O((T / K + K) B H), smallest at K = sqrt(T), hence `every="sqrt"`.

Works with any op pair that follows the layer convention (state as a tuple of (B, H) arrays):
    forward(x, state_tuple, w, lengths, need_cache) -> (y, state_tuple, cache)
    backward(dy, dstate_tuple, cache) -> (dx, dstate_tuple, grads)
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

__all__ = ["CheckpointCache", "checkpointed_backward", "checkpointed_forward", "segment_length"]


class CheckpointCache(NamedTuple):
    """What the checkpointed backward needs: inputs, boundary states, no per-step buffers."""

    x: np.ndarray  # (B, T, I)
    states: list[tuple[np.ndarray, ...]]  # state at the start of each segment, each (B, H)
    lengths: np.ndarray | None  # (B,) or None
    weights: Any
    every: int  # K


def segment_length(every: int | str, steps: int) -> int:
    """K for a sequence of `steps`: an int >= 1, or "sqrt" for ceil(sqrt(T))."""
    if every == "sqrt":
        return max(1, math.ceil(math.sqrt(steps)))
    if isinstance(every, bool) or not isinstance(every, int | np.integer) or every < 1:
        raise ValueError(f"checkpoint_every must be a positive integer or 'sqrt', got {every!r}")
    return int(every)


def _segment_lengths(lengths, a: int, n: int):
    """Valid lengths inside the segment [a, a + n): clip(L_b - a, 0, n)."""
    if lengths is None:
        return None
    return np.clip(np.asarray(lengths) - a, 0, n)


def _add(p, q):
    """p + q for gradient fields; None (a parameter the op does not have) stays None."""
    return None if p is None else p + q


def checkpointed_forward(forward, x, state0, weights, lengths, every):
    """Forward pass that keeps only the segment boundary states.

    Args:
        forward: op with the layer convention (see module docstring). x: (B, T, I).
        state0: tuple of (B, H) arrays. weights: the op's weights. lengths: (B,) or None.
        every: K, an int or "sqrt".

    Returns:
        y (B, T, H), final state tuple, CheckpointCache.
    """
    B, T = x.shape[:2]
    K = segment_length(every, T)
    state, states, y = tuple(state0), [], None
    for a in range(0, T, K):
        n = min(K, T - a)
        states.append(state)
        ys, state, _ = forward(
            x[:, a : a + n], state, weights, _segment_lengths(lengths, a, n), False
        )
        if y is None:
            y = np.empty((B, T) + ys.shape[2:], ys.dtype)  # (B, T, H)
        y[:, a : a + n] = ys
        state = tuple(state)
    return y, state, CheckpointCache(x, states, lengths, weights, K)


def checkpointed_backward(forward, backward, dy, dstate, cache: CheckpointCache):
    """Backward pass for `checkpointed_forward`: recompute a segment, backpropagate it, go left.

    Args:
        forward, backward: the op pair used in the forward. dy: (B, T, H) or None.
        dstate: tuple of (B, H) arrays or Nones. cache: from checkpointed_forward.

    Returns:
        dx (B, T, I), dstate0 tuple, parameter gradients (same type as the op's).
    """
    x, states, lengths, weights, K = cache
    T = x.shape[1]
    dx, grads = np.empty_like(x), None
    for k in reversed(range(len(states))):
        a = k * K
        n = min(K, T - a)
        lg = _segment_lengths(lengths, a, n)
        _, _, seg_cache = forward(x[:, a : a + n], states[k], weights, lg, True)
        dys = None if dy is None else dy[:, a : a + n]
        dxs, dstate, g = backward(dys, dstate, seg_cache)
        dx[:, a : a + n] = dxs
        grads = g if grads is None else type(g)(*(_add(p, q) for p, q in zip(grads, g)))
        dstate = tuple(dstate)
    return dx, dstate, grads
