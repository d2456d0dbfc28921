"""The LSTM layer: stacked, bidirectional, variable lengths, in torch.nn.LSTM's layout.

    i_t = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
    f_t = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
    g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
    o_t = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)

Shapes: x (B, T, I) -> y (B, T, D*H); state (h, c), each (L*D, B, H).
Parameters: weight_ih_l{k} (4H, I_k), weight_hh_l{k} (4H, H), bias_ih_l{k}, bias_hh_l{k} (4H,),
gate blocks in the order i, f, g, o; `_reverse` for the backward direction.
"""

from __future__ import annotations

import numpy as np

from .recurrent import Recurrent


class LSTM(Recurrent):
    """Long Short-Term Memory (Hochreiter & Schmidhuber 1997, with the forget gate of Gers 2000).

    Example:
        >>> lstm = LSTM(input_size=3, hidden_size=8, num_layers=2)
        >>> y, (h_n, c_n) = lstm(np.zeros((4, 10, 3), np.float32))
        >>> y.shape, h_n.shape
        ((4, 10, 8), (2, 4, 8))
    """

    GATES = 4
    STATES = 2
    KIND = "lstm"

    def _op_forward(self, x, state, w, lengths, need_cache):
        return self._kernel_ops()[0](x, state, w, lengths, need_cache)

    def _op_backward(self, dy, dstate, cache):
        return self._kernel_ops()[1](dy, dstate, cache)

    def gate_trace(self) -> list[dict[str, np.ndarray]]:
        """Per-step gates and cell states of the last forward pass, one dict per layer-direction.

        Keys: "i", "f", "g", "o", "c" (cell state c_t), "h" (carried hidden state h_t), each
        (B, T, H), in the direction's own time order (index 0 = first step it processed).
        Needs a forward pass with need_cache=True.
        """
        if self._ctx is None:
            raise RuntimeError("gate_trace() needs a forward pass with need_cache=True first")
        if self.checkpoint_every is not None:
            raise RuntimeError(
                "gate_trace() needs every step's gates, but this LSTM keeps only checkpoints "
                f"(checkpoint_every={self.checkpoint_every!r}); set layer.checkpoint_every = None "
                "and run forward() again to record a trace"
            )
        H = self.hidden_size
        out = []
        for cache in self._ctx[0]:
            g = cache.gates
            trace = {k: g[..., j * H : (j + 1) * H] for j, k in enumerate("ifgo")}
            trace["c"], trace["h"] = cache.c[:, 1:], cache.h[:, 1:]
            out.append(trace)
        return out

    def step(self, x_t, state=None):
        """One streaming step through every layer: x_t (B, I) -> y_t (B, H), new (h, c).

        Unidirectional only (a backward direction needs the whole sequence). No dropout.
        A state that is already a tuple of (L, B, H) arrays of the layer's dtype (as step()
        returns it) is used as is, without a copy or a scan for NaN: a step is mostly overhead.
        """
        if self.bidirectional:
            raise ValueError("step() is for unidirectional LSTMs; run forward() on whole sequences")
        x_t = np.asarray(x_t, dtype=self.dtype)
        if x_t.ndim != 2 or x_t.shape[1] != self.input_size:
            raise ValueError(f"x_t must have shape (B, {self.input_size}), got {x_t.shape}")
        L, B = self.num_layers, x_t.shape[0]
        shape = (L, B, self.hidden_size)
        if (
            isinstance(state, tuple)
            and len(state) == 2
            and all(
                isinstance(s, np.ndarray) and s.shape == shape and s.dtype == self.dtype
                for s in state
            )
        ):
            h, c = state
        else:
            h, c = self._check_states(state, B)
        step = self._kernel_ops()[2]
        hs, cs, inp = [], [], x_t
        for layer in range(L):
            (h_l, c_l), _ = step(inp, (h[layer], c[layer]), self.weights(layer))  # (B, H) each
            hs.append(h_l)
            cs.append(c_l)
            inp = h_l
        if L == 1:
            return inp, (hs[0][None], cs[0][None])  # (1, B, H)
        return inp, (np.stack(hs), np.stack(cs))  # (L, B, H)
