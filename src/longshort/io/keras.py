"""Keras 3 in and out: LSTM, GRU (reset_after=True), SimpleRNN, Bidirectional, a final Dense.

Keras packs a recurrent layer as kernel (I, G*H) and recurrent_kernel (H, G*H), transposed from
torch, with gate blocks LSTM i, f, c, o (torch's i, f, g, o: the same) and GRU z, r, h (torch: r,
z, n). An LSTM or SimpleRNN has one bias (G*H,) (torch's b_ih + b_hh); a GRU with reset_after=True
has two rows (2, 3H): [input bias; recurrent bias]. `keras_arrays` and `from_keras_arrays` are the
only place the gates move. Keras is imported inside the functions only (`_keras`): with
KERAS_BACKEND unset and no TensorFlow installed, the torch (or JAX) backend is chosen, so no
TensorFlow is needed.

    stack = from_keras("model.keras")                 # or a live keras Model / layer
    from_keras("w.weights.h5", into=model)            # weights only: the architecture is `model`'s
    kmodel = to_keras(model, "out.keras", mask_value=0.0)
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from ..nn import GRU, LSTM, RNN, Linear, Module
from ..ops.sequence import RecurrentWeights
from .adapt import as_stack, reorder_gates

# Position p of a Keras gate block holds torch's block KERAS_ORDER[kind][p].
KERAS_ORDER = {"LSTM": (0, 1, 2, 3), "GRU": (1, 0, 2), "RNN": (0,)}
_KERAS_CLASS = {"LSTM": "LSTM", "GRU": "GRU", "SimpleRNN": "RNN"}
_CLASSES = {"LSTM": LSTM, "GRU": GRU, "RNN": RNN}
_SKIPPED = ("InputLayer", "Masking", "Dropout")
SUPPORTED = "InputLayer, Masking, Dropout, LSTM, GRU, SimpleRNN, Bidirectional and a final Dense"


def keras_arrays(kind: str, w: RecurrentWeights) -> list[np.ndarray]:
    """One torch-layout layer-direction -> Keras [kernel, recurrent_kernel, bias]."""
    o = KERAS_ORDER[kind]
    kernel, rec = reorder_gates(w.w_ih, o).T, reorder_gates(w.w_hh, o).T  # (I, G*H), (H, G*H)
    if kind == "GRU":
        bias = np.stack([reorder_gates(w.b_ih, o), reorder_gates(w.b_hh, o)])  # (2, 3H)
    else:
        bias = reorder_gates(w.b_ih + w.b_hh, o)  # (G*H,)
    return [np.ascontiguousarray(a) for a in (kernel, rec, bias)]


def from_keras_arrays(kind: str, arrays: list[np.ndarray]) -> RecurrentWeights:
    """Keras [kernel, recurrent_kernel, (bias)] -> torch-layout weights (b_hh = 0 unless a GRU)."""
    inv = tuple(np.argsort(KERAS_ORDER[kind]))
    kernel, rec = arrays[0], arrays[1]
    w_ih, w_hh = reorder_gates(kernel.T, inv), reorder_gates(rec.T, inv)  # (G*H, I), (G*H, H)
    zero = np.zeros(w_ih.shape[0], w_ih.dtype)
    bias = arrays[2] if len(arrays) > 2 else None
    if bias is None:
        return RecurrentWeights(w_ih, w_hh, zero, zero.copy())
    if kind == "GRU":
        return RecurrentWeights(
            w_ih, w_hh, reorder_gates(bias[0], inv), reorder_gates(bias[1], inv)
        )
    return RecurrentWeights(w_ih, w_hh, reorder_gates(bias, inv), zero)


class _Spec(NamedTuple):
    """One Keras recurrent layer: kind, units, directions' arrays, and what else must match."""

    name: str
    kind: str
    units: int
    input_size: int
    nonlinearity: str
    return_sequences: bool
    arrays: list  # one [kernel, recurrent_kernel, bias?] per direction


def _cell_spec(layer, name: str, arrays: list) -> _Spec:
    """Check one Keras LSTM / GRU / SimpleRNN layer and describe it."""
    cls = type(layer).__name__
    cfg = layer.get_config()
    kind = _KERAS_CLASS[cls]
    act, rec_act = cfg.get("activation"), cfg.get("recurrent_activation", "sigmoid")
    ok = act in (("tanh", "relu") if kind == "RNN" else ("tanh",)) and rec_act == "sigmoid"
    if not ok:
        raise ValueError(
            f"Keras layer {name!r}: activation={act!r}, recurrent_activation={rec_act!r}; "
            "longshort's cells use tanh and sigmoid (SimpleRNN: tanh or relu)"
        )
    if kind == "GRU" and not cfg.get("reset_after", True):
        raise ValueError(
            f"Keras layer {name!r} is a GRU with reset_after=False, which applies the reset gate "
            "before the recurrent matmul; longshort (like torch and cuDNN) needs reset_after=True"
        )
    rs = bool(getattr(layer, "return_sequences", cfg.get("return_sequences")))
    units, i = int(cfg["units"]), int(arrays[0][0].shape[0])
    return _Spec(name, kind, units, i, act, rs, arrays)


