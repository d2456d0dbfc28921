"""Build torch modules with a longshort layer's weights, and compare."""

from __future__ import annotations

import numpy as np
import torch

torch.set_num_threads(1)

# Layer shapes every parity test runs: single, stacked (L=3), bidirectional, both.
CONFIGS = [
    dict(num_layers=1, bidirectional=False),
    dict(num_layers=3, bidirectional=False),
    dict(num_layers=2, bidirectional=True),
    dict(num_layers=3, bidirectional=True),
]


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


def _flat(state):
    """A state as a tuple of arrays: (h,) or (h, c)."""
    return tuple(state) if isinstance(state, tuple | list) else (state,)


def compare_with_torch(layer, torch_cls, x, lengths=None, state=None, seed=0) -> dict[str, float]:
    """Run a longshort layer and torch_cls with the same weights on x; backpropagate the same
    random projection of (y, final state) through both. Returns the largest absolute difference
    of each output and gradient, keyed by name ("y", "h_n", "dx", "dweight_ih_l0", ...)."""
    rng = np.random.default_rng(seed)
    tl = torch_recurrent(layer, torch_cls)
    y, s_n = layer(x, state, lengths=lengths)
    dy = rng.standard_normal(y.shape).astype(layer.dtype)
    ds = tuple(rng.standard_normal(s.shape).astype(layer.dtype) for s in _flat(s_n))
    dx, ds0 = layer.backward(dy, ds if len(ds) == 2 else ds[0])

    xt = to_t(x, True)
    st = None if state is None else tuple(to_t(s, True) for s in _flat(state))
    st_arg = None if st is None else (st if len(st) == 2 else st[0])
    inp = xt
    if lengths is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(
            xt, torch.tensor(np.asarray(lengths)), batch_first=True, enforce_sorted=False
        )
    yt, st_n = tl(inp, st_arg)
    if lengths is not None:
        yt, _ = torch.nn.utils.rnn.pad_packed_sequence(
            yt, batch_first=True, total_length=x.shape[1]
        )
    loss = (yt * to_t(dy)).sum()
    for s, d in zip(_flat(st_n), ds):
        loss = loss + (s * to_t(d)).sum()
    loss.backward()
    names = ("h", "c")
    errs = {"y": max_abs(y, yt), "dx": max_abs(dx, xt.grad)}
    for n, a, b in zip(names, _flat(s_n), _flat(st_n)):
        errs[n + "_n"] = max_abs(a, b)
    if st is not None:
        for n, a, b in zip(names, _flat(ds0), st):
            errs["d" + n + "0"] = max_abs(a, b.grad)
    for name, p in layer.named_parameters():
        errs["d" + name] = max_abs(p.grad, getattr(tl, name).grad)
    return errs
