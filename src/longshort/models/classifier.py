"""Whole-sequence classification: a recurrent stack, a pooling over time, a linear head.

Symbols: N sequences, B batch, T steps (padded), F input features, H hidden units, D directions,
C classes, L_b the real length of sequence b.

    x (B, T, F) --standardise--> --LSTM/GRU/RNN--> y (B, T, D*H) --pool--> p (B, D*H)
        --Linear--> logits z (B, C) --softmax--> class probabilities;  loss: cross entropy

Pooling reads only the L_b real steps of each sequence, so padding never reaches the result:
    last  p = [y_fwd[b, L_b - 1], y_bwd[b, 0]]    the final state of each direction
    mean  p = (1 / L_b) sum_{t < L_b} y[b, t]
    max   p = max_{t < L_b} y[b, t]               (gradient to the arg max step; first on ties)

Streaming (unidirectional only): `state = clf.init_state(B)`, then `proba_t, state =
clf.step(x_t, state)` gives predict_proba of the prefixes x[:, :t+1]; the state keeps the
recurrent state, the running sum (mean) or maximum (max) of y, and the number of steps seen.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .._blas_threads import blas_threads
from ..data.readers import pad_sequences
from ..nn import GRU, LSTM, RNN, Linear, Module
from ..train import LossOutput, TrainConfig, fit, supervised_loss
from ..train.checkpoint import atomic_write_bytes

CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}
POOLINGS = ("last", "mean", "max")
FORMAT = "longshort-classifier-1"


class PoolCache(NamedTuple):
    mode: str
    lengths: np.ndarray  # (B,)
    shape: tuple  # y's (B, T, D*H)
    index: np.ndarray | None  # last: (B, D*H) step read per feature; max: arg max (B, D*H)


def pool_forward(y: np.ndarray, lengths: np.ndarray, mode: str, directions: int = 1):
    """y (B, T, D*H), lengths (B,) all >= 1 -> p (B, D*H) and the cache pool_backward needs."""
    B, T, DH = y.shape
    t = np.arange(T)[None, :, None]  # (1, T, 1)
    valid = t < lengths[:, None, None]  # (B, T, 1)
    if mode == "mean":
        p = np.where(valid, y, 0).sum(axis=1) / lengths[:, None].astype(y.dtype)  # (B, D*H)
        return p, PoolCache(mode, lengths, y.shape, None)
    if mode == "max":
        idx = np.where(valid, y, -np.inf).argmax(axis=1)  # (B, D*H)
    elif mode == "last":
        idx = np.repeat((lengths - 1)[:, None], DH, axis=1)  # (B, D*H)
        if directions == 2:
            idx[:, DH // 2 :] = 0  # the backward direction has read the whole sequence at t=0
    else:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {mode!r}")
    p = np.take_along_axis(y, idx[:, None, :], axis=1)[:, 0]  # (B, D*H)
    return p, PoolCache(mode, lengths, y.shape, idx)


def pool_backward(dp: np.ndarray, cache: PoolCache) -> np.ndarray:
    """dp (B, D*H) -> dy (B, T, D*H), zero at every padded step."""
    B, T, DH = cache.shape
    if cache.mode == "mean":
        valid = np.arange(T)[None, :, None] < cache.lengths[:, None, None]  # (B, T, 1)
        return valid * (dp / cache.lengths[:, None].astype(dp.dtype))[:, None, :]  # (B, T, D*H)
    dy = np.zeros(cache.shape, dp.dtype)  # (B, T, D*H)
    np.put_along_axis(dy, cache.index[:, None, :], dp[:, None, :], axis=1)
    return dy


def softmax(z: np.ndarray) -> np.ndarray:
    """Logits (B, C) -> probabilities (B, C) along the last axis."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class ClassifierConfig:
    """Architecture and training of a SequenceClassifier; round-trips through JSON."""

    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = False
    pooling: str = "last"
    cell: str = "lstm"
    dropout: float = 0.0
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.0
    clip_norm: float | None = 1.0
    schedule: str | None = "cosine"
    val_fraction: float = 0.0
    patience: int | None = None
    max_seconds: float | None = None
    forget_bias: float | None = 1.0
    standardize: bool = True
    dtype: str = "float32"
    impl: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {self.cell!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ClassifierConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown classifier option(s) {unknown}; known: {sorted(known)}")
        return cls(**d)


class ClassifierNet(Module):
    """rnn + pooling + head; the module the training loop sees (parameters `rnn.*`, `head.*`).

    forward(x (B, T, F), lengths (B,)) -> logits (B, C); backward(dlogits) -> dx (B, T, F).
    """

    def __init__(self, c: ClassifierConfig, input_size: int, num_classes: int):
        super().__init__()
        dtype = np.dtype(c.dtype)
        kw = {"init": "uniform", "impl": c.impl, "seed": c.seed, "dtype": dtype}
        if c.cell == "lstm" and c.forget_bias is not None:
            kw["forget_bias"] = c.forget_bias
        self.rnn = CELLS[c.cell](input_size, c.hidden_size, c.num_layers, c.bidirectional,
                                 c.dropout, **kw)  # fmt: skip
        D = 2 if c.bidirectional else 1
        self.head = Linear(D * c.hidden_size, num_classes, dtype=dtype, seed=c.seed + 1)
        self.pooling, self.directions = c.pooling, D
        self._cache = None

    def forward(self, x, lengths, need_cache: bool = True) -> np.ndarray:
        lengths = np.asarray(lengths, np.int64)
        x = x[:, : int(lengths.max())]  # (B, T', F): drop steps that are padding in every row
        y, _ = self.rnn(x, None, lengths, need_cache=need_cache)  # (B, T', D*H)
        p, self._cache = pool_forward(y, lengths, self.pooling, self.directions)  # (B, D*H)
        return self.head(p)  # (B, C)

    def backward(self, dlogits) -> np.ndarray:
        dp = self.head.backward(dlogits)  # (B, D*H)
        dx, _ = self.rnn.backward(pool_backward(dp, self._cache))  # (B, T', F)
        return dx

    def init_state(self, batch: int) -> tuple:
        """(recurrent state, running pool of y (B, D*H) or None for "last", steps seen)."""
        shape, dtype = (batch, self.head.in_features), self.head.dtype
        pool = {"last": None, "mean": np.zeros(shape, dtype), "max": np.full(shape, -np.inf, dtype)}
        return self.rnn.init_state(batch), pool[self.pooling], 0

    def step(self, x_t, state=None):
        """x_t (B, F) standardised -> logits (B, C) of the prefixes so far, new state."""
        s, acc, n = self.init_state(len(x_t)) if state is None else state
        y, s = self.rnn.step(x_t, s)  # (B, H)
        if self.pooling == "mean":
            acc = acc + y
            p = acc / acc.dtype.type(n + 1)
        elif self.pooling == "max":
            acc = p = np.maximum(acc, y)
        else:
            p = y
        return self.head(p), (s, acc, n + 1)

    def loss(self, batch: dict) -> LossOutput:
        """batch {"x": (B, T, F), "lengths": (B,), "y": (B,) class ids}: mean cross entropy."""
        z = self.forward(batch["x"], batch["lengths"])  # (B, C)
        return supervised_loss(z, batch["y"], self.backward, "cross_entropy")


class SequenceClassifier:
    """Classify whole sequences of any lengths (scikit-learn style: fit, predict, score).

    Args: see ClassifierConfig (hidden_size, num_layers, bidirectional, pooling, cell, ...).

    X is a list of (T_i, F) arrays, or a padded (N, T, F) array with `lengths` (N,); y holds any
    labels (ints or strings), kept in `classes_`. Features are standardised with the training
    set's per-feature mean and std (real steps only).
    """

    def __init__(self, hidden_size: int = 64, num_layers: int = 1, bidirectional: bool = False,
                 pooling: str = "last", **options):  # fmt: skip
        self.config = ClassifierConfig(hidden_size=hidden_size, num_layers=num_layers,
                                       bidirectional=bidirectional, pooling=pooling, **options)  # fmt: skip
        self.net: ClassifierNet | None = None
        self.classes_: np.ndarray | None = None
        self.mean = self.std = None
        self.history = None

    # --- data -----------------------------------------------------------------------------------
    def _prepare(self, X, lengths=None) -> tuple[np.ndarray, np.ndarray]:
        F = None if self.mean is None else len(self.mean)
        if F is not None and F > 1 and getattr(X, "ndim", 0) == 2 and X.shape[1] == F:
            raise ValueError(f"X has shape {X.shape}, one sequence of {X.shape[0]} steps x {F} "
                             "features; the classifier takes a batch (N, T, F) or a list of "
                             "(T_i, F) arrays: pass a batch: X[None]")  # fmt: skip
        x, lg = pad_sequences(X, lengths)  # (N, T, F) zero-padded, (N,)
        if self.mean is None:  # fitting: per-feature scaling from the real steps
            steps = x[np.arange(x.shape[1])[None, :] < lg[:, None]]  # (sum L_i, F)
            self.mean, self.std = steps.mean(axis=0), steps.std(axis=0)
            self.std[self.std < 1e-8] = 1.0  # constant features: centre only
            if not self.config.standardize:
                self.mean, self.std = np.zeros_like(self.mean), np.ones_like(self.std)
        elif x.shape[2] != self.mean.shape[0]:
            raise ValueError(f"X has {x.shape[2]} features but the classifier was fitted on "
                             f"{self.mean.shape[0]}")  # fmt: skip
        valid = (np.arange(x.shape[1])[None, :] < lg[:, None])[..., None]  # (N, T, 1)
        x = np.where(valid, (x - self.mean) / self.std, 0).astype(self.config.dtype)
        return x, lg

    def _encode(self, y, n: int) -> np.ndarray:
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != n:
            raise ValueError(
                f"y must hold one label per sequence: {n} sequences, y shape {y.shape}"
            )
        if (
            y.dtype.kind in "fc"
            and np.isnan(y).any()
            or any(v is None or v == "" for v in y.tolist())
        ):
            raise ValueError("labels are missing (None, NaN or empty) for some sequences")
        self.classes_, ids = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"y has a single class ({self.classes_[0].item()!r}); a classifier needs >= 2"
            )
        return ids.astype(np.int64)

    # --- training and prediction ----------------------------------------------------------------
    def fit(self, X, y, lengths=None, on_row=None, **train_overrides) -> SequenceClassifier:
        """Train on X (see the class docstring) and labels y (N,); returns self."""
        c = self.config
        self.mean = None
        x, lg = self._prepare(X, lengths)
        ids = self._encode(y, len(x))
        self.net = ClassifierNet(c, x.shape[2], len(self.classes_))
        order = np.random.default_rng(c.seed).permutation(len(x))
        n_val = int(round(len(x) * c.val_fraction))
        if len(x) - n_val < 1:
            raise ValueError(
                f"val_fraction={c.val_fraction} holds out {n_val} of {len(x)} examples "
                "and leaves none to train on; use a smaller val_fraction"
            )
        val, tr = order[:n_val], order[n_val:]
        data = {"x": x[tr], "lengths": lg[tr], "y": ids[tr]}
        val_data = {"x": x[val], "lengths": lg[val], "y": ids[val]} if n_val else None
        cfg = TrainConfig(epochs=c.epochs, batch_size=c.batch_size, lr=c.lr, clip_norm=c.clip_norm,
                          weight_decay=c.weight_decay, schedule=c.schedule, seed=c.seed,
                          max_seconds=c.max_seconds, patience=c.patience if n_val else None,
                          optimizer="adamw" if c.weight_decay else "adam", progress=False)  # fmt: skip
        self.history = fit(self.net, data, cfg.replace(**train_overrides), val_data, on_row=on_row)
        self.net.eval()
        return self

    def _check_fitted(self) -> ClassifierNet:
        if self.net is None:
            raise RuntimeError("this SequenceClassifier is not fitted; call fit(X, y) or load(dir)")
        return self.net

    def decision_function(self, X, lengths=None, batch_size: int = 256) -> np.ndarray:
        """Logits (N, C); sequences are batched by length so short ones run few steps."""
        net = self._check_fitted()
        x, lg = self._prepare(X, lengths)
        out = np.empty((len(x), len(self.classes_)), np.float64)
        order = np.argsort(lg, kind="stable")
        net.eval()
        with blas_threads(1):  # NumPy's idle BLAS threads would spin on the kernels' cores
            for s in range(0, len(x), batch_size):
                rows = order[s : s + batch_size]
                out[rows] = net.forward(x[rows], lg[rows], need_cache=False)
        return out

    def predict_proba(self, X, lengths=None) -> np.ndarray:
        """Class probabilities (N, C), columns in the order of `classes_`."""
        return softmax(self.decision_function(X, lengths))

    def init_state(self, batch: int) -> tuple:
        """Streaming state for `batch` sequences before their first step (see step)."""
        return self._check_fitted().init_state(batch)

    def step(self, x_t, state=None) -> tuple[np.ndarray, tuple]:
        """x_t (B, F) raw features -> class probabilities (B, C) of each prefix so far, new state.

        Equal to predict_proba(x[:, :t+1]) at step t; eval mode, unidirectional models only.
        """
        net = self._check_fitted()
        x_t = np.asarray(x_t, np.float64)
        if x_t.ndim != 2 or x_t.shape[1] != len(self.mean):
            raise ValueError(f"x_t must have shape (B, {len(self.mean)}), got {x_t.shape}")
        z, state = net.step(((x_t - self.mean) / self.std).astype(self.config.dtype), state)
        return softmax(z.astype(np.float64)), state

    def predict(self, X, lengths=None) -> np.ndarray:
        """Predicted labels (N,), values from `classes_`."""
        return self.classes_[self.decision_function(X, lengths).argmax(axis=1)]

    def score(self, X, y, lengths=None) -> float:
        """Accuracy on (X, y)."""
        pred, y = self.predict(X, lengths), np.asarray(y)
        if y.ndim != 1 or len(y) != len(pred):
            raise ValueError(f"y must hold one label per sequence: X holds {len(pred)} sequences "
                             f"but y has shape {y.shape}")  # fmt: skip
        return float(np.mean(pred == y))

    # --- persistence: safetensors + JSON, never pickle -----------------------------------------
    def save(self, directory) -> Path:
        """Write config.json (architecture, classes, scaling) and model.safetensors to directory."""
        from safetensors.numpy import save as st_save

        net = self._check_fitted()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        tensors = {k: np.ascontiguousarray(v) for k, v in net.state_dict().items()}
        # atomic, and with the usual file mode (safetensors' save_file creates files 0600)
        atomic_write_bytes(d / "model.safetensors", st_save(tensors))
        meta = {"format": FORMAT, "config": self.config.to_dict(), "input_size": len(self.mean),
                "classes": self.classes_.tolist(), "mean": self.mean.tolist(),
                "std": self.std.tolist()}  # fmt: skip
        (d / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
        return d

    @classmethod
    def load(cls, directory) -> SequenceClassifier:
        """Read a classifier written by save(); runs no code from the files.

        Raises:
            FileNotFoundError: no such directory, or it lacks config.json / model.safetensors.
            ValueError: a file is truncated, corrupted, of another format or lacks a key (the
                message names the file and what is wrong).
        """
        from ..io._read import check_format, read_json_object, read_safetensors, require_keys

        d = Path(directory)
        if not d.exists():
            raise FileNotFoundError(f"{d} not found: pass the directory written by "
                                    "`longshort classify train --out DIR`")  # fmt: skip
        if not (d / "config.json").is_file() or not (d / "model.safetensors").is_file():
            raise FileNotFoundError(f"{d} is not a saved classifier (needs config.json and "
                                    "model.safetensors, written by SequenceClassifier.save)")  # fmt: skip
        cfg_path = d / "config.json"
        hint = "retrain with `longshort classify train` (or SequenceClassifier.fit(...).save(DIR))"
        meta = read_json_object(cfg_path, hint)
        check_format(meta, cfg_path, FORMAT, hint)
        require_keys(meta, cfg_path, ["config", "input_size", "classes", "mean", "std"], hint)
        try:
            if not isinstance(meta["config"], dict):
                raise ValueError(f"'config' is a {type(meta['config']).__name__}, not an object")
            c = ClassifierConfig.from_dict(meta["config"])
            self = cls(**{k: v for k, v in c.to_dict().items()})
            self.classes_ = np.asarray(meta["classes"])
            self.mean = np.asarray(meta["mean"], np.float64)
            self.std = np.asarray(meta["std"], np.float64)
            n_in = meta["input_size"]
            if self.mean.shape != (n_in,) or self.std.shape != (n_in,):
                raise ValueError(f"'mean' and 'std' must hold input_size={n_in} numbers")
            if self.classes_.ndim != 1 or len(self.classes_) < 2:
                raise ValueError("'classes' must list at least 2 labels")
            self.net = ClassifierNet(c, n_in, len(self.classes_))
        except (TypeError, ValueError) as e:
            raise ValueError(f"{cfg_path} holds an invalid classifier: {e}; {hint}") from None
        self.net.load_state_dict(read_safetensors(d / "model.safetensors", hint))
        self.net.eval()
        return self
