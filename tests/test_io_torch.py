"""PyTorch in and out (longshort.io.torch): layers, state_dicts and whole stacks, values and grads.

Paths: longshort -> torch -> longshort, and torch -> longshort, on stacked, bidirectional,
variable-length batches with given initial states; 1e-5 in float32.
"""

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import longshort.io as lsio
from longshort.models.sequence_model import SequenceModel
from longshort.models.stack import RecurrentStack
from longshort.nn import GRU, LSTM, RNN, Embedding, Linear

CELLS = [(LSTM, {}), (GRU, {}), (RNN, {}), (RNN, {"nonlinearity": "relu"})]
LENGTHS = np.array([7, 3, 1, 5])


def rand_state(layer, rng):
    s = layer.init_state(len(LENGTHS))
    if isinstance(s, tuple):
        return tuple(rng.standard_normal(a.shape).astype(a.dtype) for a in s)
    return rng.standard_normal(s.shape).astype(s.dtype)


def torch_run(m, x, lengths, state):
    """A batch_first or time-major torch recurrent module on batch-first x, padded output."""
    xt = torch.from_numpy(x)
    if state is None:
        st = None
    elif isinstance(state, tuple):
        st = tuple(torch.from_numpy(s) for s in state)
    else:
        st = torch.from_numpy(state)
    if not m.batch_first:
        xt = xt.transpose(0, 1)
    packed = pack_padded_sequence(
        xt, torch.from_numpy(lengths), batch_first=m.batch_first, enforce_sorted=False
    )
    with torch.no_grad():
        y, s_n = m(packed, st)
    y, _ = pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
    return y.numpy(), tuple(a.numpy() for a in (s_n if isinstance(s_n, tuple) else (s_n,)))


def flat(s):
    return s if isinstance(s, tuple) else (s,)


def max_err(a, b) -> float:
    return max(float(np.max(np.abs(np.asarray(u, np.float64) - v))) for u, v in zip(a, b))


@pytest.mark.parametrize("cls,kw", CELLS, ids=["lstm", "gru", "rnn", "rnn_relu"])
@pytest.mark.parametrize("bidir", [False, True], ids=["uni", "bi"])
def test_longshort_torch_longshort(cls, kw, bidir):
    rng = np.random.default_rng(0)
    layer = cls(3, 5, num_layers=2, bidirectional=bidir, seed=1, impl="reference", **kw)
    x = rng.standard_normal((4, 7, 3)).astype(np.float32)
    s0 = rand_state(layer, rng)
    y, s_n = layer(x, s0, lengths=LENGTHS)

    tm = lsio.to_torch(layer)
    assert isinstance(tm, torch.nn.RNNBase) and tm.batch_first and not tm.training
    yt, st = torch_run(tm, x, LENGTHS, s0)
    assert max_err((y, *flat(s_n)), (yt, *st)) < 1e-5

    back = lsio.from_torch(tm)
    assert type(back) is cls and back.bidirectional == bidir and back.num_layers == 2
    if kw:
        assert back.nonlinearity == kw["nonlinearity"]
    for k, v in layer.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[k], v)
    y2, s2 = back(x, s0, lengths=LENGTHS)
    assert max_err((y2, *flat(s2)), (y, *flat(s_n))) < 1e-5


@pytest.mark.parametrize("name", ["LSTM", "GRU", "RNN"])
def test_torch_to_longshort_time_major_and_no_bias(name):
    """A torch module with its own init, time-major and without biases, runs the same here."""
    torch.manual_seed(0)
    tm = getattr(torch.nn, name)(3, 6, num_layers=2, bidirectional=True, bias=False)
    layer = lsio.from_torch(tm)
    assert all(np.all(p.data == 0) for n, p in layer.named_parameters() if n.startswith("bias"))
    x = np.random.default_rng(2).standard_normal((4, 7, 3)).astype(np.float32)
    y, s_n = layer(x, lengths=LENGTHS)
    yt, st = torch_run(tm, x, LENGTHS, None)
    assert max_err((y, *flat(s_n)), (yt, *st)) < 1e-5


