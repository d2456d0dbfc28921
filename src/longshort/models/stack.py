"""A stack of recurrent layers with an optional linear head: the shape every framework can express.

Symbols: B batch, T steps, I input features, F features out of the top recurrent layer (D*H),
O head outputs, D directions of the top layer, H its hidden size.

    x (B, T, I) --layers[0]--> (B, T, F0) --layers[1]--> ... --> y (B, T, F)
    readout "all":   y                                     (B, T, F)
    readout "last":  y[b, lengths[b] - 1]                  (B, F)   output at the last valid step
    readout "final": top layer's final h, directions side by side (B, D*H)
                     (Keras' return_sequences=False; equals "last" when unidirectional)
    out = head(readout)                                    (B, [T,] O), or the readout if no head

Parameters are named `layers.{k}.weight_ih_l0`, ..., `head.weight`, `head.bias`, so the stack has the
same state_dict as longshort.io's torch twin. Each layer may itself have several layers and two
directions (an nn.LSTM, nn.GRU or nn.RNN).

Streaming: `state = stack.init_state(B)`, then `out_t, state = stack.step(x_t, state)` gives
head(y_t) for each step t, exactly what forward(x) with readout "all" gives at that step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..nn import Linear, Module, ModuleList
from ..nn.recurrent import Recurrent

READOUTS = ("all", "last", "final")


class RecurrentStack(Module):
    """Recurrent layers applied in order, then an optional Linear head (see the module docstring).

    Example:
        >>> from longshort.nn import LSTM, Linear
        >>> m = RecurrentStack([LSTM(3, 8), LSTM(8, 4)], Linear(4, 1), readout="last")
        >>> out, states = m(np.zeros((2, 5, 3), np.float32))
        >>> out.shape
        (2, 1)
    """

    def __init__(
        self, layers: Sequence[Recurrent], head: Linear | None = None, readout: str = "all"
    ):
        super().__init__()
        layers = list(layers)
        if not layers or not all(isinstance(m, Recurrent) for m in layers):
            raise ValueError("RecurrentStack needs one or more LSTM, GRU or RNN layers")
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        for k in range(1, len(layers)):
            want = layers[k - 1].num_directions * layers[k - 1].hidden_size
            if layers[k].input_size != want:
                raise ValueError(
                    f"layer {k} has input_size={layers[k].input_size} but layer {k - 1} outputs "
                    f"{want} features (num_directions * hidden_size)"
                )
        top = layers[-1]
        self.features = top.num_directions * top.hidden_size
        if head is not None and head.in_features != self.features:
            raise ValueError(
                f"head has in_features={head.in_features} but the top layer outputs "
                f"{self.features} features"
            )
        self.layers = ModuleList(layers)
        self.head = head
        self.readout = readout
        self.input_size = layers[0].input_size
        self._ctx = None

    def init_state(self, batch: int) -> list:
        """Zero states, one per layer, each in that layer's own form ((h, c) for an LSTM)."""
        return [m.init_state(batch) for m in self.layers]

    def forward(self, x, state=None, lengths=None, need_cache: bool = True):
        """x (B, T, I), state (a list, one per layer, or None), lengths (B,) or None.

        Returns:
            out ((B, T, O) for readout "all", else (B, O); O = F when there is no head) and the
            list of final states, one per layer.
        """
        state = [None] * len(self.layers) if state is None else list(state)
        if len(state) != len(self.layers):
            raise ValueError(f"state must be a list of {len(self.layers)} layer states")
        y, states = x, []
        for m, s in zip(self.layers, state):
            y, s_n = m(y, s, lengths=lengths, need_cache=need_cache)  # (B, T, F_k)
            states.append(s_n)
        B, T, _ = y.shape
        last = None
        if self.readout == "last":
            last = np.full(B, T - 1) if lengths is None else np.asarray(lengths, np.int64) - 1
            if np.any(last < 0):
                raise ValueError("readout 'last' needs every sequence to have at least one step")
            y = y[np.arange(B), last]  # (B, F)
        elif self.readout == "final":
            y = self._final(states[-1])  # (B, D*H)
        self._ctx = (last, B, T) if need_cache else None
        out = y if self.head is None else self.head(y)
        return out, states

    def _final(self, s_n) -> np.ndarray:
        """Top layer's final h of its last layer, (D, B, H) -> (B, D*H)."""
        h_n = s_n[0] if isinstance(s_n, tuple) else s_n  # (L*D, B, H)
        D = self.layers[-1].num_directions
        return np.concatenate(list(h_n[-D:]), axis=-1)  # (B, D*H)

    def backward(self, dout) -> np.ndarray:
        """dout like forward's `out` -> dx (B, T, I); accumulates every parameter's `.grad`."""
        if self._ctx is None:
            raise RuntimeError("RecurrentStack.backward() needs a forward pass with need_cache")
        last, B, T = self._ctx
        dsel = np.asarray(dout) if self.head is None else self.head.backward(dout)
        top = self.layers[-1]
        dy, dstate = dsel, None
        if self.readout == "last":
            dy = np.zeros((B, T, self.features), dsel.dtype)  # (B, T, F)
            dy[np.arange(B), last] = dsel
        elif self.readout == "final":
            D, H = top.num_directions, top.hidden_size
            dh = np.zeros((top.num_layers * D, B, H), dsel.dtype)  # (L*D, B, H)
            for d in range(D):
                dh[-D + d] = dsel[:, d * H : (d + 1) * H]
            dy, dstate = None, ((dh, None) if top.STATES == 2 else dh)
        for m in reversed(self.layers):
            dy, _ = m.backward(dy, dstate)  # (B, T, I_k)
            dstate = None
        return dy

    def step(self, x_t, state=None):
        """One streaming step: x_t (B, I) -> out_t (B, O) (or (B, F) without a head), new state.

        Every layer must be unidirectional.
        """
        x_t = np.asarray(x_t)
        state = self.init_state(x_t.shape[0]) if state is None else list(state)
        y, new = x_t, []
        for m, s in zip(self.layers, state):
            y, s_n = m.step(y, s)  # (B, F_k)
            new.append(s_n)
        return (y if self.head is None else self.head(y)), new

    def __repr__(self) -> str:
        inner = ", ".join(repr(m) for m in self.layers)
        return f"RecurrentStack([{inner}], head={self.head!r}, readout={self.readout!r})"
