"""longshort: Long Short-Term Memory networks written by hand on NumPy."""

from . import nn, ops, optim

__version__ = "0.1.0"
__all__ = ["nn", "ops", "optim", "__version__"]
