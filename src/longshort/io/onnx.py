"""ONNX export: recurrent stacks (LSTM / GRU / RNN, bidirectional) with their linear heads.

Graph (B batch, T steps, I inputs, L layers, D directions, H hidden, O outputs):

    x (B, T, I) -> Transpose -> (T, B, I)                   time-major inside: ONNX Runtime's
    per layer: LSTM|GRU|RNN(layout=0) -> Y (T, D, B, H)     recurrent kernels take layout 0 only
               -> Transpose (T, B, D, H) -> Reshape (T, B, D*H)
    readout "all": Transpose -> (B, T, D*H); "last": GatherND at lengths - 1 (without
    lengths: the last step) -> (B, D*H); "final": top Y_h (D, B, H) -> (B, D*H);
    then the head: MatMul + Add -> y (and the classifier's standardisation before it all)

Inputs: x; `lengths` (B,) int32 as every node's sequence_lens (values in [1, T]); `h0` [`c0`]
(L*D, B, H) per recurrent layer. Outputs: y; `h_n` [`c_n`] per recurrent layer. With several
recurrent layers in a stack the state names get the layer's index: h0_0, c0_0, h_n_0, ...

ONNX packs gates LSTM i, o, f, c and GRU z, r, h (torch: i, f, g, o and r, z, n), weights as
W (D, G*H, I), R (D, G*H, H), B (D, 2*G*H) = [Wb, Rb]; `ONNX_ORDER` is the only place the gates
move. GRU uses linear_before_reset=1, torch's form. onnx is imported inside the functions only.
"""

from __future__ import annotations

import os

import numpy as np

from ..nn import Module
from .adapt import as_stack, reorder_gates

