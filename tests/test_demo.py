"""End to end: `longshort demo`, a backtested forecast of the bundled real series."""

import json

import numpy as np
import pytest

from longshort.cli import main
from longshort.data import load_sunspots, make_windows


def test_bundled_sunspots_loads_offline():
    years, values = load_sunspots()
    assert (years[0], years[-1], len(values)) == (1700, 2008, 309)
    assert values[:3].tolist() == [5.0, 11.0, 16.0]


def test_windows_align_inputs_and_targets():
    s = np.arange(10.0)
    X, Y = make_windows(s, window=3, horizon=2)
    assert X.shape == (6, 3, 1) and Y.shape == (6, 2)
    np.testing.assert_array_equal(X[2, :, 0], [2, 3, 4])
    np.testing.assert_array_equal(Y[2], [5, 6])


def test_cli_demo_backtests_against_the_baselines(tmp_path, capsys):
    out = tmp_path / "demo-output"
    assert main(["demo", "--out", str(out), "--folds", "3", "--epochs", "40", "--seed", "0"]) == 0
    printed = capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["models"]) == {"lstm", "naive", "seasonal_naive", "ets"} and m["folds"] == 3
    assert f"| {m['models']['lstm']['mae']:.4g} |" in printed  # the table shows the real numbers
    # The solar cycle makes persistence a poor forecaster 11 years ahead; the LSTM must beat it.
    assert m["models"]["lstm"]["mase"] < m["models"]["naive"]["mase"]
    assert (out / "forecast.png").stat().st_size > 10_000 and (out / "report.md").is_file()


def test_cli_rejects_unknown_command(capsys):
    with pytest.raises(SystemExit):
        main(["frobnicate"])
    assert "invalid choice" in capsys.readouterr().err
