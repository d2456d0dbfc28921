"""Stacked, optionally bidirectional recurrent layers: the part LSTM, GRU and RNN share.

Symbols: B batch, T steps, I input features, H hidden units, L layers, D directions (1 or 2),
G gates per unit (LSTM 4, GRU 3, RNN 1).

Shapes (batch first, as PyTorch with batch_first=True):
    x (B, T, I) -> y (B, T, D*H); states (L*D, B, H), row l*D + d for layer l, direction d.

Parameters use torch.nn.LSTM's names and shapes: weight_ih_l{k} (G*H, I or D*H), weight_hh_l{k}
(G*H, H), bias_ih_l{k} and bias_hh_l{k} (G*H,), with the suffix `_reverse` for direction 1, so a
PyTorch state_dict loads by name.

Between layers (not after the last), dropout with probability `dropout` is applied in training
mode, as in PyTorch. The backward direction of a bidirectional layer reads each sequence reversed
within its own length.

Speed and memory options:
    impl: "auto" (fused compiled kernels when available, else the NumPy reference), "reference",
        or "fused" (an error if unavailable); see longshort.kernels.
    checkpoint_every: None keeps every step for the backward pass; K (int) or "sqrt" keeps only
        the state every K steps and recomputes each segment in backward(): the same gradients for
        one extra forward pass, in memory that grows with T / K + K instead of T
        (see longshort.kernels.checkpoint). gate_trace() needs checkpoint_every=None.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from ..kernels import get_ops
from ..kernels.checkpoint import (
    CheckpointCache,
    checkpointed_backward,
    checkpointed_forward,
    segment_length,
)
from ..ops.sequence import RecurrentWeights, reverse_padded
from .init import init_recurrent
from .module import Module, Parameter

IMPLS = ("auto", "reference", "fused")

_ZEROS: dict = {}  # (shape, dtype) -> zeros, for the initial states forward() only reads
_ZEROS_MAX = 16


def _zeros(shape: tuple, dtype) -> np.ndarray:
    """A zero array of `shape` that is shared between calls and must never be written (the
    ops read their initial state and copy it into their own buffers): a new one per forward
    cost 10 us of a (32, 100, 32, 128) training step's Python after the kernels had swept the
    caches. Not read-only-flagged: Numba would compile every kernel again for that type."""
    key = (shape, dtype)
    z = _ZEROS.get(key)
    if z is None:
        if len(_ZEROS) >= _ZEROS_MAX:
            _ZEROS.clear()
        z = _ZEROS[key] = np.zeros(shape, dtype)
    return z


def _own(a, dtype) -> np.ndarray:
    """a itself when it is a fresh array of `dtype` (no view into an op's cache), else a copy."""
    if type(a) is np.ndarray and a.base is None and a.dtype == dtype:
        return a
    return np.array(a, dtype=dtype)


class Recurrent(Module):
    """Base class; subclasses set GATES, STATES (1 for h, 2 for (h, c)) and the two ops."""

    GATES = 1
    STATES = 1
    KIND = "rnn"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        dtype=np.float32,
        *,
        init: str = "uniform",
        forget_bias: float | None = None,
        chrono_t_max: float | None = None,
        impl: str = "auto",
        checkpoint_every: int | str | None = None,
        seed: int | None = None,
    ):
        super().__init__()
        name = type(self).__name__
        for arg, val in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(val, int | np.integer) or val < 1:
                raise ValueError(f"{name}: {arg} must be a positive integer, got {val!r}")
        if not isinstance(num_layers, int | np.integer) or num_layers < 1:
            raise ValueError(f"{name}: num_layers must be a positive integer, got {num_layers!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout}")
        if impl not in IMPLS:
            raise ValueError(f"{name}: impl must be one of {IMPLS}, got {impl!r}")
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.num_layers, self.bidirectional = int(num_layers), bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1
        self.dropout, self.dtype, self.impl = float(dropout), np.dtype(dtype), impl
        if checkpoint_every is not None:
            segment_length(checkpoint_every, 1)  # validates: a positive int or "sqrt"
        self.checkpoint_every = checkpoint_every
        if impl == "fused":
            get_ops(self.KIND, "fused")  # fail now, with the reason, not at the first forward
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"{name}: dtype must be float32 or float64, got {self.dtype}")
        rng = np.random.default_rng(seed)
        self._rng = rng
        G, H, D = self.GATES, self.hidden_size, self.num_directions
        R = self._state_sizes()[0]  # width of h: H, or the LSTM's proj_size
        for layer in range(self.num_layers):
            in_size = self.input_size if layer == 0 else D * R
            for d in range(D):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                setattr(self, "weight_ih" + sfx, Parameter(np.zeros((G * H, in_size), self.dtype)))
                setattr(self, "weight_hh" + sfx, Parameter(np.zeros((G * H, R), self.dtype)))
                setattr(self, "bias_ih" + sfx, Parameter(np.zeros(G * H, self.dtype)))
                setattr(self, "bias_hh" + sfx, Parameter(np.zeros(G * H, self.dtype)))
                self._extra_params(sfx)
        init_recurrent(self, rng, init, forget_bias, chrono_t_max)
        self._ctx = None

    # --- the ops a subclass supplies ------------------------------------------------------------
    def _op_forward(self, x, state, w, lengths, need_cache):  # pragma: no cover - abstract
        raise NotImplementedError

    def _op_backward(self, dy, dstate, cache, need_dx=True):  # pragma: no cover - abstract
        raise NotImplementedError

    def _kernel_ops(self):
        """(forward, backward, step) of this layer's kind for self.impl (see longshort.kernels)."""
        return get_ops(self.KIND, self.impl)

    def _run_forward(self, x, state, w, lengths, need_cache):
        """_op_forward, through checkpointed segments when checkpoint_every is set."""
        if need_cache and self.checkpoint_every is not None:
            return checkpointed_forward(
                self._op_forward, x, state, w, lengths, self.checkpoint_every
            )
        return self._op_forward(x, state, w, lengths, need_cache)

    def _run_backward(self, dy, dstate, cache, need_dx: bool = True):
        """_op_backward, through checkpointed segments if the forward kept them; need_dx=False
        lets a kind that can (the plain LSTM) leave the input's gradient out (dx may be None)."""
        if isinstance(cache, CheckpointCache):
            return checkpointed_backward(self._op_forward, self._op_backward, dy, dstate, cache)
        return self._op_backward(dy, dstate, cache, need_dx)

    # --- hooks a subclass may override (the LSTM's variants do) ----------------------------------
    def _state_sizes(self) -> tuple[int, ...]:
        """Width of each state: (H,) or (H, H); an LSTM with proj_size=P has (P, H)."""
        return (self.hidden_size,) * self.STATES

    def _extra_params(self, sfx: str) -> None:
        """Register more parameters of one layer-direction (called after the four standard ones)."""

    def _op_weights(self, layer: int, d: int, batch: int, steps: int):
        """What the op receives as its weights in forward(); the LSTM's variants add their masks."""
        return self.weights(layer, d)

    def _accumulate(self, layer: int, d: int, grads) -> None:
        """Add one layer-direction's parameter gradients into `.grad`."""
        for p, g in zip(self._params(layer, d), grads):
            p.grad += g

    # --- helpers --------------------------------------------------------------------------------
    def _suffix(self, layer: int, d: int) -> str:
        return f"_l{layer}" + ("_reverse" if d else "")

    def _params(self, layer: int, d: int) -> list[Parameter]:
        # The Parameter objects (not their arrays: optimisers write .data in place or replace it,
        # so .data is read at every call) are looked up once; Module.__setattr__ drops this
        # memo whenever an attribute is assigned, so a replaced Parameter is seen.
        memo = self.__dict__.get("_param_memo")
        if memo is None:
            memo = self.__dict__["_param_memo"] = {}
        key = (layer, d)
        ps = memo.get(key)
        if ps is None:
            s = self._suffix(layer, d)
            names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            ps = memo[key] = [getattr(self, n + s) for n in names]
        return ps

    def weights(self, layer: int = 0, direction: int = 0) -> RecurrentWeights:
        a, b, c, d = self._params(layer, direction)
        return RecurrentWeights(a.data, b.data, c.data, d.data)

    def _check_states(self, state, batch: int, fresh: bool = True) -> tuple[np.ndarray, ...]:
        """The initial states as (L*D, B, width) arrays; zeros for state=None, which with
        fresh=False may be arrays shared between calls (_zeros: read, never written)."""
        shapes = [(self.num_layers * self.num_directions, batch, n) for n in self._state_sizes()]
        if state is None:
            if not fresh:
                return tuple([_zeros(shape, self.dtype) for shape in shapes])
            return tuple(np.zeros(shape, self.dtype) for shape in shapes)
        if self.STATES == 1:
            if isinstance(state, tuple | list):
                raise ValueError(f"{type(self).__name__} takes a single h0 array, not a tuple")
            return (V.check_state(state, "h0", shapes[0], self.dtype),)
        if not isinstance(state, tuple | list) or len(state) != 2:
            raise ValueError("LSTM state must be a tuple (h0, c0)")
        return tuple(
            V.check_state(s, n, sh, self.dtype) for s, n, sh in zip(state, ("h0", "c0"), shapes)
        )

    def _pack_state(self, states):
        return states[0] if self.STATES == 1 else tuple(states)

    def init_state(self, batch: int):
        """Zero initial state for `batch` sequences, in the form forward() and step() take.

        Returns (L*D, B, H) zeros, or for the LSTM a tuple (h0, c0) of them.
        """
        return self._pack_state(self._check_states(None, int(batch)))

    def _op_step(self, x_t, h, w):
        """One step of one layer for single-state cells (RNN, GRU); the LSTM overrides step()."""
        return self._kernel_ops()[2](x_t, h, w)

    def step(self, x_t, h=None):
        """One streaming step through every layer: x_t (B, I) -> y_t (B, H), new h (L, B, H).

        Unidirectional only (a backward direction needs the whole sequence). No dropout.
        """
        name = type(self).__name__
        if self.bidirectional:
            raise ValueError(
                f"step() is for unidirectional {name}s; run forward() on whole sequences"
            )
        x_t = np.asarray(x_t, dtype=self.dtype)
        if x_t.ndim != 2 or x_t.shape[1] != self.input_size:
            raise ValueError(f"x_t must have shape (B, {self.input_size}), got {x_t.shape}")
        (h,) = self._check_states(h, x_t.shape[0])
        h = h.copy()  # (L, B, H)
        inp = x_t
        for layer in range(self.num_layers):
            h[layer] = self._op_step(inp, h[layer], self.weights(layer))
            inp = h[layer]
        return inp, h

    # --- forward and backward -------------------------------------------------------------------
    def forward(self, x, state=None, lengths=None, need_cache: bool = True):
        """Run every layer and direction.

        Args:
            x: (B, T, I). state: initial state, (L*D, B, H) arrays (LSTM: a tuple (h0, c0)).
            lengths: optional (B,) valid lengths in [0, T]. need_cache: keep what backward needs.

        Returns:
            y (B, T, D*H) and the final state in the same form as `state`.
        """
        x = V.check_sequence_input(x, self.input_size, self.dtype, type(self).__name__)
        B, T, _ = x.shape
        lengths = V.check_lengths(lengths, B, T)
        s0 = self._check_states(state, B, fresh=False)  # only read: the ops copy it
        # Plain attribute writes (not Module.__setattr__): a streaming call is mostly overhead.
        self.__dict__["_ctx"] = None  # free the last pass's caches first: peak memory is one pass
        D, LD = self.num_directions, self.num_layers * self.num_directions
        s_n = None if LD == 1 else tuple(np.empty_like(s) for s in s0)  # each (L*D, B, H)
        caches, drop_masks = [], []
        inp = x  # (B, T, I) then (B, T, D*H)
        for layer in range(self.num_layers):
            mask = None
            if layer > 0 and self.dropout > 0 and self.training:
                keep = 1.0 - self.dropout
                mask = (self._rng.random(inp.shape) < keep).astype(self.dtype) / keep
                inp = inp * mask
            drop_masks.append(mask)
            outs = []
            for d in range(D):
                k = layer * D + d
                xin = inp if d == 0 else reverse_padded(inp, lengths)
                w = self._op_weights(layer, d, B, T)
                y, st, cache = self._run_forward(
                    xin, tuple([s[k] for s in s0]), w, lengths, need_cache
                )
                outs.append(y if d == 0 else reverse_padded(y, lengths))  # (B, T, H)
                if s_n is None:  # one layer-direction: its (B, H) states become (1, B, H)
                    s_n = tuple([_own(val, self.dtype)[None] for val in st])
                else:
                    for dst, val in zip(s_n, st):
                        dst[k] = val
                caches.append(cache)
            inp = outs[0] if D == 1 else np.concatenate(outs, axis=-1)  # (B, T, D*H)
        self.__dict__["_ctx"] = (caches, drop_masks, lengths, B, T) if need_cache else None
        return inp, self._pack_state(s_n)

    def backward(self, dy, dstate=None, need_input_grad: bool = True):
        """Backpropagate; accumulate parameter gradients into `.grad`.

        Args:
            dy: (B, T, D*H) gradient w.r.t. y, or None. dstate: gradient w.r.t. the final state, in
                the form forward returned it, or None. need_input_grad: False when x is data (as
                torch skips dx for an input without requires_grad): the first layer's
                dx = dz W_ih is then not computed (plain LSTM) and None is returned for it.

        Returns:
            dx (B, T, I) (None if not need_input_grad) and the gradient w.r.t. the initial state
            (same form as the state).
        """
        if self._ctx is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() needs a forward pass with need_cache=True first"
            )
        caches, drop_masks, lengths, B, T = self._ctx
        D, L = self.num_directions, self.num_layers
        H = self._state_sizes()[0]  # width of y per direction
        shapes = [(L * D, B, n) for n in self._state_sizes()]
        if dy is not None:
            dy = np.asarray(dy, dtype=self.dtype)
            if dy.shape != (B, T, D * H):
                raise ValueError(f"dy must have shape {(B, T, D * H)}, got {dy.shape}")
        ds_n = self._check_dstate(dstate, shapes)
        # one layer-direction: its (B, H) gradients become (1, B, H) below, without zeros first
        ds0 = None if L * D == 1 else tuple(np.zeros(shape, self.dtype) for shape in shapes)
        dout = dy  # (B, T, D*H) or None
        for layer in reversed(range(L)):
            din = None
            for d in range(D):
                k = layer * D + d
                dyd = None if dout is None else dout[..., d * H : (d + 1) * H]
                if d == 1 and dyd is not None:
                    dyd = reverse_padded(dyd, lengths)
                need_dx = need_input_grad or layer > 0
                dsk = tuple(s[k] for s in ds_n)
                dx, dst, grads = self._run_backward(dyd, dsk, caches[k], need_dx)
                if need_dx:
                    dx = reverse_padded(dx, lengths) if d == 1 else dx
                    din = dx if din is None else din + dx
                if ds0 is None:
                    ds0 = tuple([_own(val, self.dtype)[None] for val in dst])
                else:
                    for dst_all, val in zip(ds0, dst):
                        dst_all[k] = val
                self._accumulate(layer, d, grads)
            if drop_masks[layer] is not None and din is not None:
                din = din * drop_masks[layer]
            dout = din
        return dout, self._pack_state(ds0)

    def _check_dstate(self, dstate, shapes):
        if dstate is None:
            return tuple([None] * shape[0] for shape in shapes)
        parts = (dstate,) if self.STATES == 1 else tuple(dstate)
        out = []
        for p, shape in zip(parts, shapes):
            if p is None:
                out.append([None] * shape[0])
                continue
            a = np.asarray(p, dtype=self.dtype)
            if a.shape != shape:
                raise ValueError(f"state gradient must have shape {shape}, got {a.shape}")
            out.append(a)
        return tuple(out)

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"bidirectional={self.bidirectional}, dropout={self.dropout}, dtype={self.dtype.name}"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"
