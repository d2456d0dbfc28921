"""Gate traces, forget-gate statistics and gradient flow, checked against independent computations."""

import csv

import numpy as np
import pytest
import torch

from longshort.data.tasks import adding_problem, get_task
from longshort.inspect import (
    forget_stats,
    gate_trace,
    gradient_flow,
    hidden_grad_norms,
    layer_names,
    plot_gate_heatmaps,
    plot_gradient_flow,
)
from longshort.models.sequence_model import SequenceModel, SequenceModelConfig
from longshort.nn import GRU, LSTM, RNN

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# --- gate traces ------------------------------------------------------------------------------
def test_gate_trace_matches_the_equations_step_by_step():
    lstm = LSTM(3, 5, num_layers=2, dtype=np.float64, seed=0)
    x = np.random.default_rng(1).standard_normal((1, 7, 3))
    trace = gate_trace(lstm, x)
    assert len(trace) == 2 and layer_names(lstm) == ["layer 0", "layer 1"]
    inp = x[0]  # (T, I), recomputed by hand from the weights
    for layer, d in enumerate(trace):
        w = lstm.weights(layer)
        H = 5
        h, c = np.zeros(H), np.zeros(H)
        for t in range(7):
            z = w.w_ih @ inp[t] + w.b_ih + w.w_hh @ h + w.b_hh
            i, f, o = _sigmoid(z[:H]), _sigmoid(z[H : 2 * H]), _sigmoid(z[3 * H :])
            c = f * c + i * np.tanh(z[2 * H : 3 * H])
            h = o * np.tanh(c)
            for key, v in (("i", i), ("f", f), ("o", o), ("c", c), ("h", h)):
                np.testing.assert_allclose(d[key][t], v, atol=1e-12, err_msg=f"{key} {layer} {t}")
        inp = d["h"]
    assert lstm.training  # the mode is restored


def test_gate_trace_cuts_to_the_length_and_accepts_a_sequence_model():
    m = SequenceModel(SequenceModelConfig("lstm", 2, 4, 1, dtype="float64"))
    m.rnn.checkpoint_every = 3  # the trace still needs (and restores) the full cache setting
    x = np.random.default_rng(0).standard_normal((6, 2))
    full, cut = gate_trace(m, x), gate_trace(m, x[None], length=4)
    assert full[0]["f"].shape == (6, 4) and cut[0]["f"].shape == (4, 4)
    np.testing.assert_allclose(cut[0]["c"], full[0]["c"][:4], atol=1e-12)
    assert m.rnn.checkpoint_every == 3
    with pytest.raises(TypeError, match="need an LSTM"):
        gate_trace(RNN(2, 3), x)
    with pytest.raises(ValueError, match="one sequence"):
        gate_trace(m, np.zeros((2, 6, 2)))


@pytest.mark.parametrize("bias,key", [(6.0, "frac_high"), (-6.0, "frac_low")])
def test_forget_stats_are_consistent_with_the_trace(bias, key):
    lstm = LSTM(2, 8, num_layers=2, forget_bias=bias, seed=0)
    x = np.random.default_rng(2).standard_normal((1, 30, 2)).astype(np.float32)
    trace = gate_trace(lstm, x)
    stats = forget_stats(trace)
    for d, s in zip(trace, stats):
        f = d["f"]
        assert s["mean"] == pytest.approx(f.mean()) and s["n"] == f.size == 30 * 8
        assert s["frac_low"] == np.mean(f < 0.1) and s["frac_high"] == np.mean(f > 0.9)
        assert s["min"] == f.min() and s["max"] == f.max()
        assert s[key] > 0.95  # a forget bias of +-6 saturates the gate
    mid = forget_stats(trace, low=0.0, high=1.0)[0]
    assert mid["frac_low"] == 0.0 and mid["frac_high"] == 0.0
    with pytest.raises(ValueError, match="low < high"):
        forget_stats(trace, low=0.9, high=0.1)


def test_gate_heatmap_png_is_written(tmp_path):
    import matplotlib.image

    lstm = LSTM(2, 6, num_layers=2, bidirectional=True, seed=0)
    trace = gate_trace(lstm, np.random.default_rng(0).standard_normal((1, 25, 2)))
    assert len(trace) == 4
    path = plot_gate_heatmaps(trace, tmp_path / "sub" / "gates.png", names=layer_names(lstm))
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 10_000
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] > 400 and img.shape[1] > 400  # 4 rows x 4 panels
    with pytest.raises(ValueError, match="subset"):
        plot_gate_heatmaps(trace, tmp_path / "x.png", gates=("q",))


# --- gradient flow ----------------------------------------------------------------------------
def _torch_hidden_grads(layer, x, lengths, dy):
    """dL/dh_t of the top layer by autograd, stepping torch cells with the layer's weights."""
    kind = {"LSTM": torch.nn.LSTMCell, "RNN": torch.nn.RNNCell, "GRU": torch.nn.GRUCell}
    cells = []
    for k in range(layer.num_layers):
        w = layer.weights(k)
        cell = kind[type(layer).__name__](w.w_ih.shape[1], layer.hidden_size, dtype=torch.float64)
        cell.load_state_dict({n: torch.tensor(a) for n, a in zip(
            ("weight_ih", "weight_hh", "bias_ih", "bias_hh"), w)})  # fmt: skip
        cells.append(cell)
    B, T, _ = x.shape
    is_lstm = isinstance(layer, LSTM)
    state = [(torch.zeros(B, layer.hidden_size),) * (2 if is_lstm else 1) for _ in cells]
    state = [tuple(s.double() for s in st) for st in state]
    tops, loss = [], 0.0
    for t in range(T):
        m = torch.tensor(t < lengths)[:, None]
        inp = torch.tensor(x[:, t])
        for k, cell in enumerate(cells):
            new = cell(inp, state[k]) if is_lstm else (cell(inp, state[k][0]),)
            state[k] = tuple(torch.where(m, n, s) for n, s in zip(new, state[k]))
            inp = state[k][0]
        inp.retain_grad()
        tops.append(inp)
        loss = loss + (inp * torch.tensor(dy[:, t])).sum()
    loss.backward()
    return np.stack([h.grad.numpy() for h in tops], axis=1)  # (B, T, H)