# Position p of an ONNX gate block holds torch's block ONNX_ORDER[kind][p].
ONNX_ORDER = {"LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2), "RNN": (0,)}
MIN_OPSET = 14


def onnx_weights(layer, l: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Layer l of a longshort recurrent layer -> ONNX W (D, G*H, I), R (D, G*H, H), B (D, 2*G*H)."""
    o = ONNX_ORDER[layer.KIND.upper()]
    ws = [layer.weights(l, d) for d in range(layer.num_directions)]
    W = np.stack([reorder_gates(w.w_ih, o) for w in ws])
    R = np.stack([reorder_gates(w.w_hh, o) for w in ws])
    B = np.stack([np.concatenate([reorder_gates(w.b_ih, o), reorder_gates(w.b_hh, o)]) for w in ws])
    return W, R, B


# LSTM variant options the ONNX LSTM operator expresses (the rest are training-only: identity at
# evaluation); projection, layer norm and zoneout have no ONNX form.
ONNX_LSTM_VARIANTS = {"peepholes", "cell_clip", "input_forget", "recurrent_dropout", "weight_drop"}


def lstm_variant_attrs(m) -> dict:
    """ONNX LSTM attributes for an LSTM's variant options; TypeError for what ONNX cannot express."""
    missing = m.variants.features - ONNX_LSTM_VARIANTS
    if missing:
        raise TypeError(
            f"cannot export an LSTM with {', '.join(sorted(missing))} to ONNX: the ONNX LSTM "
            f"operator expresses only {', '.join(sorted(ONNX_LSTM_VARIANTS))}"
        )
    attrs = {}
    if m.variants.cell_clip is not None:
        attrs["clip"] = m.variants.cell_clip
    if m.variants.input_forget:
        attrs["input_forget"] = 1
    return attrs


def lstm_variant_weights(m, l, W, R, B):
    """ONNX W, R, B, P (D, 3H) or None for layer l of an LSTM with variant options.

    Peepholes are stored in ONNX's P order [p_i, p_o, p_f] already. ONNX couples the gates the
    other way round (f = 1 - i, i from the input block) from longshort (i = 1 - f, f from the
    forget block); sigmoid(-z) = 1 - sigmoid(z) and a symmetric clip make them equal when ONNX's
    input block (weights, biases, peephole) holds minus longshort's forget block.
    """
    H, D = m.hidden_size, m.num_directions
    P = None
    if m.variants.peepholes:
        P = np.stack([m.weights(l, d).w_ph.reshape(-1) for d in range(D)])  # (D, 3H)
    if m.variants.input_forget:  # ONNX order i, o, f, c: input block 0, forget block 2
        W, R, B = W.copy(), R.copy(), B.copy()
        W[:, :H], R[:, :H] = -W[:, 2 * H : 3 * H], -R[:, 2 * H : 3 * H]
        B[:, :H], B[:, 4 * H : 5 * H] = -B[:, 2 * H : 3 * H], -B[:, 6 * H : 7 * H]
        if P is not None:
            P = P.copy()
            P[:, :H] = -P[:, 2 * H :]
    return W, R, B, P


class _Graph:
    """Collects nodes and initializers; every intermediate gets a fresh name."""

    def __init__(self, dtype: np.dtype):
        from onnx import helper

        self.helper, self.dtype = helper, dtype
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count}"

    def const(self, value, dtype=None) -> str:
        from onnx import numpy_helper

        arr = np.asarray(value, dtype or self.dtype)
        name = self.name("const")
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def add(self, op: str, inputs: list[str], n_out: int = 1, out=None, **attrs):
        while inputs and inputs[-1] == "":
            inputs = inputs[:-1]  # trailing optional inputs are left out
        outs = out or [self.name(op.lower()) for _ in range(n_out)]
        self.nodes.append(self.helper.make_node(op, inputs, outs, name=self.name(op), **attrs))
        return outs[0] if n_out == 1 else outs


def _state_names(k: int, n: int, lstm: bool) -> tuple[list[str], list[str]]:
    sfx = "" if n == 1 else f"_{k}"
    ins = ["h0" + sfx] + (["c0" + sfx] if lstm else [])
    return ins, [s.replace("0", "_n", 1) for s in ins]


def _recurrent(g: _Graph, m, x: str, seq: str, s_in: list[str], s_out: list[str]):
    """Emit one longshort layer's nodes; x (T, B, F_in) -> (T, B, D*H), top layer's Y_h."""
    kind, D, H = m.KIND.upper(), m.num_directions, m.hidden_size
    attrs = {"hidden_size": H, "direction": "bidirectional" if D == 2 else "forward", "layout": 0}
    if kind == "GRU":
        attrs["linear_before_reset"] = 1
    if kind == "RNN":
        attrs["activations"] = [m.nonlinearity.capitalize()] * D
    features = getattr(m, "variants", None) and m.variants.features
    if features:
        attrs.update(lstm_variant_attrs(m))
    finals = [[] for _ in s_out]
    y_h = None
    for l in range(m.num_layers):
        arrays = onnx_weights(m, l)
        if features:
            arrays = lstm_variant_weights(m, l, *arrays)  # W, R, B and P (or None)
        W, R, B = (g.const(a) for a in arrays[:3])
        init = []
        for s in s_in:
            bounds = [g.const([v], np.int64) for v in (l * D, (l + 1) * D, 0)]
            init.append(g.add("Slice", [s, *bounds]))  # (D, B, H)
        ins = [x, W, R, B, seq, *init]
        if features and arrays[3] is not None:
            ins = ins + [""] * (7 - len(ins)) + [g.const(arrays[3])]  # P is input 7
        outs = g.add(kind, ins, n_out=3 if kind == "LSTM" else 2, **attrs)
        y, y_h = outs[0], outs[1]  # (T, D, B, H), (D, B, H)
        for f, o in zip(finals, outs[1:]):
            f.append(o)
        y = g.add("Transpose", [y], perm=[0, 2, 1, 3])  # (T, B, D, H)
        x = g.add("Reshape", [y, g.const([0, 0, -1], np.int64)])  # (T, B, D*H)
    for f, name in zip(finals, s_out):
        g.add("Concat", f, out=[name], axis=0)  # (L*D, B, H)
    return x, y_h


def to_onnx(
    model: Module,
    path: str | os.PathLike | None = None,
    *,
    opset: int = 17,
    lengths: bool = True,
    states: bool = True,
    dtype="float32",
):
    """Export `model` to ONNX, check it with onnx.checker, and save it to `path` if given.

    Args:
        model: LSTM / GRU / RNN, RecurrentStack, SequenceModel, or a SequenceClassifier (with its
            standardisation: raw features in, logits out).
        opset: ONNX opset, 14 or newer. lengths: add the `lengths` input (sequence_lens).
        states: add initial-state inputs (the final states are always outputs).
        dtype: "float32" (default: ONNX Runtime's LSTM has no float64 kernel) or "float64"
            (for onnx.reference and other runtimes); the weights are cast to it.

    Returns:
        The onnx.ModelProto.

    Raises:
        ValueError: opset below 14 or an unsupported dtype. TypeError: a model ONNX export
            does not cover (names the ones it does).
    """
    import onnx
    from onnx import TensorProto, helper

    if opset < MIN_OPSET:
        raise ValueError(
            f"opset {opset} is too old: the recurrent ops' `layout` attribute and the export need "
            f"opset {MIN_OPSET} or newer"
        )
    view = as_stack(model)
    stack = view.stack
    dt = np.dtype(dtype)
    elems = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}
    if dt not in elems:
        raise ValueError(f"ONNX export supports float32 and float64, not {dt}")
    g, elem = _Graph(dt), elems[dt]
    vi = helper.make_tensor_value_info
    inputs = [vi("x", elem, ["batch", "time", stack.input_size])]
    outputs = []
    x = "x"
    if view.scale_in is not None:
        shift, scale = view.scale_in
        x = g.add("Div", [g.add("Sub", [x, g.const(shift)]), g.const(scale)])
    seq = ""
    if lengths:
        inputs.append(vi("lengths", TensorProto.INT32, ["batch"]))
        seq = "lengths"
    h = g.add("Transpose", [x], perm=[1, 0, 2])  # (T, B, I)
    for k, m in enumerate(stack.layers):
        s_in, s_out = _state_names(k, len(stack.layers), m.STATES == 2)
        shape = [m.num_layers * m.num_directions, "batch", m.hidden_size]
        inputs += [vi(s, elem, shape) for s in s_in] if states else []
        outputs += [vi(s, elem, shape) for s in s_out]
        h, y_h = _recurrent(g, m, h, seq, s_in if states else [], s_out)
    y, out_shape = _readout(g, stack, h, y_h, seq)
    if stack.head is not None:
        w = stack.head.weight.data
        y = g.add("MatMul", [y, g.const(w.T)])  # (B, [T,] O)
        if stack.head.bias is not None:
            y = g.add("Add", [y, g.const(stack.head.bias.data)])
        out_shape[-1] = w.shape[0]
    g.add("Identity", [y], out=["y"])
    outputs.insert(0, vi("y", elem, out_shape))
    graph = helper.make_graph(g.nodes, "longshort", inputs, outputs, initializer=g.inits)
    ops = [helper.make_opsetid("", opset)]
    proto = helper.make_model(
        graph, opset_imports=ops, producer_name="longshort", ir_version=_ir_version(opset)
    )
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        onnx.save(proto, os.fspath(path))
    return proto


