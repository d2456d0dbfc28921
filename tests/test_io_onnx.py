"""ONNX export (longshort.io.onnx): torch -> longshort -> ONNX -> ONNX Runtime and onnx.reference.

Every exported file passes onnx.checker (full check) inside to_onnx. onnx.reference ignores
sequence_lens (its LSTM/GRU/RNN run every step) and has no Relu RNN, so it is checked on
full-length batches of tanh cells; ONNX Runtime is checked on everything.
"""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx.reference import ReferenceEvaluator

import longshort.io as lsio
from longshort.cli import main
from longshort.models.classifier import SequenceClassifier
from longshort.models.sequence_model import SequenceModel
from longshort.models.stack import RecurrentStack
from longshort.nn import GRU, LSTM, RNN, Embedding, Linear
from test_io_torch import LENGTHS, flat, max_err, rand_state, torch_run

TORCH = [("LSTM", {}), ("GRU", {}), ("RNN", {}), ("RNN", {"nonlinearity": "relu"})]


def run_ort(proto, feeds):
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def feeds_for(x, lengths=None, state=None, names=("h0", "c0")):
    f = {"x": x}
    if lengths is not None:
        f["lengths"] = np.asarray(lengths, np.int32)
    if state is not None:
        f.update(zip(names, flat(state)))
    return f


@pytest.mark.parametrize("name,kw", TORCH, ids=["lstm", "gru", "rnn", "rnn_relu"])
@pytest.mark.parametrize("bidir", [False, True], ids=["uni", "bi"])
def test_torch_longshort_onnx_runtime(name, kw, bidir):
    torch.manual_seed(0)
    tm = getattr(torch.nn, name)(3, 5, num_layers=2, bidirectional=bidir, batch_first=True, **kw)
    layer = lsio.from_torch(tm)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 7, 3)).astype(np.float32)
    s0 = rand_state(layer, rng)
    yt, st = torch_run(tm, x, LENGTHS, s0)
    proto = lsio.to_onnx(layer)
    assert proto.opset_import[0].version >= 14
    kinds = [n.op_type for n in proto.graph.node]
    assert kinds.count(name) == 2 and kinds[0] == "Transpose"  # one node per layer, time-major
    got = run_ort(proto, feeds_for(x, LENGTHS, s0))
    assert max(abs(got[0]).max(), abs(got[1]).max()) > 0.1
    assert max_err(got, (yt, *st)) < 1e-5
    assert np.all(got[0][1, 3:] == 0)  # padded steps are zero, as in torch and longshort
    if not kw:  # onnx.reference: full lengths, tanh cells
        full = np.full(4, 7)
        yt, st = torch_run(tm, x, full, s0)
        ref = ReferenceEvaluator(proto).run(None, feeds_for(x, full, s0))
        assert max_err(ref, (yt, *st)) < 1e-5


@pytest.mark.parametrize("readout", ["all", "last", "final"])
def test_stack_with_head_and_readouts(readout):
    bidir = readout != "last"
    layers = [GRU(3, 4, bidirectional=bidir, seed=2), LSTM(8 if bidir else 4, 5, 2, bidir, seed=3)]
    stack = RecurrentStack(layers, Linear(10 if bidir else 5, 2, seed=4), readout)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 7, 3)).astype(np.float32)
    states = [rand_state(m, rng) for m in layers]
    out, s_n = stack(x, states, LENGTHS)
    proto = lsio.to_onnx(stack)
    names = [i.name for i in proto.graph.input]
    assert names == ["x", "lengths", "h0_0", "h0_1", "c0_1"]
    assert [o.name for o in proto.graph.output] == ["y", "h_n_0", "h_n_1", "c_n_1"]
    f = {"x": x, "lengths": LENGTHS.astype(np.int32), "h0_0": states[0]}
    f["h0_1"], f["c0_1"] = states[1]
    got = run_ort(proto, f)
    assert max_err(got, (out, s_n[0], *s_n[1])) < 1e-5
    full = np.full(4, 7)
    out, s_n = stack(x, states, full)
    f["lengths"] = full.astype(np.int32)
    ref = ReferenceEvaluator(proto).run(None, f)
    assert max_err(ref, (out, s_n[0], *s_n[1])) < 1e-5


