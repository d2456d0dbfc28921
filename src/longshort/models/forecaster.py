"""Forecaster: a global LSTM quantile forecaster for tables of time series.

    x (B, C, I) --LSTM--> h_C (B, Hd) --[h_C, extra]--> Linear --> (B, S, Q) quantiles

The LSTM reads the C context steps (scaled target minus the window's level, past-only covariates,
known-future covariates and calendar features); a linear head reads its last hidden state together
with the context values themselves, the baseline of the S output steps and their known-future
features (a linear "highway", as in LSTNet, so the seasonal lags reach the output directly). The
head predicts the residual from a baseline (`baseline="seasonal"`: the value one season before
each output step; "seasonal_level": that value moved by the last seasonal change; "auto": the
better of the two on the validation part; "last": the last value; "none": the window's mean level),
in units of the residuals' own RMS, and starts at zero, so the untrained model is the baseline
forecaster and training learns its corrections. `ensemble=K` trains K nets from seeds
seed .. seed + K - 1 on the same windows and averages their quantiles (ForecastEnsemble).
S = H for the direct strategy (one head for all steps), S = 1 for the recursive one (the median
is fed back H times).
The loss is the pinball loss over the quantile levels; after training, the outermost quantiles are
widened per horizon step and per side by conformal offsets measured on the validation windows
(conformalised quantile regression, Romano et al. 2019; forecast/training.py), so the interval
covers its nominal share.
See longshort.forecast.features for the windows and the scaling.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..nn import LSTM, Linear, Module, ModuleList
from ..ops.losses import pinball_backward, pinball_forward
from ..train import LossOutput, TrainConfig, fit

FORMAT = "longshort-forecaster-2"
BASELINES = ("seasonal", "seasonal_level", "last", "none", "auto")
POSITIVE = ("horizon", "context", "hidden_size", "num_layers", "epochs", "stride", "ensemble")


@dataclass
class ForecasterConfig:
    """Architecture, strategy and training budget; round-trips through JSON (see Forecaster)."""

    horizon: int = 12
    context: int = 48
    hidden_size: int = 32
    num_layers: int = 1
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    strategy: str = "direct"  # "direct" | "recursive"
    baseline: str = "seasonal"  # one of BASELINES: what the network corrects
    scale_residuals: bool = True  # residuals and differences in units of their own RMS
    calendar: bool = False
    season: int | None = None  # None = detected
    freq: str | int | None = None  # None = inferred
    dropout: float = 0.0
    epochs: int = 40
    batch_size: int = 64
    lr: float = 3e-3
    max_seconds: float | None = None
    patience: int | None = 6
    val_fraction: float = 0.1
    stride: int = 1
    calibrate: bool = True
    ensemble: int = 1  # networks trained from seeds seed .. seed + ensemble - 1, averaged
    seed: int = 0
    columns: dict = field(default_factory=dict)  # set by fit

    def __post_init__(self) -> None:
        self.quantiles = tuple(float(q) for q in self.quantiles)
        if self.strategy not in ("direct", "recursive"):
            raise ValueError(f"strategy must be 'direct' or 'recursive', got {self.strategy!r}")
        if self.baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {list(BASELINES)}, got {self.baseline!r}")
        for name in POSITIVE:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        s = self.season  # 0 would silently mean "detect": reject it like any non-positive value
        if s is not None and (isinstance(s, bool) or not isinstance(s, int) or s < 1):
            raise ValueError(f"season must be a positive integer or None (detected), got {s!r}")
        sd = self.seed
        if isinstance(sd, bool) or not isinstance(sd, int | np.integer) or sd < 0:
            raise ValueError(f"seed must be a non-negative integer (0, 1, 2, ...), got {sd!r}")
        vf = self.val_fraction
        if isinstance(vf, bool) or not isinstance(vf, int | float) or not 0 <= vf < 1:
            raise ValueError(
                f"val_fraction must be in [0, 1) (the share of windows held out for validation; "
                f"0 = none, e.g. 0.1), got {vf!r}"
            )
        if not self.quantiles or any(not 0 < q < 1 for q in self.quantiles):
            raise ValueError(f"quantiles must lie in (0, 1), got {list(self.quantiles)}")
        if list(self.quantiles) != sorted(set(self.quantiles)):
            raise ValueError(f"quantiles must be increasing, got {list(self.quantiles)}")

    @property
    def steps(self) -> int:
        return self.horizon if self.strategy == "direct" else 1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ForecasterConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown forecaster option(s) {unknown}; known: {sorted(known)}")
        return cls(**d)


class ForecastNet(Module):
    """LSTM encoder + linear head on [h_C, extra]; see the module docstring for the shapes."""

    def __init__(self, n_inputs: int, n_extra: int, steps: int, n_quantiles: int,
                 hidden_size: int, num_layers: int, dropout: float = 0.0, seed: int = 0,
                 zero_head: bool = False):  # fmt: skip
        super().__init__()
        self.dims = (n_inputs, n_extra, steps, n_quantiles, hidden_size, num_layers)
        self.lstm = LSTM(n_inputs, hidden_size, num_layers, dropout=dropout, seed=seed)
        self.head = Linear(hidden_size + n_extra, steps * n_quantiles, seed=seed + 1)
        if zero_head:  # start exactly at the baseline; the LSTM gets gradients after one step
            self.head.weight.data[:] = 0.0
            self.head.bias.data[:] = 0.0
        self.quantiles = np.zeros(n_quantiles, np.float32)
        self._shape = None

    def forward(self, x: np.ndarray, extra: np.ndarray) -> np.ndarray:
        """x (B, C, I), extra (B, E) -> quantiles (B, S, Q) in scaled units, relative to the level."""
        y, _ = self.lstm(x)  # (B, C, Hd)
        self._shape = y.shape
        out = self.head(np.concatenate([y[:, -1], extra], axis=1))  # (B, S * Q)
        return out.reshape(len(x), self.dims[2], self.dims[3])  # (B, S, Q)

    def backward(self, dout: np.ndarray) -> None:
        B, C, Hd = self._shape
        dcat = self.head.backward(dout.reshape(B, -1))  # (B, Hd + E)
        dy = np.zeros((B, C, Hd), np.float32)
        dy[:, -1] = dcat[:, :Hd]
        self.lstm.backward(dy, need_input_grad=False)  # x is data: dx is never used

    def loss(self, batch: dict) -> LossOutput:
        """Pinball loss of batch {"x", "extra", "y" (B, S), "mask" (B, S)} (training contract)."""
        pred = self.forward(batch["x"], batch["extra"])
        value, cache = pinball_forward(pred, batch["y"], self.quantiles, batch["mask"])
        return LossOutput(value, lambda: self.backward(pinball_backward(cache)))


class ForecastEnsemble(Module):
    """K ForecastNets of the same shape (`members.<k>.*`); forecasts the mean of their
    quantiles (quantile averaging), which lowers the variance that one seed's weights add."""

    def __init__(self, nets: list[ForecastNet]):
        super().__init__()
        self.members = ModuleList(nets)
        self.dims = nets[0].dims

    @property
    def quantiles(self) -> np.ndarray:
        return self.members[0].quantiles

    @quantiles.setter
    def quantiles(self, q) -> None:
        for m in self.members:
            m.quantiles = np.asarray(q, np.float32)

    def forward(self, x: np.ndarray, extra: np.ndarray) -> np.ndarray:
        """x (B, C, I), extra (B, E) -> the members' mean quantiles (B, S, Q)."""
        return np.mean([m(x, extra) for m in self.members], axis=0)


