"""A recurrent stack (LSTM, GRU or Elman RNN) with a linear head: the lab's model.

    x (B, T, I) --rnn--> y (B, T, H) --readout--> (B, H) or (B, T, H) --Linear--> (B, [T,] O)

readout "last" answers once per sequence, from the output at its last valid step
(y[b, lengths[b] - 1]); readout "all" answers at every step. The same class serves every cell so
that the lab compares them on equal terms (same hidden size, same head, same optimiser).

Streaming: `state = model.init_state(B)`, then `out_t, state = model.step(x_t, state)` gives
head(y_t): forward(x)[:, t] for readout "all", forward(x[:, :t+1]) for readout "last".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .._blas_threads import blas_threads
from ..nn import GRU, LSTM, RNN, Linear, Module

CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}
READOUTS = ("last", "all")


@dataclass
class SequenceModelConfig:
    """Everything that builds a SequenceModel; round-trips through JSON (to_dict / from_dict)."""

    cell: str = "lstm"
    input_size: int = 2
    hidden_size: int = 32
    output_size: int = 1
    num_layers: int = 1
    readout: str = "last"
    init: str = "uniform"
    forget_bias: float | None = None
    dtype: str = "float32"
    impl: str = "auto"
    seed: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SequenceModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown sequence model option(s) {unknown}; known: {sorted(known)}")
        return cls(**d)


class SequenceModel(Module):
    """rnn (LSTM / GRU / RNN) + head (Linear); parameters named `rnn.weight_ih_l0`, `head.weight`.

    forward(x, lengths) -> pred; backward(dpred) -> dx (B, T, I), accumulating every `.grad`.
    """

    def __init__(self, config: SequenceModelConfig | None = None, **overrides):
        super().__init__()
        c = dataclasses.replace(config or SequenceModelConfig(), **overrides)
        if c.cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {c.cell!r}")
        if c.readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {c.readout!r}")
        self.config = c
        dtype = np.dtype(c.dtype)
        kwargs = {"init": c.init, "impl": c.impl, "seed": c.seed}
        if c.forget_bias is not None:
            kwargs["forget_bias"] = c.forget_bias
        self.rnn = CELLS[c.cell](c.input_size, c.hidden_size, c.num_layers, dtype=dtype, **kwargs)
        self.head = Linear(c.hidden_size, c.output_size, dtype=dtype, seed=c.seed + 1)
        self._ctx = None

    def forward(self, x, lengths=None, need_cache: bool = True) -> np.ndarray:
        """x (B, T, I), lengths (B,) or None -> (B, O) for readout "last", else (B, T, O)."""
        y, _ = self.rnn(x, None, lengths, need_cache=need_cache)  # (B, T, H)
        B, T, _ = y.shape
        if self.config.readout == "all":
            self._ctx = (None, B, T)
            return self.head(y)  # (B, T, O)
        last = np.full(B, T - 1) if lengths is None else np.asarray(lengths, np.int64) - 1
        if np.any(last < 0):
            raise ValueError("readout 'last' needs every sequence to have at least one step")
        self._ctx = (last, B, T)
        return self.head(y[np.arange(B), last])  # (B, H) -> (B, O)

    def backward(self, dpred) -> np.ndarray:
        """dpred like forward's output -> dx (B, T, I)."""
        if self._ctx is None:
            raise RuntimeError("SequenceModel.backward() needs a forward pass first")
        last, B, T = self._ctx
        dh = self.head.backward(dpred)  # (B, H) or (B, T, H)
        if last is not None:
            dy = np.zeros((B, T, dh.shape[-1]), dh.dtype)  # (B, T, H)
            dy[np.arange(B), last] = dh
            dh = dy
        dx, _ = self.rnn.backward(dh)
        return dx

    def init_state(self, batch: int):
        """Zero recurrent state for `batch` sequences, in the form step() takes."""
        return self.rnn.init_state(batch)

    def step(self, x_t, state=None):
        """One streaming step: x_t (B, I) -> out_t (B, O), new state (zeros when state is None)."""
        y, state = self.rnn.step(x_t, state)  # (B, H)
        return self.head(y), state

    def predict(self, x, lengths=None, batch_size: int = 256) -> np.ndarray:
        """Forward in inference mode, in chunks of batch_size sequences, keeping no cache."""
        was = self.training
        self.eval()
        try:
            outs = []
            with blas_threads(1):  # NumPy's idle BLAS threads would spin on the kernels' cores
                for s in range(0, len(x), batch_size):
                    lg = None if lengths is None else lengths[s : s + batch_size]
                    outs.append(self.forward(x[s : s + batch_size], lg, need_cache=False))
        finally:
            self.train(was)
            self._ctx = None
        return np.concatenate(outs, axis=0)
