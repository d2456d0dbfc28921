"""Gradient clipping by the global L2 norm, as torch.nn.utils.clip_grad_norm_.

total = sqrt(sum over parameters of ||g_p||^2)
g_p <- g_p * min(1, max_norm / (total + 1e-6))
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..nn.module import Parameter


def clip_grad_norm(params: Iterable[Parameter], max_norm: float) -> float:
    """Scale all gradients in place so their joint L2 norm is at most `max_norm`.

    Args:
        params: Parameters (e.g. `model.parameters()`). max_norm: positive bound.

    Returns:
        The total norm before clipping.

    Raises:
        FloatingPointError: when the norm is NaN or inf (training has diverged); names the first
            parameter with a non-finite gradient.
    """
    params = list(params)
    if not max_norm > 0:
        raise ValueError(f"clip_grad_norm: max_norm must be positive, got {max_norm}")
    if not params:
        return 0.0
    norms = np.array([np.linalg.norm(p.grad.reshape(-1)) for p in params], dtype=np.float64)
    total = float(np.linalg.norm(norms))
    if not math.isfinite(total):
        bad = next(i for i, n in enumerate(norms) if not math.isfinite(n))
        raise FloatingPointError(
            f"the total gradient norm is {total}: parameter {bad} (shape {params[bad].shape}) has "
            "a NaN or inf gradient. Lower the learning rate, check the inputs for NaN, or clip "
            "with a smaller max_norm"
        )
    coef = min(max_norm / (total + 1e-6), 1.0)
    if coef < 1.0:  # multiplying by exactly 1 would change nothing
        for p in params:
            p.grad *= coef
    return total
