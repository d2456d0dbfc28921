"""Two small models that speak the training loop's contract (longshort.train.contract).

SeqToOne, sequence to one value:
    x (B, T, I) --LSTM--> y (B, T, H) --last real step--> (B, H) --Linear--> pred (B, O)

Stream, one output per step, stateful (truncated BPTT over a long stream):
    x (B, K, I), state --LSTM--> y (B, K, H) --Linear--> pred (B, K, O), final state
"""

import numpy as np

from longshort.nn import LSTM, Linear, Module
from longshort.train import supervised_loss


class SeqToOne(Module):
    """Batches {"x": (B, T, I), "y": (B, O), optional "lengths": (B,)}; mean squared error."""

    def __init__(self, input_size, hidden_size, output_size=1, seed=0, dtype=np.float32, **lstm):
        super().__init__()
        self.lstm = LSTM(input_size, hidden_size, dtype=dtype, seed=seed, **lstm)
        self.head = Linear(hidden_size, output_size, dtype=dtype, seed=seed + 1)

    def forward(self, x, lengths=None):
        y, _ = self.lstm(x, lengths=lengths)  # (B, T, H)
        B, T, _ = y.shape
        last = np.full(B, T - 1) if lengths is None else np.asarray(lengths) - 1  # (B,)
        self._ctx = (last, y.shape)
        return self.head(y[np.arange(B), last])  # (B, O)

    def backward(self, dpred):
        last, shape = self._ctx
        dy = np.zeros(shape, dpred.dtype)  # (B, T, H)
        dy[np.arange(shape[0]), last] = self.head.backward(dpred)
        self.lstm.backward(dy)

    def loss(self, batch):
        pred = self.forward(batch["x"], batch.get("lengths"))
        return supervised_loss(pred, batch["y"], self.backward)


class Stream(Module):
    """Batches from StreamBatches {"x": (B, K, I), "y": (B, K, O), "mask", "lengths", "reset"}."""

    def __init__(self, input_size, hidden_size, output_size=1, seed=0, dtype=np.float32, **lstm):
        super().__init__()
        self.lstm = LSTM(input_size, hidden_size, dtype=dtype, seed=seed, **lstm)
        self.head = Linear(hidden_size, output_size, dtype=dtype, seed=seed + 1)

    def forward(self, x, state=None, lengths=None):
        y, state = self.lstm(x, state, lengths=lengths)  # (B, K, H), ((L, B, H), (L, B, H))
        return self.head(y), state  # (B, K, O)

    def backward(self, dpred):
        # no gradient for the initial state is passed on: truncated BPTT stops at the chunk
        self.lstm.backward(self.head.backward(dpred))

    def loss(self, batch, state=None):
        pred, final = self.forward(batch["x"], state, batch.get("lengths"))
        return supervised_loss(pred, batch["y"], self.backward, mask=batch["mask"], state=final)
