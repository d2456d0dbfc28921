"""LSTM variants: finite differences, torch.nn.LSTM(proj_size=P), ONNX Runtime, dropout-like masks."""

import functools
import logging

import numpy as np
import onnxruntime as ort
import pytest
import torch

import longshort as ls
import longshort.io as lsio
from longshort.nn import _lstm_variants as NV
from longshort.ops.lstm_variants import (
    LSTMExtOptions,
    LSTMExtWeights,
    lstm_ext_backward,
    lstm_ext_forward,
)
from reference.fd import numerical_grad, rel_error
from reference.torch_ref import compare_with_torch

ALL = dict(peepholes=True, proj=2, layer_norm=True, zoneout=True, rd=True, wd=True, clip=0.9,
           input_forget=True)  # fmt: skip
OP_CASES = {
    "peepholes": dict(peepholes=True),
    "proj": dict(proj=2),
    "layer_norm": dict(layer_norm=True),
    "zoneout": dict(zoneout=True),
    "zoneout_eval": dict(zoneout="eval"),
    "recurrent_dropout": dict(rd=True),
    "weight_drop": dict(wd=True),
    "cell_clip": dict(clip=0.8),
    "input_forget": dict(input_forget=True),
    "peep+proj+ln": dict(peepholes=True, proj=2, layer_norm=True),
    "peep+clip+input_forget": dict(peepholes=True, clip=0.8, input_forget=True),
    "all": ALL,
}


def _op_case(rng, B, I, H, T, peepholes=False, proj=0, layer_norm=False, zoneout=False, rd=False,
             wd=False, clip=None, input_forget=False):  # fmt: skip
    R = proj or H

    def u(*s):
        return rng.uniform(-0.5, 0.5, s)

    ln = (1 + u(4 * H), 1 + u(4 * H), 1 + u(H), u(H)) if layer_norm else (None,) * 4
    w = LSTMExtWeights(u(4 * H, I), u(4 * H, R), u(4 * H), u(4 * H),
                       u(3, H) if peepholes else None, u(R, H) if proj else None, *ln)  # fmt: skip
    if zoneout == "eval":
        zc, zh = np.full((1, 1, 1), 0.3), np.full((1, 1, 1), 0.2)
    elif zoneout:
        zc, zh = (rng.random((B, T, H)) < 0.3) * 1.0, (rng.random((B, T, R)) < 0.3) * 1.0
    else:
        zc = zh = None
    rm = (rng.random((B, R)) < 0.7) / 0.7 if rd else None
    wm = (rng.random((4 * H, R)) < 0.7) / 0.7 if wd else None
    return w, LSTMExtOptions(input_forget, clip, 1e-5, zc, zh, rm, wm), R


@pytest.mark.parametrize("lengths", [None, [4, 0, 2]], ids=["full", "lengths"])
@pytest.mark.parametrize("case", list(OP_CASES))
def test_op_finite_differences(case, lengths):
    """Every parameter, x, h0 and c0 of the variant op, masks fixed: rel err < 1e-6 (float64)."""
    rng = np.random.default_rng(0)
    B, T, I, H = 3, 4, 3, 3
    w, opts, R = _op_case(rng, B, I, H, T, **OP_CASES[case])
    x = rng.standard_normal((B, T, I))
    h0, c0 = rng.standard_normal((B, R)), rng.standard_normal((B, H))
    lg = None if lengths is None else np.array(lengths)
    Py, Ph, Pc = (rng.standard_normal(s) for s in ((B, T, R), (B, R), (B, H)))

    def loss():
        y, (h, c), _ = lstm_ext_forward(x, (h0, c0), w, opts, lg, need_cache=False)
        return np.sum(y * Py) + np.sum(h * Ph) + np.sum(c * Pc)

    _, _, cache = lstm_ext_forward(x, (h0, c0), w, opts, lg)
    dx, (dh0, dc0), g = lstm_ext_backward(Py, (Ph, Pc), cache)
    pairs = [("x", x, dx), ("h0", h0, dh0), ("c0", c0, dc0)]
    pairs += [(n, a, d) for n, a, d in zip(w._fields, w, g) if a is not None]
    errs = {n: rel_error(d, numerical_grad(loss, a)) for n, a, d in pairs}
    assert max(errs.values()) < 1e-6, errs


