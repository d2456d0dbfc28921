"""Atomically written files get the usual mode (0666 & ~umask), not mkstemp's 0600."""

import os

from longshort.train.checkpoint import atomic_write_bytes


def test_atomic_write_uses_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"xyz")
    finally:
        os.umask(old)
    assert (tmp_path / "a.bin").read_bytes() == b"xyz"
    assert (os.stat(tmp_path / "a.bin").st_mode & 0o777) == 0o644


def test_saved_forecaster_files_get_the_usual_mode(tmp_path):
    import numpy as np
    import pandas as pd

    from longshort.models.forecaster import Forecaster
    from longshort.train.checkpoint import usual_mode

    t = np.arange(120)
    df = pd.DataFrame({"t": t, "y": np.sin(2 * np.pi * t / 12) + 0.01 * t})
    f = Forecaster(horizon=3, context=24, hidden_size=8, epochs=1, seed=0)
    f.fit(df, time="t", target="y")
    f.save(tmp_path / "f")
    for p in (tmp_path / "f").iterdir():
        assert p.stat().st_mode & 0o777 == usual_mode(), p.name
