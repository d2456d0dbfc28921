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
    # the gates of its LSTM over the window it reads for that forecast
    from longshort.forecast.predict import lstm_window
    from longshort.inspect import gate_trace
    from longshort.models.forecaster import Forecaster

    code, out, _ = run(capsys, "inspect", "gates", "--model", tmp_path / "m", "--input", csv,
                       "--out", tmp_path / "g")  # fmt: skip
    assert code == 0 and (tmp_path / "g" / "gates.png").is_file()
    got = np.load(tmp_path / "g" / "gates.npz")
    model = Forecaster.load(tmp_path / "m")
    x, key = lstm_window(model, pd.read_csv(csv))
    assert got["x"].shape == x.shape and x.shape[0] >= 20  # the context window, every feature
    want = gate_trace(model.net.lstm, x)
    np.testing.assert_allclose(got["l0_o"], want[0]["o"], rtol=1e-5, atol=1e-6)
    np.save(tmp_path / "seq.npy", x)  # a forecaster reads its data file, not a sequence
    code, _, err = run(capsys, "inspect", "gates", "--model", tmp_path / "m", "--input",
                       tmp_path / "seq.npy")  # fmt: skip
    assert code == 2 and "holds a forecaster: --input takes its data file" in err


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
    elif name in ("bad_date", "date_format"):  # row 40 holds a bad date, the first one is valid
        df["year"] = pd.date_range("1700-01-01", periods=len(df), freq="YS").astype(str)
        df.loc[39, "year"] = "19th of never" if name == "bad_date" else "1739/01/01"
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
        ("bad_date", "sunspots", "time column 'year': data row 40 (1-based, header not counted) "
         "holds '19th of never', which is not a date; correct or remove that row"),
        ("date_format", "sunspots", "data row 40 (1-based, header not counted) holds "
         "'1739/01/01', which is not in the format of the first timestamp '1700-01-01'"),
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
    assert code == 2 and f"no model directory at {tmp_path / 'nope'}" in err
    assert "`longshort forecast train" in err


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--context", 0, "--context must be a positive integer, got 0 (leave it out for 3 x horizon)"),
        ("--context", -5, "--context must be a positive integer, got -5"),
        ("--season", 0, "--season must be a positive integer, got 0 (leave it out to detect it)"),
        ("--step", 0, "--step must be a positive integer, got 0"),
        ("--hidden-size", 0, "--hidden-size must be a positive integer, got 0"),
    ],
)  # fmt: skip
def test_zero_is_rejected_not_defaulted(csv, tmp_path, capsys, option, value, message):
    """--context 0 used to fall back to the default (3 x horizon) while -5 was an error."""
    code, out, err = run(capsys, "forecast", "backtest", "--data", csv, "--time", "year",
                         "--target", "sunspots", "--horizon", 5, "--folds", 2, option, value,
                         "--out", tmp_path / "o")  # fmt: skip
    assert code == 2 and out == "" and err.startswith("longshort: error: ")
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "o").exists()


def test_predict_says_what_kind_of_model_a_directory_holds(csv, tmp_path, capsys):
    """A text model, a classifier or a file given as --model: say what it is and how to train a
    forecaster with the CLI (it said `config.json not found; ... written by save()`)."""
    from longshort.models.classifier import SequenceClassifier

    x = np.random.default_rng(0).standard_normal((4, 5, 2))
    SequenceClassifier(hidden_size=3, epochs=1).fit(x, [0, 1, 0, 1]).save(tmp_path / "clf")
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat. " * 200)
    assert main(["text", "train", "--data", str(text), "--out", str(tmp_path / "txt"),
                 "--steps", "2", "--hidden-size", "8", "--embedding-size", "4", "--lanes", "2",
                 "--bptt", "8", "--no-progress"]) == 0  # fmt: skip
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text('{"format": "longshort-forecaster-1"}')
    capsys.readouterr()
    train = "train one with `longshort forecast train --data F.csv"
    for model, what in (
        ("txt", "is a text model (made by `longshort text train`), not a forecaster"),
        ("clf", "is a sequence classifier (made by `longshort classify train`), not a forecaster"),
        ("old", "holds a forecaster in format 'longshort-forecaster-1'; this version reads"),
        ("text.txt", "is a file, not a model directory"),
    ):
        code, out, err = run(capsys, "forecast", "predict", "--model", tmp_path / model, "--data",
                             csv, "--out", tmp_path / "f.csv")  # fmt: skip
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert f"{tmp_path / model} {what}" in err and train in err.replace("it again", "one"), err
