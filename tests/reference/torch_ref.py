"""Build torch modules with a longshort layer's weights, and compare."""

from __future__ import annotations

import numpy as np
import torch

torch.set_num_threads(1)


def to_t(a: np.ndarray, requires_grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(a), requires_grad=requires_grad)


def torch_recurrent(layer, cls):
    """torch.nn.{LSTM,GRU,RNN} with the same sizes and weights as `layer` (batch_first)."""
    dtype = torch.float64 if layer.dtype == np.float64 else torch.float32
    m = cls(
        layer.input_size,
        layer.hidden_size,
        num_layers=layer.num_layers,
        bidirectional=layer.bidirectional,
        batch_first=True,
        dtype=dtype,
    )
    m.load_state_dict({k: torch.tensor(v) for k, v in layer.state_dict().items()})
    return m


def max_abs(a, b) -> float:
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
