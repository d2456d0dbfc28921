"""The torch twin of longshort.models.stack.RecurrentStack. Imports torch: import it lazily.

Shapes and readouts as in RecurrentStack: x (B, T, I) batch first, lengths (B,) on the CPU,
out (B, T, O) for readout "all", else (B, O); states a list, one per layer, in torch's form.
"""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class TorchRecurrentStack(torch.nn.Module):
    """torch.nn.{LSTM,GRU,RNN} layers (batch_first=True) in order, then an optional nn.Linear.

    State_dict names match RecurrentStack's: `layers.{k}.weight_ih_l0`, `head.weight`, ...
    """

    def __init__(self, layers, head=None, readout: str = "all"):
        super().__init__()
        self.layers = torch.nn.ModuleList(layers)
        self.head = head
        self.readout = readout

    def forward(self, x, lengths=None, states=None):
        states = [None] * len(self.layers) if states is None else list(states)
        T = x.shape[1]
        y, out_states = x, []
        for m, s in zip(self.layers, states):
            if lengths is None:
                y, s_n = m(y, s)  # (B, T, F_k)
            else:
                packed = pack_padded_sequence(
                    y, lengths.cpu(), batch_first=True, enforce_sorted=False
                )
                y, s_n = m(packed, s)
                y, _ = pad_packed_sequence(y, batch_first=True, total_length=T)  # (B, T, F_k)
            out_states.append(s_n)
        if self.readout == "last":
            last = torch.full((y.shape[0],), T - 1) if lengths is None else lengths.long() - 1
            y = y[torch.arange(y.shape[0]), last]  # (B, F)
        elif self.readout == "final":
            s_n = out_states[-1]
            h_n = s_n[0] if isinstance(s_n, tuple) else s_n  # (L*D, B, H)
            D = 2 if self.layers[-1].bidirectional else 1
            y = torch.cat(list(h_n[-D:]), dim=-1)  # (B, D*H)
        return (y if self.head is None else self.head(y)), out_states
