"""Gradient flow through time: how much of a loss at the last step reaches step t.

The loss L of each sequence b is read at its last valid step s_b = lengths[b] - 1 only, so the
gradient arriving at earlier steps has travelled back through the recurrence alone. For each lag
k = s_b - t we report, averaged over the batch,

    dh_norm[k] = ||dL/dh_t||   h_t the top layer's output at step t (the total derivative: the
                               gradient carried back from step t + 1 plus the loss's own term)
    dx_norm[k] = ||dL/dx_t||   x_t the input at step t (through every layer)

A plain RNN multiplies dL/dh by W_hh^T diag(phi'(a_t)) at every step, so with small weights the
norms fall geometrically with the lag (the vanishing gradient; Hochreiter 1991, Bengio et al. 1994);
the LSTM's cell carries dL/dc_{t-1} = f_t * dL/dc_t, so with forget gates near 1 they do not.

How: dx is the layer's own backward with dy zero except at the last steps. dh is not returned by
the ops, so we re-run the top layer with the reference op (ops/lstm.py, ops/rnn.py, ops/gru.py)
and chain its backward one step at a time on one-step slices of its cache: the backward of step t,
given the state gradient after step t, returns the state gradient before it, which is dL/dh_{t-1}.
The product of these one-step calls is exactly the full backward (a test checks it).

Loss: with a model that has a `.head` (SequenceModel) and a target, the task's loss on the head's
output at the last step (default: squared error; a per-step target, as the copy task's, is read
at the last step), each sequence's own loss (not the batch mean); otherwise
L_b = <u, y[b, s_b]> with a fixed random unit vector u.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..ops import gru as gru_ops
from ..ops import lstm as lstm_ops
from ..ops import rnn as rnn_ops

_STEP_FIELDS = {"x", "gates", "tanh_c", "gh_n", "mask"}  # (B, T, ...) in the op caches
_STATE_FIELDS = {"h", "c"}  # (B, T+1, H): the state before and after each step


@dataclass
class GradientFlow:
    """Gradient norms against the lag k = (last step) - t, k = 0 .. K-1.

    Attributes: name (e.g. "LSTM"); lag (K,); dh_norm (K,) mean ||dL/dh_t|| of the top layer;
    dx_norm (K,) mean ||dL/dx_t||. K is the shortest sequence's length.
    """

    name: str
    lag: np.ndarray
    dh_norm: np.ndarray
    dx_norm: np.ndarray

    def decay(self, lag: int, which: str = "dh") -> float:
        """norm at `lag` / norm at lag 0: below 1e-3 means three orders of magnitude lost."""
        v = self.dh_norm if which == "dh" else self.dx_norm
        return float(v[lag] / v[0]) if v[0] > 0 else float("nan")


def _ref_ops(rnn):
    """(forward, backward) of the reference op in the (x, state tuple, w, lengths) form."""
    kind = rnn.KIND
    if kind == "lstm":
        return lstm_ops.lstm_forward, lstm_ops.lstm_backward
    if kind == "gru":
        fwd, bwd = gru_ops.gru_forward, gru_ops.gru_backward
    else:
        nl = rnn.nonlinearity

        def fwd(x, s, w, lg):
            return rnn_ops.rnn_forward(x, s, w, lg, nonlinearity=nl)

        bwd = rnn_ops.rnn_backward

    def forward(x, state, w, lengths):
        y, h, cache = fwd(x, state[0], w, lengths)
        return y, (h,), cache

    def backward(dy, dstate, cache):
        dx, dh, grads = bwd(dy, dstate[0], cache)
        return dx, (dh,), grads

    return forward, backward


def _step_cache(cache, t: int):
    """The cache of step t alone, as if the forward had run over that one step."""
    parts = {}
    for name in cache._fields:
        v = getattr(cache, name)
        if v is not None and name in _STEP_FIELDS:
            parts[name] = v[:, t : t + 1]
        elif name in _STATE_FIELDS:
            parts[name] = v[:, t : t + 2]
    return cache._replace(**parts)


def hidden_grad_norms(rnn, x, lengths, dy) -> tuple[np.ndarray, tuple]:
    """||dL/dh_t|| (B, T) of the top layer, and dL/d(state0) of that layer.

    Args:
        rnn: a unidirectional nn.LSTM / GRU / RNN. x (B, T, I). lengths (B,) or None.
        dy: (B, T, H) the loss gradient w.r.t. the top layer's outputs.
    """
    forward, backward = _ref_ops(rnn)
    B, T, _ = x.shape
    inp = np.asarray(x, rnn.dtype)
    for layer in range(rnn.num_layers):
        zeros = tuple(np.zeros((B, rnn.hidden_size), rnn.dtype) for _ in range(rnn.STATES))
        inp, _, cache = forward(inp, zeros, rnn.weights(layer), lengths)  # (B, T, H)
    dstate = tuple(np.zeros((B, rnn.hidden_size), rnn.dtype) for _ in range(rnn.STATES))
    norms = np.zeros((B, T))
    for t in reversed(range(T)):
        norms[:, t] = np.linalg.norm(dstate[0] + dy[:, t], axis=-1)  # total dL/dh_t
        _, dstate, _ = backward(dy[:, t : t + 1], dstate, _step_cache(cache, t))
    return norms, dstate


def _by_lag(norms: np.ndarray, last: np.ndarray) -> np.ndarray:
    """(B, T) per-step norms -> (K,) batch means by lag k = last[b] - t, K = min(last) + 1."""
    k = np.arange(int(last.min()) + 1)  # (K,)
    idx = last[:, None] - k[None, :]  # (B, K)
    return np.take_along_axis(norms, idx, axis=1).mean(axis=0)


def gradient_flow(
    model,
    x,
    lengths=None,
    target=None,
    loss: Callable | None = None,
    name: str | None = None,
    seed: int = 0,
) -> GradientFlow:
    """Measure dL/dh_t and dL/dx_t against the lag for one batch (see the module docstring).

    Args:
        model: a unidirectional nn.LSTM / GRU / RNN, or a model with `.rnn` and a Linear `.head`.
        x: (B, T, I). lengths: (B,) or None.
        target: the task's target, used with `.head`; None for the random projection.
        loss: (pred, target) -> (mean loss, dL/dpred), e.g. `get_task("adding").loss`;
            default squared error.
        name: label for plots and CSV (default: the cell's class name). seed: for u.

    Parameter gradients and the model's mode are left as they were.
    """
    rnn = getattr(model, "rnn", model)
    head = getattr(model, "head", None)
    if rnn.bidirectional:
        raise ValueError("gradient flow against the lag needs a unidirectional layer")
    x = np.asarray(x, rnn.dtype)
    B, T, _ = x.shape
    last = np.full(B, T - 1) if lengths is None else np.asarray(lengths, np.int64) - 1
    rows = np.arange(B)
    saved = [p.grad.copy() for p in rnn.parameters()]
    was_training = rnn.training
    rnn.eval()
    try:
        y, _ = rnn(x, None, lengths)  # (B, T, H)
        if head is not None and target is not None:
            target = np.asarray(target)
            if getattr(getattr(model, "config", None), "readout", "last") == "all":
                target = target[rows, last]  # a per-step target: keep the last step's only
            pred = head(y[rows, last])  # (B, O)
            if loss is None:
                dpred = 2.0 * (pred - np.asarray(target, pred.dtype).reshape(pred.shape)) / B
            else:
                dpred = loss(pred, target)[1]
            dlast = (B * dpred) @ head.weight.data  # (B, H): each sequence's own loss
        else:
            u = np.random.default_rng(seed).standard_normal(y.shape[-1])
            dlast = np.broadcast_to(u / np.linalg.norm(u), (B, y.shape[-1]))
        dy = np.zeros_like(y)  # (B, T, H): the loss touches the last steps only
        dy[rows, last] = dlast
        dx, _ = rnn.backward(dy)  # (B, T, I)
        dh_norms, _ = hidden_grad_norms(rnn, x, lengths, dy)
    finally:
        rnn.train(was_training)
        for p, g in zip(rnn.parameters(), saved):
            p.grad[...] = g
    dx_by_lag = _by_lag(np.linalg.norm(dx, axis=-1), last)
    return GradientFlow(
        name or type(rnn).__name__,
        np.arange(len(dx_by_lag)),
        _by_lag(dh_norms, last),
        dx_by_lag,
    )


def write_gradient_flow_csv(results: Sequence[GradientFlow], path) -> Path:
    """CSV rows: model, lag, dh_norm, dx_norm, dh_relative, dx_relative (norm / norm at lag 0)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["model", "lag", "dh_norm", "dx_norm", "dh_relative", "dx_relative"])
        for r in results:
            dh0, dx0 = r.dh_norm[0] or 1.0, r.dx_norm[0] or 1.0
            for k, dh, dx in zip(r.lag, r.dh_norm, r.dx_norm):
                w.writerow(
                    [r.name, int(k), f"{dh:.6e}", f"{dx:.6e}", f"{dh / dh0:.6e}", f"{dx / dx0:.6e}"]
                )
    return path


def plot_gradient_flow(results: Sequence[GradientFlow], path, csv_path=None) -> tuple[Path, Path]:
    """Two panels (||dL/dh_t||, ||dL/dx_t||) against the lag, log y, one line per model.

    Also writes the numbers to `csv_path` (default: `path` with the suffix .csv).
    Returns (png path, csv path).
    """
    from matplotlib.figure import Figure

    if not results:
        raise ValueError("no results to plot: pass gradient_flow(...) results, e.g. LSTM and RNN")
    fig = Figure(figsize=(10, 4), dpi=100)
    axes = fig.subplots(1, 2)
    for ax, attr, title in (
        (axes[0], "dh_norm", "||dL/dh_t|| (top layer)"),
        (axes[1], "dx_norm", "||dL/dx_t||"),
    ):
        for r in results:
            v = getattr(r, attr)
            ok = v > 0  # a log axis cannot show exact zeros (underflow)
            ax.plot(r.lag[ok], v[ok], label=r.name)
        ax.set_yscale("log")
        ax.set_xlabel("lag T - t (steps before the loss)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    csv_path = write_gradient_flow_csv(results, csv_path or path.with_suffix(".csv"))
    return path, csv_path
