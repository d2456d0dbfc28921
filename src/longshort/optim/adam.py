"""Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), as torch.optim implements them.

For each parameter w with gradient g, at step t = 1, 2, ...:

    Adam:   g <- g + weight_decay * w                     (L2 penalty inside the gradient)
    AdamW:  w <- w * (1 - lr * weight_decay)              (decoupled decay, before the update)
    m <- m + (1 - beta1) (g - m)                          first moment (torch's lerp)
    v <- beta2 v + (1 - beta2) g^2                        second moment
    denom = sqrt(v) / sqrt(1 - beta2^t) + eps
    w <- w - lr / (1 - beta1^t) * m / denom
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..nn.module import Parameter
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0), as torch.

    State per parameter: `exp_avg` (m) and `exp_avg_sq` (v), each the parameter's shape.
    """

    HYPER = ("betas", "eps", "weight_decay")
    DECOUPLED = False  # AdamW: decay the weights directly instead of adding to the gradient

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, lr)
        name = type(self).__name__
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"{name}: betas must be two numbers in [0, 1), got {betas}")
        if not eps >= 0:
            raise ValueError(f"{name}: eps must be >= 0, got {eps}")
        if not weight_decay >= 0:
            raise ValueError(f"{name}: weight_decay must be >= 0, got {weight_decay}")
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps, self.weight_decay = float(eps), float(weight_decay)

    def _update(self, p: Parameter, state: dict[str, np.ndarray]) -> None:
        beta1, beta2 = self.betas
        lr, t = self.lr, self.step_count
        if not state:
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        g = p.grad
        if self.weight_decay != 0:
            if self.DECOUPLED:
                p.data *= 1 - lr * self.weight_decay
            else:
                g = g + self.weight_decay * p.data
        m += (1 - beta1) * (g - m)
        v *= beta2
        v += (1 - beta2) * (g * g)
        step_size = lr / (1 - beta1**t)
        denom = np.sqrt(v) / (1 - beta2**t) ** 0.5 + self.eps
        p.data -= step_size * (m / denom)


class AdamW(Adam):
    """AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2), as torch."""

    DECOUPLED = True

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ):
        super().__init__(params, lr, betas, eps, weight_decay)
