"""Applications: each composes nn layers and has fit / predict."""

from .forecaster import Forecaster, ForecasterConfig

__all__ = ["Forecaster", "ForecasterConfig"]
