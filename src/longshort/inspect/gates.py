"""Gate traces of an LSTM, their heatmaps, and forget-gate statistics.

For one input sequence x (1, T, I) the trace holds, per layer (and direction), the activated
gates and the cell state at every step (see longshort.nn.LSTM for the equations):

    i_t input gate, f_t forget gate, g_t candidate, o_t output gate     each (T, H), in [0, 1]
    c_t = f_t * c_{t-1} + i_t * g_t      h_t = o_t * tanh(c_t)          each (T, H)

A forget gate near 1 keeps the cell (the constant error carousel); near 0 it resets it.
`forget_stats` counts how often it is saturated: f < 0.1 (forgetting) and f > 0.9 (remembering).
Plots use matplotlib's object API (a Figure with the Agg canvas): no pyplot, no window.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..nn import LSTM

GATE_TITLES = {
    "i": "input gate i",
    "f": "forget gate f",
    "g": "candidate g",
    "o": "output gate o",
    "c": "cell state c",
    "h": "hidden state h",
}


def _lstm_of(model) -> LSTM:
    rnn = getattr(model, "rnn", model)
    if not isinstance(rnn, LSTM):
        raise TypeError(
            f"gate traces need an LSTM (or a model whose .rnn is one), got {type(rnn).__name__}"
        )
    return rnn


def layer_names(lstm: LSTM) -> list[str]:
    """Labels of the trace entries: 'layer 0', 'layer 0 reverse', 'layer 1', ..."""
    rev = [""] + ([" reverse"] if lstm.bidirectional else [])
    return [f"layer {k}{r}" for k in range(lstm.num_layers) for r in rev]


def gate_trace(model, x, length: int | None = None) -> list[dict[str, np.ndarray]]:
    """Run one sequence through an LSTM and return its gates and states per step.

    Args:
        model: an nn.LSTM, or a model whose `.rnn` is one (e.g. SequenceModel).
        x: (1, T, I) or (T, I), one sequence. length: its valid length (default T); the trace is
            cut to it.

    Returns:
        One dict per layer-direction (order of `layer_names`), keys "i", "f", "g", "o", "c", "h",
        each (length, H) float64, in that direction's own time order. The model's mode and its
        checkpointing setting are restored; its cached forward pass is replaced.
    """
    lstm = _lstm_of(model)
    x = np.asarray(x)
    if x.ndim == 2:
        x = x[None]  # (1, T, I)
    if x.ndim != 3 or x.shape[0] != 1:
        raise ValueError(f"gate_trace takes one sequence, (1, T, I) or (T, I); got {x.shape}")
    T = x.shape[1]
    n = T if length is None else int(length)
    if not 1 <= n <= T:
        raise ValueError(f"length must be in [1, {T}], got {length}")
    was_training, ckpt = lstm.training, lstm.checkpoint_every
    lstm.eval()
    lstm.checkpoint_every = None  # the trace reads the full per-step cache
    try:
        lstm.forward(x, None, None if length is None else np.array([n]), need_cache=True)
        raw = lstm.gate_trace()
    finally:
        lstm.train(was_training)
        lstm.checkpoint_every = ckpt
    return [{k: np.asarray(v[0, :n], np.float64) for k, v in d.items()} for d in raw]


def forget_stats(
    trace: list[dict[str, np.ndarray]], low: float = 0.1, high: float = 0.9
) -> list[dict[str, float]]:
    """Forget-gate statistics per layer-direction of a trace.

    Returns:
        One dict per trace entry: "mean" (mean f over steps and units), "frac_low" (fraction with
        f < low: the cell is being reset), "frac_high" (f > high: the cell is kept), "min", "max",
        and "n" (the number of gate values counted).
    """
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"need 0 <= low < high <= 1, got low={low}, high={high}")
    out = []
    for d in trace:
        f = np.asarray(d["f"], np.float64)
        out.append(
            {
                "mean": float(f.mean()),
                "frac_low": float(np.mean(f < low)),
                "frac_high": float(np.mean(f > high)),
                "min": float(f.min()),
                "max": float(f.max()),
                "n": int(f.size),
            }
        )
    return out


def plot_gate_heatmaps(
    trace: list[dict[str, np.ndarray]],
    path,
    gates: tuple[str, ...] = ("i", "f", "o", "c"),
    names: list[str] | None = None,
) -> Path:
    """Write a PNG: one row per layer, one heatmap per gate (units on y, time steps on x).

    Gates use a fixed [0, 1] colour scale so layers compare; the cell state uses a diverging
    scale symmetric around 0. Returns the path written.
    """
    from matplotlib.figure import Figure

    unknown = [g for g in gates if g not in GATE_TITLES]
    if unknown or not gates:
        raise ValueError(f"gates must be a non-empty subset of {sorted(GATE_TITLES)}, got {gates}")
    if not trace:
        raise ValueError("the trace is empty: pass gate_trace(...)'s result")
    names = names or [f"layer {k}" for k in range(len(trace))]
    rows, cols = len(trace), len(gates)
    T = trace[0][gates[0]].shape[0]
    fig = Figure(figsize=(min(4 + 0.02 * T, 8) * cols / 1.6, 2.6 * rows + 0.6), dpi=100)
    axes = fig.subplots(rows, cols, squeeze=False)
    for r, d in enumerate(trace):
        for c, g in enumerate(gates):
            ax, a = axes[r][c], np.asarray(d[g]).T  # (H, T)
            if g in ("c", "h"):
                m = float(np.max(np.abs(a))) or 1.0
                im = ax.imshow(a, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-m, vmax=m)
            else:
                im = ax.imshow(a, aspect="auto", origin="lower", cmap="viridis", vmin=0, vmax=1)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
            ax.set_title(f"{names[r]}: {GATE_TITLES[g]}", fontsize=9)
            ax.set_xlabel("step t", fontsize=8)
            if c == 0:
                ax.set_ylabel("unit", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
