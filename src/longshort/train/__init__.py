"""The one training loop every model uses, its batch sources and its checkpoints."""

from .batches import ArrayBatches, StreamBatches, detach_state, reset_state
from .callbacks import TrainingDiverged
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .contract import LossOutput, supervised_loss
from .loop import Trainer, TrainResult, fit

__all__ = [
    "ArrayBatches",
    "LossOutput",
    "StreamBatches",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "detach_state",
    "fit",
    "load_checkpoint",
    "reset_state",
    "save_checkpoint",
    "supervised_loss",
]
