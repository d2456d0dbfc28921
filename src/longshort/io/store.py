"""A saved model: a directory with the weights as safetensors and the architecture as JSON.

    <dir>/config.json          {"format": "longshort-model-1", "model": {"class": ..., "config": ...}}
    <dir>/model.safetensors    state_dict arrays by PyTorch-style name ("layers.0.weight_ih_l0")

The JSON names a class (LSTM, GRU, RNN, Linear, RecurrentStack, SequenceModel) and its
constructor arguments, nested for stacks. Nothing is pickled, so loading a file runs no code from
it; only NumPy and safetensors are needed.

Application models that save themselves in the same two files with their own "format"
(`APP_FORMATS`: the classifier, the forecaster) are loaded by `load` through their own `load`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..nn import GRU, LSTM, RNN, Linear, Module
from ..nn.recurrent import IMPLS, Recurrent

FORMAT = "longshort-model-1"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
RECURRENT = {"LSTM": LSTM, "GRU": GRU, "RNN": RNN}
# Other formats written as config.json + model.safetensors: format -> (module, class with .load).
APP_FORMATS = {
    "longshort-classifier-1": ("..models.classifier", "SequenceClassifier"),
    "longshort-forecaster-2": ("..models.forecaster", "Forecaster"),
}


def _recurrent_config(m: Recurrent) -> dict:
    c = {
        "input_size": m.input_size,
        "hidden_size": m.hidden_size,
        "num_layers": m.num_layers,
        "bidirectional": m.bidirectional,
        "dropout": m.dropout,
        "dtype": m.dtype.name,
        "impl": m.impl,
    }
    if isinstance(m, RNN):
        c["nonlinearity"] = m.nonlinearity
    return c


def describe(model: Module) -> dict:
    """{"class": name, "config": constructor arguments}, JSON-ready, for the classes `build` knows.

    Raises:
        TypeError: the model's class cannot be saved (names the classes that can).
    """
    from ..models.stack import RecurrentStack

    kind = type(model).__name__
    if type(model) in RECURRENT.values():
        return {"class": kind, "config": _recurrent_config(model)}
    if type(model) is Linear:
        c = {"in_features": model.in_features, "out_features": model.out_features}
        return {
            "class": kind,
            "config": c | {"bias": model.bias is not None, "dtype": model.dtype.name},
        }
    if type(model) is RecurrentStack:
        head = None if model.head is None else describe(model.head)
        layers = [describe(m) for m in model.layers]
        return {"class": kind, "config": {"layers": layers, "head": head, "readout": model.readout}}
    if kind == "SequenceModel":
        return {"class": kind, "config": model.config.to_dict()}
    hint = " (it has its own save(directory))" if hasattr(model, "save") else ""
    raise TypeError(
        f"cannot save a {kind}{hint}: longshort.io.save takes LSTM, GRU, RNN, Linear, "
        "RecurrentStack and SequenceModel"
    )


def build(desc: dict) -> Module:
    """The model `describe` described, freshly initialised (load the weights next)."""
    from ..models.stack import RecurrentStack

    kind, cfg = desc.get("class"), dict(desc.get("config") or {})
    if kind in RECURRENT:
        cfg["dtype"] = np.dtype(cfg.get("dtype", "float32"))
        return RECURRENT[kind](**cfg)
    if kind == "Linear":
        cfg["dtype"] = np.dtype(cfg.get("dtype", "float32"))
        return Linear(**cfg)
    if kind == "RecurrentStack":
        head = None if cfg.get("head") is None else build(cfg["head"])
        return RecurrentStack([build(d) for d in cfg["layers"]], head, cfg.get("readout", "all"))
    if kind == "SequenceModel":
        from ..models.sequence_model import SequenceModel, SequenceModelConfig

        return SequenceModel(SequenceModelConfig.from_dict(cfg))
    raise ValueError(
        f"unknown model class {kind!r} in the saved config; was it saved by longshort?"
    )


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save(model: Module, directory: str | os.PathLike) -> Path:
    """Write `model` to `directory` (created if needed): config.json and model.safetensors."""
    from safetensors.numpy import save as st_save

    desc = describe(model)
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tensors = {k: np.ascontiguousarray(v) for k, v in model.state_dict().items()}
    _atomic_write(d / WEIGHTS_NAME, st_save(tensors, metadata={"format": FORMAT}))
    text = json.dumps({"format": FORMAT, "model": desc}, indent=2) + "\n"
    _atomic_write(d / CONFIG_NAME, text.encode())
    return d


def load(directory: str | os.PathLike, impl: str | None = None):
    """Read a model written by `save` (or by an application model's own save), in eval mode.

    Args:
        directory: the model directory. impl: if given, "auto", "reference" or "fused" for every
            recurrent layer (default: as saved). "reference" needs nothing but NumPy.

    Raises:
        FileNotFoundError: the directory or one of its two files is missing.
        ValueError: not a longshort model directory, or an unknown format.
        KeyError: the weights do not match the architecture (names the keys and shapes).
    """
    import importlib

    from ._read import read_json_object, read_safetensors, require_keys

    if impl is not None and impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS} or None, got {impl!r}")
    d = Path(directory)
    cfg_path, w_path = d / CONFIG_NAME, d / WEIGHTS_NAME
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise FileNotFoundError(
                f"{p} not found: a model directory holds {CONFIG_NAME} and {WEIGHTS_NAME}, "
                "written by longshort.io.save(model, directory)"
            )
    hint = "save the model again with longshort.io.save(model, directory)"
    meta = read_json_object(cfg_path, hint)
    fmt = meta.get("format")
    if fmt in APP_FORMATS:
        mod, cls = APP_FORMATS[fmt]
        model = getattr(importlib.import_module(mod, __package__), cls).load(d)
    elif fmt == FORMAT:
        require_keys(meta, cfg_path, ["model"], hint)
        try:
            model = build(meta["model"])
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            raise ValueError(
                f"{cfg_path} describes no model longshort can build ({e}); {hint}"
            ) from None
        model.load_state_dict(read_safetensors(w_path, hint))
        model.eval()
    else:
        known = ", ".join([FORMAT, *APP_FORMATS])
        raise ValueError(f"{cfg_path} has format {fmt!r}; longshort.io.load reads {known}")
    if impl is not None:
        _set_impl(model, impl)
    return model


def _set_impl(model, impl: str) -> None:
    """Point every recurrent layer of `model` (or of its `.net`) at `impl`."""
    root = model if isinstance(model, Module) else getattr(model, "net", None)
    if not isinstance(root, Module):
        return
    for m in root.modules():
        if isinstance(m, Recurrent):
            if impl == "fused":
                from ..kernels import get_ops

                get_ops(m.KIND, "fused")  # raises with the reason when unavailable
            m.impl = impl
