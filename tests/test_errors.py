"""Bad input gets a clear error that names the problem."""

import numpy as np
import pytest

import longshort as ls


@pytest.fixture
def lstm():
    return ls.nn.LSTM(4, 3, num_layers=2, seed=0)


def test_wrong_rank(lstm):
    with pytest.raises(ValueError, match=r"\(batch, time, features\).*shape \(5, 4\)"):
        lstm(np.zeros((5, 4)))


def test_wrong_feature_size(lstm):
    with pytest.raises(
        ValueError, match="x has 5 features but the LSTM was built with input_size=4"
    ):
        lstm(np.zeros((2, 3, 5)))


def test_empty_sequence(lstm):
    with pytest.raises(ValueError, match="length 0"):
        lstm(np.zeros((2, 0, 4)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_input(lstm, bad):
    x = np.zeros((2, 3, 4))
    x[1, 2, 0] = bad
    with pytest.raises(ValueError, match="x contains 1 NaN or inf"):
        lstm(x)


def test_non_numeric_input(lstm):
    with pytest.raises(TypeError, match="numeric"):
        lstm(np.full((2, 3, 4), "a"))


@pytest.mark.parametrize(
    "lengths,msg",
    [
        ([3, 4], r"lengths must lie in \[0, T=3\]"),
        ([-1, 2], r"lengths must lie in \[0, T=3\]"),
        ([1, 2, 3], r"lengths must have shape \(2,\)"),
        ([1.5, 2], "lengths must be integers"),
    ],
)
def test_lengths_out_of_range(lstm, lengths, msg):
    with pytest.raises((ValueError, TypeError), match=msg):
        lstm(np.zeros((2, 3, 4)), lengths=lengths)


def test_state_of_wrong_shape(lstm):
    h0 = np.zeros((1, 2, 3))  # one layer's worth, but the LSTM has two
    c0 = np.zeros((2, 2, 3))
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 2, 3\).*got \(1, 2, 3\)"):
        lstm(np.zeros((2, 3, 4)), (h0, c0))
    with pytest.raises(ValueError, match=r"tuple \(h0, c0\)"):
        lstm(np.zeros((2, 3, 4)), c0)


def test_mismatched_state_dict_lists_every_key(lstm):
    sd = lstm.state_dict()
    del sd["bias_hh_l1"]
    sd["weight_ih_l0"] = np.zeros((12, 5))
    sd["weight_ih_l2"] = np.zeros((12, 3))
    with pytest.raises(KeyError) as e:
        lstm.load_state_dict(sd)
    text = str(e.value)
    assert "missing keys: bias_hh_l1" in text
    assert "unexpected keys: weight_ih_l2" in text
    assert "weight_ih_l0: expected (12, 4), got (12, 5)" in text


def test_state_dict_with_nan_is_refused(lstm):
    sd = lstm.state_dict()
    sd["bias_ih_l0"][0] = np.nan
    with pytest.raises(ValueError, match="bias_ih_l0.*NaN"):
        lstm.load_state_dict(sd)


def test_backward_without_forward():
    with pytest.raises(RuntimeError, match="forward pass"):
        ls.nn.LSTM(2, 2).backward(np.zeros((1, 1, 2)))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        ls.nn.LSTM(2, 0)
    with pytest.raises(ValueError, match="dropout must be in"):
        ls.nn.LSTM(2, 2, dropout=1.5)
    with pytest.raises(ValueError, match="impl must be one of"):
        ls.nn.LSTM(2, 2, impl="gpu")
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        ls.nn.LSTM(2, 2, dtype=np.int32)


def test_initialisation_options():
    """Forget-gate bias, chrono and orthogonal initialisation do what they say."""
    H = 6
    fb = ls.nn.LSTM(2, H, forget_bias=1.0, seed=0, dtype=np.float64)
    np.testing.assert_array_equal(fb.bias_ih_l0.data[H : 2 * H], 1.0)
    np.testing.assert_array_equal(fb.bias_hh_l0.data[H : 2 * H], 0.0)
    ch = ls.nn.LSTM(2, H, chrono_t_max=100, seed=0, dtype=np.float64)
    bf = ch.bias_ih_l0.data[H : 2 * H]
    assert np.all((bf >= 0) & (bf <= np.log(99)))
    np.testing.assert_allclose(ch.bias_ih_l0.data[:H], -bf)
    orth = ls.nn.LSTM(2, H, init="orthogonal", seed=0, dtype=np.float64)
    for k in range(4):
        block = orth.weight_hh_l0.data[k * H : (k + 1) * H]
        np.testing.assert_allclose(block @ block.T, np.eye(H), atol=1e-12)
    default = ls.nn.LSTM(2, H, seed=0)
    assert np.abs(default.weight_hh_l0.data).max() <= 1 / np.sqrt(H)
    with pytest.raises(ValueError, match="LSTM only"):
        ls.nn.GRU(2, H, forget_bias=1.0)


def test_same_seed_same_weights():
    a, b = ls.nn.LSTM(3, 4, seed=7).state_dict(), ls.nn.LSTM(3, 4, seed=7).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_interlayer_dropout_only_in_training():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 3))
    m = ls.nn.LSTM(3, 4, num_layers=2, dropout=0.5, seed=0, dtype=np.float64)
    m.eval()
    y1, _ = m(x)
    y2, _ = m(x)
    np.testing.assert_array_equal(y1, y2)
    m.train()
    y3, _ = m(x)
    assert not np.allclose(y1, y3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, 1234, -1])
