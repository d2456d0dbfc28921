"""Keras 3 in and out (longshort.io.keras), checked against Keras itself on the torch backend.

Paths: Keras -> longshort, longshort -> Keras, Keras -> longshort -> Keras, through live models,
`.keras` files and `.weights.h5` files; stacked, bidirectional, masked (variable-length) batches.
"""

import importlib.util
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")

import longshort.io as lsio  # noqa: E402
from longshort.models.stack import RecurrentStack  # noqa: E402
from longshort.nn import GRU, LSTM, RNN, Linear  # noqa: E402

pytestmark = pytest.mark.filterwarnings(  # raised inside Keras' torch backend, not here
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
LENGTHS = np.array([6, 2, 4, 1])
L = keras.layers


def padded_input(seed=0, features=3):
    x = np.random.default_rng(seed).standard_normal((4, 6, features)).astype(np.float32)
    for b, n in enumerate(LENGTHS):
        x[b, n:] = 0.0  # Keras' Masking(0.0) skips these steps; longshort takes `lengths`
    return x


def keras_out(km, x):
    return keras.ops.convert_to_numpy(km(x))


def valid_err(a, b, seq: bool) -> float:
    """Largest difference over the valid steps (Keras fills masked steps its own way)."""
    if not seq:
        return float(np.abs(a - b).max())
    return max(float(np.abs(a[i, :n] - b[i, :n]).max()) for i, n in enumerate(LENGTHS))


def randomise(km, seed=1):
    rng = np.random.default_rng(seed)
    for layer in km.layers:
        ws = layer.get_weights()
        layer.set_weights([0.5 * rng.standard_normal(w.shape).astype(w.dtype) for w in ws])


@pytest.mark.parametrize("seq", [True, False], ids=["sequences", "final"])
def test_keras_longshort_keras(seq):
    km = keras.Sequential(
        [
            keras.Input((None, 3)),
            L.Masking(0.0),
            L.LSTM(5, return_sequences=True),
            L.LSTM(5, return_sequences=True),
            L.Bidirectional(L.GRU(4, return_sequences=True)),
            L.Bidirectional(L.SimpleRNN(3, activation="relu", return_sequences=seq)),
            L.Dense(2),
        ]
    )
    randomise(km)
    x = padded_input()
    ref = keras_out(km, x)
    stack = lsio.from_keras(km)
    assert [type(m).__name__ for m in stack.layers] == ["LSTM", "GRU", "RNN"]
    assert stack.layers[0].num_layers == 2  # alike consecutive Keras layers merge
    assert stack.readout == ("all" if seq else "final")
    out, _ = stack(x, lengths=LENGTHS)
    assert valid_err(out, ref, seq) < 1e-5
    again = keras_out(lsio.to_keras(stack, mask_value=0.0), x)
    assert valid_err(again, ref, seq) < 1e-5


@pytest.mark.parametrize("cls", [LSTM, GRU, RNN])
def test_longshort_to_keras_with_two_biases(cls):
    """torch-style b_ih and b_hh (both nonzero) fold into Keras' bias; GRU keeps its two rows."""
    layer = cls(3, 4, num_layers=2, bidirectional=True, seed=2)
    x = padded_input(3)
    km = lsio.to_keras(layer, mask_value=0.0)
    y, _ = layer(x, lengths=LENGTHS)
    assert valid_err(keras_out(km, x), y, True) < 1e-5
    back = lsio.from_keras(km)
    assert type(back) is RecurrentStack and type(back.layers[0]) is cls
    assert valid_err(back(x, lengths=LENGTHS)[0], y, True) < 1e-5


def test_gate_layouts_match_keras_itself():
    """unit_forget_bias lands on longshort's forget gate; GRU(reset_after) has a (2, 3H) bias."""
    lstm = L.LSTM(4, unit_forget_bias=True, return_sequences=True)
    km = keras.Sequential([keras.Input((None, 3)), lstm])
    layer = lsio.from_keras(lstm)
    assert type(layer) is LSTM
    np.testing.assert_array_equal(layer.bias_ih_l0.data, np.repeat([0.0, 1.0, 0.0, 0.0], 4))
    x = padded_input(4)
    assert float(np.abs(layer(x)[0] - keras_out(km, x)).max()) < 1e-5

    gru = L.GRU(4, return_sequences=True)
    km = keras.Sequential([keras.Input((None, 3)), gru])
    assert [w.shape for w in gru.get_weights()] == [(3, 12), (4, 12), (2, 12)]
    randomise(km, 5)
    layer = lsio.from_keras(gru)
    z, r = gru.get_weights()[2][1, :4], gru.get_weights()[2][1, 4:8]  # Keras: z, r, h
    np.testing.assert_array_equal(layer.bias_hh_l0.data[:4], r)  # torch: r, z, n
    np.testing.assert_array_equal(layer.bias_hh_l0.data[4:8], z)
    assert float(np.abs(layer(x)[0] - keras_out(km, x)).max()) < 1e-5


def test_keras_files(tmp_path):
    km = keras.Sequential(
        [
            keras.Input((None, 3)),
            L.Bidirectional(L.LSTM(4, return_sequences=True)),
            L.GRU(5),
            L.Dense(1),
        ]
    )
    randomise(km, 6)
    x = padded_input(7)
    ref = keras_out(km, x)
    km.save(tmp_path / "m.keras")
    stack = lsio.from_keras(tmp_path / "m.keras")
    assert float(np.abs(stack(x)[0] - ref).max()) < 1e-5

    lsio.to_keras(stack, tmp_path / "w.weights.h5")
    fresh = RecurrentStack([LSTM(3, 4, bidirectional=True), GRU(8, 5)], Linear(5, 1), "final")
    lsio.from_keras(tmp_path / "w.weights.h5", into=fresh)
    assert float(np.abs(fresh(x)[0] - ref).max()) < 1e-5
    lsio.to_keras(fresh, tmp_path / "again.keras")
    loaded = keras.saving.load_model(tmp_path / "again.keras")
    assert float(np.abs(keras_out(loaded, x) - ref).max()) < 1e-5


def test_unsupported_keras_models_are_named():
    def seq(*layers):
        return keras.Sequential([keras.Input((None, 3)), *layers])

    with pytest.raises(ValueError, match="reset_after=False"):
        lsio.from_keras(seq(L.GRU(4, reset_after=False)))
    with pytest.raises(ValueError, match=r"'conv1d' \(Conv1D\) is not supported"):
        lsio.from_keras(seq(L.Conv1D(4, 2, name="conv1d"), L.LSTM(2)))
    with pytest.raises(ValueError, match="linear activation"):
        lsio.from_keras(seq(L.LSTM(4), L.Dense(2, activation="relu")))
    with pytest.raises(ValueError, match="activation='relu'"):
        lsio.from_keras(seq(L.LSTM(4, activation="relu")))
    with pytest.raises(ValueError, match="into=<a longshort model>"):
        lsio.from_keras("w.weights.h5")
    with pytest.raises(ValueError, match="units=4.*hidden_size=3"):
        lsio.from_keras(seq(L.LSTM(4)), into=LSTM(3, 3))
    with pytest.raises(ValueError, match="readout 'final'"):
        lsio.to_keras(RecurrentStack([LSTM(3, 2, bidirectional=True)], readout="last"))


def test_keras_backend_chosen_without_tensorflow(tmp_path):
    """Keras 3 defaults to TensorFlow: with KERAS_BACKEND unset and no TensorFlow, from_keras and
    to_keras pick torch themselves (a fresh process, so Keras is not imported yet)."""
    import subprocess
    import sys

    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("TensorFlow installed: Keras' own default works")
    code = (
        "import numpy as np, longshort.io as lsio\n"
        "from longshort.nn import LSTM\n"
        f"p = {str(tmp_path / 'm.keras')!r}\n"
        "m = LSTM(3, 4, seed=0)\n"
        "lsio.to_keras(m, p)\n"
        "back = lsio.from_keras(p)\n"
        "x = np.ones((1, 2, 3), np.float32)\n"
        "print(float(np.abs(back(x, need_cache=False)[0] - m(x, need_cache=False)[0]).max()))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert float(r.stdout.split()[-1]) == 0.0


def test_missing_keras_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such Keras file"):
        lsio.from_keras(tmp_path / "nope.keras")