def _layer(**kw):
    return ls.nn.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, seed=2, **kw)


@pytest.mark.parametrize(
    "kw",
    [dict(peepholes=True, proj_size=2, layer_norm=True), ALL and dict(
        peepholes=True, proj_size=3, layer_norm=True, zoneout=(0.3, 0.2), recurrent_dropout=0.3,
        weight_drop=0.3, cell_clip=1.0, input_forget=True)],
    ids=["peep+proj+ln", "all"],
)  # fmt: skip
def test_layer_finite_differences_stacked_bidirectional_lengths(kw):
    """Through the layer (stacked, bidirectional, lengths), training masks replayed by seed."""
    rng = np.random.default_rng(3)
    layer = _layer(**kw)
    x = rng.standard_normal((3, 4, 3))
    lengths = np.array([4, 1, 3])
    y, (h, c) = layer(x, lengths=lengths)
    Py, Ph, Pc = (rng.standard_normal(a.shape) for a in (y, h, c))

    def loss():
        layer._rng = np.random.default_rng(9)  # the same masks every pass
        y, (h, c) = layer(x, lengths=lengths, need_cache=False)
        return np.sum(y * Py) + np.sum(h * Ph) + np.sum(c * Pc)

    loss()
    layer._rng = np.random.default_rng(9)
    layer(x, lengths=lengths)
    layer.zero_grad()
    dx, _ = layer.backward(Py, (Ph, Pc))
    assert rel_error(dx, numerical_grad(loss, x)) < 1e-6
    for name, p in layer.named_parameters():
        if name.endswith("_l1_reverse") or name.startswith(("weight_ph", "ln_", "weight_hr")):
            assert rel_error(p.grad, numerical_grad(loss, p.data)) < 1e-6, name


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
@pytest.mark.parametrize("cfg", [(1, False), (2, True), (3, False)], ids=["1", "2bi", "3"])
@pytest.mark.parametrize("with_state", [False, True], ids=["nostate", "state"])
def test_projection_against_torch(dtype, tol, cfg, with_state):
    """proj_size against torch.nn.LSTM(proj_size=P): outputs and every gradient, with lengths."""
    rng = np.random.default_rng(1)
    B, T, I, H, P = 4, 6, 5, 6, 3
    L, bi = cfg
    layer = ls.nn.LSTM(I, H, L, bi, dtype=dtype, seed=3, proj_size=P)
    x = rng.standard_normal((B, T, I)).astype(dtype)
    state = None
    if with_state:
        LD = L * (2 if bi else 1)
        state = (rng.standard_normal((LD, B, P)).astype(dtype),
                 rng.standard_normal((LD, B, H)).astype(dtype))  # fmt: skip
    torch_cls = functools.partial(torch.nn.LSTM, proj_size=P)
    errs = compare_with_torch(layer, torch_cls, x, np.array([6, 1, 4, 6]), state)
    assert {"dweight_hr_l0", "dweight_hh_l0"} <= set(errs)
    worst = max(errs, key=errs.get)
    assert errs[worst] < tol, (worst, errs[worst])


def test_projection_state_dict_matches_torch():
    layer = ls.nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    tl = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    ours = {k: v.shape for k, v in layer.state_dict().items()}
    assert list(ours.items()) == [(k, tuple(v.shape)) for k, v in tl.state_dict().items()]


ONNX_CASES = {
    "peepholes": dict(peepholes=True),
    "cell_clip": dict(cell_clip=0.5),
    "input_forget": dict(input_forget=True),
    "all_three": dict(peepholes=True, cell_clip=0.7, input_forget=True),
    "dropouts_at_eval": dict(peepholes=True, recurrent_dropout=0.5, weight_drop=0.5),
}


