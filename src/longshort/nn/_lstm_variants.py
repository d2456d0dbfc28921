"""The LSTM layer's variant options: validation, extra parameters, and the masks of one pass.

Symbols: B batch, T steps, H cell units, R = proj_size or H (width of h), k = "_l{layer}[_reverse]".

Extra parameters per layer-direction (only for the options that are on):
    weight_hr{k} (P, H)       proj_size=P; torch.nn.LSTM's name, shape and init
    weight_ph{k} (3, H)       peepholes=True; rows [p_i, p_o, p_f] (ONNX's P order)
    ln_weight_ih{k} (4H,)     layer_norm=True: gain of the normalised input part x W_ih^T
    ln_weight_hh{k} (4H,)     gain of the normalised recurrent part h W_hh^T
    ln_weight_c{k}, ln_bias_c{k} (H,)   gain and bias of the normalised cell before tanh
Layer-norm gains start at 1 and the cell bias at 0; the rest as torch (U(-1/sqrt(H), 1/sqrt(H))).

Masks (drawn from the layer's generator, fresh for every forward in training mode; none at eval,
except zoneout's expectation): zoneout (B, T, H) and (B, T, R) Bernoulli(z) keep-previous draws,
recurrent dropout (B, R) one per sequence, weight drop (4H, R) one per forward, each per
layer-direction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..ops.lstm_variants import LSTMExtOptions, LSTMExtWeights
from .module import Parameter

# LSTMExtWeights field -> parameter name prefix (the first four are Recurrent's own).
PARAM_NAMES = dict(
    zip(
        LSTMExtWeights._fields,
        ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_ph", "weight_hr")
        + ("ln_weight_ih", "ln_weight_hh", "ln_weight_c", "ln_bias_c"),
    )
)
FEATURES = ("proj", "peepholes", "layer_norm", "zoneout", "recurrent_dropout", "weight_drop",
            "cell_clip", "input_forget")  # fmt: skip


def _prob(name: str, p) -> float:
    p = float(p)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"LSTM: {name} must be in [0, 1), got {p}")
    return p


@dataclass(frozen=True)
class LSTMVariants:
    """The variant options of an LSTM layer (all off by default); see nn/lstm.py."""

    proj_size: int = 0
    peepholes: bool = False
    layer_norm: bool = False
    zoneout: tuple[float, float] = (0.0, 0.0)  # (z_c, z_h)
    recurrent_dropout: float = 0.0
    weight_drop: float = 0.0
    cell_clip: float | None = None
    input_forget: bool = False

    @classmethod
    def build(cls, hidden_size: int, proj_size=0, peepholes=False, layer_norm=False, zoneout=0.0,
              recurrent_dropout=0.0, weight_drop=0.0, cell_clip=None, input_forget=False):  # fmt: skip
        """Validated options; zoneout may be one probability for both states or (z_c, z_h)."""
        if isinstance(proj_size, bool) or not isinstance(proj_size, int | np.integer):
            raise ValueError(f"LSTM: proj_size must be an integer, got {proj_size!r}")
        if proj_size < 0 or (proj_size and proj_size >= hidden_size):
            raise ValueError(
                f"LSTM: proj_size must be in [0, hidden_size={hidden_size}), got {proj_size} "
                "(as torch.nn.LSTM; 0 means no projection)"
            )
        z = (zoneout, zoneout) if np.ndim(zoneout) == 0 else tuple(zoneout)
        if len(z) != 2:
            raise ValueError(f"LSTM: zoneout must be a probability or (z_c, z_h), got {zoneout!r}")
        if cell_clip is not None and not float(cell_clip) > 0:
            raise ValueError(f"LSTM: cell_clip must be positive or None, got {cell_clip!r}")
        return cls(
            int(proj_size), bool(peepholes), bool(layer_norm),
            (_prob("zoneout", z[0]), _prob("zoneout", z[1])),
            _prob("recurrent_dropout", recurrent_dropout), _prob("weight_drop", weight_drop),
            None if cell_clip is None else float(cell_clip), bool(input_forget),
        )  # fmt: skip

    @property
    def features(self) -> frozenset[str]:
        """Names (from FEATURES) of the options that are on; empty for a plain LSTM."""
        on = (self.proj_size > 0, self.peepholes, self.layer_norm, any(self.zoneout),
              self.recurrent_dropout > 0, self.weight_drop > 0, self.cell_clip is not None,
              self.input_forget)  # fmt: skip
        return frozenset(f for f, o in zip(FEATURES, on) if o)


def add_params(layer, sfx: str, v: LSTMVariants) -> None:
    """Register one layer-direction's extra parameters (zeros; filled by init_params)."""
    H, dt = layer.hidden_size, layer.dtype
    if v.proj_size:
        setattr(layer, "weight_hr" + sfx, Parameter(np.zeros((v.proj_size, H), dt)))
    if v.peepholes:
        setattr(layer, "weight_ph" + sfx, Parameter(np.zeros((3, H), dt)))
    if v.layer_norm:
        for name, n in (("ln_weight_ih", 4 * H), ("ln_weight_hh", 4 * H), ("ln_weight_c", H)):
            setattr(layer, name + sfx, Parameter(np.ones(n, dt)))
        setattr(layer, "ln_bias_c" + sfx, Parameter(np.zeros(H, dt)))


def reset_layer_norm(layer) -> None:
    """Layer-norm gains 1 and cell bias 0 (init_recurrent drew them uniform like the rest)."""
    for name, p in layer.named_parameters():
        if name.startswith("ln_weight"):
            p.data[...] = 1.0
        elif name.startswith("ln_bias"):
            p.data[...] = 0.0


def ext_weights(layer, sfx: str) -> LSTMExtWeights:
    """One layer-direction's parameters as LSTMExtWeights (None for the variants that are off)."""
    return LSTMExtWeights(
        *(getattr(layer, n + sfx).data if hasattr(layer, n + sfx) else None
          for n in PARAM_NAMES.values())
    )  # fmt: skip


def accumulate(layer, sfx: str, grads: LSTMExtWeights) -> None:
    for field, g in zip(LSTMExtWeights._fields, grads):
        if g is not None:
            getattr(layer, PARAM_NAMES[field] + sfx).grad += g


def options(v: LSTMVariants, rng, training: bool, B: int, T: int, H: int, R: int, dtype):
    """LSTMExtOptions for one layer-direction of one forward pass, masks drawn from `rng`."""

    def keep(p, shape):  # scaled Bernoulli(1 - p) keep-mask, or None
        if not training or p == 0.0:
            return None
        return (rng.random(shape) < 1.0 - p).astype(dtype) / dtype.type(1.0 - p)

    def zone(z, n):  # 0/1 keep-previous draws in training, the expectation z at evaluation
        if z == 0.0:
            return None
        if not training:
            return np.full((1, 1, 1), z, dtype)
        return (rng.random((B, T, n)) < z).astype(dtype)

    return LSTMExtOptions(
        input_forget=v.input_forget,
        cell_clip=v.cell_clip,
        zoneout_c=zone(v.zoneout[0], H),
        zoneout_h=zone(v.zoneout[1], R),
        recurrent_mask=keep(v.recurrent_dropout, (B, R)),
        weight_mask=keep(v.weight_drop, (4 * H, R)),
    )


class ExtArgs(NamedTuple):
    """What the layer passes the variant op as its `weights` (checkpointing passes it on as is)."""

    weights: LSTMExtWeights
    opts: LSTMExtOptions
