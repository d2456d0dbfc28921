"""The loop's helpers: early stopping, the divergence guard, the metrics log and the progress bar.

Each keeps a small state that the checkpoint saves (`state_dict` / `load_state_dict`, JSON-able),
so a resumed run makes exactly the decisions the uninterrupted one would have made.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .checkpoint import atomic_write_bytes


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or inf, or jumped far above its recent values."""


class EarlyStopping:
    """Track the best validation loss; signal a stop after `patience` validations without a gain.

    An improvement means val < best - min_delta. The best weights are kept by the loop.
    """

    def __init__(self, patience: int | None, min_delta: float = 0.0):
        self.patience, self.min_delta = patience, float(min_delta)
        self.best: float | None = None
        self.best_step: int | None = None
        self.bad = 0  # validations since the last improvement

    def update(self, val: float, step: int) -> bool:
        """Record a validation loss; True when it is a new best."""
        if self.best is None or val < self.best - self.min_delta:
            self.best, self.best_step, self.bad = float(val), step, 0
            return True
        self.bad += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.bad >= self.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "best_step": self.best_step, "bad": self.bad}

    def load_state_dict(self, s: dict) -> None:
        self.best, self.best_step, self.bad = s["best"], s["best_step"], s["bad"]


class DivergenceGuard:
    """Raise TrainingDiverged on a NaN/inf loss, or one above factor x the running median.

    The median is over the last `window` losses and is only trusted once 10 of them exist.
    """

    MIN_HISTORY = 10

    def __init__(self, factor: float | None, window: int):
        self.factor, self.window = factor, window
        self.recent: list[float] = []

    def check(self, loss: float, step: int, where: str, lr: float, clip: float | None) -> None:
        hint = (
            f"Lower the learning rate (now lr={lr:g})"
            + (
                f", clip gradients harder (clip_norm={clip:g})"
                if clip
                else ", clip gradients (clip_norm=1.0)"
            )
            + ", or check the data for NaN or extreme values."
        )
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"loss is {loss} at step {step} ({where}): training diverged. {hint}"
            )
        if self.factor is not None and len(self.recent) >= self.MIN_HISTORY:
            med = float(np.median(self.recent))
            if loss > self.factor * med:
                raise TrainingDiverged(
                    f"loss exploded at step {step} ({where}): {loss:.4g} is more than "
                    f"{self.factor:g} x the running median {med:.4g} of the last "
                    f"{len(self.recent)} steps. {hint} (explode_factor=None turns this check off.)"
                )
        self.recent.append(float(loss))
        del self.recent[: -self.window]

    def state_dict(self) -> dict:
        return {"recent": list(self.recent)}

    def load_state_dict(self, s: dict) -> None:
        self.recent = [float(x) for x in s["recent"]]


class MetricsLog:
    """Metrics rows in memory and, when `path` is set, appended to a JSON-lines file.

    Row keys: step, epoch, loss (mean training loss since the last row), val (validation loss at
    this step or null), lr, grad_norm (mean since the last row), seconds (training time so far),
    sequences_seen.
    """

    def __init__(self, path: str | os.PathLike | None):
        self.path = None if path is None else Path(path)
        self.rows: list[dict] = []
        self.acc = {"loss": 0.0, "grad_norm": 0.0, "n": 0}

    def add_step(self, loss: float, grad_norm: float) -> None:
        self.acc["loss"] += loss
        self.acc["grad_norm"] += grad_norm
        self.acc["n"] += 1

    def emit(self, **fields) -> dict:
        n = self.acc["n"]
        row = {
            "step": fields.pop("step"),
            "epoch": fields.pop("epoch"),
            "loss": self.acc["loss"] / n if n else None,
            "val": fields.pop("val", None),
            "grad_norm": self.acc["grad_norm"] / n if n else None,
            **fields,
        }
        self.acc = {"loss": 0.0, "grad_norm": 0.0, "n": 0}
        self.rows.append(row)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
        return row

    def truncate_after(self, step: int) -> None:
        """On resume: drop the file rows written after the checkpoint at `step` (they will be
        redone), including a partial row written when that run stopped."""
        if self.path is None or not self.path.is_file():
            return
        lines = self.path.read_text(encoding="utf-8").splitlines()
        keep = []
        for ln in filter(str.strip, lines):
            row = json.loads(ln)
            if row["step"] < step or (row["step"] == step and not row.get("partial")):
                keep.append(ln)
        if len(keep) != len(lines):
            atomic_write_bytes(self.path, "".join(ln + "\n" for ln in keep).encode())

    def state_dict(self) -> dict:
        return dict(self.acc)

    def load_state_dict(self, s: dict) -> None:
        self.acc = {"loss": float(s["loss"]), "grad_norm": float(s["grad_norm"]), "n": s["n"]}


def progress_bar(enabled: bool | None, total: int | None, initial: int):
    """A tqdm bar on stderr (steps, rate, ETA); off when `enabled` is False, or when None and
    stderr is not a terminal."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(
        total=total,
        initial=initial,
        unit="step",
        disable=not enabled,
        file=sys.stderr,
        dynamic_ncols=True,
        leave=True,
    )
