"""Loaders for real data that work offline.

Bundled with the package (see data/bundled/README.md for sources and licences):
    load_sunspots()  yearly mean sunspot number 1700-2008, NOAA NGDC, public domain (309 values)
"""

from __future__ import annotations

from importlib import resources

import numpy as np


def _bundled_csv(name: str) -> np.ndarray:
    path = resources.files("longshort.data") / "bundled" / name
    with path.open("r", encoding="utf-8") as f:
        return np.loadtxt(f, delimiter=",", skiprows=1, dtype=np.float64)


def load_sunspots() -> tuple[np.ndarray, np.ndarray]:
    """Yearly sunspots: (years (309,) int, values (309,) float64)."""
    table = _bundled_csv("sunspots_yearly.csv")  # (309, 2)
    return table[:, 0].astype(np.int64), table[:, 1]
