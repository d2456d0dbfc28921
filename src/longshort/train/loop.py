"""The one training loop: minibatches, budgets, validation, early stopping, schedules, clipping,
stateful truncated BPTT, atomic checkpoints with an exact resume, metrics and a progress bar.

The model is a Module (parameters, state_dict, train/eval, zero_grad) with
`loss(batch[, state]) -> LossOutput` (see longshort.train.contract); any numpy Generator it holds
(dropout) is checkpointed. One optimiser step, in order: zero_grad, loss, divergence check,
backward, clip to the global norm, optimiser step, per-step schedule step, carry the state
(stateful data: detached, rows of new sequences zeroed before the next batch).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .._blas_threads import blas_threads
from ..nn.module import Module
from ..optim import clip_grad_norm
from .batches import ArrayBatches, detach_state, reset_state
from .callbacks import DivergenceGuard, EarlyStopping, MetricsLog, TrainingDiverged, progress_bar
from .checkpoint import CHECKPOINT_NAME, atomic_write_bytes, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .state import build_optimizer, build_schedule, restore_trainer, snapshot_trainer

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What `fit` did: steps are optimiser steps counted from the start of the whole run."""

    step: int
    epoch: float
    stop_reason: str  # "epochs" | "max_steps" | "max_seconds" | "early_stopping"
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, loss), this call only
    rows: list[dict] = field(default_factory=list)  # metrics rows written by this call
    best_val: float | None = None
    best_step: int | None = None
    seconds: float = 0.0
    sequences_seen: int = 0


