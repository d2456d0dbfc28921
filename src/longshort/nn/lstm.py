"""The LSTM layer: stacked, bidirectional, variable lengths, in torch.nn.LSTM's layout.

    i_t = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
    f_t = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
    g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
    o_t = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)

Shapes: x (B, T, I) -> y (B, T, D*H); state (h, c), each (L*D, B, H).
Parameters: weight_ih_l{k} (4H, I_k), weight_hh_l{k} (4H, H), bias_ih_l{k}, bias_hh_l{k} (4H,),
gate blocks in the order i, f, g, o; `_reverse` for the backward direction.

Variants (keyword options, all off by default; any of them routes the layer to
ops/lstm_variants.py, whose docstring has the equations; parameters in nn/_lstm_variants.py):
    proj_size=P         LSTMP (Sak et al. 2014): h_t = W_hr (o * tanh(c_t)), as torch.nn.LSTM;
                        h and y have width P: y (B, T, D*P), h (L*D, B, P), c (L*D, B, H)
    peepholes=True      gates see c_{t-1} (i, f) and c_t (o) (Gers & Schmidhuber 2000), as ONNX
    layer_norm=True     layer-normalised gate pre-activations and cell (Ba et al. 2016; haste)
    zoneout=z|(z_c, z_h)  keep each unit's previous value with probability z in training, the
                        expectation at evaluation (Krueger et al. 2016)
    recurrent_dropout=p one dropout mask per sequence on h_{t-1} into the recurrence (Gal 2016)
    weight_drop=p       DropConnect on weight_hh once per forward (Merity et al. 2018, AWD-LSTM)
    cell_clip=k         ONNX's `clip`: gate pre-activations clipped to [-k, k]
    input_forget=True   coupled gates i = 1 - f (CIFG, Greff et al. 2017)
"""

from __future__ import annotations

import functools

import numpy as np

from .._validate import check_sequence_input as _check_x
from ..kernels import get_lstm_variant_ops
from . import _lstm_variants as V
from .module import Module
from .recurrent import Recurrent


