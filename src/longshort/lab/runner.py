"""One lab run: train LSTM, GRU or plain RNN on a long-time-lag task at length T, then test it.

Equal terms for every cell (what `LabConfig` fixes, whatever the model):
    - the same SequenceModel (recurrent layer + Linear head), hidden size H = 32 by default;
    - the same optimiser (Adam, lr 0.01), batch of 32 fresh sequences per step, gradient
      clipping to global norm 1.0, the same seed for data and initialisation;
    - the same budget: `budget_sequences` training sequences and `budget_minutes` of training.
The LSTM alone gets the chrono initialisation of its gate biases (Tallec & Ollivier 2018:
b_f = log U(1, T - 1), b_i = -b_f), the modern form of the forget-gate bias of Gers et al. (2000):
it sets the cell's initial forgetting times to span the task's lag (T; T + recall on the copy
task, where a symbol waits T + recall steps for its recall). `lstm_init="uniform"` turns it off
(PyTorch's default init), `"forget1"` uses a forget bias of 1.

Data: every step draws a fresh batch from default_rng([seed, epoch, index]), so a run is
reproducible and resumable without storing data. A validation set (`val_size` sequences, its own
seed) decides when the task is solved: training stops once the validation success rate reaches
`solve_at` (99.5 %; or the budget runs out), and the best-validation weights (most sequences
solved, ties broken by the lower error) are kept. The test set
(`test_size` = 2,560 sequences, as in the 1997 protocol, yet another seed) gives the reported
success rate and error. Chance figures come from the task table (longshort.data.tasks). A run
whose gradient overflows (inf in float32: an exploding gradient) ends there with stop_reason
"diverged" and its best-validation weights, instead of ending the whole comparison.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.tasks import COPY_RECALL, Task, TaskBatch, get_task
from ..models.sequence_model import CELLS, SequenceModel, SequenceModelConfig
from ..nn import Module
from ..nn.init import init_recurrent
from ..train import LossOutput, TrainConfig, Trainer
from ..train.callbacks import TrainingDiverged

logger = logging.getLogger(__name__)

LSTM_INITS = ("chrono", "forget1", "uniform")
# Seeds of the held-out sets, far from any training (epoch, index) stream.
VAL_STREAM, TEST_STREAM = 10_001, 10_002


@dataclass
class LabConfig:
    """One run of the lab. Round-trips through JSON (to_dict / from_dict).

    Attributes:
        task: "adding", "copy" or "temporal_order". model: "lstm", "gru" or "rnn".
        length: the task's T (minimal sequence length / delay).
        hidden_size, batch_size, lr, clip_norm: the equal terms (see the module docstring).
        budget_sequences, budget_minutes: stop after this many training sequences or minutes.
        val_size, val_every: validation set size; validate every this many optimiser steps.
        solve_at: validation success rate that counts as solved (stops training).
        test_size: held-out test sequences (2,560 as in the 1997 adding protocol).
        lstm_init: "chrono", "forget1" or "uniform" (LSTM only). seed: data and init.
        recall: the copy task's recall length (10 = Arjovsky et al.; other tasks: 10, unused).
    """

    task: str = "adding"
    model: str = "lstm"
    length: int = 100
    hidden_size: int = 32
    batch_size: int = 32
    lr: float = 1e-2
    clip_norm: float = 1.0
    budget_sequences: int = 1_000_000
    budget_minutes: float = 30.0
    val_size: int = 1000
    val_every: int = 50
    solve_at: float = 0.995
    test_size: int = 2560
    lstm_init: str = "chrono"
    seed: int = 0
    recall: int = COPY_RECALL

    def __post_init__(self) -> None:
        get_task(self.task)  # raises with the known names
        if self.task == "copy":
            get_task(self.task, self.recall)  # raises on a bad recall length
        elif self.recall != COPY_RECALL:
            raise ValueError(f"recall applies to the copy task only, not {self.task!r}")
        if self.model not in CELLS:
            raise ValueError(f"model must be one of {sorted(CELLS)}, got {self.model!r}")
        if self.lstm_init not in LSTM_INITS:
            raise ValueError(f"lstm_init must be one of {LSTM_INITS}, got {self.lstm_init!r}")
        for name in ("length", "hidden_size", "batch_size", "budget_sequences", "val_size",
                     "val_every", "test_size"):  # fmt: skip
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, int | np.integer)
            or self.seed < 0
        ):
            raise ValueError(
                f"seed must be a non-negative integer (0, 1, 2, ...), got {self.seed!r}"
            )
        if not self.budget_minutes > 0 or not self.lr > 0:
            raise ValueError("budget_minutes and lr must be positive")
        if not 0 < self.solve_at <= 1:
            raise ValueError(f"solve_at must be in (0, 1], got {self.solve_at}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LabConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown lab option(s) {unknown}; known: {sorted(known)}")
        return cls(**d)


# The settings besides (task, model, length, recall) that change a run's result: a results row
# records them and `lab compare` keys its rows by them (lstm_init only matters for the LSTM).
RESULT_SETTINGS = ("hidden_size", "batch_size", "lr", "clip_norm", "budget_sequences",
                   "budget_minutes", "val_size", "val_every", "solve_at", "test_size",
                   "lstm_init", "seed")  # fmt: skip


def result_settings(cfg: LabConfig) -> dict:
    """{setting: value} of RESULT_SETTINGS for `cfg`; lstm_init is "-" for the GRU and RNN."""
    d = {k: getattr(cfg, k) for k in RESULT_SETTINGS}
    if cfg.model != "lstm":
        d["lstm_init"] = "-"
    return d


class TaskBatches:
    """A never-ending stream of fresh task batches for the training loop (stateless data).

    batch(epoch, index, seed) draws from default_rng([seed, epoch, index]): the same arguments
    always give the same batch. An "epoch" is a nominal `per_epoch` batches.
    """

    stateful = False

    def __init__(self, task: Task, length: int, batch_size: int, per_epoch: int = 1000):
        self.task, self.length, self.batch_size, self.per_epoch = (
            task,
            length,
            batch_size,
            per_epoch,
        )

    def __len__(self) -> int:
        return self.per_epoch

    def batch(self, epoch: int, index: int, seed: int) -> dict[str, np.ndarray]:
        b = self.task.generate(
            self.batch_size, self.length, np.random.default_rng([seed, epoch, index])
        )
        return {"x": b.x, "target": b.target, "lengths": b.lengths}


class TaskModel(Module):
    """A SequenceModel (`.net`) with the task's loss: the training loop's model contract."""

    def __init__(self, net: SequenceModel, task: Task):
        super().__init__()
        self.net = net
        self.task = task

    def loss(self, batch: dict) -> LossOutput:
        pred = self.net.forward(batch["x"], batch["lengths"])  # (B, O) or (B, T, O)
        value, dpred = self.task.loss(pred, batch["target"])
        return LossOutput(float(value), lambda: self.net.backward(dpred))


def _warm_up(model: TaskModel, task: Task, cfg: LabConfig) -> None:
    """One untimed forward and backward at the run's shapes, gradients then cleared: the first
    call of a cell kind compiles or loads its kernels (seconds), which must not come out of the
    run's `budget_minutes` (a short budget otherwise left the first cell of a grid a few dozen
    sequences). The batch comes from its own seed, so the training data are unchanged."""
    batch = TaskBatches(task, cfg.length, cfg.batch_size).batch(0, 0, seed=cfg.seed + 7919)
    model.loss(batch).backward()
    model.zero_grad()


def lab_task(cfg: LabConfig) -> Task:
    """The run's Task (the copy task with its recall length)."""
    return get_task(cfg.task, cfg.recall if cfg.task == "copy" else None)


