"""End to end: the demo forecaster on the bundled real series, through the CLI."""

import numpy as np
import pytest

from longshort.cli import main
from longshort.data import load_sunspots, make_windows
from longshort.models import Forecaster, ForecasterConfig


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


def test_forecaster_beats_persistence_and_is_reproducible():
    _, values = load_sunspots()
    cfg = ForecasterConfig(epochs=25, seed=0)
    a = Forecaster(cfg).fit(values)
    b = Forecaster(cfg).fit(values)
    assert a == b  # same seed, same numbers
    assert a["rmse"] < 0.8 * a["naive_rmse"]


def test_cli_demo_runs(capsys):
    assert main(["demo", "--epochs", "15"]) == 0
    out = capsys.readouterr().out
    lstm_rmse = float(out.split("longshort LSTM")[1].split()[0])
    naive_rmse = float(out.split("persistence (naive)")[1].split()[0])
    assert lstm_rmse < naive_rmse


def test_cli_rejects_unknown_command(capsys):
    with pytest.raises(SystemExit):
        main(["frobnicate"])
    assert "invalid choice" in capsys.readouterr().err