class LSTM(Recurrent):
    """Long Short-Term Memory (Hochreiter & Schmidhuber 1997, with the forget gate of Gers 2000).

    Example:
        >>> lstm = LSTM(input_size=3, hidden_size=8, num_layers=2)
        >>> y, (h_n, c_n) = lstm(np.zeros((4, 10, 3), np.float32))
        >>> y.shape, h_n.shape
        ((4, 10, 8), (2, 4, 8))
    """

    GATES = 4
    STATES = 2
    KIND = "lstm"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0, dtype=np.float32, *,
                 proj_size: int = 0, peepholes: bool = False, layer_norm: bool = False,
                 zoneout=0.0, recurrent_dropout: float = 0.0, weight_drop: float = 0.0,
                 cell_clip: float | None = None, input_forget: bool = False, **kwargs):  # fmt: skip
        # The variants decide parameter shapes, so they are set before Recurrent builds them.
        Module.__init__(self)
        self.variants = V.LSTMVariants.build(
            hidden_size, proj_size, peepholes, layer_norm, zoneout, recurrent_dropout,
            weight_drop, cell_clip, input_forget,
        )  # fmt: skip
        self.proj_size = self.variants.proj_size
        if proj_size and kwargs.get("init") == "orthogonal":
            raise ValueError(
                "LSTM: init='orthogonal' needs square recurrent blocks; not with proj_size"
            )
        super().__init__(
            input_size, hidden_size, num_layers, bidirectional, dropout, dtype, **kwargs
        )
        V.reset_layer_norm(self)
        if self._features() and self.impl == "fused":
            self._kernel_ops()  # fail now, with the reason

    def _features(self) -> frozenset[str]:
        """self.variants.features, computed once per (frozen) variants object: it is asked for
        several times in every call."""
        seen = self.__dict__.get("_features_of")
        if seen is None or seen[0] is not self.variants:
            seen = (self.variants, self.variants.features)
            self.__dict__["_features_of"] = seen
        return seen[1]

    # --- variant hooks (see Recurrent) ----------------------------------------------------------
    def _state_sizes(self):
        return (self.proj_size or self.hidden_size, self.hidden_size)

    def _extra_params(self, sfx):
        V.add_params(self, sfx, self.variants)

    def weights(self, layer: int = 0, direction: int = 0):
        """RecurrentWeights, or LSTMExtWeights (None where a variant is off) with any variant on."""
        if not self._features():
            return super().weights(layer, direction)
        return V.ext_weights(self, self._suffix(layer, direction))

    def _op_weights(self, layer, d, batch, steps):
        w = self.weights(layer, d)
        if not self._features():
            return w
        training = self.training
        if training and any(self.variants.zoneout) and self.checkpoint_every is not None:
            raise ValueError(
                "LSTM: zoneout draws a mask per step, which checkpoint_every's segments cannot "
                "replay; set checkpoint_every=None for training with zoneout"
            )
        H, R = self.hidden_size, self._state_sizes()[0]
        opts = V.options(self.variants, self._rng, training, batch, steps, H, R, self.dtype)
        return V.ExtArgs(w, opts)

    def _accumulate(self, layer, d, grads):
        if not self._features():
            return super()._accumulate(layer, d, grads)
        V.accumulate(self, self._suffix(layer, d), grads)

    def _kernel_ops(self):
        if not self._features():
            return super()._kernel_ops()
        return get_lstm_variant_ops(self._features(), self.impl)

    def forward(self, x, state=None, lengths=None, need_cache: bool = True):
        """See Recurrent.forward. Inference on one plain layer from a zero state (a streaming
        service's call) skips the general machinery: 23 -> 14 us for one step at H = 64."""
        if (
            state is None
            and lengths is None
            and not need_cache
            and self.num_layers == 1
            and not self.bidirectional
            and not self._features()
        ):
            x = _check_x(x, self.input_size, self.dtype, "LSTM")
            z = np.zeros((x.shape[0], self.hidden_size), self.dtype)
            self.__dict__["_ctx"] = None
            fast = self._compiled_step(0) if x.shape[1] == 1 else None
            if fast is not None:  # one step: straight to the compiled step (x[:, 0] is contiguous)
                h, c, _ = fast[0](x[:, 0], z, z, *fast[1])
                return h[:, None].copy(), (h[None], c[None])  # y must not alias h_n
            y, (h, c), _ = self._kernel_ops()[0](x, (z, z), self.weights(0), None, False)
            return y, (h[None], c[None])
        return super().forward(x, state, lengths, need_cache)

    def _compiled_step(self, layer: int):
        """(raw compiled step, (w_ih, w_hh, b_ih, b_hh)) when `layer` runs the fused plain LSTM
        and its four arrays are already C-contiguous in the layer's dtype, else None.

        Memoised per layer on the identity of the four .data arrays, compared at every call (an
        optimiser that replaces them is seen; one that writes in place changes nothing the memo
        holds; Module.__setattr__ drops the memo when a Parameter or `impl` is reassigned). A
        streaming call so skips get_ops, the weights tuple and the dtype/layout checks.
        """
        a, b, c, d = self._params(layer, 0)
        datas = (a.data, b.data, c.data, d.data)
        memo = self.__dict__.get("_step_memo")
        if memo is None:
            memo = self.__dict__["_step_memo"] = {}
        hit = memo.get(layer)
        if hit is not None:
            k = hit[0]
            if k[0] is datas[0] and k[1] is datas[1] and k[2] is datas[2] and k[3] is datas[3]:
                return hit[1]
        raw = getattr(self._kernel_ops()[2], "raw", None)
        # a subclass that overrides weights() takes the general path, which asks it
        ok = raw is not None and not self._features() and type(self).weights is LSTM.weights
        for arr in datas:
            ok = ok and type(arr) is np.ndarray and arr.dtype == self.dtype
            ok = ok and arr.flags.c_contiguous
        memo[layer] = (datas, (raw, datas) if ok else None)
        return memo[layer][1]

    def _op_forward(self, x, state, w, lengths, need_cache):
        if isinstance(w, V.ExtArgs):
            return self._kernel_ops()[0](x, state, w.weights, w.opts, lengths, need_cache)
        return self._kernel_ops()[0](x, state, w, lengths, need_cache)

    def _op_backward(self, dy, dstate, cache, need_dx=True):
        if need_dx or self._features():  # the variants' kernels always give dx
            return self._kernel_ops()[1](dy, dstate, cache)
        return self._kernel_ops()[1](dy, dstate, cache, need_dx=False)

    def gate_trace(self) -> list[dict[str, np.ndarray]]:
        """Per-step gates and cell states of the last forward pass, one dict per layer-direction.

        Keys: "i", "f", "g", "o", "c" (cell state c_t), "h" (carried hidden state h_t), each
        (B, T, H), in the direction's own time order (index 0 = first step it processed).
        Needs a forward pass with need_cache=True.
        """
        if self._ctx is None:
            raise RuntimeError("gate_trace() needs a forward pass with need_cache=True first")
        if self.checkpoint_every is not None:
            raise RuntimeError(
                "gate_trace() needs every step's gates, but this LSTM keeps only checkpoints "
                f"(checkpoint_every={self.checkpoint_every!r}); set layer.checkpoint_every = None "
                "and run forward() again to record a trace"
            )
        H = self.hidden_size
        out = []
        for cache in self._ctx[0]:
            g = cache.gates
            trace = {k: g[..., j * H : (j + 1) * H] for j, k in enumerate("ifgo")}
            trace["c"], trace["h"] = cache.c[:, 1:], cache.h[:, 1:]
            out.append(trace)
        return out

    def step(self, x_t, state=None):
        """One streaming step through every layer: x_t (B, I) -> y_t (B, H), new (h, c).

        Unidirectional only (a backward direction needs the whole sequence). No dropout.
        A state that is already a tuple of (L, B, H) arrays of the layer's dtype (as step()
        returns it) is used as is, without a copy or a scan for NaN: a step is mostly overhead.
        """
        if self.bidirectional:
            raise ValueError("step() is for unidirectional LSTMs; run forward() on whole sequences")
        x_t = np.asarray(x_t, dtype=self.dtype)
        if x_t.ndim != 2 or x_t.shape[1] != self.input_size:
            raise ValueError(f"x_t must have shape (B, {self.input_size}), got {x_t.shape}")
        L, B, dt = self.num_layers, x_t.shape[0], self.dtype
        shape = (L, B, self.hidden_size)
        h = c = None
        if type(state) is tuple and len(state) == 2:
            h, c = state
            if not (type(h) is np.ndarray and type(c) is np.ndarray and h.shape == shape
                    and c.shape == shape and h.dtype == dt and c.dtype == dt):  # fmt: skip
                h = None
        if h is None:
            h, c = self._check_states(state, B)
        if L == 1 and x_t.flags.c_contiguous and h.flags.c_contiguous and c.flags.c_contiguous:
            fast = self._compiled_step(0)
            if fast is not None:  # the streaming case: checked arrays straight to the kernel
                h_t, c_t, _ = fast[0](x_t, h[0], c[0], *fast[1])
                return h_t, (h_t[None], c_t[None])
        step = self._kernel_ops()[2]
        if self._features():  # evaluation masks: zoneout's expectation, no dropout
            opts = V.options(self.variants, None, False, B, 1, self.hidden_size,
                             self._state_sizes()[0], self.dtype)  # fmt: skip
            step = functools.partial(step, opts=opts)
        hs, cs, inp = [], [], x_t
        for layer in range(L):
            (h_l, c_l), _ = step(inp, (h[layer], c[layer]), self.weights(layer))  # (B, H) each
            hs.append(h_l)
            cs.append(c_l)
            inp = h_l
        if L == 1:
            return inp, (hs[0][None], cs[0][None])  # (1, B, H)
        return inp, (np.stack(hs), np.stack(cs))  # (L, B, H)
