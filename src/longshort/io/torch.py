"""PyTorch in and out: torch.nn.{LSTM,GRU,RNN,Linear}, state_dicts, and whole stacks.

longshort keeps torch's names, shapes and gate order (LSTM i, f, g, o; GRU r, z, n), so no gate is
reordered here: weights move by name. torch is imported inside the functions only.

    layer = from_torch(torch.nn.LSTM(3, 8, num_layers=2, bidirectional=True))
    tmod = to_torch(layer)               # torch.nn.LSTM(batch_first=True), same weights
    from_torch(state_dict, into=model)   # load into an existing longshort model, by name
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from ..nn import GRU, LSTM, RNN, Linear, Module
from ..nn.recurrent import Recurrent
from .adapt import as_stack

_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?$")
_GATES = {4: LSTM, 3: GRU, 1: RNN}


def to_numpy_state(state: Mapping) -> dict[str, np.ndarray]:
    """A torch state_dict (tensors) or a dict of arrays -> {name: NumPy array}."""
    out = {}
    for k, v in state.items():
        if hasattr(v, "detach"):
            v = v.detach().cpu().numpy()
        out[k] = np.asarray(v)
    return out


def _dtype(a: np.ndarray, dtype) -> np.dtype:
    if dtype is not None:
        return np.dtype(dtype)
    return a.dtype if a.dtype in (np.float32, np.float64) else np.dtype(np.float32)


def _recurrent_from_state(sd: dict[str, np.ndarray], dtype=None, **kwargs) -> Recurrent:
    """Infer LSTM / GRU / RNN, sizes, layers and directions from a recurrent state_dict."""
    found = [m for m in map(_KEY.match, sd) if m]
    unknown = sorted(set(sd) - {m.string for m in found})
    if unknown or "weight_hh_l0" not in sd:
        raise ValueError(
            "not a torch.nn.LSTM/GRU/RNN state_dict: expected keys like weight_ih_l0, "
            f"weight_hh_l0, bias_ih_l0, bias_hh_l0 (_reverse); unexpected: {unknown or 'none'}"
        )
    w_hh = sd["weight_hh_l0"]
    H = w_hh.shape[1]
    if w_hh.shape[0] % H or w_hh.shape[0] // H not in _GATES:
        raise ValueError(
            f"weight_hh_l0 has shape {w_hh.shape}: expected (4H, H) for an LSTM, (3H, H) for a "
            "GRU or (H, H) for an RNN (a proj_size LSTM is not supported)"
        )
    cls = _GATES[w_hh.shape[0] // H]
    layers = 1 + max(int(m.group(2)) for m in found)
    bidir = any(m.group(3) for m in found)
    dt = _dtype(w_hh, dtype)
    layer = cls(sd["weight_ih_l0"].shape[1], H, layers, bidir, dtype=dt, **kwargs)
    full = dict(sd)
    for name, p in layer.named_parameters():  # torch's bias=False: zero biases are exact
        if name.startswith("bias") and name not in full:
            full[name] = np.zeros(p.shape, dt)
    layer.load_state_dict(full)
    return layer


def _from_torch_module(m, dtype, impl) -> Module:
    import torch

    from ..models.stack import RecurrentStack
    from ._torch_modules import TorchRecurrentStack

    if isinstance(m, torch.nn.RNNBase):
        if getattr(m, "proj_size", 0):
            raise ValueError(f"torch LSTM with proj_size={m.proj_size} has no longshort equivalent")
        if m.mode not in ("LSTM", "GRU", "RNN_TANH", "RNN_RELU"):
            raise ValueError(f"unsupported torch recurrent mode {m.mode!r}")
        kw = {"impl": impl, "dropout": float(m.dropout)}
        if m.mode.startswith("RNN"):
            kw["nonlinearity"] = m.nonlinearity
        return _recurrent_from_state(to_numpy_state(m.state_dict()), dtype, **kw)
    if isinstance(m, torch.nn.Linear):
        sd = to_numpy_state(m.state_dict())
        w = sd["weight"]
        lin = Linear(w.shape[1], w.shape[0], bias="bias" in sd, dtype=_dtype(w, dtype))
        lin.load_state_dict(sd)
        return lin
    if isinstance(m, TorchRecurrentStack):
        layers = [_from_torch_module(x, dtype, impl) for x in m.layers]
        head = None if m.head is None else _from_torch_module(m.head, dtype, impl)
        return RecurrentStack(layers, head, m.readout)
    raise TypeError(
        f"cannot convert a torch {type(m).__name__}: from_torch takes nn.LSTM, nn.GRU, nn.RNN, "
        "nn.Linear or a TorchRecurrentStack; for your own module, build the longshort model and "
        "call from_torch(module.state_dict(), into=model)"
    )


def from_torch(source, *, into: Module | None = None, dtype=None, impl: str = "auto") -> Module:
    """A longshort model with the weights of a torch module or state_dict.

    Args:
        source: torch.nn.LSTM / GRU / RNN (stacked, bidirectional, any batch_first), nn.Linear,
            a TorchRecurrentStack (from `to_torch`), or a state_dict (tensors or arrays).
        into: an existing longshort model to fill, matched by name (a RecurrentStack view is used
            for SequenceModel and the classifier); returned. Without it a state_dict must be a bare
            recurrent layer's (LSTM, GRU or tanh RNN, told apart by weight_hh's shape).
        dtype: float32 or float64 (default: the source's). impl: for the new recurrent layers.

    Raises:
        KeyError: the state_dict does not fit `into` (lists missing, unexpected and misshapen keys).
        ValueError / TypeError: an architecture longshort cannot hold (proj_size, unknown module).
    """
    if isinstance(source, Mapping):
        sd = to_numpy_state(source)
        if into is None:
            return _recurrent_from_state(sd, dtype, impl=impl)
        _best_target(into, sd).load_state_dict(sd)
        return into
    if into is not None:
        return from_torch(source.state_dict(), into=into)
    return _from_torch_module(source, dtype, impl)


def _best_target(model: Module, sd: Mapping) -> Module:
    """`model` itself or its RecurrentStack view, whichever shares more names with `sd`."""
    try:
        view = as_stack(model).stack
    except TypeError:
        return model
    overlap = [sum(k in sd for k, _ in m.named_parameters()) for m in (model, view)]
    return model if overlap[0] >= overlap[1] else view


def _torch_recurrent(layer: Recurrent):
    import torch

    cls = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU, "RNN": torch.nn.RNN}[layer.KIND.upper()]
    kw = {"nonlinearity": layer.nonlinearity} if isinstance(layer, RNN) else {}
    m = cls(
        layer.input_size,
        layer.hidden_size,
        num_layers=layer.num_layers,
        bidirectional=layer.bidirectional,
        dropout=layer.dropout,
        batch_first=True,
        dtype=torch.float64 if layer.dtype == np.float64 else torch.float32,
        **kw,
    )
    m.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    return m


def to_torch(model: Module):
    """A torch module with `model`'s weights, in eval mode.

    LSTM / GRU / RNN -> torch.nn.LSTM / GRU / RNN (batch_first=True); Linear -> nn.Linear;
    RecurrentStack, SequenceModel, SequenceClassifier -> TorchRecurrentStack (forward(x, lengths,
    states) -> (out, states); the classifier's standardisation is not part of it).
    """
    import torch

    from ._torch_modules import TorchRecurrentStack

    if isinstance(model, Recurrent):
        return _torch_recurrent(model).eval()
    if isinstance(model, Linear):
        m = torch.nn.Linear(
            model.in_features,
            model.out_features,
            bias=model.bias is not None,
            dtype=torch.float64 if model.dtype == np.float64 else torch.float32,
        )
        m.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
        return m.eval()
    stack = as_stack(model).stack
    layers = [_torch_recurrent(m) for m in stack.layers]
    head = None if stack.head is None else to_torch(stack.head)
    return TorchRecurrentStack(layers, head, stack.readout).eval()
