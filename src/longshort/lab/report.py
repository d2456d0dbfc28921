"""The lab's comparison: many runs, one results table (JSON, PNG and Markdown), resumable.

    DIR/results.json   {"rows": [row, ...]}, one row per (task, model, length, hidden size,
                       recall length: copy only, 10 when a row has none)
    DIR/results.png    success rate and error / chance against length, one line per model
    DIR/results.md     the same rows as a Markdown table
    DIR/models/<task>-<model>-T<length>[-R<recall>]/   each run's saved model, metrics and
                       result.json (the last run's, when hidden sizes share a directory;
                       -R<recall> for a copy run whose recall length is not 10)

`compare` skips the (task, model, length, hidden, recall) rows already in DIR/results.json, so a killed or
extended comparison picks up where it stopped; results.json (atomically) and results.md are
rewritten after each run, results.png once at the end.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from ..data.tasks import COPY_RECALL
from .runner import LabConfig, run

RESULTS_JSON, RESULTS_PNG, RESULTS_MD = "results.json", "results.png", "results.md"


def _solved(row: dict) -> str:
    """'yes', 'no', or 'no (diverged)' for a run stopped by a non-finite loss."""
    if row.get("solved"):
        return "yes"
    return "no (diverged)" if row.get("stop_reason") == "diverged" else "no"


# The 1997 paper's adding-problem figures: training sequences until solved (Table 7).
PAPER_1997_SEQUENCES = {100: 74_000, 500: 209_000, 1000: 853_000}


def recall_of(row: dict) -> int | None:
    """A copy row's recall length (10 when not recorded: the rows before --recall); else None."""
    return int(row.get("recall") or COPY_RECALL) if row["task"] == "copy" else None


def row_key(row: dict) -> tuple[str, str, int, int, int]:
    """(task, model, length, hidden size, recall length or 0): rows with another hidden size or
    recall length are other rows."""
    return (row["task"], row["model"], int(row["length"]), int(row.get("hidden_size", 32)),
            recall_of(row) or 0)  # fmt: skip


def run_name(cfg: LabConfig) -> str:
    """The directory name of a run's model under DIR/models."""
    tail = f"-R{cfg.recall}" if cfg.task == "copy" and cfg.recall != COPY_RECALL else ""
    return f"{cfg.task}-{cfg.model}-T{cfg.length}{tail}"


def load_rows(out_dir: str | Path) -> list[dict]:
    """The rows of DIR/results.json, or [] when there is none yet."""
    path = Path(out_dir) / RESULTS_JSON
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); move it away to start afresh") from None
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise ValueError(f"{path} has no 'rows' list; was it written by `longshort lab compare`?")
    return rows


def save_rows(rows: Sequence[dict], out_dir: str | Path) -> Path:
    """Write DIR/results.json atomically (sorted by task, model, length)."""
    path = Path(out_dir) / RESULTS_JSON
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = sorted(rows, key=row_key)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def markdown_table(rows: Sequence[dict]) -> str:
    """A Markdown table of the rows, with chance and (adding) the 1997 sequences beside them;
    recall is the copy task's recall length ("-" for the other tasks)."""
    head = ("| task | model | T | recall | hidden | test success | test error | chance error | "
            "solved | sequences seen | 1997 LSTM | seconds | CPU seconds |")  # fmt: skip
    lines = [head, "|" + "---|" * 13]
    for r in sorted(rows, key=row_key):
        paper = PAPER_1997_SEQUENCES.get(r["length"]) if r["task"] == "adding" else None
        lines.append(
            f"| {r['task']} | {r['model']} | {r['length']} | {recall_of(r) or '-'} | "
            f"{r.get('hidden_size', 32)} | "
            f"{100 * r['success_rate']:.1f} % | "
            f"{r['test_error']:.4f} | {r['chance_error']:.4f} | "
            f"{_solved(r)} | {r['sequences_seen']:,} | "
            f"{f'{paper:,}' if paper else '-'} | {r['seconds']:.0f} | {_cpu(r)} |"
        )
    return "\n".join(lines) + "\n"


def _cpu(row: dict) -> str:
    return "-" if row.get("cpu_seconds") is None else f"{row['cpu_seconds']:.0f}"


MODEL_STYLE = {"lstm": ("C0", "o"), "gru": ("C2", "s"), "rnn": ("C3", "^")}
LINE_STYLES = ("-", ":", "--", "-.")


def _variant(row: dict) -> tuple[int, int]:
    return int(row.get("hidden_size", 32)), recall_of(row) or 0


