"""The training loop's one configuration object, a dataclass that round-trips through JSON.

Budget: training stops at whichever comes first of `epochs`, `max_steps` (optimiser steps) and
`max_seconds` (training time, summed over resumed runs); at least one must be set.

Schedules (`schedule`): "step" multiplies lr by `lr_gamma` every `lr_step_size` optimiser steps;
"cosine" anneals lr to `lr_min` over `lr_t_max` steps (default: the step budget, `max_steps` or
`epochs` x batches per epoch); "plateau" multiplies lr by `lr_gamma` after `plateau_patience`
validations without improvement (needs validation data). The schedule's state is checkpointed,
so a resumed run keeps the period it started with: set `lr_t_max` when you may resume with a
larger `max_steps`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = (None, "step", "cosine", "plateau")
# Fields that fix the order of the batches: changing them breaks an exact resume.
DATA_ORDER_FIELDS = ("seed", "batch_size", "shuffle", "drop_last")
# Fields a resumed run may change freely (how long to train, where to write, what to show).
BUDGET_FIELDS = ("epochs", "max_steps", "max_seconds", "progress", "resume", "blas_threads")


@dataclass
class TrainConfig:
    """Everything the loop needs besides the model and the data.

    Attributes:
        epochs, max_steps, max_seconds: the budget (see the module docstring); None = unbounded.
        batch_size, shuffle, drop_last: how arrays are cut into minibatches (ArrayBatches).
        optimizer, lr, weight_decay, momentum: the optimiser built when `fit` is not given one.
        schedule, lr_step_size, lr_gamma, lr_t_max, lr_min, plateau_patience: the lr schedule.
        clip_norm: clip gradients to this global L2 norm; None = no clipping.
        val_every: validate every this many optimiser steps; 0 = at the end of every
            `val_every_epochs`-th epoch instead.
        patience: stop after this many validations without an improvement larger than
            `min_delta`; None = no early stopping. restore_best: load the best-validation weights
            when training ends.
        seed: fixes the batch order (and anything else the loop draws); same seed = same run.
        log_every: one metrics row every this many steps (and at each validation).
        metrics_path: JSON-lines file for the metrics rows; None = keep them in memory only.
        checkpoint_dir, checkpoint_every: where and how often (steps) to write checkpoints; a
            checkpoint is also written when training stops. resume: continue from the checkpoint
            in `checkpoint_dir` when there is one (False and a checkpoint exists = an error).
        progress: show a progress bar on stderr; None = only when stderr is a terminal.
        explode_factor, explode_window: stop with an error when the loss exceeds
            `explode_factor` x the median of the last `explode_window` losses; None = off.
            A NaN or inf loss is always an error.
        blas_threads: NumPy's OpenBLAS threads while `fit` runs (restored after); None = leave
            them. 1 by default: idle OpenBLAS threads spin on the cores the fused kernels'
            threads need (a text-model step: 177 ms with 2, 139 ms with 1; see _blas_threads.py).
    """

    epochs: int | None = 10
    max_steps: int | None = None
    max_seconds: float | None = None
    batch_size: int = 32
    shuffle: bool = True
    drop_last: bool = False
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.0
    schedule: str | None = None
    lr_step_size: int = 1000
    lr_gamma: float = 0.1
    lr_t_max: int | None = None
    lr_min: float = 0.0
    plateau_patience: int = 5
    clip_norm: float | None = 1.0
    val_every: int = 0
    val_every_epochs: int = 1
    patience: int | None = None
    min_delta: float = 0.0
    restore_best: bool = True
    seed: int = 0
    log_every: int = 10
    metrics_path: str | None = None
    checkpoint_dir: str | None = None
    checkpoint_every: int | None = None
    resume: bool = True
    progress: bool | None = None
    explode_factor: float | None = 1e4
    explode_window: int = 100
    blas_threads: int | None = 1

    def __post_init__(self) -> None:
        if self.epochs is None and self.max_steps is None and self.max_seconds is None:
            raise ValueError("TrainConfig needs a budget: set epochs, max_steps or max_seconds")
        positive = ["batch_size", "log_every", "lr_step_size", "plateau_patience"]
        positive += ["explode_window", "val_every_epochs"]
        optional = ["epochs", "max_steps", "checkpoint_every", "lr_t_max", "patience"]
        optional += ["blas_threads"]
        for name in positive + optional:
            v = getattr(self, name)
            if v is None and name in optional:
                continue
            low = 1
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"TrainConfig.{name} must be an integer >= {low}, got {v!r}")
        if not isinstance(self.val_every, int) or self.val_every < 0:
            raise ValueError(f"TrainConfig.val_every must be an integer >= 0, got {self.val_every}")
        for name in ("max_seconds", "clip_norm", "explode_factor"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ValueError(f"TrainConfig.{name} must be positive or None, got {v!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"TrainConfig.optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"TrainConfig.schedule must be one of {SCHEDULES}, got {self.schedule!r}"
            )
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be positive, got {self.lr}")
        seed = self.seed
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(
                f"TrainConfig.seed must be a non-negative integer (0, 1, 2, ...), got {seed!r}"
            )
        g = self.lr_gamma
        if self.schedule == "step" and not (isinstance(g, int | float) and 0 < g < math.inf):
            raise ValueError(
                f"TrainConfig.lr_gamma must be a positive number for schedule='step' (lr is "
                f"multiplied by it every lr_step_size steps; e.g. 0.1), got {g!r}"
            )
        if self.schedule == "plateau" and not (isinstance(g, int | float) and 0 <= g < 1):
            raise ValueError(
                f"TrainConfig.lr_gamma must be in [0, 1) for schedule='plateau' (lr is multiplied "
                f"by it when the validation loss stalls; e.g. 0.1), got {g!r}"
            )
        lo = self.lr_min
        if not isinstance(lo, int | float) or isinstance(lo, bool) or not 0 <= lo < math.inf:
            raise ValueError(
                f"TrainConfig.lr_min must be a number >= 0 (the lowest lr of the cosine "
                f"schedule; e.g. 0.0), got {lo!r}"
            )
        if self.schedule == "cosine" and lo >= self.lr:
            raise ValueError(
                f"TrainConfig.lr_min ({lo}) must be below lr ({self.lr}) for schedule='cosine', "
                "which anneals lr down to lr_min"
            )
        if self.checkpoint_every is not None and self.checkpoint_dir is None:
            raise ValueError("TrainConfig.checkpoint_every needs checkpoint_dir (where to write)")

    # --- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Build from a dict; unknown keys are an error that lists the known ones."""
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(
                f"unknown TrainConfig option(s) {unknown}; known options: {', '.join(known)}"
            )
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        d = json.loads(text)
        if not isinstance(d, dict):
            raise ValueError(f"a TrainConfig JSON must be an object, got {type(d).__name__}")
        return cls.from_dict(d)

    def replace(self, **changes) -> TrainConfig:
        """A copy with some fields changed (validated like a new config)."""
        return self.from_dict({**self.to_dict(), **changes})