class Trainer:
    """Trains `model` on `train_data` under `config`; see the module docstring for the contract.

    Args:
        model: a Module with `loss(batch[, state]) -> LossOutput`.
        train_data: a batch source (ArrayBatches, StreamBatches or alike), or a dict of arrays
            (N, ...) cut into shuffled minibatches of config.batch_size.
        config: TrainConfig. val_data: a batch source, a dict of arrays, or a callable
            model -> float (lower is better); None = no validation.
        optimizer: an optimiser over model.parameters(); None = built from the config.
        on_row: called with each metrics row as it is written (e.g. to print progress).
    """

    def __init__(self, model: Module, train_data, config: TrainConfig | None = None,
                 val_data=None, optimizer=None,
                 on_row: Callable[[dict], None] | None = None):  # fmt: skip
        self.config = c = config or TrainConfig()
        if not callable(getattr(model, "loss", None)):
            raise TypeError(
                f"{type(model).__name__} has no loss(batch) method; the loop needs "
                "model.loss(batch[, state]) -> LossOutput(value, backward[, state])"
            )
        self.model = model
        self.data = self._as_batches(train_data)
        self.val_data = (
            val_data if callable(val_data) else self._as_batches(val_data, False, "val_data")
        )
        d = None if c.checkpoint_dir is None else Path(c.checkpoint_dir)
        for q in () if d is None else (d, *d.parents):  # a file where a directory must be
            if q.exists():
                if not q.is_dir():
                    raise FileExistsError(
                        f"checkpoint_dir {c.checkpoint_dir!r}: {q} is a file, not a directory; "
                        "give a directory for the checkpoints (created if missing) or move the "
                        "file away"
                    )
                break
        if c.schedule == "plateau" and self.val_data is None:
            raise ValueError("schedule='plateau' follows the validation loss; pass val_data")
        if c.patience is not None and self.val_data is None:
            raise ValueError("early stopping (patience) needs validation data; pass val_data")
        self.optimizer = optimizer or build_optimizer(model, c)
        self.schedule = build_schedule(self.optimizer, c, len(self.data))
        self.early = EarlyStopping(c.patience, c.min_delta)
        self.guard = DivergenceGuard(c.explode_factor, c.explode_window)
        self.log = MetricsLog(c.metrics_path)
        self.step = self.epoch = self.index = self.seen = 0  # epoch = completed epochs
        self.seconds = 0.0
        self.carry = None  # recurrent state carried between stateful batches
        self.best_state: dict | None = None
        self.stopped: str | None = None  # set once training has finished for good
        self._saved_step = -1
        self._fitted = False
        self.on_row = on_row

    def _as_batches(self, data, shuffle: bool | None = None, name: str = "train_data"):
        if data is None or hasattr(data, "batch"):
            return data
        if not isinstance(data, Mapping):
            what = type(data).__name__
            hint = (
                "e.g. fit(model, {'x': X, 'y': Y}) instead of a tuple (X, Y)"
                if isinstance(data, tuple | list)
                else "e.g. fit(model, {'x': X, 'y': Y}): name the arrays your model.loss(batch) reads"
            )
            raise TypeError(
                f"{name} must be a dict of arrays with the examples on the first axis, or a batch "
                f"source with a batch(epoch, index, seed) method; got a {what}; {hint}"
            )
        c = self.config
        sh = c.shuffle if shuffle is None else shuffle
        return ArrayBatches(data, c.batch_size, shuffle=sh, drop_last=c.drop_last and sh)

    @property
    def checkpoint_path(self) -> Path | None:
        d = self.config.checkpoint_dir
        return None if d is None else Path(d) / CHECKPOINT_NAME

    # --- one step -------------------------------------------------------------------------------
    def _train_step(self, batch: dict) -> tuple[float, float, int]:
        """zero_grad, loss, check, backward, clip, step. Returns (loss, grad norm, count)."""
        c, m = self.config, self.model
        m.zero_grad()
        if self.data.stateful:
            self.carry = reset_state(self.carry, batch.get("reset"))
            out = m.loss(batch, self.carry)
        else:
            out = m.loss(batch)
        loss = float(out.value)
        where = f"epoch {self.epoch + 1}, batch {self.index + 1}/{len(self.data)}"
        self.guard.check(loss, self.step + 1, where, self.optimizer.lr, c.clip_norm)
        out.backward()
        try:
            norm = clip_grad_norm(m.parameters(), c.clip_norm or math.inf)
        except FloatingPointError as e:
            raise TrainingDiverged(f"at step {self.step + 1} ({where}): {e}") from None
        self.optimizer.step()
        if self.schedule is not None and c.schedule != "plateau":
            self.schedule.step()
        if self.data.stateful:
            self.carry = detach_state(out.state)
        count = out.count if out.count is not None else len(next(iter(batch.values())))
        return loss, norm, int(count)

    # --- validation -----------------------------------------------------------------------------
    def validate(self) -> float:
        """Mean validation loss (weighted by sequences, or by real steps where there is a mask)."""
        v = self.val_data
        if v is None:
            raise ValueError("no validation data was given")
        self.model.eval()
        try:
            if not hasattr(v, "batch"):
                return float(v(self.model))
            total, weight, state = 0.0, 0, None
            for j in range(len(v)):
                b = v.batch(0, j, self.config.seed)
                if v.stateful:
                    out = self.model.loss(b, reset_state(state, b.get("reset")))
                    state = detach_state(out.state)
                else:
                    out = self.model.loss(b)
                w = int(b["mask"].sum()) if "mask" in b else len(next(iter(b.values())))
                total, weight = total + float(out.value) * w, weight + w
            return total / weight
        finally:
            self.model.train()

    def _after_validation(self, val: float) -> None:
        if not math.isfinite(val):
            raise TrainingDiverged(
                f"validation loss is {val} at step {self.step}; lower the learning rate"
            )
        if self.early.update(val, self.step) and self.config.restore_best:
            self.best_state = self.model.state_dict()
        if self.config.schedule == "plateau":
            self.schedule.step(val)

    def _val_due(self, epoch_end: bool) -> bool:
        if self.val_data is None:
            return False
        c = self.config
        if c.val_every == 0:
            return epoch_end and self.epoch % c.val_every_epochs == 0
        return self.step % c.val_every == 0

    def stop(self, reason: str = "requested") -> None:
        """Ask the loop to stop after the current step (e.g. from on_row once a target is met).

        `reason` becomes TrainResult.stop_reason and is saved in the checkpoint, so a resumed run
        stays stopped, like one stopped early.
        """
        self.stopped = str(reason)

    # --- the loop -------------------------------------------------------------------------------
    def _budget_reason(self, elapsed: float) -> str | None:
        c = self.config
        if self.stopped is not None:
            return self.stopped
        if c.epochs is not None and self.epoch >= c.epochs:
            return "epochs"
        if c.max_steps is not None and self.step >= c.max_steps:
            return "max_steps"
        if c.max_seconds is not None and elapsed >= c.max_seconds:
            return "max_seconds"
        return None

    def _row(self, val: float | None, **extra) -> dict:
        row = self.log.emit(
            step=self.step,
            epoch=self.epoch + self.index / len(self.data),
            val=val,
            lr=self.optimizer.lr,
            seconds=round(self.seconds, 3),
            sequences_seen=self.seen,
            **extra,
        )
        logger.info("train %s", row)
        if self.on_row is not None:
            self.on_row(row)
        return row

    def fit(self) -> TrainResult:
        """Train until the budget is spent or early stopping fires; resume from a checkpoint
        in config.checkpoint_dir when there is one."""
        c = self.config
        if self._fitted:
            raise RuntimeError(
                "Trainer.fit() runs once (the weights may now be the restored best ones); to train "
                "on, build a new Trainer with the same checkpoint_dir and a larger budget"
            )
        self._fitted = True
        self._maybe_resume()
        result = TrainResult(step=self.step, epoch=0.0, stop_reason="")
        first_row = len(self.log.rows)
        ends = [c.max_steps, None if c.epochs is None else c.epochs * len(self.data)]
        bar = progress_bar(c.progress, min((e for e in ends if e is not None), default=None),
                           self.step)  # fmt: skip
        t0, s0, seen0 = time.perf_counter(), self.seconds, self.seen
        self.model.train()
        # idle BLAS threads must not spin on the kernels' cores; the bar closes on any exit
        with blas_threads(c.blas_threads), contextlib.closing(bar):
            while (reason := self._budget_reason(self.seconds)) is None:
                batch = self.data.batch(self.epoch, self.index, c.seed)
                loss, norm, count = self._train_step(batch)
                self.step, self.index, self.seen = self.step + 1, self.index + 1, self.seen + count
                result.losses.append((self.step, loss))
                self.log.add_step(loss, norm)
                epoch_end = self.index == len(self.data)
                if epoch_end:
                    self.epoch, self.index, self.carry = self.epoch + 1, 0, None
                val = self.validate() if self._val_due(epoch_end) else None
                if val is not None:
                    self._after_validation(val)
                self.seconds = s0 + time.perf_counter() - t0
                if val is not None or self.step % c.log_every == 0:
                    self._row(val)
                rate = (self.seen - seen0) / max(self.seconds - s0, 1e-9)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4g}", seq_s=f"{rate:.0f}", refresh=False)
                if self.early.should_stop:
                    self.stopped = "early_stopping"
                if c.checkpoint_every and self.step % c.checkpoint_every == 0:
                    self.save()
        return self._finish(result, reason, first_row)

    def _finish(self, result: TrainResult, reason: str, first_row: int) -> TrainResult:
        if reason == "early_stopping":
            logger.info("early stopping at step %d: best val %s at step %s",
                        self.step, self.early.best, self.early.best_step)  # fmt: skip
        if self.checkpoint_path is not None and self._saved_step != self.step:
            self.save()  # before the partial row below, so a resume redoes it exactly
        if self.log.acc["n"]:
            self._row(None, partial=True)  # the steps since the last row
        if self.best_state is not None and self.config.restore_best:
            self.model.load_state_dict(self.best_state)
        result.step, result.stop_reason, result.seconds = self.step, reason, self.seconds
        result.epoch = self.epoch + self.index / len(self.data)
        result.rows, result.sequences_seen = self.log.rows[first_row:], self.seen
        result.best_val, result.best_step = self.early.best, self.early.best_step
        return result

    # --- checkpoints ----------------------------------------------------------------------------
    def save(self, path: str | Path | None = None) -> Path:
        """Atomically write the whole training state (default: checkpoint_dir/checkpoint.safetensors)
        and the config as train_config.json beside it."""
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None:
            raise ValueError("no checkpoint path: set TrainConfig.checkpoint_dir or pass a path")
        arrays, meta = snapshot_trainer(self)
        save_checkpoint(path, arrays, meta)
        atomic_write_bytes(path.parent / "train_config.json", self.config.to_json().encode())
        self._saved_step = self.step
        logger.info("checkpoint at step %d written to %s", self.step, path)
        return path

    def load(self, path: str | Path) -> None:
        """Restore the training state written by `save` (model, optimiser, schedule, RNGs, data
        position, carried state, early stopping, metrics accumulators)."""
        arrays, meta = load_checkpoint(path)
        restore_trainer(self, arrays, meta)
        self._saved_step = self.step

    def _maybe_resume(self) -> None:
        path, c = self.checkpoint_path, self.config
        if path is None or not path.is_file():
            self.log.truncate_after(self.step)  # a fresh run starts a fresh metrics file
            return
        if not c.resume:
            raise FileExistsError(
                f"{path} exists; pass resume=True to continue that run, or use another "
                "checkpoint_dir"
            )
        self.load(path)
        self.log.truncate_after(self.step)
        logger.info("resumed from %s at step %d (epoch %d)", path, self.step, self.epoch)


def fit(model: Module, train_data, config: TrainConfig | None = None, val_data=None,
        optimizer=None, on_row=None, **overrides) -> TrainResult:  # fmt: skip
    """Train `model` (see Trainer); keyword overrides replace config fields, e.g. max_steps=100."""
    config = (config or TrainConfig()).replace(**overrides) if overrides else config
    return Trainer(model, train_data, config, val_data, optimizer, on_row).fit()