def plot_results(rows: Sequence[dict], path: str | Path) -> Path:
    """One column per task: test success rate (top) and test error / chance error (bottom)
    against the length T, one line per model, chance dashed. matplotlib's Figure API (Agg)."""
    from matplotlib.figure import Figure

    if not rows:
        raise ValueError("no results to plot")
    tasks = sorted({r["task"] for r in rows})
    fig = Figure(figsize=(5 * len(tasks), 7), dpi=90)
    axes = fig.subplots(2, len(tasks), squeeze=False)
    for col, task in enumerate(tasks):
        mine = [r for r in rows if r["task"] == task]
        top, bottom = axes[0][col], axes[1][col]
        variants = sorted({(r.get("hidden_size", 32), recall_of(r) or 0) for r in mine})
        for model, hidden, recall in sorted({(r["model"], *_variant(r)) for r in mine}):
            pts = sorted((r["length"], r) for r in mine
                         if r["model"] == model and _variant(r) == (hidden, recall))  # fmt: skip
            x = [p[0] for p in pts]
            color, marker = MODEL_STYLE.get(model, (None, "o"))
            label = model.upper()
            if len(variants) > 1:
                label += f" (H={hidden}" + (f", recall {recall})" if recall else ")")
            ls = LINE_STYLES[variants.index((hidden, recall)) % len(LINE_STYLES)]
            style = {"color": color, "marker": marker, "label": label, "ls": ls}
            top.plot(x, [100 * p[1]["success_rate"] for p in pts], **style)
            bottom.plot(x, [p[1]["test_error"] / p[1]["chance_error"] for p in pts], **style)
        chance = 100 * max(r["chance_success"] for r in mine)
        top.axhline(chance, color="grey", ls="--", lw=1, label=f"chance ({chance:.3g} %)")
        bottom.axhline(1.0, color="grey", ls="--", lw=1, label="chance")
        top.set_ylim(-2, 102)
        bottom.set_ylim(bottom=0)
        top.set_title(f"{task}: held-out test")
        top.set_ylabel("success rate (%)")
        bottom.set_ylabel("test error / chance error")
        lengths = sorted({r["length"] for r in mine})
        for ax in (top, bottom):
            ax.set_xscale("log")
            ax.set_xticks(lengths, [str(v) for v in lengths])
            ax.minorticks_off()
            ax.set_xlabel("length T (time lag)")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def write_report(rows: Sequence[dict], out_dir: str | Path, plot: bool = True) -> dict[str, Path]:
    """results.json, results.md and (when `plot`) results.png for `rows` in `out_dir`."""
    out = Path(out_dir)
    paths = {"json": save_rows(rows, out)}
    (out / RESULTS_MD).write_text(markdown_table(rows))
    paths["md"] = out / RESULTS_MD
    if plot:
        paths["png"] = plot_results(rows, out / RESULTS_PNG)
    return paths


def compare(
    base: LabConfig,
    lengths: Sequence[int],
    models: Sequence[str],
    out_dir: str | Path,
    on_start: Callable[[LabConfig, int, int], None] | None = None,
    on_done: Callable[[dict], None] | None = None,
    on_progress: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Run every (length, model) not yet in out_dir/results.json; rewrite the report after each.

    Args:
        base: the settings shared by every run (task, budget, hidden size, seed, ...).
        lengths, models: the grid; runs go length by length, shortest first.
        on_start(cfg, i, n): called before the i-th of the n missing runs; on_done(row) after it;
            on_progress: passed to `run`.

    Returns:
        All rows of results.json (old and new).
    """
    out = Path(out_dir)
    rows = load_rows(out)
    done = {row_key(r) for r in rows}
    todo = [base.__class__.from_dict({**base.to_dict(), "length": T, "model": m})
            for T in sorted(lengths) for m in models]  # fmt: skip
    todo = [c for c in todo if row_key(c.to_dict()) not in done]
    for i, cfg in enumerate(todo):
        if on_start is not None:
            on_start(cfg, i, len(todo))
        row = run(cfg, out / "models" / run_name(cfg), on_progress)
        rows = [r for r in load_rows(out) if row_key(r) != row_key(row)] + [row]
        write_report(rows, out, plot=False)  # JSON and Markdown after every run
        if on_done is not None:
            on_done(row)
    if rows:
        write_report(rows, out)  # and the plot once at the end (also refreshed on a resume)
    return sorted(rows, key=row_key)
