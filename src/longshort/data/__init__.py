"""Data: real series bundled or loaded from packages, and the windows models train on."""

from .sources import load_sunspots
from .windows import make_windows, train_val_split

__all__ = ["load_sunspots", "make_windows", "train_val_split"]
