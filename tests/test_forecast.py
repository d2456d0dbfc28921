"""The Forecaster API on real data: preparation, baselines, backtest metrics, save/load, covariates."""

import warnings

import numpy as np
import pandas as pd
import pytest

import longshort as ls
from longshort.data import load_sunspots
from longshort.forecast import prepare
from longshort.forecast.baselines import detect_season, seasonal_naive
from longshort.forecast.frame import infer_freq

FAST = dict(hidden_size=8, epochs=4, batch_size=32, patience=None, seed=0)


@pytest.fixture(scope="module")
def sunspots() -> pd.DataFrame:
    years, values = load_sunspots()
    return pd.DataFrame({"year": years, "sunspots": values})


def test_frequency_inference_on_real_and_calendar_axes(sunspots):
    assert infer_freq(pd.Index(sunspots["year"].to_numpy())) == 1
    half_hours = pd.date_range("2000-06-05", periods=50, freq="30min")
    assert infer_freq(half_hours) == "30min"
    months = pd.date_range("1749-01-01", periods=40, freq="MS").delete([5, 17])  # gaps
    assert infer_freq(months) == "MS"
    with pytest.raises(ValueError, match="cannot infer the frequency"):
        infer_freq(pd.to_datetime(["2020-01-01", "2020-01-03", "2020-01-08", "2020-01-20"]))


def test_gaps_and_missing_values_are_filled_masked_and_reported():
    t = pd.date_range("1958-03-29", periods=30, freq="W-SAT")
    y = np.arange(30.0)
    y[4] = np.nan
    df = pd.DataFrame({"t": t, "y": y}).drop(index=[10, 11])  # two missing timestamps
    with pytest.warns(UserWarning, match=r"3 missing values in 1 series \(2 of them missing"):
        (s,), freq = prepare(df, "t", "y")
    assert freq == "W-SAT" and len(s) == 30
    np.testing.assert_allclose(s.y, np.arange(30.0))  # linear interpolation of a line is exact
    assert np.flatnonzero(~s.observed).tolist() == [4, 10, 11]


def test_season_detection_and_seasonal_naive(sunspots):
    assert detect_season(sunspots["sunspots"].to_numpy(), 1) in (10, 11)  # the solar cycle
    hourly = np.sin(2 * np.pi * np.arange(24 * 20) / 24)
    assert detect_season(hourly, "h") == 24
    np.testing.assert_array_equal(seasonal_naive(np.arange(10.0), 5, 3), [7, 8, 9, 7, 8])


def _independent_scores(df, horizon, folds, season):
    """Naive and seasonal-naive MAE and MASE over the folds, computed from scratch."""
    y = df["sunspots"].to_numpy()
    n = len(y)
    origins = [n - horizon - horizon * k for k in range(folds - 1, -1, -1)]
    scale = np.mean(np.abs(y[season : origins[0]] - y[: origins[0] - season]))
    err = {"naive": [], "seasonal_naive": []}
    for o in origins:
        truth = y[o : o + horizon]
        err["naive"] += list(np.abs(truth - y[o - 1]))
        snaive = [y[o - season + (h % season)] for h in range(horizon)]
        err["seasonal_naive"] += list(np.abs(truth - snaive))
    return {k: (np.mean(v), np.mean(v) / scale) for k, v in err.items()}


def test_backtest_scores_match_an_independent_computation(sunspots):
    f = ls.Forecaster(horizon=11, context=33, **FAST)
    res = f.backtest(sunspots, folds=4, time="year", target="sunspots", ets=False)
    m = res.metrics
    assert m["season"] in (10, 11) and m["folds"] == 4 and len(res.forecasts) == 44
    for name, (mae, mase) in _independent_scores(sunspots, 11, 4, m["season"]).items():
        assert m["models"][name]["mae"] == pytest.approx(mae, rel=1e-6)
        assert m["models"][name]["mase"] == pytest.approx(mase, rel=1e-6)
    fc = res.forecasts
    lstm_mae = np.mean(np.abs(fc["truth"] - fc["lstm"]))
    assert m["models"]["lstm"]["mae"] == pytest.approx(lstm_mae, rel=1e-6)
    inside = (fc["truth"] >= fc["lstm_q0.1"]) & (fc["truth"] <= fc["lstm_q0.9"])
    assert m["coverage"]["lstm"] == pytest.approx(inside.mean())
    assert (fc["lstm_q0.1"] <= fc["lstm_q0.5"]).all() and (fc["lstm_q0.5"] <= fc["lstm_q0.9"]).all()


