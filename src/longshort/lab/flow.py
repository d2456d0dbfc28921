"""Gradient flow through time on trained lab models: the vanishing gradient, LSTM beside RNN.

`flow_models` finds the lab's saved models for a task and length (DIR/models/<task>-<cell>-T<T>[...]/
model, as `lab compare` writes them) or trains them briefly with `lab.run`; `flow_report` measures
||dL/dh_t|| and ||dL/dx_t|| against the lag on a fresh batch of the task (longshort.inspect) and
writes the plot, the CSV of the numbers and a JSON summary of the decay at a few lags.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..data.tasks import COPY_RECALL, get_task
from ..inspect import gradient_flow, plot_gradient_flow
from .runner import LabConfig, run

FLOW_STREAM = 10_003  # the seed stream of the batch the gradients are measured on


def saved_model_dir(
    results_dir: str | Path, task: str, cell: str, length: int, recall: int | None = None
) -> Path:
    """Where `lab compare` saved the model of (task, cell, length[, copy recall]) under
    `results_dir`: DIR/models/<task>-<cell>-T<length>[-R<recall>]/model for a run at the default
    settings, else the one row of DIR/results.json for it (a directory with a -<hash> suffix: see
    lab.report). Several rows (other seeds, lr, ...) and no default run: a ValueError naming them."""
    suffix = f"-R{recall}" if task == "copy" and recall not in (None, COPY_RECALL) else ""
    base = Path(results_dir) / "models"
    default = base / f"{task}-{cell}-T{length}{suffix}" / "model"
    if default.is_dir():
        return default
    from .report import load_rows, recall_of

    want = (recall or COPY_RECALL) if task == "copy" else None
    found = sorted({base / Path(r["model_dir"]).parent.name / "model"
                    for r in load_rows(results_dir)
                    if (r["task"], r["model"], int(r["length"])) == (task, cell, length)
                    and recall_of(r) == want and r.get("model_dir")})  # fmt: skip
    found = [d for d in found if d.is_dir()]
    if len(found) > 1:
        raise ValueError(
            f"{results_dir} holds {len(found)} {cell} models for {task} T={length} (other seeds, "
            f"lr, hidden sizes, ...): {', '.join(str(d.parent) for d in found)}; point --from at a "
            "results directory with one such run"
        )
    return found[0] if found else default


def flow_models(
    task: str,
    length: int,
    cells: Sequence[str] = ("lstm", "rnn"),
    results_dir: str | Path | None = None,
    work_dir: str | Path | None = None,
    train_minutes: float = 1.0,
    train_sequences: int = 50_000,
    seed: int = 0,
    on_train: Callable[[LabConfig], None] | None = None,
    recall: int | None = None,
) -> dict[str, tuple[object, str]]:
    """cell -> (trained SequenceModel, where it came from).

    A model saved under `results_dir` is loaded; otherwise one is trained with `lab.run` for at
    most `train_minutes` / `train_sequences` (default lab settings otherwise) and saved under
    `work_dir/<cell>` (a temporary directory when None).
    """
    from ..io.store import load

    out = {}
    for cell in cells:
        d = (
            None
            if results_dir is None
            else saved_model_dir(results_dir, task, cell, length, recall)
        )
        if d is not None and d.is_dir():
            out[cell] = (load(d), str(d))
            continue
        cfg = LabConfig(task=task, model=cell, length=length, lr=1e-2, budget_minutes=train_minutes,
                        budget_sequences=train_sequences, seed=seed, val_every=50,
                        recall=COPY_RECALL if recall is None else recall)  # fmt: skip
        if on_train is not None:
            on_train(cfg)
        wd = Path(work_dir or tempfile.mkdtemp(prefix="longshort-flow-")) / cell
        row = run(cfg, wd)
        out[cell] = (load(wd / "model"), f"trained here: {row['sequences_seen']:,} sequences, "
                     f"test success {100 * row['success_rate']:.1f} %")  # fmt: skip
    return out


def flow_report(
    models: dict[str, tuple[object, str]],
    task: str,
    length: int,
    out_dir: str | Path,
    batch: int = 64,
    seed: int = 0,
    lags: Sequence[int] = (10, 50, 100, 200, 500, 1000),
    recall: int | None = None,
) -> dict:
    """Measure the gradient flow of each model on one batch; write gradient_flow.png/.csv/.json.

    Returns:
        {"task", "length", "batch", "models": {cell: {"source", "dh_relative": {lag: ratio},
        "dx_relative": {...}}}, "png", "csv"}, where ratio = norm at lag / norm at lag 0.
    """
    t = get_task(task, recall=recall)
    data = t.generate(batch, length, np.random.default_rng([seed, FLOW_STREAM]))
    results, summary = [], {}
    for cell, (net, source) in models.items():
        net.eval()
        flow = gradient_flow(net, data.x, data.lengths, data.target, loss=t.loss, name=cell.upper())
        results.append(flow)
        ok = [k for k in lags if k < len(flow.lag)]
        summary[cell] = {
            "source": source,
            "dh_relative": {str(k): flow.decay(k, "dh") for k in ok},
            "dx_relative": {str(k): flow.decay(k, "dx") for k in ok},
        }
    out = Path(out_dir)
    png, csv = plot_gradient_flow(results, out / "gradient_flow.png", out / "gradient_flow.csv")
    report = {"task": task, "length": length, "batch": batch, "models": summary,
              "png": str(png), "csv": str(csv)}  # fmt: skip
    (out / "gradient_flow.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
