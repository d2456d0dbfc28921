"""Building the optimiser and schedule from a TrainConfig, and the trainer's whole state as
(arrays, JSON) for a checkpoint.

Checkpoint contents (arrays by group, see longshort.train.checkpoint):
    model/<name>   parameters           optim/<key>   optimiser state (Adam moments, momentum)
    best/<name>    best-val weights     carry/<i>     the carried recurrent state (stateful data)
JSON: step, epoch, index (next batch), seed, batches per epoch, seconds, sequences seen, stop
reason, config, optimiser scalars, schedule state, RNG states of every Generator the model holds
(by attribute path), early stopping, divergence guard and metrics accumulators.
"""

from __future__ import annotations

import logging

import numpy as np

from ..nn.module import Module
from ..optim import SGD, Adam, AdamW, CosineAnnealingLR, ReduceLROnPlateau, StepLR
from .checkpoint import (
    flatten_state,
    group,
    prefixed,
    rng_state_from_json,
    rng_state_to_json,
    unflatten_state,
)
from .config import BUDGET_FIELDS, DATA_ORDER_FIELDS, TrainConfig

logger = logging.getLogger(__name__)


def build_optimizer(model: Module, c: TrainConfig):
    """The optimiser named by c.optimizer over model.parameters()."""
    params = model.parameters()
    if c.optimizer == "adam":
        return Adam(params, lr=c.lr, weight_decay=c.weight_decay)
    if c.optimizer == "adamw":
        return AdamW(params, lr=c.lr, weight_decay=c.weight_decay)
    return SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)


def build_schedule(optimizer, c: TrainConfig, batches_per_epoch: int):
    """The lr schedule named by c.schedule (None for none); step and cosine count steps."""
    if c.schedule is None:
        return None
    if c.schedule == "step":
        return StepLR(optimizer, c.lr_step_size, c.lr_gamma)
    if c.schedule == "plateau":
        return ReduceLROnPlateau(optimizer, factor=c.lr_gamma, patience=c.plateau_patience)
    t_max = c.lr_t_max
    if t_max is None:
        if c.max_steps is not None:
            t_max = c.max_steps
        elif c.epochs is not None:
            t_max = c.epochs * batches_per_epoch
        else:
            raise ValueError("schedule='cosine' with only a time budget needs lr_t_max (steps)")
    return CosineAnnealingLR(optimizer, t_max, c.lr_min)


def module_generators(model: Module, prefix: str = "") -> dict[str, np.random.Generator]:
    """Every numpy Generator held by the model or its sub-modules, by attribute path."""
    out = {}
    for name, value in vars(model).items():
        if isinstance(value, np.random.Generator):
            out[prefix + name] = value
    for name, sub in model._modules.items():
        if sub is not None:
            out.update(module_generators(sub, f"{prefix}{name}."))
    return out


def snapshot_trainer(t) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, meta) holding everything needed to continue `t` (a Trainer) exactly."""
    opt = t.optimizer.state_dict()
    carry_spec, carry = flatten_state(t.carry)
    arrays = {
        **prefixed(t.model.state_dict(), "model"),
        **prefixed(opt["arrays"], "optim"),
        **prefixed(t.best_state or {}, "best"),
        **carry,
    }
    meta = {
        "step": t.step,
        "epoch": t.epoch,
        "index": t.index,
        "seed": t.config.seed,  # with epoch and index: the data position
        "batches_per_epoch": len(t.data),
        "seconds": t.seconds,
        "sequences_seen": t.seen,
        "stopped": t.stopped,
        "has_best": t.best_state is not None,
        "config": t.config.to_dict(),
        "optimizer": opt["scalars"],
        "schedule": None if t.schedule is None else t.schedule.state_dict(),
        "rng": {k: rng_state_to_json(g) for k, g in module_generators(t.model).items()},
        "carry": carry_spec,
        "early_stopping": t.early.state_dict(),
        "guard": t.guard.state_dict(),
        "metrics": t.log.state_dict(),
    }
    return arrays, meta


def _check_compatible(t, meta: dict) -> None:
    saved = meta["config"]
    now = t.config.to_dict()
    wrong = [f"{k}: saved {saved.get(k)!r}, now {now[k]!r}" for k in DATA_ORDER_FIELDS
             if saved.get(k) != now[k]]  # fmt: skip
    if meta["batches_per_epoch"] != len(t.data):
        wrong.append(f"batches per epoch: saved {meta['batches_per_epoch']}, now {len(t.data)}")
    if wrong:
        raise ValueError(
            "cannot resume exactly: the data order differs from the checkpoint's ("
            + "; ".join(wrong)
            + "). Use the same data and settings, or start afresh in another checkpoint_dir"
        )
    changed = sorted(k for k in now if k not in BUDGET_FIELDS and saved.get(k) != now[k])
    if changed:
        logger.warning("resuming with changed settings %s; the run will differ from one "
                       "that was never stopped", changed)  # fmt: skip


def restore_trainer(t, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Load a snapshot made by `snapshot_trainer` into `t` (a Trainer built the same way)."""
    _check_compatible(t, meta)
    t.model.load_state_dict(group(arrays, "model"))
    t.optimizer.load_state_dict({"arrays": group(arrays, "optim"), "scalars": meta["optimizer"]})
    if (meta["schedule"] is None) != (t.schedule is None):
        raise ValueError(
            "the checkpoint and this run disagree on whether an lr schedule is used: resume with "
            "the schedule the run started with (e.g. --schedule), or start afresh in a new "
            "directory"
        )
    if t.schedule is not None:
        t.schedule.load_state_dict(meta["schedule"])
    gens = module_generators(t.model)
    if sorted(gens) != sorted(meta["rng"]):
        raise ValueError(
            f"the model's random generators {sorted(gens)} differ from the checkpoint's "
            f"{sorted(meta['rng'])}; build the same model"
        )
    for k, g in gens.items():
        rng_state_from_json(g, meta["rng"][k])
    t.best_state = group(arrays, "best") if meta["has_best"] else None
    t.carry = unflatten_state(meta["carry"], arrays)
    t.step, t.epoch, t.index = meta["step"], meta["epoch"], meta["index"]
    t.seconds, t.seen, t.stopped = meta["seconds"], meta["sequences_seen"], meta["stopped"]
    t.early.load_state_dict(meta["early_stopping"])
    t.guard.load_state_dict(meta["guard"])
    t.log.load_state_dict(meta["metrics"])