def test_application_models_and_options():
    """SequenceModel and SequenceClassifier (with its standardisation); fewer inputs."""
    rng = np.random.default_rng(6)
    sm = SequenceModel(cell="gru", input_size=2, hidden_size=4, output_size=3, readout="last")
    x = rng.standard_normal((3, 5, 2)).astype(np.float32)
    proto = lsio.to_onnx(sm, states=False)
    assert [i.name for i in proto.graph.input] == ["x", "lengths"]
    got = run_ort(proto, feeds_for(x, [5, 2, 4]))[0]
    assert max_err([got], [sm.predict(x, np.array([5, 2, 4]))]) < 1e-5
    got = run_ort(lsio.to_onnx(sm, lengths=False, states=False), {"x": x})[0]  # last step
    assert max_err([got], [sm.predict(x)]) < 1e-5

    X = rng.standard_normal((16, 6, 2)) * 3 + 1
    lengths = rng.integers(1, 7, 16)
    clf = SequenceClassifier(hidden_size=4, bidirectional=True, cell="gru", epochs=1)
    clf.fit(X, rng.integers(0, 3, 16), lengths=lengths)
    proto = lsio.to_onnx(clf, states=False)  # raw features in (standardised inside), logits out
    got = run_ort(proto, feeds_for(X.astype(np.float32), lengths))[0]
    assert max_err([got], [clf.decision_function(X, lengths)]) < 1e-5
    proto64 = lsio.to_onnx(clf, lengths=False, states=False, dtype="float64")
    ref = ReferenceEvaluator(proto64).run(None, {"x": X})[0]
    assert max_err([ref], [clf.decision_function(X, np.full(16, 6))]) < 1e-5


def test_cli_export_onnx(tmp_path, capsys):
    model = RecurrentStack([LSTM(3, 4, 2, seed=7)], Linear(4, 1, seed=8), "last")
    lsio.save(model, tmp_path / "m")
    out = tmp_path / "m.onnx"
    assert main(["export", "onnx", "--model", str(tmp_path / "m"), "--out", str(out)]) == 0
    assert "inputs: x, lengths, h0, c0; outputs: y, h_n, c_n" in capsys.readouterr().out
    onnx.checker.check_model(str(out), full_check=True)
    x = np.random.default_rng(9).standard_normal((2, 6, 3)).astype(np.float32)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(
        ["y"],
        {"x": x, "lengths": np.array([6, 4], np.int32)}
        | {n: s for n, s in zip(("h0", "c0"), model.layers[0].init_state(2))},
    )[0]
    assert max_err([got], [model(x, lengths=np.array([6, 4]))[0]]) < 1e-5
    clf = SequenceClassifier(hidden_size=3, epochs=1).fit(x, [0, 1], lengths=[6, 4])
    clf.save(tmp_path / "clf")  # the classifier's own directory format
    args = ["export", "onnx", "--model", str(tmp_path / "clf"), "--out", str(out), "--no-states"]
    assert main(args) == 0
    got = run_ort(onnx.load(str(out)), {"x": x, "lengths": np.array([6, 4], np.int32)})[0]
    assert max_err([got], [clf.decision_function(x, np.array([6, 4]))]) < 1e-5
    assert main(["export", "onnx", "--model", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "config.json not found" in capsys.readouterr().err


def test_what_onnx_export_cannot_do_is_named():
    with pytest.raises(ValueError, match="opset 13 is too old"):
        lsio.to_onnx(LSTM(2, 3), opset=13)
    with pytest.raises(TypeError, match="cannot export a Embedding"):
        lsio.to_onnx(Embedding(10, 3))
    with pytest.raises(TypeError, match="pooling='mean'"):
        lsio.to_onnx(SequenceClassifier(pooling="mean").fit(np.ones((4, 3, 1)), [0, 1, 0, 1]))
    with pytest.raises(ValueError, match="float32 and float64, not float16"):
        lsio.to_onnx(RNN(2, 3), dtype="float16")


def test_cli_export_names_what_cannot_be_exported(tmp_path, capsys):
    """A classifier with mean pooling and a forecaster load fine but are not stacks: a one-line
    error naming the reason, exit code 2 (not a traceback)."""
    import pandas as pd

    from longshort.models.forecaster import Forecaster

    x = np.random.default_rng(9).standard_normal((4, 6, 3)).astype(np.float32)
    SequenceClassifier(hidden_size=3, epochs=1, pooling="mean").fit(x, [0, 1, 0, 1]).save(
        tmp_path / "clf"
    )
    t = np.arange(300)
    df = pd.DataFrame({"t": t, "y": np.sin(t / 5.0) + 0.1 * np.random.default_rng(0).random(300)})
    fc = Forecaster(horizon=4, context=16, hidden_size=8, epochs=1).fit(df, time="t", target="y")
    fc.save(tmp_path / "fc")
    assert type(lsio.load(tmp_path / "fc")).__name__ == "Forecaster"  # its own format loads
    for d, words in (("clf", "pooling='mean'"), ("fc", "cannot export a Forecaster")):
        args = ["export", "onnx", "--model", str(tmp_path / d), "--out", str(tmp_path / "x.onnx")]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err, err