@pytest.mark.parametrize("case", list(ONNX_CASES))
def test_onnx_runtime_forward(case):
    """Export peepholes / clip / coupled gates as ONNX LSTM attributes; ONNX Runtime agrees."""
    rng = np.random.default_rng(4)
    layer = ls.nn.LSTM(3, 5, num_layers=2, bidirectional=True, seed=1, **ONNX_CASES[case])
    for _, p in layer.named_parameters():  # larger weights so that clipping bites
        p.data *= 3.0
    layer.eval()
    x = rng.standard_normal((4, 7, 3)).astype(np.float32)
    lengths = np.array([7, 2, 5, 7], np.int32)
    s0 = tuple(rng.standard_normal((4, 4, 5)).astype(np.float32) for _ in range(2))
    y, (h, c) = layer(x, s0, lengths=lengths)
    sess = ort.InferenceSession(lsio.to_onnx(layer).SerializeToString(),
                                providers=["CPUExecutionProvider"])  # fmt: skip
    got = sess.run(None, {"x": x, "lengths": lengths, "h0": s0[0], "c0": s0[1]})
    assert max(np.abs(a - b).max() for a, b in zip(got, (y, h, c))) < 1e-5


@pytest.mark.parametrize("kw", [dict(proj_size=2), dict(layer_norm=True), dict(zoneout=0.1)])
def test_onnx_export_refuses_what_onnx_cannot_express(kw):
    with pytest.raises(TypeError, match="cannot export an LSTM with"):
        lsio.to_onnx(ls.nn.LSTM(3, 4, **kw))


DROPS = [dict(zoneout=(0.3, 0.2)), dict(recurrent_dropout=0.4), dict(weight_drop=0.4)]


@pytest.mark.parametrize("kw", DROPS, ids=["zoneout", "recurrent_dropout", "weight_drop"])
def test_dropout_like_seeded_and_eval(kw):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 6, 3))
    a, b = _layer(**kw), _layer(**kw)
    ya, yb = a(x)[0], b(x)[0]
    np.testing.assert_array_equal(ya, yb)  # same seed, same masks
    assert not np.array_equal(ya, a(x)[0])  # fresh masks every training pass
    a.eval()
    plain = _layer()
    plain.load_state_dict(a.state_dict())
    if "zoneout" in kw:  # evaluation uses the expectation: deterministic, not the plain LSTM
        np.testing.assert_array_equal(a(x)[0], a(x)[0])
        assert not np.allclose(a(x)[0], plain(x)[0])
    else:  # identity at evaluation
        np.testing.assert_allclose(a(x)[0], plain(x)[0], rtol=0, atol=1e-12)