def max_lag(cfg: LabConfig) -> int:
    """The task's longest time lag, which the chrono init spans: T (T + recall for copy)."""
    return cfg.length + (cfg.recall if cfg.task == "copy" else 0)


def build_model(cfg: LabConfig) -> SequenceModel:
    """The run's SequenceModel, initialised as the module docstring says."""
    task = lab_task(cfg)
    mc = SequenceModelConfig(cell=cfg.model, input_size=task.input_size,
                             hidden_size=cfg.hidden_size, output_size=task.output_size,
                             readout=task.readout, seed=cfg.seed)  # fmt: skip
    if cfg.model == "lstm" and cfg.lstm_init == "forget1":
        mc.forget_bias = 1.0
    net = SequenceModel(mc)
    if cfg.model == "lstm" and cfg.lstm_init == "chrono":
        init_recurrent(
            net.rnn, np.random.default_rng([cfg.seed, 7]), chrono_t_max=max(max_lag(cfg), 3)
        )
    return net


def held_out(cfg: LabConfig, which: str) -> TaskBatch:
    """The validation ("val") or test ("test") set of a run: fixed by the seed and the length."""
    n, stream = (cfg.val_size, VAL_STREAM) if which == "val" else (cfg.test_size, TEST_STREAM)
    return lab_task(cfg).generate(n, cfg.length, np.random.default_rng([cfg.seed, stream]))


def evaluate(net: SequenceModel, task: Task, data: TaskBatch) -> tuple[float, float]:
    """(success rate, error) of `net` on a held-out set, by the task's own measures."""
    pred = net.predict(data.x, data.lengths, batch_size=256)
    return float(task.success_rate(pred, data.target)), float(task.error(pred, data.target))


