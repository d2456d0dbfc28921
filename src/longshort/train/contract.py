"""What a model gives the training loop: `model.loss(batch[, state]) -> LossOutput`.

    model.loss(batch) -> LossOutput(value, backward)                      stateless data
    model.loss(batch, state) -> LossOutput(value, backward, state=final)  stateful data

`batch` is a dict of arrays (see longshort.train.batches). `value` is the mean loss over the batch,
a float. `backward()` accumulates d value / d parameter into every Parameter.grad (the loop zeroes
them first). With stateful data `state` is the carried recurrent state ((L*D, B, H) arrays, or a
tuple of them; None = start from zero) with the rows of new sequences already zeroed; the model
returns its final state and the loop carries a copy into the next batch without ever passing a
gradient back into it: truncated BPTT.

A model with forward/backward needs two lines, e.g. a sequence-to-one regressor:

    def loss(self, batch):
        pred = self.forward(batch["x"], batch.get("lengths"))            # (B, O)
        return supervised_loss(pred, batch["y"], self.backward)          # mse by default
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ..ops.losses import (
    cross_entropy_backward,
    cross_entropy_forward,
    huber_backward,
    huber_forward,
    mae_backward,
    mae_forward,
    mse_backward,
    mse_forward,
)

LOSSES = {
    "mse": (mse_forward, mse_backward),
    "mae": (mae_forward, mae_backward),
    "huber": (huber_forward, huber_backward),
    "cross_entropy": (cross_entropy_forward, cross_entropy_backward),
}


class LossOutput(NamedTuple):
    """What `model.loss` returns: the mean loss, how to backpropagate it, the final state."""

    value: float
    backward: Callable[[], None]
    state: Any = None  # stateful models: the final recurrent state
    count: int | None = None  # sequences in the batch; None = first axis of the first array


def supervised_loss(
    pred: np.ndarray,
    target: np.ndarray,
    backward: Callable[[np.ndarray], object],
    kind: str = "mse",
    mask: np.ndarray | None = None,
    state: Any = None,
) -> LossOutput:
    """A LossOutput for pred against target with one of the losses of longshort.ops.losses.

    Args:
        pred: the model's output, e.g. (B, O) or (B, T, O) (logits for "cross_entropy").
        target: like pred, or integer class ids (B,) / (B, T) for "cross_entropy".
        backward: the model's backward, called with dL/dpred (pred's shape).
        kind: "mse", "mae", "huber" or "cross_entropy". mask: optional (B,) or (B, T), True =
            counts. state: passed through to LossOutput.state (stateful models).
    """
    if kind not in LOSSES:
        raise ValueError(f"loss kind must be one of {sorted(LOSSES)}, got {kind!r}")
    fwd, bwd = LOSSES[kind]
    value, cache = fwd(pred, target, mask)
    return LossOutput(value, lambda: backward(bwd(cache)), state)
