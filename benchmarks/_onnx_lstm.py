"""Build an ONNX graph for a stacked unidirectional LSTM with the weights of a longshort.nn.LSTM.

Only for the benchmark's ONNX Runtime column; it needs nothing but `onnx`.

    X (B, T, I) --Transpose--> (T, B, I) --LSTM_0--> (T, 1, B, H) --Squeeze--> ... --> Y (B, T, H)

ONNX orders the gate blocks i, o, f, c; PyTorch (and longshort) i, f, g(=c), o. B holds the two
bias vectors concatenated: [Wb_iofc, Rb_iofc] of shape (1, 8H).
"""

from __future__ import annotations

import numpy as np

IOFC = [0, 3, 1, 2]  # ONNX block k takes PyTorch block IOFC[k]


def _reorder(a: np.ndarray, H: int) -> np.ndarray:
    return np.concatenate([a[k * H : (k + 1) * H] for k in IOFC], axis=0)


def lstm_to_onnx_bytes(layer) -> bytes:
    """Serialized ONNX model computing y = layer(x)[0] for a unidirectional float32 LSTM."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if layer.bidirectional:
        raise ValueError("the benchmark's ONNX helper covers unidirectional LSTMs only")
    H = layer.hidden_size
    nodes = [helper.make_node("Transpose", ["x"], ["x_tm"], perm=[1, 0, 2])]
    inits, inp = [], "x_tm"
    for k in range(layer.num_layers):
        w = layer.weights(k)
        W = _reorder(w.w_ih, H)[None].astype(np.float32)  # (1, 4H, I)
        R = _reorder(w.w_hh, H)[None].astype(np.float32)  # (1, 4H, H)
        Bv = np.concatenate([_reorder(w.b_ih, H), _reorder(w.b_hh, H)])[None].astype(np.float32)
        for name, arr in ((f"W{k}", W), (f"R{k}", R), (f"B{k}", Bv)):
            inits.append(numpy_helper.from_array(arr, name))
        nodes.append(
            helper.make_node("LSTM", [inp, f"W{k}", f"R{k}", f"B{k}"], [f"y{k}"], hidden_size=H)
        )
        inits.append(numpy_helper.from_array(np.array([1], np.int64), f"ax{k}"))
        nodes.append(helper.make_node("Squeeze", [f"y{k}", f"ax{k}"], [f"h{k}"]))  # (T, B, H)
        inp = f"h{k}"
    nodes.append(helper.make_node("Transpose", [inp], ["y"], perm=[1, 0, 2]))
    graph = helper.make_graph(
        nodes,
        "lstm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "T", layer.input_size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", "T", H])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def ort_session(layer):
    """An ONNX Runtime CPU session (default threads) and a callable x -> y."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(lstm_to_onnx_bytes(layer), opts, providers=["CPUExecutionProvider"])
    return lambda x: sess.run(["y"], {"x": x})[0]
