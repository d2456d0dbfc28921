"""A word- or character-level LSTM language model with the AWD-LSTM regularisers.

Symbols: B batch (lanes), T steps, V vocabulary, E embedding size, H hidden size, L layers
(layer l has H_l = H units, the last has E when the embeddings are tied).

    e_t   = (W_emb * m_emb)[x_t] * m_in          m_emb (V, 1) embedding dropout (whole tokens)
    h^l_t = LSTM_l(h^{l-1}_t * m_hid^l; W_hh^l * m_w^l)    m_hid (B, 1, H_l) locked dropout,
                                                  m_w (4H_l, H_l) weight drop (DropConnect)
    d_t   = h^L_t * m_out ;  z_t = d_t W_out^T + b  (W_out = W_emb when tied)
    loss  = CE(z, y) + ar * mean(d^2) + tar * mean((h^L_t - h^L_{t-1})^2)

Locked masks are drawn once per batch and shared by all steps; every mask is inverted (scaled by
1 / (1 - p)) and drawn from the model's own seeded Generator, so training is reproducible and the
checkpoint restores it. In eval mode there are no masks and no AR/TAR: the model is the identity of
its regularisers and the loss is the plain cross entropy (nats per token).
Weight drop replaces W_hh by W_hh * m_w for the forward pass (the LSTM's cache keeps the masked
copy) and maps the gradient back: dL/dW_hh = dL/d(W_hh * m_w) * m_w.
State: a tuple over layers of (h, c), each (1, B, H_l), as the training loop carries it.
Streaming: `state = lm.init_state(B)`, then `logits_t, state = lm.step(ids_t, state)` gives the
eval-mode forward's logits[:, t] one token at a time; the state passes to and from forward().
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..nn import LSTM, Embedding, Module, ModuleList, Parameter
from ..ops.embedding import embedding_forward
from ..ops.linear import linear_backward, linear_forward
from ..ops.losses import cross_entropy_backward, cross_entropy_forward
from ..train.contract import LossOutput

DROPOUTS = ("dropout_input", "dropout_hidden", "dropout_output", "weight_drop", "embedding_dropout")


@dataclass
class LanguageModelConfig:
    """Everything that fixes a LanguageModel's shape and regularisation; round-trips via JSON."""

    level: str = "char"
    vocab_size: int = 2
    embedding_size: int = 64
    hidden_size: int = 256
    num_layers: int = 1
    tie_weights: bool = False
    dropout_input: float = 0.0
    dropout_hidden: float = 0.0
    dropout_output: float = 0.0
    weight_drop: float = 0.0
    embedding_dropout: float = 0.0
    ar: float = 0.0
    tar: float = 0.0
    forget_bias: float | None = None
    dtype: str = "float32"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.level not in ("char", "word"):
            raise ValueError(f"level must be 'char' or 'word', got {self.level!r}")
        for name in ("vocab_size", "embedding_size", "hidden_size", "num_layers"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"LanguageModel: {name} must be a positive integer, got {v!r}")
        for name in DROPOUTS:
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(
                    f"LanguageModel: {name} must be in [0, 1), got {getattr(self, name)}"
                )
        if self.ar < 0 or self.tar < 0:
            raise ValueError("LanguageModel: ar and tar must be >= 0")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> LanguageModelConfig:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"not a LanguageModel config: invalid JSON ({e})") from None
        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(d, dict):
            raise ValueError(
                f"not a LanguageModel config: a JSON {type(d).__name__}, not an object"
            )
        if set(d) - known:
            raise ValueError(f"not a LanguageModel config (unknown keys {sorted(set(d) - known)})")
        return cls(**d)


class Masks(NamedTuple):
    """One batch's dropout masks (None = not applied); see the module docstring."""

    emb: np.ndarray | None  # (V, 1)
    inp: np.ndarray | None  # (B, 1, E)
    hid: list  # L - 1 entries, (B, 1, H_l) or None
    out: np.ndarray | None  # (B, 1, H_L)
    whh: list  # L entries, (4H_l, H_l) or None