def run(
    cfg: LabConfig,
    out_dir: str | Path | None = None,
    on_progress: Callable[[dict], None] | None = None,
    progress_bar: bool | None = False,
) -> dict:
    """Train and test one model; return its results row (and save the model to out_dir).

    Args:
        cfg: the run. out_dir: where to save the trained model (longshort.io: config.json +
            model.safetensors), the metrics log (metrics.jsonl) and result.json; None = nowhere.
        on_progress: called at each validation with {"step", "sequences_seen", "seconds",
            "loss", "val_success", "val_error"}. progress_bar: the loop's tqdm bar (None = on a terminal).

    Returns:
        {"task", "model", "length", "success_rate", "test_error", "sequences_seen", "seconds"
        (training wall-clock time), "cpu_seconds" (training CPU time, all threads), "solved", "val_success", "steps", "stop_reason", "hidden_size", "parameters",
        "chance_error", "chance_success", "seed", "model_dir"} and the other RESULT_SETTINGS
        (lr, budgets, init, ...), and "recall" for copy.
    """
    task = lab_task(cfg)
    net = build_model(cfg)
    model = TaskModel(net, task)
    val = held_out(cfg, "val")
    holder: dict = {}

    def val_loss(_model) -> float:
        """Lower is better: the fraction of failed sequences, ties broken by the task's error
        (weighted 1e-4, below one sequence in 1,000), so that the best weights are kept even
        while no sequence is solved yet."""
        success, error = evaluate(net, task, val)
        holder["val"] = (success, error)
        return 1.0 - success + 1e-4 * min(error, 9.0)

    def on_row(row: dict) -> None:
        if row.get("val") is None:
            return
        succ, err = holder["val"]
        if succ >= cfg.solve_at:
            holder["trainer"].stopped = "solved"
        if on_progress is not None:
            on_progress({"step": row["step"], "sequences_seen": row["sequences_seen"],
                         "seconds": row["seconds"], "loss": row["loss"], "val_success": succ, "val_error": err})  # fmt: skip

    out = None if out_dir is None else Path(out_dir)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.jsonl").unlink(missing_ok=True)
    tc = TrainConfig(epochs=None, max_steps=-(-cfg.budget_sequences // cfg.batch_size),
                     max_seconds=cfg.budget_minutes * 60.0, batch_size=cfg.batch_size,
                     optimizer="adam", lr=cfg.lr, clip_norm=cfg.clip_norm,
                     val_every=cfg.val_every, restore_best=True, seed=cfg.seed,
                     log_every=cfg.val_every, progress=progress_bar, explode_factor=None,
                     metrics_path=None if out is None else str(out / "metrics.jsonl"))  # fmt: skip
    trainer = Trainer(model, TaskBatches(task, cfg.length, cfg.batch_size), tc, val_loss,
                      on_row=on_row)  # fmt: skip
    holder["trainer"] = trainer
    _warm_up(model, task, cfg)
    cpu0 = time.process_time()
    try:
        res = trainer.fit()
        seen, seconds, steps, reason = res.sequences_seen, res.seconds, res.step, res.stop_reason
    except TrainingDiverged as e:
        # An exploding gradient (inf in float32) ends this run, not the whole grid: the row
        # keeps the best-validation weights so far, as a run that spent its budget does.
        logger.warning("lab run %s %s T=%d diverged: %s", cfg.task, cfg.model, cfg.length, e)
        if trainer.best_state is not None:
            model.load_state_dict(trainer.best_state)
        seen, seconds, steps, reason = trainer.seen, trainer.seconds, trainer.step, "diverged"
    cpu = time.process_time() - cpu0  # this process's CPU time, all threads
    success, error = evaluate(net, task, held_out(cfg, "test"))  # the best-validation weights
    row = {
        "task": cfg.task,
        "model": cfg.model,
        "length": cfg.length,
        "success_rate": round(success, 6),
        "test_error": round(error, 6),
        "sequences_seen": int(seen),
        "seconds": round(float(seconds), 1),
        "cpu_seconds": round(cpu, 1),
        "solved": reason == "solved",
        "val_success": round(evaluate(net, task, val)[0], 6),  # of the weights kept
        "steps": int(steps),
        "stop_reason": reason,
        "hidden_size": cfg.hidden_size,
        "parameters": int(sum(p.data.size for p in net.parameters())),
        "chance_error": round(float(task.chance_error(cfg.length)), 6),
        "chance_success": float(task.chance_success),
        "seed": cfg.seed,
        "model_dir": None,
    }
    row.update(result_settings(cfg))  # every setting that changes the result: the row's key
    if cfg.task == "copy":
        row["recall"] = cfg.recall
    if out is not None:
        from ..io.store import save

        save(net, out / "model")
        row["model_dir"] = str(out / "model")
        text = json.dumps({"result": row, "config": cfg.to_dict()}, indent=2) + "\n"
        (out / "result.json").write_text(text)
    logger.info("lab run %s", row)
    return row
