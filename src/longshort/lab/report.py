"""The lab's comparison: many runs, one results table (JSON, PNG and Markdown), resumable.

    DIR/results.json   {"rows": [row, ...]}, one row per (task, model, length, recall length:
                       copy only, 10 when a row has none) and every setting that changes the
                       result (hidden size, seed, lr, batch, clipping, budgets, validation and
                       test sizes, solve_at, LSTM init; see runner.RESULT_SETTINGS)
    DIR/results.png    success rate and error / chance against length, one line per model
    DIR/results.md     the same rows as a Markdown table
    DIR/models/<task>-<model>-T<length>[-R<recall>][-<hash>]/   each run's saved model, metrics
                       and result.json (-R<recall> for a copy run whose recall length is not 10;
                       -<hash>, 8 hex digits of the settings, when a setting differs from the
                       LabConfig default, so that no two rows share a directory); a row's
                       "model_dir" says where its model is

`compare` skips the rows already in DIR/results.json with the same key, so a killed or
extended comparison picks up where it stopped, and a run with another seed, lr, hidden size, ...
is a new row (a row without a setting, written before it was recorded, counts as the default);
results.json (atomically) and results.md are
rewritten after each run, results.png once at the end.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from ..data.tasks import COPY_RECALL
from .runner import RESULT_SETTINGS, LabConfig, result_settings, run

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


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(LabConfig)}


def settings_of(row: dict) -> dict:
    """A row's RESULT_SETTINGS (hidden size, seed, lr, budgets, init, ...); a setting the row does
    not record (rows written before it was recorded) counts as the LabConfig default."""
    d = {k: row.get(k, _DEFAULTS[k]) for k in RESULT_SETTINGS}
    if row["model"] != "lstm":
        d["lstm_init"] = "-"
    return d


def row_key(row: dict) -> tuple:
    """(task, model, length, recall length or 0, hidden size, then every other setting that changes
    the result: seed, lr, budgets, init, ...): a row differing in any of them is another row, so
    `compare` never reports an old row for a run with other settings."""
    s = settings_of(row)
    return (row["task"], row["model"], int(row["length"]), recall_of(row) or 0,
            int(s["hidden_size"]), *(s[k] for k in RESULT_SETTINGS if k != "hidden_size"))  # fmt: skip


def _sort_key(row: dict) -> tuple:
    """row_key with the values as strings after the length: rows from other versions may mix
    types."""
    k = row_key(row)
    return (*k[:5], *(str(v) for v in k[5:]))


def run_name(cfg: LabConfig) -> str:
    """The directory name of a run's model under DIR/models: <task>-<model>-T<length>, -R<recall>
    for a copy run whose recall is not 10, and -<hash> (8 hex digits of the settings) when any
    other setting (hidden size, seed, lr, budgets, init, ...) differs from the LabConfig default,
    so that runs with other settings never share (and overwrite) a directory."""
    tail = f"-R{cfg.recall}" if cfg.task == "copy" and cfg.recall != COPY_RECALL else ""
    mine = result_settings(cfg)
    default = {k: _DEFAULTS[k] for k in RESULT_SETTINGS}
    if cfg.model != "lstm":
        default["lstm_init"] = "-"
    if mine != default:
        floats = ("lr", "clip_norm", "budget_minutes", "solve_at")  # 30 and 30.0: one name
        text = json.dumps({k: float(v) if k in floats else v for k, v in mine.items()},
                          sort_keys=True, default=int)  # fmt: skip
        tail += "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
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
    rows = sorted(rows, key=_sort_key)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def _show(v) -> str:
    """A setting for the table: 2000000, not 2e+06; 0.003 as 0.003."""
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else f"{v:g}"
    return str(v)


def _other_settings(row: dict) -> str:
    """The row's settings other than hidden size, seed and lr that differ from the LabConfig
    defaults, as "k=v, ..." ("-" when none): two rows that differ only there stay apart."""
    s, default = settings_of(row), {k: _DEFAULTS[k] for k in RESULT_SETTINGS}
    if row["model"] != "lstm":
        default["lstm_init"] = "-"
    skip = ("hidden_size", "seed", "lr")
    other = [f"{k}={_show(s[k])}" for k in RESULT_SETTINGS if k not in skip and s[k] != default[k]]
    return ", ".join(other) or "-"


def markdown_table(rows: Sequence[dict]) -> str:
    """A Markdown table of the rows, with chance and (adding) the 1997 sequences beside them;
    recall is the copy task's recall length ("-" for the other tasks); seed, lr and any other
    setting that differs from the defaults tell apart rows of the same task, model and T."""
    head = ("| task | model | T | recall | hidden | seed | lr | other settings | test success | "
            "test error | chance error | solved | sequences seen | 1997 LSTM | seconds | "
            "CPU seconds |")  # fmt: skip
    lines = [head, "|" + "---|" * 16]
    for r in sorted(rows, key=_sort_key):
        paper = PAPER_1997_SEQUENCES.get(r["length"]) if r["task"] == "adding" else None
        s = settings_of(r)
        lines.append(
            f"| {r['task']} | {r['model']} | {r['length']} | {recall_of(r) or '-'} | "
            f"{r.get('hidden_size', 32)} | {s['seed']} | {float(s['lr']):g} | "
            f"{_other_settings(r)} | "
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


_VARIANT_NAMES = ("recall", "H", *(k for k in RESULT_SETTINGS if k != "hidden_size"))


def _variant(row: dict) -> tuple:
    """Everything in a row's key but (task, model, length): one line of the plot per variant."""
    return tuple(str(v) if i > 1 else v for i, v in enumerate(row_key(row)[3:]))


def _label(model: str, variant: tuple, variants: list[tuple]) -> str:
    """The model, with the settings that differ between the task's variants (H, recall, seed, ...)."""
    differ = [i for i in range(len(variant)) if len({v[i] for v in variants}) > 1]
    if not differ:
        return model.upper()
    return (
        model.upper() + " (" + ", ".join(f"{_VARIANT_NAMES[i]}={variant[i]}" for i in differ) + ")"
    )


def plot_results(rows: Sequence[dict], path: str | Path) -> Path:
    """One column per task: test success rate (top) and test error / chance error (bottom)
    against the length T, one line per model and variant (hidden size, recall, seed, lr, ...),
    chance dashed. matplotlib's Figure API (Agg)."""
    from matplotlib.figure import Figure

    if not rows:
        raise ValueError("no results to plot")
    tasks = sorted({r["task"] for r in rows})
    fig = Figure(figsize=(5 * len(tasks), 7), dpi=90)
    axes = fig.subplots(2, len(tasks), squeeze=False)
    for col, task in enumerate(tasks):
        mine = [r for r in rows if r["task"] == task]
        top, bottom = axes[0][col], axes[1][col]
        variants = sorted({_variant(r) for r in mine})
        for model, variant in sorted({(r["model"], _variant(r)) for r in mine}):
            pts = sorted(((r["length"], r) for r in mine
                          if r["model"] == model and _variant(r) == variant),
                         key=lambda p: p[0])  # fmt: skip
            x = [p[0] for p in pts]
            color, marker = MODEL_STYLE.get(model, (None, "o"))
            label = _label(model, variant, variants)
            ls = LINE_STYLES[variants.index(variant) % len(LINE_STYLES)]
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
    return sorted(rows, key=_sort_key)
