"""The Forecaster's baselines: the network corrects a seasonal-naive, last-value or level forecast."""

import json

import numpy as np
import pandas as pd
import pytest

import longshort as ls
from longshort.cli import main
from longshort.forecast.baselines import naive, seasonal_naive
from longshort.forecast.features import Inputs, Window, windows

FAST = dict(hidden_size=4, epochs=1, batch_size=32, patience=None, calibrate=False, seed=0)


@pytest.fixture(scope="module")
def monthly() -> pd.DataFrame:
    t = pd.date_range("2000-01-01", periods=120, freq="MS")
    rng = np.random.default_rng(1)
    y = 50 + 0.3 * np.arange(120) + 10 * np.sin(2 * np.pi * np.arange(120) / 12)
    return pd.DataFrame({"t": t, "y": y + rng.normal(0, 1, 120)})


def _untrained(f: ls.Forecaster) -> ls.Forecaster:
    """Zero the head: the forecast is then the baseline itself."""
    f.net.head.weight.data[:] = 0.0
    f.net.head.bias.data[:] = 0.0
    return f


def test_windows_target_the_residual_from_the_seasonal_baseline():
    z = np.arange(20.0) ** 2
    inp = Inputs(z, np.zeros((20, 0)), np.zeros((20, 0)), np.ones(20, bool))
    w = Window(context=3, back=8, steps=4, season=5, baseline="seasonal", lag=5)
    out = windows(inp, np.array([10]), w)
    base = z[[5, 6, 7, 8]]  # one season (5) before each of the steps 10..13
    np.testing.assert_allclose(out["y"][0], z[10:14] - base, rtol=1e-6)
    level, d = z[7:10].mean(), z[7:10] - z[2:5]  # the context's level, its seasonal differences
    assert out["x"].shape == (1, 3, 2) and out["extra"].shape == (1, 3 + 3 + 4)
    np.testing.assert_allclose(out["x"][0, :, 0], z[7:10] - level, rtol=1e-6)
    np.testing.assert_allclose(out["x"][0, :, 1], d, rtol=1e-6)
    np.testing.assert_allclose(out["extra"][0, 3:6], d, rtol=1e-6)
    np.testing.assert_allclose(out["extra"][0, 6:], base - level, rtol=1e-6)  # the seasonal lags


@pytest.mark.parametrize("strategy", ["direct", "recursive"])
def test_a_zero_head_forecasts_exactly_the_seasonal_naive(monthly, strategy):
    f = ls.Forecaster(horizon=18, context=6, strategy=strategy, **FAST)
    f.fit(monthly, time="t", target="y")
    assert f.season == 12 and f.window.back == 6 + 12  # the context and one season more
    out = _untrained(f).predict(monthly)
    np.testing.assert_allclose(out["forecast"], seasonal_naive(monthly["y"].to_numpy(), 18, 12))


def test_last_and_none_baselines(monthly):
    y = monthly["y"].to_numpy()
    last = _untrained(ls.Forecaster(horizon=5, context=8, baseline="last", **FAST).fit(
        monthly, time="t", target="y"))  # fmt: skip
    np.testing.assert_allclose(last.predict(monthly)["forecast"], naive(y, 5))
    none = ls.Forecaster(horizon=5, context=8, baseline="none", **FAST)
    none.fit(monthly, time="t", target="y")
    assert none.window.back == 8  # no seasonal lookback
    np.testing.assert_allclose(_untrained(none).predict(monthly)["forecast"], y[-8:].mean())
    with pytest.raises(ValueError, match="baseline must be one of"):
        ls.Forecaster(baseline="yesterday")


def test_training_improves_on_the_baseline_and_beats_it_in_backtest(monthly):
    """The trend makes last year's values too low; the network learns the correction."""
    f = ls.Forecaster(horizon=12, context=24, hidden_size=8, epochs=60, patience=None, seed=0)
    m = f.backtest(monthly, folds=3, time="t", target="y", ets=False).metrics
    assert m["models"]["lstm"]["mase"] < 0.8 * m["models"]["seasonal_naive"]["mase"]


def test_cli_baseline_option_is_saved_and_used(monthly, tmp_path, capsys):
    monthly.to_csv(tmp_path / "m.csv", index=False)
    argv = ["forecast", "train", "--data", tmp_path / "m.csv", "--time", "t", "--target", "y",
            "--horizon", "4", "--context", "8", "--baseline", "last", "--hidden-size", "4",
            "--epochs", "1", "--out", tmp_path / "model"]  # fmt: skip
    assert main([str(a) for a in argv]) == 0
    saved = json.loads((tmp_path / "model" / "config.json").read_text())
    assert saved["config"]["baseline"] == "last" and saved["format"] == "longshort-forecaster-2"
    assert ls.Forecaster.load(tmp_path / "model").window.baseline == "last"
    capsys.readouterr()
