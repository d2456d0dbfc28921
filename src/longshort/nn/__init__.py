"""Layers that hold parameters, in PyTorch's names and layout."""

from .lstm import LSTM
from .module import Module, ModuleList, Parameter

__all__ = ["LSTM", "Module", "ModuleList", "Parameter"]
