"""Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay.

torch.optim.SGD's update for each parameter w with gradient g, learning rate lr:

    g <- g + weight_decay * w                       (L2 penalty folded into the gradient)
    b <- g                           on the first step (momentum buffer)
    b <- momentum * b + (1 - dampening) * g         afterwards
    g <- g + momentum * b    if nesterov, else  g <- b        (only when momentum != 0)
    w <- w - lr * g
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..nn.module import Parameter
from .optimizer import Optimizer


class SGD(Optimizer):
    """SGD(params, lr, momentum=0, nesterov=False, weight_decay=0, dampening=0), as torch."""

    HYPER = ("momentum", "nesterov", "weight_decay", "dampening")

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        dampening: float = 0.0,
    ):
        super().__init__(params, lr)
        for arg, val in (("momentum", momentum), ("weight_decay", weight_decay)):
            if not val >= 0:
                raise ValueError(f"SGD: {arg} must be >= 0, got {val}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                "SGD: nesterov momentum needs momentum > 0 and dampening = 0, "
                f"got momentum={momentum}, dampening={dampening}"
            )
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.weight_decay, self.dampening = float(weight_decay), float(dampening)

    def _update(self, p: Parameter, state: dict[str, np.ndarray]) -> None:
        g = p.grad
        if self.weight_decay != 0:
            g = g + self.weight_decay * p.data
        if self.momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p.data -= self.lr * g
