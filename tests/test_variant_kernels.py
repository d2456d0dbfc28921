"""The fused variant kernels against the reference op: kernels/lstm_variants_full.py (projection,
layer norm and every other option) and kernels/lstm_variants.py (the lighter options) on awkward
shapes, both batch paths (one thread, two), and the dispatch between them."""

import numpy as np
import pytest

import longshort as ls
from longshort.kernels import get_lstm_variant_ops
from longshort.kernels import lstm_variants as LIGHT
from longshort.kernels import lstm_variants_full as FULL
from longshort.ops import lstm_variants as REF
from longshort.ops.lstm_variants import LSTMExtWeights
from test_lstm_variants import OP_CASES, _op_case

# (B, T, I, H, proj, lengths): B = 1, T = 1, H = 5 / 7, P = 3, lengths 0, 1 and T; the last has
# B * H large enough for the batch to be split over two threads.
SHAPES = [
    (3, 4, 3, 5, 3, [4, 0, 1]),
    (1, 1, 2, 7, 3, None),
    (2, 5, 1, 7, 1, [5, 1]),
    (67, 3, 3, 33, 5, [3] * 30 + [0, 1] + [2] * 35),
]


def _cast(w, o, dtype):
    w = LSTMExtWeights(*(None if a is None else a.astype(dtype) for a in w))
    masks = {f: getattr(o, f).astype(dtype) for f in o._fields[3:] if getattr(o, f) is not None}
    return w, o._replace(**masks)


def _rel(a, b):
    return np.abs(a - b).max() / max(np.abs(a).max(), 1.0)


KERNEL_CASES = [("full", c) for c in OP_CASES] + [
    ("light", c) for c, kw in OP_CASES.items() if not (kw.get("proj") or kw.get("layer_norm"))
]


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("kernel,case", KERNEL_CASES)
def test_kernels_match_reference(kernel, case, dtype, tol):
    """Outputs, final state and every gradient (x, h0, c0, each parameter), caches swapped."""
    mod = FULL if kernel == "full" else LIGHT
    for B, T, I, H, P, lengths in SHAPES:
        rng = np.random.default_rng(1)
        kw = dict(OP_CASES[case])
        if kw.get("proj"):
            kw["proj"] = P
        w, o, R = _op_case(rng, B, I, H, T, **kw)
        w, o = _cast(w, o, dtype)
        x = rng.standard_normal((B, T, I)).astype(dtype)
        s0 = (rng.standard_normal((B, R)).astype(dtype), rng.standard_normal((B, H)).astype(dtype))
        lg = None if lengths is None else np.array(lengths)
        y1, st1, c1 = REF.lstm_ext_forward(x, s0, w, o, lg)
        y2, st2, c2 = mod.forward(x, s0, w, o, lg)
        dy = rng.standard_normal(y1.shape).astype(dtype)
        ds = (rng.standard_normal((B, R)).astype(dtype), rng.standard_normal((B, H)).astype(dtype))
        ref = REF.lstm_ext_backward(dy, ds, c1)
        backs = (
            mod.backward(dy, ds, c2),
            mod.backward(dy, ds, c1),
            REF.lstm_ext_backward(dy, ds, c2),
        )
        for back in backs:
            pairs = [(y1, y2), *zip(st1, st2), (ref[0], back[0]), *zip(ref[1], back[1])]
            for name, a, b in zip(LSTMExtWeights._fields, ref[2], back[2]):
                assert (a is None) == (b is None), name
                if a is not None:
                    pairs.append((a, b))
            err = max(_rel(a, b) for a, b in pairs)
            assert err < tol, (case, B, T, H, err)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-4)])
@pytest.mark.parametrize(
    "kw",
    [dict(proj_size=3), dict(layer_norm=True), dict(layer_norm=True, proj_size=2, peepholes=True,
     zoneout=(0.2, 0.1), recurrent_dropout=0.2, weight_drop=0.2, cell_clip=1.5)],
    ids=["proj", "layer_norm", "all"],
)  # fmt: skip
def test_fused_layer_stacked_bidirectional_matches_reference(kw, dtype, tol):
    """impl="fused" against impl="reference" through a stacked bidirectional layer with lengths:
    outputs, dx, the state gradients and every parameter gradient (same training masks)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 5, 4)).astype(dtype)
    lengths = np.array([5, 0, 2])
    out = []
    for impl in ("reference", "fused"):
        layer = ls.nn.LSTM(4, 7, num_layers=2, bidirectional=True, dtype=dtype, seed=3, impl=impl,
                           **kw)  # fmt: skip
        layer._rng = np.random.default_rng(9)
        y, (h, c) = layer(x, lengths=lengths)
        layer.zero_grad()
        g = np.random.default_rng(5)
        dx, (dh0, dc0) = layer.backward(*(g.standard_normal(y.shape).astype(dtype),),
                                        (g.standard_normal(h.shape).astype(dtype), None))  # fmt: skip
        out.append([y, h, c, dx, dh0, dc0] + [p.grad.copy() for _, p in layer.named_parameters()])
    assert max(_rel(a, b) for a, b in zip(*out)) < tol


def test_dispatch_picks_the_lightest_kernel():
    light = frozenset({"peepholes", "zoneout", "cell_clip"})
    assert get_lstm_variant_ops(light, "fused")[0] is LIGHT.forward
    for feats in ({"proj"}, {"layer_norm"}, {"proj", "layer_norm", "peepholes", "zoneout"}):
        assert get_lstm_variant_ops(frozenset(feats), "fused")[0] is FULL.forward
        assert get_lstm_variant_ops(frozenset(feats), "auto")[0] is FULL.forward
        assert get_lstm_variant_ops(frozenset(feats), "reference")[0] is REF.lstm_ext_forward