def test_nan_or_inf_found_by_the_compiled_check(dtype, bad, where):
    """The layers' fast path (an input already C-contiguous in the layer's dtype) scans x with
    the compiled all_finite (kernels/_finite.py): one bad value anywhere is found, and values
    as large as the dtype allows are not mistaken for inf."""
    from longshort._validate import all_finite

    lstm = ls.nn.LSTM(5, 3, dtype=dtype, seed=0)
    x = np.full((4, 100, 5), np.finfo(dtype).max, dtype)  # x - x = 0 even here
    x[0, 0, 0] = -np.finfo(dtype).max
    assert all_finite(x)
    lstm(x, need_cache=False)
    x.reshape(-1)[where] = bad
    assert not all_finite(x)
    assert not all_finite(x[..., ::2])  # not contiguous: NumPy's check
    with pytest.raises(ValueError, match="x contains 1 NaN or inf"):
        lstm(x)
    assert all_finite(np.zeros((0, 3), dtype))
    swapped = x.astype(x.dtype.newbyteorder())  # not native: NumPy's check
    assert not all_finite(swapped)
    ro = np.ones(5, dtype)
    ro.flags.writeable = False
    assert all_finite(ro)
    h0 = np.zeros((1, 4, 3), dtype)
    h0[0, 3, 2] = bad
    with pytest.raises(ValueError, match="h0 contains 1 NaN or inf"):
        lstm(np.zeros((4, 2, 5), dtype), (h0, np.zeros_like(h0)))


@pytest.mark.parametrize(
    "cls, kw",
    [
        ("LSTM", {"impl": "fused"}),
        ("LSTM", {"impl": "reference"}),
        ("LSTM", {"impl": "fused", "bidirectional": True, "num_layers": 2}),
        ("LSTM", {"impl": "fused", "checkpoint_every": 3}),
        ("LSTM", {"impl": "fused", "peepholes": True}),
        ("GRU", {"impl": "fused"}),
        ("GRU", {"impl": "reference", "num_layers": 2}),
        ("RNN", {"impl": "fused"}),
        ("RNN", {"impl": "reference", "bidirectional": True}),
    ],
)
def test_shared_zero_state_is_never_written(cls, kw):
    """forward() without a state reads zeros shared between calls (nn/recurrent.py _zeros):
    nothing a training step or a streaming step does may write into them."""
    from longshort.nn import recurrent

    rng = np.random.default_rng(0)
    layer = getattr(ls.nn, cls)(3, 4, seed=0, **kw)
    x = rng.standard_normal((2, 7, 3)).astype(np.float32)
    for _ in range(2):
        y, state = layer(x)
        parts = state if isinstance(state, tuple) else (state,)
        for s in parts:
            s += 1.0  # the returned state is the caller's to change
        dstate = tuple(np.ones_like(s) for s in parts)
        _, ds0 = layer.backward(np.ones_like(y), dstate if cls == "LSTM" else dstate[0])
        for d in ds0 if isinstance(ds0, tuple) else (ds0,):
            d += 1.0
    if not layer.bidirectional:
        layer.step(x[:, 0])
    for z in recurrent._ZEROS.values():
        assert not z.any()
    y2, _ = layer(x)
    np.testing.assert_array_equal(y2, y)