class LanguageModel(Module):
    """Embedding -> L single-layer LSTMs -> linear output (optionally tied); see module docs.

    Example:
        >>> lm = LanguageModel("char", embedding_size=16, hidden_size=32, vocab_size=60)
        >>> logits, state = lm.forward(np.zeros((4, 10), np.int64))
        >>> logits.shape, state[0][0].shape
        ((4, 10, 60), (1, 4, 32))
    """

    def __init__(self, level: str = "char", embedding_size: int = 64, hidden_size: int = 256,
                 num_layers: int = 1, vocab_size: int | None = None, *, vocab=None,
                 impl: str = "auto", **options):  # fmt: skip
        super().__init__()
        if level not in ("char", "word"):  # before the vocabulary, which depends on the level
            raise ValueError(f"LanguageModel: level must be 'char' or 'word', got {level!r}")
        if vocab_size is None:
            if vocab is None:
                raise ValueError("LanguageModel needs vocab_size or a vocab")
            vocab_size = len(vocab)
        self.config = c = LanguageModelConfig(level, int(vocab_size), embedding_size, hidden_size,
                                              num_layers, **options)  # fmt: skip
        self.vocab, self.dtype = vocab, np.dtype(c.dtype)
        rng = np.random.default_rng(c.seed)
        self.encoder = Embedding(c.vocab_size, c.embedding_size, self.dtype)
        self.encoder.weight.data[...] = rng.uniform(-0.1, 0.1, (c.vocab_size, c.embedding_size))
        self.sizes = [c.hidden_size] * c.num_layers
        if c.tie_weights:
            self.sizes[-1] = c.embedding_size
        ins = [c.embedding_size] + self.sizes[:-1]
        self.rnns = ModuleList(
            LSTM(
                i,
                h,
                dtype=self.dtype,
                forget_bias=c.forget_bias,
                impl=impl,
                seed=int(rng.integers(2**31)),
            )  # fmt: skip
            for i, h in zip(ins, self.sizes)
        )
        if not c.tie_weights:
            bound = 1.0 / np.sqrt(self.sizes[-1])
            w = rng.uniform(-bound, bound, (c.vocab_size, self.sizes[-1]))
            self.decoder_weight = Parameter(w.astype(self.dtype))
        self.decoder_bias = Parameter(np.zeros(c.vocab_size, self.dtype))
        self._rng = np.random.default_rng([c.seed, 1])  # dropout masks
        self._ctx = None

    @property
    def out_weight(self) -> Parameter:
        return self.encoder.weight if self.config.tie_weights else self.decoder_weight

    # --- masks ----------------------------------------------------------------------------------
    def _mask(self, shape, p: float):
        if p <= 0:
            return None
        return ((self._rng.random(shape) >= p) / (1.0 - p)).astype(self.dtype)

    def sample_masks(self, batch: int) -> Masks:
        """Fresh training masks for a batch of `batch` lanes (from the model's Generator)."""
        c, B = self.config, batch
        return Masks(
            self._mask((c.vocab_size, 1), c.embedding_dropout),
            self._mask((B, 1, c.embedding_size), c.dropout_input),
            [self._mask((B, 1, h), c.dropout_hidden) for h in self.sizes[:-1]],
            self._mask((B, 1, self.sizes[-1]), c.dropout_output),
            [self._mask((4 * h, h), c.weight_drop) for h in self.sizes],
        )

    # --- forward / backward ---------------------------------------------------------------------
    def forward(self, x, state=None, masks: Masks | None = None, need_cache: bool = True):
        """x (B, T) token ids -> logits (B, T, V) and the final state (see module docs).

        masks: None = fresh ones in training mode, none in eval mode; pass them to hold them fixed.
        """
        x = np.asarray(x)
        if x.ndim != 2:
            hint = "; for one sequence pass ids[None]" if x.ndim == 1 else ""
            raise ValueError(f"LanguageModel.forward: ids must be (B, T) token ids (a batch of B "
                             f"sequences of T tokens), got shape {x.shape}{hint}")  # fmt: skip
        B, T = x.shape
        if masks is None:
            masks = self.sample_masks(B) if self.training else Masks(None, None, [], None, [])
        L = len(self.rnns)
        hid = masks.hid or [None] * (L - 1)
        whh = masks.whh or [None] * L
        h = self.encoder(x)  # (B, T, E)
        if masks.emb is not None:
            h = h * masks.emb[x]  # (B, T, E): a dropped token's whole vector is zero
        if masks.inp is not None:
            h = h * masks.inp
        states, outs = [], []
        for l, rnn in enumerate(self.rnns):
            w = rnn.weight_hh_l0
            raw = w.data
            if whh[l] is not None:
                w.data = raw * whh[l]  # the LSTM's cache keeps this masked copy
            try:
                y, st = rnn.forward(h, None if state is None else state[l], need_cache=need_cache)
            finally:
                w.data = raw
            states.append(st)
            outs.append(y)  # (B, T, H_l)
            h = y * hid[l] if l < L - 1 and hid[l] is not None else y
        d = h * masks.out if masks.out is not None else h  # (B, T, H_L)
        logits, lin = linear_forward(d, self.out_weight.data, self.decoder_bias.data)  # (B, T, V)
        self._ctx = (x, masks._replace(hid=hid, whh=whh), outs[-1], d, lin) if need_cache else None
        return logits, tuple(states)

    def init_state(self, batch: int) -> tuple:
        """Zero state for `batch` lanes: a tuple over layers of (h, c), each (1, B, H_l)."""
        return tuple(rnn.init_state(batch) for rnn in self.rnns)

    def step(self, ids, state=None):
        """One streaming step in eval mode (no dropout): ids (B,) -> next-token logits (B, V) and
        the new state (zeros when state is None)."""
        ids = np.asarray(ids)
        if ids.ndim != 1:
            raise ValueError(f"LanguageModel.step: ids must be (B,) token ids, one per lane, got "
                             f"shape {ids.shape}")  # fmt: skip
        state = self.init_state(len(ids)) if state is None else state
        h, new = embedding_forward(ids, self.encoder.weight.data)[0], []  # (B, E)
        for rnn, s in zip(self.rnns, state):
            h, s = rnn.step(h, s)  # (B, H_l)
            new.append(s)
        logits, _ = linear_forward(h, self.out_weight.data, self.decoder_bias.data)  # (B, V)
        return logits, tuple(new)

    def backward(self, dlogits, dd=None, dtop=None) -> None:
        """Accumulate every parameter's gradient from dL/dlogits (B, T, V), plus optional extra
        gradients w.r.t. d (dropped last output) and the raw last output (AR / TAR terms)."""
        if self._ctx is None:
            raise RuntimeError("LanguageModel.backward() needs a forward pass with need_cache=True")
        x, m, _, _, lin = self._ctx
        dd_lin, dw, db = linear_backward(np.asarray(dlogits, self.dtype), lin)  # (B, T, H_L)
        self.out_weight.grad += dw
        self.decoder_bias.grad += db
        if dd is not None:
            dd_lin = dd_lin + dd
        dh = dd_lin * m.out if m.out is not None else dd_lin
        if dtop is not None:
            dh = dh + dtop
        for l in reversed(range(len(self.rnns))):
            if l < len(self.rnns) - 1 and m.hid[l] is not None:
                dh = dh * m.hid[l]
            w = self.rnns[l].weight_hh_l0
            before = w.grad.copy() if m.whh[l] is not None else None
            dh, _ = self.rnns[l].backward(dh)  # (B, T, H_{l-1})
            if before is not None:
                w.grad[...] = before + (w.grad - before) * m.whh[l]
        if m.inp is not None:
            dh = dh * m.inp
        if m.emb is not None:
            dh = dh * m.emb[x]
        self.encoder.backward(dh)

    def loss(self, batch: dict, state=None, masks: Masks | None = None) -> LossOutput:
        """Mean cross entropy of batch["y"] (B, T) given batch["x"] (B, T), plus AR/TAR when
        training; returns LossOutput(value, backward, final state, count=B)."""
        x, y = batch["x"], batch["y"]
        logits, new_state = self.forward(x, state, masks)
        mask = batch.get("mask")
        value, cache = cross_entropy_forward(logits, y, mask)
        self.last_cross_entropy, c = value, self.config
        extra = {}
        if self.training and (c.ar > 0 or c.tar > 0):
            _, _, top, d, _ = self._ctx
            if c.ar > 0:
                value += c.ar * float(np.mean(d.astype(np.float64) ** 2))
                extra["dd"] = (2 * c.ar / d.size) * d
            if c.tar > 0 and top.shape[1] > 1:
                diff = top[:, 1:] - top[:, :-1]  # (B, T-1, H_L)
                value += c.tar * float(np.mean(diff.astype(np.float64) ** 2))
                g = (2 * c.tar / diff.size) * diff
                dtop = np.zeros_like(top)
                dtop[:, 1:] += g
                dtop[:, :-1] -= g
                extra["dtop"] = dtop
        return LossOutput(
            value,
            lambda: self.backward(cross_entropy_backward(cache), **extra),
            state=new_state,
            count=int(np.shape(x)[0]),
        )
