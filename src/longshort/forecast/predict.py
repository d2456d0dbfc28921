"""Forecasting with a fitted Forecaster: windows -> quantiles, data frames, save and load.

A saved forecaster is a directory (nothing pickled, loading runs no code from it):

    config.json         {"format": "longshort-forecaster-2", "config": ForecasterConfig,
                         "freq", "season", "scalers": {series: {loc, scale, ...}},
                         "offsets": [2][H] (lower, upper) or null, "net": [n_inputs, n_extra, S, Q, hidden, layers]}
    model.safetensors   the ForecastNet state_dict (PyTorch names: lstm.weight_ih_l0, head.weight)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .._blas_threads import blas_threads
from .features import Inputs, Scaler, Window, assemble, gather, series_inputs, window_of
from .frame import Series, time_range
from .training import fit_cycles


def residual_lag(model) -> int:
    """The lag whose differences set a series' residual scale (0: residuals not rescaled)."""
    return model.window.lag if model.config.scale_residuals else 0


CHUNK = 2048  # windows per forward pass


def median_index(quantiles) -> int:
    """Index of the quantile level closest to 0.5 (the point forecast)."""
    return int(np.argmin(np.abs(np.asarray(quantiles) - 0.5)))


def _direct(net, zb, pb, kb, w: Window, r: float) -> np.ndarray:
    x, extra, base = assemble(zb, pb, kb, 0, w, rscale=r)
    return net(x, extra) * r + base[..., None]  # (M, H, Q)


def _recursive(net, zb, pb, kb, w: Window, H: int, mid: int, r: float) -> np.ndarray:
    out = np.empty((len(zb), H, net.dims[3]))
    zb = zb.copy()
    for k in range(H):  # each step reads the medians of the steps before it
        x, extra, base = assemble(zb, pb, kb, k, w, rscale=r)
        out[:, k] = net(x, extra)[:, 0] * r + base  # (M, Q)
        zb[:, w.back + k] = out[:, k, mid]
    return out


def forecast_scaled(model, inp: Inputs, ends, offsets: bool = True) -> np.ndarray:
    """Quantiles (M, H, Q) in the series' scaled units for the windows ending at `ends` (M,),
    sorted along Q, the outermost widened by the conformal offsets when `offsets`."""
    c, net, w = model.config, model.net, model.window
    ends = np.asarray(ends, np.int64)
    parts = []
    with blas_threads(1):  # NumPy's idle BLAS threads would spin on the kernels' cores
        for a in range(0, len(ends), CHUNK):
            zb, pb, kb, _ = gather(inp, ends[a : a + CHUNK], w.back, c.horizon)
            if c.strategy == "direct":
                parts.append(_direct(net, zb, pb, kb, w, inp.rscale))
            else:
                mid = median_index(c.quantiles)
                parts.append(_recursive(net, zb, pb, kb, w, c.horizon, mid, inp.rscale))
    q = np.sort(np.concatenate(parts).astype(np.float64), axis=2)
    if offsets and model.offsets is not None and q.shape[2] > 1:
        lo, hi = _sides(model.offsets)
        q[..., 0] -= lo
        q[..., -1] += hi
    return q