def test_masks_shared_over_time_where_the_method_says_so():
    """Recurrent dropout: one mask per sequence; weight drop: one per forward; zoneout: per step."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 8, 3))
    layer = ls.nn.LSTM(3, 8, dtype=np.float64, seed=5, recurrent_dropout=0.5)
    y, _ = layer(x)
    layer.backward(np.ones_like(y))
    cols = np.all(layer.weight_hh_l0.grad == 0, axis=0)  # a dropped unit never feeds back
    assert 0 < cols.sum() < 8
    layer = ls.nn.LSTM(3, 8, dtype=np.float64, seed=5, weight_drop=0.5)
    x = rng.standard_normal((4, 8, 3))
    y, _ = layer(x)
    layer.backward(np.ones_like(y))
    zero = layer.weight_hh_l0.grad == 0  # dropped weights, the same for every row and step
    assert 0.35 < zero.mean() < 0.65
    opts = NV.options(NV.LSTMVariants.build(8, zoneout=0.5), np.random.default_rng(0), True,
                      2, 50, 8, 8, np.dtype(np.float64))  # fmt: skip
    assert opts.zoneout_c.shape == (2, 50, 8) and 0.4 < opts.zoneout_c.mean() < 0.6
    assert not np.all(opts.zoneout_c == opts.zoneout_c[:, :1])  # a fresh draw every step


def test_checkpointing_and_streaming_agree():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 3))
    kw = dict(peepholes=True, proj_size=2, layer_norm=True, recurrent_dropout=0.3, cell_clip=1.0)
    a, b = _layer(**kw), _layer(checkpoint_every=3, **kw)
    ya, yb = a(x)[0], b(x)[0]
    np.testing.assert_allclose(ya, yb, atol=1e-12)
    a.backward(np.ones_like(ya))
    b.backward(np.ones_like(yb))
    for (n, p), q in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_allclose(p.grad, q.grad, atol=1e-10, err_msg=n)
    with pytest.raises(ValueError, match="zoneout"):
        _layer(zoneout=0.1, checkpoint_every=3)(x)
    uni = ls.nn.LSTM(3, 4, num_layers=2, dtype=np.float64, seed=1, zoneout=0.2, **kw).eval()
    y, _ = uni(x)
    state, steps = None, []
    for t in range(x.shape[1]):
        out, state = uni.step(x[:, t], state)
        steps.append(out)
    np.testing.assert_allclose(np.stack(steps, 1), y, atol=1e-12)


def test_fused_request_and_auto(caplog):
    ls.nn.LSTM(3, 4, layer_norm=True, peepholes=True, proj_size=2, impl="fused")  # all fused
    ls.nn.LSTM(3, 4, peepholes=True, cell_clip=2.0, zoneout=0.1, impl="fused")
    with caplog.at_level(logging.INFO, logger="longshort.kernels"):
        y, _ = ls.nn.LSTM(3, 4, layer_norm=True, impl="auto")(np.zeros((1, 2, 3), np.float32))
    assert y.shape == (1, 2, 4)
    assert "reference" not in caplog.text
    plain = ls.nn.LSTM(3, 4)
    assert type(plain.weights()).__name__ == "RecurrentWeights"  # the plain path is untouched
    with pytest.raises(ValueError, match="proj_size"):
        ls.nn.LSTM(3, 4, proj_size=4)


FUSED_CASES = ["peepholes", "zoneout", "zoneout_eval", "recurrent_dropout", "weight_drop",
               "cell_clip", "input_forget", "peep+clip+input_forget"]  # fmt: skip


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("case", FUSED_CASES)
def test_fused_kernels_match_reference(case, dtype, tol):
    """kernels/lstm_variants.py against the reference op: H = 5, lengths 0 and T, B = 1 too."""
    from longshort.kernels import lstm_variants as F

    for B, lengths in ((3, [4, 0, 2]), (1, None)):
        rng = np.random.default_rng(0)
        T, I, H = 4, 3, 5
        w, o, _ = _op_case(rng, B, I, H, T, **OP_CASES[case])
        w = LSTMExtWeights(*(None if a is None else a.astype(dtype) for a in w))
        o = o._replace(**{f: getattr(o, f).astype(dtype) for f in o._fields[3:]
                          if getattr(o, f) is not None})  # fmt: skip
        x = rng.standard_normal((B, T, I)).astype(dtype)
        s0 = tuple(rng.standard_normal((B, H)).astype(dtype) for _ in range(2))
        lg = None if lengths is None else np.array(lengths)
        y1, st1, c1 = lstm_ext_forward(x, s0, w, o, lg)
        y2, st2, c2 = F.forward(x, s0, w, o, lg)
        dy = rng.standard_normal(y1.shape).astype(dtype)
        ds = (rng.standard_normal((B, H)).astype(dtype), None)
        (dx1, d01, g1), (dx2, d02, g2) = lstm_ext_backward(dy, ds, c1), F.backward(dy, ds, c2)
        pairs = [(y1, y2), *zip(st1, st2), (dx1, dx2), *zip(d01, d02)]
        pairs += [(a, b) for a, b in zip(g1, g2) if a is not None]
        assert max(np.abs(a - b).max() for a, b in pairs) < tol
