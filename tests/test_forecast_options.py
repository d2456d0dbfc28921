"""The Forecaster's options for real series: residual scaling, the level-adjusted seasonal
baseline and its automatic choice, calendar cycles the data covers, and seed ensembles."""

import json

import numpy as np
import pandas as pd
import pytest

import longshort as ls
from longshort.cli import main
from longshort.forecast.features import (
    Inputs,
    Scaler,
    Window,
    calendar_cycles,
    calendar_features,
    residual_scale,
    windows,
)
from longshort.models.forecaster import ForecastEnsemble

FAST = dict(hidden_size=4, epochs=1, batch_size=32, patience=None, calibrate=False, seed=0)


def _zero_head(f: ls.Forecaster) -> ls.Forecaster:
    nets = f.net.members if isinstance(f.net, ForecastEnsemble) else [f.net]
    for net in nets:
        net.head.weight.data[:] = 0.0
        net.head.bias.data[:] = 0.0
    return f


def _monthly(trend: float, n: int = 120, seed: int = 1) -> pd.DataFrame:
    t = pd.date_range("2000-01-01", periods=n, freq="MS")
    rng = np.random.default_rng(seed)
    y = 50 + trend * np.arange(n) + 10 * np.sin(2 * np.pi * np.arange(n) / 12)
    return pd.DataFrame({"t": t, "y": y + rng.normal(0, 1, n)})


def test_residual_scale_is_the_rms_of_the_observed_lag_differences():
    y = np.array([0.0, 1.0, 3.0, 6.0, 10.0, 15.0])
    obs = np.ones(6, bool)
    assert residual_scale(y, obs, 2) == pytest.approx(np.sqrt(np.mean(np.square([3, 5, 7, 9]))))
    obs[3] = False  # pairs (1, 3) and (3, 5) are left out
    assert residual_scale(y, obs, 2) == pytest.approx(np.sqrt((9 + 49) / 2))
    assert residual_scale(np.ones(6), obs, 2) == 1.0 and residual_scale(y, obs, 9) == 1.0


def test_scaler_keeps_the_residual_scale_and_reads_old_files():
    s = ls.forecast.prepare(_monthly(0.3), "t", "y")[0][0]
    sc = Scaler.fit(s, 100, lag=12)
    d = (s.y[12:100] - s.y[:88]) / sc.scale
    assert sc.rscale == pytest.approx(np.sqrt(np.mean(d**2)))
    assert Scaler.from_dict(json.loads(json.dumps(sc.to_dict()))).rscale == sc.rscale
    old = {k: v for k, v in sc.to_dict().items() if k != "rscale"}  # a model saved before
    assert Scaler.from_dict(old).rscale == 1.0 and Scaler.fit(s, 100).rscale == 1.0


def test_windows_put_differences_and_targets_in_units_of_the_residual_scale():
    z = np.arange(20.0) ** 2
    r = 4.0
    inp = Inputs(z, np.zeros((20, 0)), np.zeros((20, 0)), np.ones(20, bool), r)
    w = Window(context=3, back=8, steps=4, season=5, baseline="seasonal", lag=5)
    out = windows(inp, np.array([10]), w)
    base = z[[5, 6, 7, 8]]
    np.testing.assert_allclose(out["y"][0], (z[10:14] - base) / r, rtol=1e-6)
    level, d = z[7:10].mean(), (z[7:10] - z[2:5]) / r
    np.testing.assert_allclose(out["x"][0, :, 0], z[7:10] - level, rtol=1e-6)  # level: z units
    np.testing.assert_allclose(out["x"][0, :, 1], d, rtol=1e-6)
    np.testing.assert_allclose(out["extra"][0, 3:6], d, rtol=1e-6)


