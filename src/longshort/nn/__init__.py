"""Layers that hold parameters, in PyTorch's names and layout."""

from .dropout import Dropout
from .embedding import Embedding
from .gru import GRU
from .linear import Linear
from .lstm import LSTM
from .module import Module, ModuleList, Parameter
from .rnn import RNN

__all__ = [
    "Dropout",
    "Embedding",
    "GRU",
    "LSTM",
    "Linear",
    "Module",
    "ModuleList",
    "Parameter",
    "RNN",
]