def _readout(g: _Graph, stack, h: str, y_h: str, seq: str) -> tuple[str, list]:
    """Time-major top output h (T, B, F) -> the stack's readout, and its symbolic shape."""
    F = stack.features
    if stack.readout == "all":
        return g.add("Transpose", [h], perm=[1, 0, 2]), ["batch", "time", F]  # (B, T, F)
    if stack.readout == "final":
        y = g.add("Transpose", [y_h], perm=[1, 0, 2])  # (B, D, H)
        return g.add("Reshape", [y, g.const([0, -1], np.int64)]), ["batch", F]  # (B, D*H)
    if not seq:  # "last" without lengths: the last step
        return g.add("Gather", [h, g.const(-1, np.int64)], axis=0), ["batch", F]  # (B, F)
    from onnx import TensorProto

    idx = g.add("Cast", [seq], to=TensorProto.INT64)
    idx = g.add("Sub", [idx, g.const(1, np.int64)])  # (B,)
    idx = g.add("Unsqueeze", [idx, g.const([1], np.int64)])  # (B, 1)
    y = g.add("Transpose", [h], perm=[1, 0, 2])  # (B, T, F)
    return g.add("GatherND", [y, idx], batch_dims=1), ["batch", F]  # (B, F)


def _ir_version(opset: int) -> int:
    """The oldest IR version that carries `opset`, so older runtimes can load the file."""
    from onnx import helper

    return helper.find_min_ir_version_for([helper.make_opsetid("", opset)])
