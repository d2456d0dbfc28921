"""Next-step forecaster: an LSTM reads a window of the series, a linear head predicts the next value.

    x (B, W, F) --LSTM--> y (B, W, H) --last step--> (B, H) --Linear--> (B, 1)

The series is split in time: train | validation | test (the last `test_fraction`). It is
standardised with the training part's mean and standard deviation; training is Adam on the MSE with
gradient clipping, keeping the weights of the epoch with the best validation error. The test part
is never seen during training or model selection; it is scored one step ahead beside two
baselines fitted on the training part only: persistence y_hat[t] = y[t-1], and a linear
autoregression AR(W) on the same window, by least squares.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..data.windows import make_windows, train_val_split
from ..nn import LSTM, Linear, Module
from ..ops.losses import mse_backward, mse_forward
from ..optim import Adam, clip_grad_norm


@dataclass
class ForecasterConfig:
    window: int = 20
    hidden_size: int = 32
    num_layers: int = 1
    epochs: int = 150
    batch_size: int = 32
    lr: float = 5e-3
    clip: float = 1.0
    val_fraction: float = 0.15
    test_fraction: float = 0.2
    seed: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ForecasterConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown forecaster option(s) {unknown}; known: {sorted(known)}")
        return cls(**d)


class Forecaster(Module):
    """LSTM + Linear next-step predictor for a univariate series."""

    def __init__(self, config: ForecasterConfig | None = None):
        super().__init__()
        self.config = config or ForecasterConfig()
        c = self.config
        self.lstm = LSTM(1, c.hidden_size, c.num_layers, dtype=np.float64, seed=c.seed)
        self.head = Linear(c.hidden_size, 1, dtype=np.float64, seed=c.seed + 1)
        self.mean, self.std = 0.0, 1.0

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (B, W, 1) standardised -> (B, 1) standardised next value."""
        y, _ = self.lstm(x)  # (B, W, H)
        self._steps = y.shape[1]
        return self.head(y[:, -1])  # (B, 1)

    def backward(self, dout: np.ndarray) -> None:
        dlast = self.head.backward(dout)  # (B, H)
        dy = np.zeros((dlast.shape[0], self._steps, dlast.shape[1]), dlast.dtype)  # (B, W, H)
        dy[:, -1] = dlast
        self.lstm.backward(dy)

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """Raw-scale windows (B, W) or (B, W, 1) -> raw-scale next values (B,)."""
        w = np.asarray(windows, np.float64)
        w = w[..., None] if w.ndim == 2 else w
        out = self.forward((w - self.mean) / self.std)  # (B, 1)
        return out[:, 0] * self.std + self.mean

    def splits(self, n: int) -> tuple[int, int]:
        """Start indices of the validation and test parts of a length-n series."""
        c = self.config
        test = train_val_split(n, c.test_fraction)
        val = test - int(round(n * c.val_fraction))
        if val <= c.window + 1 or test - val < 1 or n - test < 1:
            raise ValueError(
                f"a series of {n} values is too short for window={c.window} with "
                f"val_fraction={c.val_fraction} and test_fraction={c.test_fraction}"
            )
        return val, test

    def fit(self, series: np.ndarray, on_epoch: Callable[[dict], None] | None = None) -> dict:
        """Train on a 1-D series; returns the test report (see `evaluate`)."""
        c = self.config
        s = np.asarray(series, np.float64)
        if s.ndim != 1:
            raise ValueError(f"Forecaster expects a 1-D series, got shape {s.shape}")
        val, test = self.splits(len(s))
        self.mean, self.std = float(s[:val].mean()), float(s[:val].std() + 1e-12)
        X, Y = make_windows((s - self.mean) / self.std, c.window)  # (M, W, 1), (M, 1)
        n_train = val - c.window  # windows whose target lies in the training part
        Xtr, Ytr = X[:n_train], Y[:n_train]
        opt = Adam(self.parameters(), lr=c.lr)
        rng = np.random.default_rng(c.seed)
        best, best_state = np.inf, self.state_dict()
        for epoch in range(c.epochs):
            self.train()
            order = rng.permutation(n_train)
            total = 0.0
            for a in range(0, n_train, c.batch_size):
                idx = order[a : a + c.batch_size]
                self.zero_grad()
                loss, cache = mse_forward(self.forward(Xtr[idx]), Ytr[idx])
                self.backward(mse_backward(cache))
                clip_grad_norm(self.parameters(), c.clip)
                opt.step()
                total += loss * len(idx)
            val_rmse = self.evaluate(s, val, test)["rmse"]
            if val_rmse < best:
                best, best_state = val_rmse, self.state_dict()
            if on_epoch is not None:
                on_epoch({"epoch": epoch + 1, "train_mse": total / n_train, "val_rmse": val_rmse})
        self.load_state_dict(best_state)
        return self.evaluate(s, test, len(s))

    def evaluate(self, series: np.ndarray, start: int, stop: int) -> dict:
        """One-step-ahead errors on series[start:stop] for the model and the two baselines."""
        self.eval()
        s = np.asarray(series, np.float64)
        w = self.config.window
        X, _ = make_windows(s[:stop], w)  # X[m] predicts s[m + w]
        truth = s[start:stop]
        preds = {
            "lstm": self.predict(X[start - w :]),
            "naive": s[start - 1 : stop - 1],
            "ar": _ar_forecast(s, w, self.splits(len(s))[0], X[start - w :]),
        }
        out = {"n": int(len(truth))}
        for k, p in preds.items():
            pre = "" if k == "lstm" else k + "_"
            out[pre + "rmse"] = float(np.sqrt(np.mean((p - truth) ** 2)))
            out[pre + "mae"] = float(np.mean(np.abs(p - truth)))
        return out


def _ar_forecast(s: np.ndarray, w: int, train_end: int, windows: np.ndarray) -> np.ndarray:
    """Linear AR(w) with intercept, least squares on targets before train_end; windows (M, W, 1)."""
    X, Y = make_windows(s[:train_end], w)  # (M', W, 1), (M', 1)
    A = np.concatenate([X[..., 0], np.ones((len(X), 1))], axis=1)  # (M', W + 1)
    coef, *_ = np.linalg.lstsq(A, Y[:, 0], rcond=None)
    return np.concatenate([windows[..., 0], np.ones((len(windows), 1))], axis=1) @ coef