def _parse(layers) -> tuple[list[_Spec], list | None, str]:
    """Keras layers in order -> recurrent specs, the head's [kernel, bias?] or None, readout."""
    specs, head = [], None
    for layer in layers:
        cls, name = type(layer).__name__, layer.name
        if head is not None:
            raise ValueError(f"Keras layer {name!r} follows the Dense head; only one final Dense")
        if cls in _SKIPPED:
            continue
        if cls in _KERAS_CLASS:
            if layer.get_config().get("go_backwards"):
                raise ValueError(
                    f"Keras layer {name!r} has go_backwards=True outside Bidirectional"
                )
            specs.append(_cell_spec(layer, name, [layer.get_weights()]))
        elif cls == "Bidirectional":
            fw, bw = layer.forward_layer, layer.backward_layer
            if layer.merge_mode != "concat" or type(fw) is not type(bw) or fw.units != bw.units:
                raise ValueError(
                    f"Keras layer {name!r}: Bidirectional needs merge_mode='concat' and the same "
                    f"cell both ways (got merge_mode={layer.merge_mode!r})"
                )
            if type(fw).__name__ not in _KERAS_CLASS:
                raise ValueError(f"Keras layer {name!r} wraps an unsupported {type(fw).__name__}")
            specs.append(_cell_spec(fw, name, [fw.get_weights(), bw.get_weights()]))
        elif cls == "Dense" and specs:
            if layer.get_config().get("activation") not in ("linear", None):
                raise ValueError(f"Keras Dense {name!r} must have a linear activation")
            head = layer.get_weights()
        else:
            raise ValueError(
                f"Keras layer {name!r} ({cls}) is not supported; supported: {SUPPORTED}"
            )
    if not specs:
        raise ValueError(f"no recurrent layer found; supported: {SUPPORTED}")
    for s in specs[:-1]:
        if not s.return_sequences:
            raise ValueError(f"Keras layer {s.name!r} feeds another layer but returns no sequence")
    return specs, head, "all" if specs[-1].return_sequences else "final"


def _fill(stack, specs: list[_Spec], head: list | None) -> None:
    """Copy Keras arrays into the layers of a RecurrentStack, one Keras layer per (layer, l)."""
    slots = [(m, l) for m in stack.layers for l in range(m.num_layers)]
    if len(slots) != len(specs) or (head is None) != (stack.head is None):
        raise ValueError(
            f"the Keras model has {len(specs)} recurrent layer(s) and {'a' if head else 'no'} "
            f"Dense head; the longshort model has {len(slots)} and "
            f"{'a' if stack.head is not None else 'no'} head"
        )
    for (m, l), s in zip(slots, specs):
        D = len(s.arrays)
        if (m.KIND.upper(), m.hidden_size, m.num_directions) != (s.kind, s.units, D):
            raise ValueError(
                f"Keras layer {s.name!r} is {s.kind}(units={s.units}, directions={D}) but the "
                f"longshort layer is {m.KIND.upper()}(hidden_size={m.hidden_size}, "
                f"directions={m.num_directions})"
            )
        for d in range(D):
            w = from_keras_arrays(s.kind, s.arrays[d])
            for n, a in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), w):
                _put(getattr(m, n + m._suffix(l, d)), a, f"Keras layer {s.name!r}", n)
    if head is not None:
        _put(stack.head.weight, head[0].T, "the Keras Dense head", "kernel.T")
        if len(head) > 1:
            _put(stack.head.bias, head[1], "the Keras Dense head", "bias")


def _put(p, a: np.ndarray, where: str, name: str) -> None:
    if a.shape != p.data.shape:
        raise ValueError(
            f"{where}: {name} has shape {a.shape}, the longshort model expects {p.data.shape}"
        )
    p.data[...] = a


def _signature(s: _Spec) -> tuple:
    return s.kind, s.units, len(s.arrays), s.nonlinearity


def _build(specs: list[_Spec], head, readout: str, dtype, impl: str):
    """A fresh RecurrentStack for the specs; consecutive alike Keras layers merge into one layer."""
    from ..models.stack import RecurrentStack

    groups: list[list[_Spec]] = []
    for s in specs:
        if groups and _signature(groups[-1][-1]) == _signature(s):
            groups[-1].append(s)
        else:
            groups.append([s])
    layers = []
    for g in groups:
        s = g[0]
        kw = {"nonlinearity": s.nonlinearity} if s.kind == "RNN" else {}
        layers.append(
            _CLASSES[s.kind](
                s.input_size, s.units, len(g), len(s.arrays) == 2, dtype=dtype, impl=impl, **kw
            )
        )
    lin = None
    if head is not None:
        lin = Linear(head[0].shape[0], head[0].shape[1], bias=len(head) > 1, dtype=dtype)
    stack = RecurrentStack(layers, lin, readout)
    _fill(stack, specs, head)
    return stack


