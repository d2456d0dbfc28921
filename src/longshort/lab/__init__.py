"""The long-memory lab: LSTM, GRU and plain RNN on the long-time-lag tasks, on equal terms."""

from .runner import LabConfig, TaskBatches, TaskModel, build_model, evaluate, held_out, run

__all__ = ["LabConfig", "TaskBatches", "TaskModel", "build_model", "evaluate", "held_out", "run"]
