"""Streaming inference: `state = m.init_state(B)`, then `y_t, state = m.step(x_t, state)`.

Stepping through a sequence must give the whole-sequence forward's outputs and final state, from
zero or given initial states, and continue exactly where a forward pass over a prefix stopped.
"""

import numpy as np
import pytest

from longshort.models.stack import RecurrentStack
from longshort.nn import GRU, LSTM, RNN, Linear

CELLS = [(LSTM, {}), (GRU, {}), (RNN, {}), (RNN, {"nonlinearity": "relu"})]
IDS = ["lstm", "gru", "rnn", "rnn_relu"]


def flat(s):
    return s if isinstance(s, tuple) else (s,)


def err(a, b) -> float:
    return max(float(np.abs(u - v).max()) for u, v in zip(flat(a), flat(b)))


@pytest.mark.parametrize("cls,kw", CELLS, ids=IDS)
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-6), (np.float64, 1e-13)])
def test_layer_steps_equal_whole_sequence(cls, kw, dtype, tol):
    layer = cls(3, 6, num_layers=3, dtype=dtype, seed=0, **kw)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 9, 3)).astype(dtype)
    state = layer.init_state(2)
    assert all(s.shape == (3, 2, 6) and s.dtype == dtype and not s.any() for s in flat(state))
    assert isinstance(state, tuple) == (cls is LSTM)
    state = tuple(rng.standard_normal(s.shape).astype(dtype) for s in flat(state))
    state = state if cls is LSTM else state[0]
    y, s_n = layer(x, state)
    s = state
    for t in range(x.shape[1]):
        y_t, s = layer.step(x[:, t], s)
        assert err(y_t, y[:, t]) < tol
    assert err(s, s_n) < tol


@pytest.mark.parametrize("cls,kw", CELLS, ids=IDS)
def test_stack_continues_after_a_prefix(cls, kw):
    """forward() on the first steps, then step() on the rest: no recomputation of the past."""
    stack = RecurrentStack([cls(2, 5, 2, seed=2, **kw), LSTM(5, 4, seed=3)], Linear(4, 3, seed=4))
    x = np.random.default_rng(5).standard_normal((3, 10, 2)).astype(np.float32)
    full, full_states = stack(x)
    out, state = stack(x[:, :4])
    assert err(out, full[:, :4]) < 1e-6
    for t in range(4, 10):
        y_t, state = stack.step(x[:, t], state)
        assert y_t.shape == (3, 3) and err(y_t, full[:, t]) < 1e-6
    for a, b in zip(state, full_states):
        assert err(a, b) < 1e-6
    zero = stack.init_state(3)
    y0, _ = stack.step(x[:, 0])  # no state: zeros
    assert err(y0, stack.step(x[:, 0], zero)[0]) == 0


def test_streaming_generation_feeds_outputs_back():
    """Closed-loop generation: each prediction is the next input (online forecasting)."""
    stack = RecurrentStack([LSTM(1, 8, seed=6)], Linear(8, 1, seed=7), readout="all")
    seq = [np.array([[0.5]], np.float32)]
    state = stack.init_state(1)
    for _ in range(5):
        y, state = stack.step(seq[-1], state)
        seq.append(y)
    x = np.concatenate(seq[:-1], axis=0)[None]  # (1, 5, 1)
    out, _ = stack(x)
    assert err(out[0], np.concatenate(seq[1:], axis=0)) < 1e-6


def test_bidirectional_layers_cannot_stream():
    with pytest.raises(ValueError, match="unidirectional"):
        LSTM(2, 3, bidirectional=True).step(np.zeros((1, 2), np.float32))
    with pytest.raises(ValueError, match="unidirectional"):
        RecurrentStack([GRU(2, 3, bidirectional=True)]).step(np.zeros((1, 2), np.float32))


def test_one_layer_fast_step_follows_weight_changes():
    """A one-layer LSTM's step() and T = 1 forward go straight to the compiled step with weights
    memoised by identity: the results must still follow every way the weights can change, and
    weights the kernel cannot take as they are must go the general way."""
    pytest.importorskip("numba")
    layer = LSTM(5, 7, seed=0)
    ref = LSTM(5, 7, seed=0, impl="reference")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5)).astype(np.float32)
    state = tuple(rng.standard_normal((1, 3, 7)).astype(np.float32) for _ in range(2))

    def agree(fast: bool):
        for name, p in layer.named_parameters():
            getattr(ref, name).data = np.asarray(p.data, np.float32).copy()
        y, s = layer.step(x, state)
        y_r, s_r = ref.step(x, state)
        assert err(y, y_r) < 1e-6 and err(s, s_r) < 1e-6
        f, fs = layer.forward(x[:, None], need_cache=False)
        f_r, fs_r = ref.forward(x[:, None], need_cache=False)
        assert err(f, f_r) < 1e-6 and err(fs, fs_r) < 1e-6
        assert not np.shares_memory(f, fs[0])  # y must not alias h_n
        assert (layer._compiled_step(0) is not None) == fast  # the path that was taken

    agree(fast=True)
    layer.weight_hh_l0.data *= 0.5  # in place: the memoised array is the same object
    agree(fast=True)
    layer.weight_ih_l0.data = rng.standard_normal((28, 5)).astype(np.float32)  # replaced
    agree(fast=True)
    layer.weight_hh_l0.data = np.asfortranarray(layer.weight_hh_l0.data)  # not C-contiguous
    agree(fast=False)
    layer.weight_hh_l0.data = np.ascontiguousarray(layer.weight_hh_l0.data)
    agree(fast=True)
    layer.bias_ih_l0.data = rng.standard_normal(28)  # float64
    agree(fast=False)
    layer.bias_ih_l0.data = layer.bias_ih_l0.data.astype(np.float32)
    agree(fast=True)
    layer.impl = "reference"  # reassigned: the memo is dropped, and the reference has no raw step
    agree(fast=False)
    h_t = np.asfortranarray(state[0][0])[None]  # a non-contiguous state takes the general path
    y, _ = layer.step(x, (h_t, state[1]))
    assert err(y, ref.step(x, state)[0]) < 1e-6


def test_fast_step_respects_an_overridden_weights_method():
    """A subclass that changes what weights() returns gets it on every path."""
    from longshort.ops.lstm import LSTMWeights

    class Halved(LSTM):
        def weights(self, layer=0, direction=0):
            return LSTMWeights(*(a * 0.5 for a in super().weights(layer, direction)))

    m = Halved(4, 6, seed=0)
    x = np.random.default_rng(2).standard_normal((2, 1, 4)).astype(np.float32)
    y, _ = m.forward(x)  # the general path, with a cache
    assert err(m.forward(x, need_cache=False)[0], y) < 1e-6
    assert err(m.step(x[:, 0])[0], y[:, 0]) < 1e-6


def test_copies_and_pickles_leave_the_step_memo_behind():
    import copy
    import pickle

    layer = LSTM(3, 4, seed=0)
    x = np.ones((2, 3), np.float32)
    y, _ = layer.step(x)
    assert "_step_memo" in layer.__dict__ or layer._compiled_step(0) is None
    for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert "_step_memo" not in clone.__dict__
        clone.weight_ih_l0.data[...] = 0.0  # its own arrays: the original must not change
        assert err(clone.step(x)[0], y) > 0 and err(layer.step(x)[0], y) == 0
