"""Optimisers, gradient clipping and learning-rate schedules, each matching torch.optim."""

from .adam import Adam, AdamW
from .clip import clip_grad_norm
from .ntasgd import NTASGD
from .optimizer import Optimizer
from .schedules import CosineAnnealingLR, ReduceLROnPlateau, StepLR
from .sgd import SGD

__all__ = [
    "NTASGD",
    "SGD",
    "Adam",
    "AdamW",
    "CosineAnnealingLR",
    "Optimizer",
    "ReduceLROnPlateau",
    "StepLR",
    "clip_grad_norm",
]
