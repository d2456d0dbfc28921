"""The Elman RNN layer: stacked, bidirectional, variable lengths, in torch.nn.RNN's layout.

    h_t = phi(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),    phi = tanh (default) or relu

Shapes: x (B, T, I) -> y (B, T, D*H); state h (L*D, B, H).
Parameters: weight_ih_l{k} (H, I_k), weight_hh_l{k} (H, H), bias_ih_l{k}, bias_hh_l{k} (H,);
`_reverse` for the backward direction.
"""

from __future__ import annotations

import numpy as np

from .recurrent import Recurrent

NONLINEARITIES = ("tanh", "relu")


class RNN(Recurrent):
    """Elman recurrent network, the simplest baseline (Elman 1990).

    Takes Recurrent's arguments plus the keyword `nonlinearity` ("tanh" or "relu").

    Example:
        >>> rnn = RNN(input_size=3, hidden_size=8, num_layers=2, nonlinearity="relu")
        >>> y, h_n = rnn(np.zeros((4, 10, 3), np.float32))
        >>> y.shape, h_n.shape
        ((4, 10, 8), (2, 4, 8))
    """

    GATES = 1
    STATES = 1
    KIND = "rnn"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        dtype=np.float32,
        *,
        nonlinearity: str = "tanh",
        **kwargs,
    ):
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(
            input_size, hidden_size, num_layers, bidirectional, dropout, dtype, **kwargs
        )
        # Set after the base init (Module registers attributes there); initialisation ignores it.
        self.nonlinearity = nonlinearity

    def _op_forward(self, x, state, w, lengths, need_cache):
        forward = self._kernel_ops()[0]  # impl: fused kernels or the reference ops
        y, h_n, cache = forward(x, state[0], w, lengths, need_cache, nonlinearity=self.nonlinearity)
        return y, (h_n,), cache

    def _op_backward(self, dy, dstate, cache, need_dx=True):  # dx always computed
        dx, dh0, grads = self._kernel_ops()[1](dy, dstate[0], cache)
        return dx, (dh0,), grads

    def _op_step(self, x_t, h, w):
        return self._kernel_ops()[2](x_t, h, w, nonlinearity=self.nonlinearity)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"