@pytest.mark.parametrize("strategy", ["direct", "recursive"])
def test_save_load_round_trip_gives_identical_predictions(sunspots, strategy, tmp_path):
    f = ls.Forecaster(horizon=6, context=20, strategy=strategy, **FAST)
    f.fit(sunspots, time="year", target="sunspots")
    before = f.predict(sunspots)
    assert before["year"].tolist() == list(range(2009, 2015))
    f.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    after = ls.Forecaster.load(tmp_path / "m").predict(sunspots)
    pd.testing.assert_frame_equal(before, after)


def test_global_model_with_covariates_and_calendar():
    t = pd.date_range("2021-01-01", periods=24 * 12, freq="h")
    rng = np.random.default_rng(0)
    rows = []
    for k, level in (("a", 10.0), ("b", 1000.0)):  # very different scales: per-series scaling
        temp = np.sin(2 * np.pi * np.arange(len(t)) / 24)
        y = level * (1 + 0.1 * temp) + rng.normal(0, 0.01 * level, len(t))
        rows.append(pd.DataFrame({"id": k, "t": t, "y": y, "temp": temp, "load": y * 0.5}))
    df = pd.concat(rows, ignore_index=True)
    f = ls.Forecaster(horizon=12, context=24, calendar=True, **FAST)
    f.fit(df, time="t", target="y", id="id", covariates=["load"], future_covariates=["temp"])
    assert set(f.scalers) == {"a", "b"} and f.season == 24
    with pytest.raises(ValueError, match="known-future covariates temp"):
        f.predict(df)
    future = [pd.DataFrame({"id": k, "t": pd.date_range(t[-1], periods=13, freq="h")[1:],
                            "temp": 0.0}) for k in ("a", "b")]  # fmt: skip
    out = f.predict(pd.concat([df, *future], ignore_index=True))
    assert len(out) == 24 and out["id"].tolist() == ["a"] * 12 + ["b"] * 12
    a, b = out[out["id"] == "a"]["forecast"], out[out["id"] == "b"]["forecast"]
    assert 5 < a.mean() < 15 and 500 < b.mean() < 1500  # each in its own series' scale


def test_short_series_and_bad_options_are_clear_errors(sunspots):
    with pytest.raises(ValueError, match=r"\+ horizon 10 = \d+ are needed"):
        ls.Forecaster(horizon=10, context=400).fit(sunspots, time="year", target="sunspots")
    with pytest.raises(ValueError, match="strategy"):
        ls.Forecaster(strategy="sideways")
    with pytest.raises(ValueError, match="season must be a positive integer or None"):
        ls.Forecaster(season=0)  # 0 used to mean "detect it", silently
    with pytest.raises(ValueError, match="not fitted"):
        ls.Forecaster().predict(sunspots)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean series raises no warning
        prepare(sunspots, "year", "sunspots")


def test_backtest_leaves_the_fitted_forecaster_unchanged(sunspots, tmp_path):
    """fit -> predict -> backtest -> predict/save: the backtest trains a copy (it used to refit
    the forecaster itself on the data before the first origin)."""
    f = ls.Forecaster(horizon=6, context=20, **FAST).fit(sunspots, time="year", target="sunspots")
    before = f.predict(sunspots)
    f.save(tmp_path / "before")
    res = f.backtest(sunspots, folds=3, ets=False)  # columns from the fit
    pd.testing.assert_frame_equal(f.predict(sunspots), before)
    f.save(tmp_path / "after")
    for name in ("config.json", "model.safetensors"):
        assert (tmp_path / "after" / name).read_bytes() == (tmp_path / "before" / name).read_bytes()
    fresh = ls.Forecaster(horizon=6, context=20, **FAST)  # the backtest's own results: the same
    again = fresh.backtest(sunspots, folds=3, time="year", target="sunspots", ets=False)
    pd.testing.assert_frame_equal(res.forecasts, again.forecasts)
    assert res.metrics == again.metrics | {"train_seconds": res.metrics["train_seconds"]}
    assert fresh.net is None  # a backtest never fits the forecaster it is called on
    with pytest.raises(ValueError, match="step must be a positive integer"):
        f.backtest(sunspots, folds=3, step=0)