@pytest.mark.parametrize("readout", ["all", "last", "final"])
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-10)])
def test_whole_stack_both_ways_values_and_gradients(readout, dtype, tol):
    """RecurrentStack <-> TorchRecurrentStack: outputs, final states and every gradient."""
    rng = np.random.default_rng(3)
    bidir = readout != "last"
    layers = [LSTM(3, 5, 2, bidir, dtype=dtype, seed=4), GRU(10 if bidir else 5, 4, dtype=dtype)]
    stack = RecurrentStack(layers, Linear(4, 2, dtype=dtype, seed=5), readout)
    x = rng.standard_normal((4, 7, 3)).astype(dtype)
    out, states = stack(x, lengths=LENGTHS)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = stack.backward(dout)

    tm = lsio.to_torch(stack)
    xt = torch.tensor(x, requires_grad=True)
    out_t, states_t = tm(xt, torch.from_numpy(LENGTHS))
    (out_t * torch.from_numpy(dout)).sum().backward()
    assert max_err([out], [out_t.detach().numpy()]) < tol
    assert max_err([dx], [xt.grad.numpy()]) < tol
    for s, t in zip(states, states_t):
        assert max_err(flat(s), [a.detach().numpy() for a in flat(t)]) < tol
    grads = {n: p.grad for n, p in tm.named_parameters()}
    for n, p in stack.named_parameters():
        assert max_err([p.grad], [grads[n].numpy()]) < tol, n

    back = lsio.from_torch(tm)
    assert isinstance(back, RecurrentStack) and back.readout == readout
    out2, _ = back(x, lengths=LENGTHS)
    np.testing.assert_array_equal(out2, out)


def test_sequence_model_round_trip_through_torch():
    """A whole application model out to torch, changed there, and loaded back by name."""
    model = SequenceModel(cell="lstm", input_size=2, hidden_size=6, output_size=3, readout="last")
    tm = lsio.to_torch(model)
    with torch.no_grad():
        for p in tm.parameters():
            p.mul_(1.5)
    lsio.from_torch(tm.state_dict(), into=model)
    x = np.random.default_rng(6).standard_normal((4, 7, 2)).astype(np.float32)
    out_t, _ = tm(torch.from_numpy(x), torch.from_numpy(LENGTHS))
    assert max_err([model.predict(x, LENGTHS)], [out_t.detach().numpy()]) < 1e-5


def test_state_dict_from_another_architecture_names_keys_and_shapes():
    sd = torch.nn.LSTM(3, 8, num_layers=2).state_dict()
    with pytest.raises(KeyError) as e:
        lsio.from_torch(sd, into=LSTM(3, 8, num_layers=1))
    assert "unexpected keys: weight_ih_l1" in str(e.value)
    with pytest.raises(KeyError) as e:
        lsio.from_torch(torch.nn.LSTM(3, 8).state_dict(), into=LSTM(4, 8))
    assert "weight_ih_l0: expected (32, 4), got (32, 3)" in str(e.value)
    with pytest.raises(KeyError, match="weight_hh_l0: expected \\(24, 8\\), got \\(32, 8\\)"):
        lsio.from_torch(torch.nn.LSTM(3, 8).state_dict(), into=GRU(3, 8))


def test_unsupported_torch_inputs_say_why():
    with pytest.raises(ValueError, match="proj_size"):
        lsio.from_torch(torch.nn.LSTM(3, 8, proj_size=2))
    with pytest.raises(TypeError, match="into=model"):
        lsio.from_torch(torch.nn.Conv1d(3, 8, 2))
    with pytest.raises(ValueError, match="unexpected: \\['conv.weight'\\]"):
        lsio.from_torch({"conv.weight": np.zeros((2, 2)), "weight_hh_l0": np.zeros((8, 2))})
    with pytest.raises(TypeError, match="cannot export a Embedding"):
        lsio.to_torch(Embedding(5, 2))