def _sides(offsets) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) offsets (H,): from (2, H), or one symmetric (H,) (models saved before)."""
    o = np.asarray(offsets, np.float64)
    return (o[0], o[1]) if o.ndim == 2 else (o, o)


def extend(s: Series, horizon: int, freq, future_cols: list[str]) -> Series:
    """The series with exactly `horizon` rows after its last target (time, covariates)."""
    n, end = s.n_hist, s.n_hist + horizon
    if len(s.y) < end and future_cols:
        raise ValueError(
            f"predict needs the known-future covariates {', '.join(future_cols)} for the "
            f"{horizon} steps after {s.time[n - 1]}; add those rows (target empty) to the data"
        )
    time = s.time[:end] if len(s.y) >= end else time_range(s.time[0], end, freq)

    def pad(a: np.ndarray) -> np.ndarray:
        a = a[:end]
        return np.pad(a, ((0, end - len(a)), (0, 0)), mode="edge") if len(a) < end else a

    y = np.concatenate([s.y[:n], np.full(horizon, np.nan)])
    obs = np.concatenate([s.observed[:n], np.zeros(horizon, bool)])
    return Series(s.key, time, y, obs, pad(s.past), pad(s.future), n)


def _series(model, df) -> list[Series]:
    """The series of df, read with the columns and frequency the model was trained on."""
    from .prepare import prepare

    cols = model.config.columns
    series, _ = prepare(df, cols["time"], cols["target"], cols["id"], cols["covariates"],
                        cols["future_covariates"], model.freq)  # fmt: skip
    return series


def _forecast_inputs(model, s: Series) -> tuple[Series, Scaler, Inputs]:
    """(the series extended by the horizon, its scaler, the scaled inputs) for the forecast
    after the end of s; a series shorter than the model's history is a ValueError."""
    c, back = model.config, model.window.back
    if s.n_hist < back:
        raise ValueError(
            f"{'the series' if s.key == 'series' else f'series {s.key!r}'} has {s.n_hist} "
            f"values but the model reads {back} steps of history; give at least {back} rows"
        )
    ext = extend(s, c.horizon, model.freq, c.columns["future_covariates"])
    sc = model.scalers.get(s.key) or Scaler.fit(s, s.n_hist, residual_lag(model))
    return ext, sc, series_inputs(ext, sc, model.freq, model.cycles)


def predict_frame(model, df) -> pd.DataFrame:
    """Forecaster.predict: one row per series and step (see there)."""
    c = model.config
    cols = c.columns
    frames = []
    for s in _series(model, df):
        ext, sc, inp = _forecast_inputs(model, s)
        q = forecast_scaled(model, inp, [s.n_hist])[0] * sc.scale + sc.loc  # (H, Q)
        f = pd.DataFrame({cols["time"]: ext.time[s.n_hist :]})
        if cols["id"] is not None:
            f.insert(0, cols["id"], s.key)
        f["forecast"] = q[:, median_index(c.quantiles)]
        for j, level in enumerate(c.quantiles):
            f[f"q{level:g}"] = q[:, j]
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def lstm_window(model, df) -> tuple[np.ndarray, str]:
    """What the network's LSTM reads for the forecast from the end of the first series in df:
    x (C, I) float32 (scaled target, its differences, covariates and calendar features, as
    `assemble` builds them), and that series' key. For `longshort inspect gates`."""
    s = _series(model, df)[0]
    _, _, inp = _forecast_inputs(model, s)
    zb, pb, kb, _ = gather(inp, np.array([s.n_hist]), model.window.back, model.config.horizon)
    x, _, _ = assemble(zb, pb, kb, 0, model.window, rscale=inp.rscale)
    return x[0], s.key


def save_forecaster(model, d: Path) -> Path:
    """Forecaster.save (see the module docstring)."""
    from safetensors.numpy import save as st_save

    from ..models.forecaster import FORMAT, dumps
    from ..train.checkpoint import atomic_write_bytes

    d.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "config": model.config.to_dict(),
        "freq": model.freq,
        "season": int(model.season),
        "cycles": list(model.cycles),
        "baseline": model.window.baseline,
        "scalers": {k: v.to_dict() for k, v in model.scalers.items()},
        "offsets": None if model.offsets is None else np.asarray(model.offsets).tolist(),
        "net": [int(v) for v in model.net.dims],
        "fit_seconds": model.fit_seconds,
    }
    tensors = {k: np.ascontiguousarray(v) for k, v in model.net.state_dict().items()}
    # atomic, and with the usual file mode (safetensors' save_file creates files 0600)
    atomic_write_bytes(d / "model.safetensors", st_save(tensors, metadata={"format": FORMAT}))
    atomic_write_bytes(d / "config.json", (dumps(meta) + "\n").encode())
    return d


