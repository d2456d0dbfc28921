"""`longshort forecast train|predict|backtest` on real CSV/Parquet files, and every bad input."""

import json

import numpy as np
import pandas as pd
import pytest

from longshort.cli import main
from longshort.data import load_sunspots

FAST = ["--hidden-size", "8", "--epochs", "3"]


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    years, values = load_sunspots()
    path = tmp_path_factory.mktemp("data") / "sunspots.csv"
    pd.DataFrame({"year": years, "sunspots": values}).to_csv(path, index=False)
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_train_then_predict_writes_the_forecast(csv, tmp_path, capsys):
    code, out, _ = run(capsys, "forecast", "train", "--data", csv, "--time", "year", "--target",
                       "sunspots", "--horizon", 5, "--context", 20, *FAST, "--out", tmp_path / "m")  # fmt: skip
    assert code == 0 and "model written to" in out
    code, out, _ = run(capsys, "forecast", "predict", "--model", tmp_path / "m", "--data", csv,
                       "--out", tmp_path / "f.csv")  # fmt: skip
    f = pd.read_csv(tmp_path / "f.csv")
    assert code == 0 and list(f.columns) == ["year", "forecast", "q0.1", "q0.5", "q0.9"]
    assert f["year"].tolist() == [2009, 2010, 2011, 2012, 2013]
    assert (f["q0.1"] <= f["forecast"]).all() and (f["forecast"] <= f["q0.9"]).all()


def test_backtest_on_parquet_writes_metrics_plot_and_report(csv, tmp_path, capsys):
    pq = tmp_path / "sunspots.parquet"
    pd.read_csv(csv).to_parquet(pq)
    code, out, _ = run(capsys, "forecast", "backtest", "--data", pq, "--time", "year", "--target",
                       "sunspots", "--horizon", 11, "--folds", 3, *FAST, "--out", tmp_path / "bt")  # fmt: skip
    assert code == 0 and "| seasonal naive |" in out
    m = json.loads((tmp_path / "bt" / "metrics.json").read_text())
    assert set(m["models"]) == {"lstm", "naive", "seasonal_naive", "ets"}
    for scores in m["models"].values():
        assert set(scores) == {"mae", "rmse", "smape", "mase"}
        assert all(np.isfinite(v) and v >= 0 for v in scores.values())
    assert 0 <= m["coverage"]["lstm"] <= 1 and m["coverage"]["nominal"] == 0.8
    assert (tmp_path / "bt" / "forecast.png").read_bytes()[:4] == b"\x89PNG"
    assert "| LSTM (longshort) |" in (tmp_path / "bt" / "report.md").read_text()


def test_missing_values_give_a_warning_not_an_error(csv, tmp_path, capsys):
    df = pd.read_csv(csv)
    df.loc[[50, 51, 120], "sunspots"] = np.nan
    df.drop(index=[200]).to_csv(tmp_path / "gaps.csv", index=False)
    code, _, err = run(capsys, "forecast", "train", "--data", tmp_path / "gaps.csv", "--time",
                       "year", "--target", "sunspots", "--horizon", 3, *FAST, "--out", tmp_path / "m")  # fmt: skip
    assert code == 0
    assert "longshort: warning: target 'sunspots': 4 missing values" in err and "1750" in err


def _bad(tmp_path, name: str) -> tuple[str, list[str]]:
    """Write one bad file; returns (path, extra args)."""
    years, values = load_sunspots()
    df = pd.DataFrame({"year": years, "sunspots": values})
    path = tmp_path / f"{name}.csv"
    if name == "empty":
        path.write_text("")
        return path, []
    if name == "non_numeric":
        df["sunspots"] = df["sunspots"].astype(object)
        df.loc[7, "sunspots"] = "lots"
    elif name == "inf":
        df["sunspots"] = df["sunspots"].astype(float)
        df.loc[4, "sunspots"] = np.inf
    elif name == "short":
        df = df.head(12)
    elif name == "duplicated":
        df.loc[10, "year"] = df.loc[9, "year"]
    elif name == "all_nan":
        df["sunspots"] = np.nan
    elif name == "unknown_freq":
        df["year"] = np.cumsum(np.random.default_rng(0).integers(1, 9, len(df)))
    df.to_csv(path, index=False)
    return path, []


@pytest.mark.parametrize(
    "case, target, message",
    [
        ("empty", "sunspots", "is empty"),
        ("ok", "sunspot", "no column 'sunspot' (the target column); the table has columns: year, sunspots"),
        ("non_numeric", "sunspots", "column 'sunspots' must be numeric but row 8 holds 'lots'"),
        ("inf", "sunspots", "column 'sunspots' holds an infinite value (inf) in row 5"),
        ("short", "sunspots", "the series has 12 values but context 15 + horizon 5 = 20 are needed"),
        ("duplicated", "sunspots", "duplicated timestamp 1709 in column 'year'"),
        ("all_nan", "sunspots", "target 'sunspots' has no values"),
        ("unknown_freq", "sunspots", "cannot infer the frequency of 'year'"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, case, target, message):
    path, extra = _bad(tmp_path, case)
    code, out, err = run(capsys, "forecast", "backtest", "--data", path, "--time", "year",
                         "--target", target, "--horizon", 5, "--context", 15, "--folds", 2,
                         *FAST, *extra, "--out", tmp_path / "o")  # fmt: skip
    assert code == 2 and out == ""
    assert err.startswith("longshort: error: ") and err.count("\n") == 1, err
    assert message in err and "Traceback" not in err


def test_unknown_frequency_alias_and_missing_model_dir(csv, tmp_path, capsys):
    code, _, err = run(capsys, "forecast", "train", "--data", csv, "--time", "year", "--target",
                       "sunspots", "--horizon", 3, "--freq", "fortnightly", "--out", tmp_path)  # fmt: skip
    assert code == 2 and "unknown frequency 'fortnightly'" in err
    code, _, err = run(capsys, "forecast", "predict", "--model", tmp_path / "nope", "--data", csv,
                       "--out", tmp_path / "f.csv")  # fmt: skip
    assert code == 2 and "config.json not found" in err
