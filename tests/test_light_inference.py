"""Saved models (longshort.io.save / load) and light inference with NumPy alone.

A subprocess in which importing numba, torch, keras and onnx raises ImportError loads saved models
and predicts through the reference ops, to the same numbers as this process.
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import longshort.io as lsio
from longshort.models.classifier import SequenceClassifier
from longshort.models.sequence_model import SequenceModel
from longshort.models.stack import RecurrentStack
from longshort.nn import GRU, LSTM, RNN, Embedding, Linear

BLOCKED = ("numba", "llvmlite", "torch", "keras", "onnx", "onnxruntime", "tensorflow", "jax")
LENGTHS = np.array([7, 3, 5])

CHILD = """
import json, logging, sys
BLOCKED = {blocked!r}

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"import of {{name}} is blocked in this test")

sys.meta_path.insert(0, Block())
logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="LOG %(message)s")
import numpy as np
import longshort.io as lsio
from longshort.kernels import fused_available

d, x, lengths = {d!r}, np.load({d!r} + "/x.npy"), np.load({d!r} + "/lengths.npy")
out = {{"fused": fused_available("lstm")}}
for name in ("stack", "seq", "rnn"):
    for impl in ("reference", None):  # None keeps the saved impl="auto": it must fall back
        m = lsio.load(f"{{d}}/{{name}}", impl=impl)
        y = m(x, lengths=lengths)[0] if name != "seq" else m.predict(x, lengths)
        out[f"{{name}}-{{impl}}"] = np.asarray(y, np.float64).tolist()
clf = lsio.load(f"{{d}}/classifier", impl="reference")
out["classifier"] = clf.decision_function(x * 3 + 1, lengths).tolist()
m = lsio.load(f"{{d}}/stack_uni", impl="reference")
y_t, state = m.step(x[:, 0], m.init_state(len(x)))
out["step"] = y_t.tolist()
try:
    lsio.load(f"{{d}}/stack", impl="fused")
except RuntimeError as e:
    out["fused_error"] = str(e)
out["modules"] = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print("RESULT " + json.dumps(out))
"""


def test_saved_models_predict_with_numpy_alone(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 7, 2)).astype(np.float32)
    layers = [LSTM(2, 5, 2, seed=1), GRU(5, 3, bidirectional=True, seed=2)]
    models = {
        "stack": RecurrentStack(layers, Linear(6, 2, seed=3), "last"),
        "stack_uni": RecurrentStack([LSTM(2, 4, 2, seed=4)], Linear(4, 1, seed=5)),
        "seq": SequenceModel(cell="lstm", input_size=2, hidden_size=6, output_size=2),
        "rnn": RNN(2, 4, 2, True, nonlinearity="relu", seed=6),
    }
    for name, m in models.items():
        lsio.save(m, tmp_path / name)
    clf = SequenceClassifier(hidden_size=4, epochs=1, impl="reference")  # saves itself
    clf.fit(x * 3 + 1, [0, 1, 2], lengths=LENGTHS).save(tmp_path / "classifier")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "lengths.npy", LENGTHS)

    code = textwrap.dedent(CHILD).format(blocked=BLOCKED, d=str(tmp_path))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    res = json.loads(run.stdout.split("RESULT ", 1)[1])
    assert res["fused"] is False and res["modules"] == []
    assert "using the reference LSTM ops because Numba is not installed" in run.stdout
    assert "impl='fused' was requested but Numba is not installed" in res["fused_error"]

    for name in ("stack", "rnn"):
        m = models[name]
        for layer in m.modules():
            layer.impl = "reference"
        want = m(x, lengths=LENGTHS)[0]
        for impl in ("reference", "None"):
            np.testing.assert_allclose(res[f"{name}-{impl}"], want, rtol=0, atol=1e-6)
    seq = models["seq"]
    seq.rnn.impl = "reference"
    np.testing.assert_allclose(res["seq-None"], seq.predict(x, LENGTHS), rtol=0, atol=1e-6)
    want = clf.decision_function(x * 3 + 1, LENGTHS)
    np.testing.assert_allclose(res["classifier"], want, rtol=0, atol=1e-6)
    uni = models["stack_uni"]
    np.testing.assert_allclose(res["step"], uni(x)[0][:, 0], rtol=0, atol=1e-6)


def test_importing_longshort_imports_no_framework():
    code = "import sys, longshort, longshort.io, longshort.models.stack, longshort.cli\n"
    code += f"print(sorted(m for m in sys.modules if m.split('.')[0] in {BLOCKED!r}))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_save_load_round_trip_and_bad_directories(tmp_path):
    m = RecurrentStack([RNN(3, 4, nonlinearity="relu", dtype=np.float64, seed=1)], Linear(4, 2))
    lsio.save(m, tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["format"] == "longshort-model-1" and cfg["model"]["class"] == "RecurrentStack"
    back = lsio.load(tmp_path / "m")
    assert back.layers[0].nonlinearity == "relu" and back.layers[0].dtype == np.float64
    assert not back.training
    x = np.random.default_rng(2).standard_normal((2, 5, 3))
    np.testing.assert_array_equal(back(x)[0], m(x)[0])

    with pytest.raises(FileNotFoundError, match="config.json not found"):
        lsio.load(tmp_path / "missing")
    (tmp_path / "m" / "config.json").write_text('{"format": "other"}')
    with pytest.raises(
        ValueError, match="has format 'other'; longshort.io.load reads longshort-model-1"
    ):
        lsio.load(tmp_path / "m")
    lsio.save(RecurrentStack([RNN(3, 5)], Linear(5, 2)), tmp_path / "m2")
    (tmp_path / "m" / "config.json").write_bytes((tmp_path / "m2" / "config.json").read_bytes())
    with pytest.raises(KeyError, match=r"layers.0.weight_ih_l0: expected \(5, 3\), got \(4, 3\)"):
        lsio.load(tmp_path / "m")
    with pytest.raises(TypeError, match="cannot save a Embedding"):
        lsio.save(Embedding(4, 2), tmp_path / "e")
    with pytest.raises(ValueError, match="impl must be one of"):
        lsio.load(tmp_path / "m2", impl="fast")