def load_forecaster(cls, d: Path):
    """Forecaster.load (see the module docstring)."""
    from ..io._read import read_json_object, read_safetensors, require_keys
    from ..models.forecaster import FORMAT, ForecastEnsemble, ForecasterConfig, ForecastNet

    cfg_path, w_path = d / "config.json", d / "model.safetensors"
    meta = _read_json(cfg_path)
    if meta is None and cfg_path.is_file():
        read_json_object(cfg_path, TRAIN_HINT.replace("one", "it again", 1))  # says what is wrong
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _not_a_forecaster(d, meta)
    require_keys(meta, cfg_path, ["config", "freq", "season", "scalers", "offsets", "net"],
                 TRAIN_HINT.replace("one", "it again", 1))  # fmt: skip
    if not w_path.is_file():
        raise FileNotFoundError(f"{d} has no model.safetensors: {TRAIN_HINT}")
    model = cls.__new__(cls)
    model.config = ForecasterConfig.from_dict(meta["config"])
    model.freq, model.season = meta["freq"], meta["season"]
    model.window = window_of(model.config, model.season, baseline=meta.get("baseline"))
    cycles = meta.get("cycles")  # absent before format 2's cycles: every cycle of the step
    model.cycles = tuple(cycles) if cycles is not None else fit_cycles(model.config, model.freq)
    model.scalers = {k: Scaler.from_dict(v) for k, v in meta["scalers"].items()}
    model.offsets = None if meta["offsets"] is None else np.asarray(meta["offsets"])
    model.fit_seconds, model.train_result = meta.get("fit_seconds", 0.0), None
    model.train_results = []
    dims, k = meta["net"], model.config.ensemble
    nets = [ForecastNet(*dims, dropout=model.config.dropout) for _ in range(k)]
    model.net = nets[0] if k == 1 else ForecastEnsemble(nets)
    model.net.quantiles = np.asarray(model.config.quantiles, np.float32)
    model.net.load_state_dict(read_safetensors(w_path, TRAIN_HINT.replace("one", "it again", 1)))
    model.net.eval()
    return model


TRAIN_HINT = (
    "train one with `longshort forecast train --data F.csv --time COL --target COL --horizon H "
    "--out DIR` (or Forecaster.fit(...).save(DIR))"
)


def _read_json(path: Path):
    """The parsed JSON file, or None when it is missing or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _kind_of(d: Path, meta) -> str | None:
    """What other longshort model `d` holds, by the "format" its files carry (None: unknown)."""
    from ..io.store import FORMAT as LAYER_FORMAT
    from ..models.classifier import FORMAT as CLASSIFIER_FORMAT
    from ..text.workflow import FORMAT as TEXT_FORMAT
    from ..text.workflow import META_NAME as TEXT_META

    kinds = {
        CLASSIFIER_FORMAT: "a sequence classifier (made by `longshort classify train`)",
        LAYER_FORMAT: "a layer or sequence model (made by longshort.io.save)",
        TEXT_FORMAT: "a text model (made by `longshort text train`)",
    }
    text = _read_json(d / TEXT_META)
    for m in (meta, text):
        if isinstance(m, dict) and m.get("format") in kinds:
            return kinds[m["format"]]
    if isinstance(meta, dict) and meta.get("format"):
        return f"a {meta['format']!r} model"
    return None


def _not_a_forecaster(d: Path, meta) -> Exception:
    """The error for a directory that holds no forecaster, saying what it holds instead."""
    if not d.exists():
        return FileNotFoundError(f"no model directory at {d}; {TRAIN_HINT}")
    if not d.is_dir():
        return FileNotFoundError(f"{d} is a file, not a model directory; {TRAIN_HINT}")
    fmt = meta.get("format") if isinstance(meta, dict) else None
    if isinstance(fmt, str) and fmt.startswith("longshort-forecaster"):
        from ..models.forecaster import FORMAT

        return ValueError(f"{d} holds a forecaster in format {fmt!r}; this version reads "
                          f"{FORMAT!r}: {TRAIN_HINT.replace('one', 'it again', 1)}")  # fmt: skip
    kind = _kind_of(d, meta)
    if kind is not None:
        return ValueError(f"{d} is {kind}, not a forecaster; {TRAIN_HINT}")
    if meta is None and (d / "config.json").is_file():
        return ValueError(f"{d / 'config.json'} is not valid JSON; {TRAIN_HINT}")
    return FileNotFoundError(f"{d} is not a forecaster directory (no forecaster config.json); "
                             f"{TRAIN_HINT}")  # fmt: skip