@pytest.mark.parametrize("cls,layers", [(LSTM, 2), (RNN, 1), (GRU, 2)])
def test_hidden_gradients_match_torch_autograd(cls, layers):
    rng = np.random.default_rng(3)
    layer = cls(3, 4, num_layers=layers, dtype=np.float64, seed=1)
    x = rng.standard_normal((3, 9, 3))
    lengths = np.array([9, 5, 7])
    dy = np.zeros((3, 9, 4))
    dy[np.arange(3), lengths - 1] = rng.standard_normal((3, 4))
    norms, _ = hidden_grad_norms(layer, x, lengths, dy)
    ref = np.linalg.norm(_torch_hidden_grads(layer, x, lengths, dy), axis=-1)
    np.testing.assert_allclose(norms, ref, rtol=1e-9, atol=1e-12)


def test_step_chain_equals_the_full_backward():
    layer = LSTM(2, 5, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((2, 12, 2))
    dy = np.random.default_rng(1).standard_normal((2, 12, 5))
    _, dstate = hidden_grad_norms(layer, x, None, dy)
    layer(x)
    _, (dh0, dc0) = layer.backward(dy)
    np.testing.assert_allclose(dstate[0], dh0[0], atol=1e-12)
    np.testing.assert_allclose(dstate[1], dc0[0], atol=1e-12)


def test_rnn_gradient_vanishes_while_the_lstm_keeps_it():
    x = np.random.default_rng(0).standard_normal((16, 80, 2)).astype(np.float32)
    rnn = RNN(2, 32, seed=0)
    rnn.weight_hh_l0.data *= 0.5  # small recurrent weights: spectral radius ~ 0.3
    lstm = LSTM(2, 32, forget_bias=5.0, seed=0)
    r, s = gradient_flow(rnn, x), gradient_flow(lstm, x)
    assert r.name == "RNN" and len(r.lag) == 80
    assert r.dh_norm[0] == pytest.approx(1.0, rel=1e-5)  # the unit projection
    assert r.decay(20) < 1e-6 and r.decay(20, "dx") < 1e-6  # orders of magnitude in 20 steps
    assert np.all(np.diff(np.log(r.dh_norm[:20])) < 0)  # falls at every step
    assert s.decay(79) > 1e-2 and s.decay(79, "dx") > 1e-2  # the cell carries it across 80
    assert s.decay(79) > 1e6 * max(r.decay(79), 1e-30)


def test_gradient_flow_with_a_task_loss_leaves_the_model_as_it_was(tmp_path):
    task = get_task("adding")
    m = SequenceModel(SequenceModelConfig("lstm", 2, 8, 1, forget_bias=1.0))
    b = adding_problem(8, 20, 0)
    grads = [p.grad.copy() + 1.0 for p in m.parameters()]
    for p, g in zip(m.parameters(), grads):
        p.grad[...] = g
    flow = gradient_flow(m, b.x, b.lengths, b.target, loss=task.loss, name="LSTM")
    for p, g in zip(m.parameters(), grads):
        np.testing.assert_array_equal(p.grad, g)
    assert len(flow.lag) == b.lengths.min() and np.all(flow.dx_norm > 0)
    # lag 0 is the loss's own gradient: |2 (pred - y)| * ||W_head|| per sequence, averaged.
    pred = m.predict(b.x, b.lengths)[:, 0]
    w = np.linalg.norm(m.head.weight.data)
    assert flow.dh_norm[0] == pytest.approx(np.mean(np.abs(2 * (pred - b.target)) * w), rel=1e-4)
    rnn_flow = gradient_flow(RNN(2, 8, seed=0), b.x, b.lengths)
    png, csv_path = plot_gradient_flow([flow, rnn_flow], tmp_path / "flow.png")
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 2 * len(flow.lag) and rows[0]["model"] == "LSTM"
    assert {r["model"] for r in rows} == {"LSTM", "RNN"}
    assert float(rows[5]["dh_norm"]) == pytest.approx(flow.dh_norm[5], rel=1e-5)
    assert float(rows[5]["dh_relative"]) == pytest.approx(flow.decay(5), rel=1e-5)
    with pytest.raises(ValueError, match="unidirectional"):
        gradient_flow(LSTM(2, 3, bidirectional=True), b.x)


def test_gradient_flow_on_the_copy_task_reads_the_last_step():
    task = get_task("copy")
    m = SequenceModel(SequenceModelConfig("gru", 10, 6, 9, readout="all"))
    b = task.generate(4, 15, 0)
    flow = gradient_flow(m, b.x, b.lengths, b.target, loss=task.loss)
    assert flow.name == "GRU" and len(flow.lag) == 35 and np.all(flow.dh_norm > 0)
