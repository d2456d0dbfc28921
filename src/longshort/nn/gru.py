"""The GRU layer: stacked, bidirectional, variable lengths, in torch.nn.GRU's layout.

    r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

Shapes: x (B, T, I) -> y (B, T, D*H); state h (L*D, B, H).
Parameters: weight_ih_l{k} (3H, I_k), weight_hh_l{k} (3H, H), bias_ih_l{k}, bias_hh_l{k} (3H,),
gate blocks in the order r, z, n; `_reverse` for the backward direction.
"""

from __future__ import annotations

from .recurrent import Recurrent


class GRU(Recurrent):
    """Gated Recurrent Unit (Cho et al. 2014), PyTorch's variant (reset applied after W_hn).

    Example:
        >>> gru = GRU(input_size=3, hidden_size=8, num_layers=2)
        >>> y, h_n = gru(np.zeros((4, 10, 3), np.float32))
        >>> y.shape, h_n.shape
        ((4, 10, 8), (2, 4, 8))
    """

    GATES = 3
    STATES = 1
    KIND = "gru"

    def _op_forward(self, x, state, w, lengths, need_cache):
        forward = self._kernel_ops()[0]  # impl: fused kernels or the reference ops
        y, h_n, cache = forward(x, state[0], w, lengths, need_cache)
        return y, (h_n,), cache

    def _op_backward(self, dy, dstate, cache, need_dx=True):  # dx always computed
        dx, dh0, grads = self._kernel_ops()[1](dy, dstate[0], cache)
        return dx, (dh0,), grads