def test_residual_scaling_helps_a_smooth_seasonal_series():
    """The daily cycle (amplitude 10) hides day-to-day changes of ~0.1: in units of the series'
    standard deviation the corrections are tiny, in units of their own RMS they are not."""
    n = 24 * 60
    t = np.arange(n)
    y = 40 + 10 * np.sin(2 * np.pi * t / 24) + 3 * np.sin(2 * np.pi * t / (24 * 9))
    df = pd.DataFrame({"t": pd.date_range("2010-01-01", periods=n, freq="h"), "y": y})
    opts = dict(horizon=24, context=48, hidden_size=8, epochs=6, patience=None, stride=2, seed=0)
    mase = {}
    for scaled in (True, False):
        f = ls.Forecaster(scale_residuals=scaled, **opts)
        m = f.backtest(df, folds=4, time="t", target="y", ets=False).metrics
        mase[scaled] = m["models"]["lstm"]["mase"]
    assert mase[True] < 0.5 * mase[False]


@pytest.mark.parametrize("strategy", ["direct", "recursive"])
def test_seasonal_level_zero_head_is_the_seasonal_random_walk(strategy):
    df = _monthly(0.3)
    y = df["y"].to_numpy()
    f = _zero_head(ls.Forecaster(horizon=18, context=6, baseline="seasonal_level",
                                 strategy=strategy, **FAST).fit(df, time="t", target="y"))  # fmt: skip
    assert f.season == 12 and f.window.back == 6 + 12 and f.window.lag == 12
    h, n = np.arange(18), len(y)
    expect = y[n - 12 + h % 12] + (1 + h // 12) * (y[-1] - y[-13])  # (1 - B)(1 - B^12) y = e
    np.testing.assert_allclose(f.predict(df)["forecast"], expect, rtol=1e-9)


def test_auto_baseline_is_chosen_on_the_training_data_and_saved(tmp_path):
    trend = ls.Forecaster(horizon=6, context=12, baseline="auto", **FAST)
    trend.fit(_monthly(2.0), time="t", target="y")  # last year's values lag by 24: add the change
    assert trend.window.baseline == "seasonal_level"
    flat = ls.Forecaster(horizon=6, context=12, baseline="auto", **FAST)
    flat.fit(_monthly(0.0), time="t", target="y")  # the change is noise: leave it out
    assert flat.window.baseline == "seasonal"
    trend.save(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["config"]["baseline"] == "auto" and saved["baseline"] == "seasonal_level"
    assert ls.Forecaster.load(tmp_path / "m").window.baseline == "seasonal_level"
    m = ls.Forecaster(horizon=6, context=12, baseline="auto", **FAST).backtest(
        _monthly(2.0), folds=2, time="t", target="y", ets=False
    ).metrics  # fmt: skip
    assert m["baseline"] == "seasonal_level"


def test_calendar_cycles_need_two_periods_of_history():
    weeks12 = pd.Timedelta(weeks=12)
    assert calendar_cycles("30min") == ("day", "week", "year")
    assert calendar_cycles("30min", weeks12) == ("day", "week")  # day of year would be a trend
    assert calendar_cycles("h", pd.Timedelta(days=364)) == ("day", "week")
    assert calendar_cycles("h", pd.Timedelta(days=731)) == ("day", "week", "year")
    assert calendar_cycles("D", pd.Timedelta(days=10)) == ()
    assert calendar_cycles("D", pd.Timedelta(days=800)) == ("week", "year")
    assert calendar_cycles("MS") == ("year",) and calendar_cycles(1) == ()
    time = pd.date_range("2000-06-05", periods=10, freq="30min")
    week = calendar_features(time, "30min", ("week",))
    phase = (time.dayofweek + (time.hour * 60 + time.minute) / 1440) / 7
    np.testing.assert_allclose(
        week, np.stack([np.sin(2 * np.pi * phase), np.cos(2 * np.pi * phase)], 1)
    )
    assert calendar_features(time, "30min", ()).shape == (10, 0)


def test_forecaster_reads_only_the_cycles_its_training_data_covers(tmp_path):
    t = pd.date_range("2000-06-05", periods=48 * 7 * 3, freq="30min")  # three weeks
    y = 10 + np.sin(2 * np.pi * np.arange(len(t)) / 48)
    df = pd.DataFrame({"t": t, "y": y})
    f = ls.Forecaster(horizon=12, context=48, calendar=True, **FAST).fit(df, time="t", target="y")
    assert f.cycles == ("day", "week") and f.net.dims[0] == 2 + 4  # z - w, d, 2 x sin/cos
    f.save(tmp_path / "m")
    g = ls.Forecaster.load(tmp_path / "m")
    assert g.cycles == ("day", "week")
    pd.testing.assert_frame_equal(f.predict(df), g.predict(df))
    assert ls.Forecaster(horizon=12, context=48, **FAST).fit(df, time="t", target="y").cycles == ()


def test_ensemble_averages_its_members_and_round_trips(tmp_path):
    df = _monthly(0.3)
    f = ls.Forecaster(horizon=6, context=12, ensemble=3, **{**FAST, "epochs": 2})
    f.fit(df, time="t", target="y")
    assert isinstance(f.net, ForecastEnsemble) and len(f.net.members) == 3
    assert len(f.train_results) == 3 and "members.2.lstm.weight_ih_l0" in f.net.state_dict()
    x = np.random.default_rng(0).standard_normal((2, 12, f.net.dims[0])).astype(np.float32)
    e = np.random.default_rng(1).standard_normal((2, f.net.dims[1])).astype(np.float32)
    outs = [m(x, e) for m in f.net.members]
    assert not np.allclose(outs[0], outs[1])  # different seeds
    np.testing.assert_allclose(f.net(x, e), np.mean(outs, axis=0), rtol=1e-6)
    f.save(tmp_path / "m")
    pd.testing.assert_frame_equal(f.predict(df), ls.Forecaster.load(tmp_path / "m").predict(df))
    single = ls.Forecaster(horizon=6, context=12, **{**FAST, "epochs": 2}).fit(
        df, time="t", target="y"
    )
    np.testing.assert_allclose(single.net(x, e), outs[0], rtol=1e-6)  # member 0 = seed 0 alone
    with pytest.raises(ValueError, match="ensemble must be a positive integer"):
        ls.Forecaster(ensemble=0)


def test_cli_ensemble_and_auto_baseline(tmp_path, capsys):
    _monthly(2.0).to_csv(tmp_path / "m.csv", index=False)
    argv = ["forecast", "backtest", "--data", tmp_path / "m.csv", "--time", "t", "--target", "y",
            "--horizon", "6", "--context", "12", "--baseline", "auto", "--ensemble", "2",
            "--hidden-size", "4", "--epochs", "1", "--folds", "2", "--no-ets",
            "--out", tmp_path / "bt"]  # fmt: skip
    assert main([str(a) for a in argv]) == 0
    m = json.loads((tmp_path / "bt" / "metrics.json").read_text())
    assert m["baseline"] == "seasonal_level" and len(m["epochs"]) == 2
    assert "2 networks" in (tmp_path / "bt" / "report.md").read_text()
    capsys.readouterr()


def test_interval_offsets_cover_each_side_and_never_narrow():
    """Each side misses at most its own share of the calibration scores, and the interval is never
    narrower than the symmetric conformal one; models saved with one (H,) offset still load."""
    from longshort.forecast.predict import _sides
    from longshort.forecast.training import _offsets

    rng = np.random.default_rng(0)
    y = rng.gamma(2.0, 1.0, size=(400, 3))  # skewed truths, 3 horizon steps
    q_lo, q_hi = np.full_like(y, 0.8), np.full_like(y, 2.0)
    lo_s, hi_s = q_lo - y, y - q_hi
    sym = _offsets(np.fmax(lo_s, hi_s), 0.8)
    lower = np.maximum(_offsets(lo_s, 0.9), sym)
    upper = np.maximum(_offsets(hi_s, 0.9), sym)
    assert np.all(lower >= sym) and np.all(upper >= sym)
    assert np.all(np.mean(y < q_lo - lower, axis=0) <= 0.1)
    assert np.all(np.mean(y > q_hi + upper, axis=0) <= 0.1)
    inside = (y >= q_lo - lower) & (y <= q_hi + upper)
    assert np.all(inside.mean(axis=0) >= 0.8)
    a, b = _sides(np.array([0.5, 0.25]))
    assert np.array_equal(a, b)
    a, b = _sides(np.stack([lower, upper]))
    assert np.array_equal(a, lower) and np.array_equal(b, upper)