def _keras():
    """The keras module. Keras 3 defaults to the TensorFlow backend and fails on import without
    it; when KERAS_BACKEND is unset and TensorFlow is missing, use torch or JAX if installed."""
    import importlib.util
    import sys

    if "keras" not in sys.modules and not os.environ.get("KERAS_BACKEND"):
        if importlib.util.find_spec("tensorflow") is None:
            for backend in ("torch", "jax"):
                if importlib.util.find_spec(backend) is not None:
                    os.environ["KERAS_BACKEND"] = backend
                    break
    try:
        import keras
    except ModuleNotFoundError as e:
        raise ImportError(
            f"Keras could not load its backend ({e}); install one (torch, jax or tensorflow) "
            "and set KERAS_BACKEND to its name, e.g. KERAS_BACKEND=torch"
        ) from e
    return keras


def from_keras(source, *, into: Module | None = None, dtype=np.float32, impl: str = "auto"):
    """A longshort model with the weights of a Keras model, layer or file.

    Args:
        source: a keras Model (Sequential or a chain) or recurrent layer, a `.keras` file, or a
            `.weights.h5` file (then `into` gives the architecture).
        into: an existing longshort model to fill instead of building one; returned.
        dtype, impl: of the new layers.

    Returns:
        A RecurrentStack for a model (readout "all" when the last recurrent layer returns
        sequences, else "final"), an LSTM / GRU / RNN for a single layer, or `into`.

    Raises:
        ValueError: an unsupported layer or setting (named), or weights that do not fit `into`.
        FileNotFoundError: a path that does not exist.
    """
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        if path.endswith(".weights.h5") and into is None:
            raise ValueError(f"{path} holds weights only: pass into=<a longshort model>")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such Keras file")
    keras = _keras()

    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        if path.endswith(".weights.h5"):
            twin = to_keras(into)
            twin.load_weights(path)
            source = twin
        elif path.endswith(".keras"):
            source = keras.saving.load_model(path, compile=False)
        else:
            raise ValueError(f"{path}: expected a .keras or .weights.h5 file")
    single = not isinstance(source, keras.Model)
    specs, head, readout = _parse([source] if single else source.layers)
    if into is not None:
        _fill(as_stack(into).stack, specs, head)
        return into
    stack = _build(specs, head, readout, dtype, impl)
    return stack.layers[0] if single and len(stack.layers) == 1 else stack


def to_keras(model: Module, path: str | os.PathLike | None = None, *, mask_value=None):
    """A keras.Sequential with `model`'s weights, saved to `path` if given.

    Args:
        model: LSTM / GRU / RNN, RecurrentStack, SequenceModel or SequenceClassifier (its
            standardisation is not included). A layer with num_layers=L becomes L Keras layers.
        path: `.keras` (whole model) or `.weights.h5` (weights only). mask_value: prepend
            keras.layers.Masking(mask_value), so padded steps are skipped as `lengths` does.

    Raises:
        ValueError: readout "last" over a bidirectional top layer (Keras has no such readout).
    """
    keras = _keras()

    stack = as_stack(model).stack
    top = stack.layers[-1]
    if stack.readout == "last" and top.bidirectional:
        raise ValueError(
            "Keras cannot read a bidirectional layer's output at the last valid "
            "step; use readout 'final' (Keras' return_sequences=False)"
        )
    dt = top.dtype.name
    layers = [keras.Input((None, stack.input_size), dtype=dt)]
    if mask_value is not None:
        layers.append(keras.layers.Masking(mask_value, dtype=dt))
    weights = []
    for k, m in enumerate(stack.layers):
        kind = m.KIND.upper()
        for l in range(m.num_layers):
            last = k == len(stack.layers) - 1 and l == m.num_layers - 1
            seq = not last or stack.readout == "all"
            kw = {"activation": m.nonlinearity} if kind == "RNN" else {}
            cls = {
                "LSTM": keras.layers.LSTM,
                "GRU": keras.layers.GRU,
                "RNN": keras.layers.SimpleRNN,
            }
            cell = cls[kind](m.hidden_size, return_sequences=seq, dtype=dt, **kw)
            layers.append(keras.layers.Bidirectional(cell, dtype=dt) if m.bidirectional else cell)
            arrays = [keras_arrays(kind, m.weights(l, d)) for d in range(m.num_directions)]
            weights.append(sum(arrays, []))
    if stack.head is not None:
        h = stack.head
        layers.append(keras.layers.Dense(h.out_features, use_bias=h.bias is not None, dtype=dt))
        weights.append([h.weight.data.T] + ([] if h.bias is None else [h.bias.data]))
    kmodel = keras.Sequential(layers)
    for layer, w in zip([x for x in kmodel.layers if type(x).__name__ != "Masking"], weights):
        layer.set_weights(w)
    if path is not None:
        p = os.fspath(path)
        if p.endswith(".weights.h5"):
            kmodel.save_weights(p)
        elif p.endswith(".keras"):
            kmodel.save(p)
        else:
            raise ValueError(f"{p}: expected a path ending in .keras or .weights.h5")
    return kmodel
