"""longshort: Long Short-Term Memory networks written by hand on NumPy.

`import longshort` loads only NumPy and the engine (nn, ops, optim). The applications and the
heavier subpackages (pandas, matplotlib, onnx, ...) load on first use of their names.
"""

from __future__ import annotations

import importlib

from . import nn, ops, optim

__version__ = "0.1.0"

# name -> module that defines it, imported on first access (PEP 562)
_LAZY = {
    "Forecaster": "longshort.models.forecaster",
    "LanguageModel": "longshort.models.language_model",
    "SequenceClassifier": "longshort.models.classifier",
    "RecurrentStack": "longshort.models.stack",
}
_SUBPACKAGES = ("data", "forecast", "inspect", "io", "kernels", "lab", "models", "text", "train")

__all__ = ["nn", "ops", "optim", "__version__", *_LAZY, *_SUBPACKAGES]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'longshort' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