class Forecaster:
    """Quantile forecasts of one or many series from a table (scikit-learn-like).

    Example:
        >>> f = Forecaster(horizon=24, context=96, calendar=True).fit(df, time="ts", target="load")
        >>> f.predict(df)          # id, time, forecast (median), q0.1, q0.5, q0.9
        >>> f.backtest(df, folds=5).metrics["models"]["lstm"]["mase"]
        >>> f.save("model/"); Forecaster.load("model/")

    Args: see ForecasterConfig (keywords). After `fit`: `freq`, `season`, `window` (the geometry
    of the windows, longshort.forecast.features.Window), `scalers` (per series), `offsets`
    (conformal widening per step, scaled units), `net`, `fit_seconds`.
    """

    def __init__(self, horizon: int = 12, context: int = 48, **options):
        self.config = ForecasterConfig(horizon=horizon, context=context, **options)
        self.net: ForecastNet | ForecastEnsemble | None = None
        self.freq, self.season, self.scalers, self.offsets = None, 1, {}, None
        self.window, self.cycles = None, ()
        self.fit_seconds, self.train_result, self.train_results = 0.0, None, []

    @property
    def horizon(self) -> int:
        return self.config.horizon

    @property
    def quantiles(self) -> tuple[float, ...]:
        return self.config.quantiles

    def fit(self, df, time: str, target: str, id: str | None = None,
            covariates: list[str] | None = None, future_covariates: list[str] | None = None):  # fmt: skip
        """Train on every row with a target; `covariates` are past-only, `future_covariates`
        known in advance (their future values are needed by `predict`). Returns self."""
        from ..forecast.prepare import prepare

        cols = {"time": time, "target": target, "id": id,
                "covariates": list(covariates or []), "future_covariates": list(future_covariates or [])}  # fmt: skip
        series, freq = prepare(df, time, target, id, cols["covariates"], cols["future_covariates"],
                               self.config.freq)  # fmt: skip
        return self.fit_series(series, freq, cols)

    def fit_series(self, series: list, freq, columns: dict):
        """`fit` on already prepared Series (longshort.forecast.prepare)."""
        from ..forecast.baselines import detect_season
        from ..forecast.features import window_of
        from ..forecast.training import build_training, calibrate, choose_baseline, fit_cycles

        c = self.config
        c.columns, self.freq = dict(columns), freq
        self.season = c.season or detect_season(series[0].y[: series[0].n_hist], freq)
        base = choose_baseline(series, c, freq, self.season) if c.baseline == "auto" else None
        self.window = window_of(c, self.season, baseline=base)
        self.cycles = fit_cycles(c, freq, series)
        train, val, self.scalers = build_training(series, c, freq, self.window, self.cycles)
        t0 = time.perf_counter()
        nets, self.train_results = [], []
        for k in range(c.ensemble):  # each member: its own seed, an equal share of the time
            net = ForecastNet(train["x"].shape[2], train["extra"].shape[1], c.steps,
                              len(c.quantiles), c.hidden_size, c.num_layers, c.dropout, c.seed + k,
                              zero_head=self.window.baseline != "none")  # fmt: skip
            net.quantiles = np.asarray(c.quantiles, np.float32)
            share = None if c.max_seconds is None else c.max_seconds / c.ensemble
            cfg = TrainConfig(epochs=c.epochs, max_seconds=share, batch_size=c.batch_size,
                              lr=c.lr, seed=c.seed + k, patience=c.patience if val else None,
                              log_every=10**9, progress=False)  # fmt: skip
            self.train_results.append(fit(net, train, cfg, val_data=val or None))
            nets.append(net.eval())
        self.train_result = self.train_results[0]
        self.net = nets[0] if len(nets) == 1 else ForecastEnsemble(nets)
        self.offsets = calibrate(self, series) if c.calibrate else None
        self.fit_seconds = time.perf_counter() - t0
        return self

    def _check_fitted(self) -> None:
        if self.net is None:
            raise ValueError("the forecaster is not fitted; call fit(df, ...) or load(dir) first")

    def predict(self, df):
        """Forecasts of the `horizon` steps after the last target of each series in `df` (same
        columns as in fit; rows after the last target carry the known-future covariates).
        Returns a DataFrame: [id,] time, forecast (the median), q<level> per quantile."""
        from ..forecast.predict import predict_frame

        self._check_fitted()
        return predict_frame(self, df)

    def backtest(self, df, folds: int = 3, step: int | None = None, **columns):
        """Rolling-origin evaluation against the baselines (longshort.forecast.backtest). A fresh
        copy with this configuration is trained on the data before the first origin; this
        forecaster's fitted weights, scalers and settings are left as they were, so `predict`
        and `save` after a backtest give what they gave before it. Column names default to
        those of the last fit."""
        from ..forecast.backtest import backtest

        return backtest(self.unfitted_copy(), df, folds, step, **columns)

    def unfitted_copy(self) -> Forecaster:
        """A new, unfitted Forecaster with a deep copy of this one's configuration."""
        return type(self)(**self.config.to_dict())

    def save(self, directory) -> Path:
        """Write config.json (settings, scalers, offsets) and model.safetensors; no pickle."""
        from ..forecast.predict import save_forecaster

        self._check_fitted()
        return save_forecaster(self, Path(directory))

    @classmethod
    def load(cls, directory) -> Forecaster:
        """Read a forecaster written by `save`."""
        from ..forecast.predict import load_forecaster

        return load_forecaster(cls, Path(directory))

    def __repr__(self) -> str:
        c = self.config
        return (f"Forecaster(horizon={c.horizon}, context={c.context}, hidden_size={c.hidden_size}, "
                f"strategy={c.strategy!r}, quantiles={list(c.quantiles)})")  # fmt: skip


def _json_default(o):
    if isinstance(o, np.integer | np.floating):
        return o.item()
    raise TypeError(f"cannot write {type(o).__name__} to JSON")


def dumps(d: dict) -> str:
    """JSON for the saved config (NumPy scalars as numbers)."""
    return json.dumps(d, indent=2, default=_json_default)
