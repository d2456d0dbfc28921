"""A fully connected layer in torch.nn.Linear's names and layout.

    y = x W^T + b        x (N..., I) -> y (N..., O); weight W (O, I), bias b (O,)

Initialisation as PyTorch's default (kaiming_uniform with a = sqrt(5)), which reduces to
W, b ~ U(-1/sqrt(I), 1/sqrt(I)).
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..ops.linear import linear_backward, linear_forward
from .module import Module, Parameter


class Linear(Module):
    """Affine map on the last axis; `backward` accumulates into weight.grad and bias.grad.

    Example:
        >>> head = Linear(8, 1)
        >>> head(np.zeros((4, 10, 8), np.float32)).shape
        (4, 10, 1)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype=np.float32,
        seed: int | None = None,
    ):
        super().__init__()
        for arg, val in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(val, int | np.integer) or val < 1:
                raise ValueError(f"Linear: {arg} must be a positive integer, got {val!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"Linear: dtype must be float32 or float64, got {self.dtype}")
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(self.in_features)
        shape = (self.out_features, self.in_features)
        self.weight = Parameter(rng.uniform(-bound, bound, shape).astype(self.dtype))
        self.bias = (
            Parameter(rng.uniform(-bound, bound, self.out_features).astype(self.dtype))
            if bias
            else None
        )
        self._cache = None

    def forward(self, x) -> np.ndarray:
        """x (..., in_features) -> y (..., out_features); keeps the input for `backward`."""
        x = V.as_float_array(x, "x", self.dtype)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"x has shape {x.shape} but the Linear layer was built with "
                f"in_features={self.in_features} (the last axis)"
            )
        b = None if self.bias is None else self.bias.data
        y, self._cache = linear_forward(x, self.weight.data, b)
        return y

    def backward(self, dy) -> np.ndarray:
        """dy (..., out_features) -> dx (..., in_features); accumulates parameter gradients."""
        if self._cache is None:
            raise RuntimeError("Linear.backward() needs a forward pass first")
        dx, dw, db = linear_backward(np.asarray(dy, dtype=self.dtype), self._cache)
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def __repr__(self) -> str:
        return (
            f"Linear({self.in_features}, {self.out_features}, bias={self.bias is not None}, "
            f"dtype={self.dtype.name})"
        )
