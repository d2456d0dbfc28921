"""Sequence classification on real data; results go to docs/classify/<name>.json (and .png).

    python scripts/classify_benchmarks.py fashion-rows     Fashion-MNIST, 28 steps x 28 pixels
    python scripts/classify_benchmarks.py vowels           JapaneseVowels (UEA), 12 ch, T 7-29
    python scripts/classify_benchmarks.py fashion-pixels   784 steps x 1: LSTM vs GRU vs RNN
    python scripts/classify_benchmarks.py ucr              small UCR/UEA sets beside aeon's numbers
    python scripts/classify_benchmarks.py report           docs/classify/results.md from the JSONs

Data comes from `make data` (aeon, Debian's dataset-fashion-mnist), run here when missing.
Options: --quick (tiny budgets, to check the script), --threads N.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# One BLAS thread: the fused kernels pin it themselves, but the reference ops (the GRU here) make
# thousands of tiny GEMMs that a multi-threaded BLAS on a loaded 2-core machine slows ~14x.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "classify"
UCR_SETS = ("ItalyPowerDemand", "GunPoint", "ArrowHead", "BasicMotions", "OSULeaf")


def ensure_data() -> None:
    """Run `make data` when aeon or Fashion-MNIST is missing (it installs both)."""
    from longshort.data.fashion_mnist import available

    try:
        import aeon  # noqa: F401
    except ImportError:
        pass
    else:
        if available():
            return
    subprocess.run(["make", "-C", str(ROOT), "data"], check=True)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def train_eval(name, Xtr, ytr, Xte, yte, quick=False, save=None, labels=None, **kw) -> dict:
    """Fit a SequenceClassifier(**kw), score on the test set, keep the loss curve; with `save`
    (a slug) keep the model and write docs/classify/<slug>_confusion.png."""
    from longshort import SequenceClassifier

    rows = []
    m = SequenceClassifier(**kw)
    t0 = time.perf_counter()

    def on_row(r):
        rows.append({k: r.get(k) for k in ("step", "epoch", "loss", "val", "seconds")})
        if r.get("val") is not None or quick:
            log(f"{name}: step {r['step']} epoch {r['epoch']:.2f} loss {r.get('loss')} "
                f"val {r.get('val')} ({r['seconds']:.0f} s)")  # fmt: skip

    m.fit(Xtr, ytr, on_row=on_row)
    train_s = time.perf_counter() - t0
    if save:
        save_with_confusion(m, save, Xte, yte, labels)
    t1 = time.perf_counter()
    acc = m.score(Xte, yte)
    res = {"name": name, "accuracy": acc, "n_train": len(ytr), "n_test": len(yte),
           "train_seconds": round(train_s, 1), "eval_seconds": round(time.perf_counter() - t1, 1),
           "steps": m.history.step, "stop": m.history.stop_reason, "options": kw, "curve": rows}  # fmt: skip
    log(f"{name}: test accuracy {acc:.4f} ({train_s:.0f} s training)")
    return res


def save_with_confusion(m, slug: str, Xte, yte, labels=None) -> None:
    """Keep the model under runs/models/<slug> (git-ignored) and plot its test confusion matrix."""
    from longshort.cli.classify import evaluate, plot_confusion

    m.save(ROOT / "runs" / "models" / slug)
    report, cm = evaluate(m, Xte, yte)
    title = f"{slug}: test accuracy {report['accuracy']:.4f} (n={report['n']})"
    plot_confusion(cm, labels or m.classes_.tolist(), OUT / f"{slug}_confusion.png", title)


def fashion(split: str):
    from longshort.data.fashion_mnist import load_fashion_mnist

    x, y = load_fashion_mnist(split)
    return x.astype(np.float32) / 255.0, y.astype(np.int64)  # (N, 28, 28), (N,)


def run_fashion_rows(a) -> dict:
    (Xtr, ytr), (Xte, yte) = fashion("train"), fashion("test")
    if a.quick:
        Xtr, ytr, Xte, yte = Xtr[:2000], ytr[:2000], Xte[:500], yte[:500]
    kw = dict(hidden_size=128, bidirectional=True, pooling="max", epochs=1 if a.quick else 12,
              batch_size=128, lr=2e-3, val_fraction=0.05, max_seconds=a.max_seconds)  # fmt: skip
    from longshort.data.fashion_mnist import CLASSES

    slug = "fashion_rows_quick" if a.quick else "fashion_rows"
    r = train_eval("fashion-rows bi-LSTM", Xtr, ytr, Xte, yte, a.quick, slug, list(CLASSES), **kw)
    return {"results": [r]}


def run_vowels(a) -> dict:
    from aeon.datasets import load_classification

    Xtr, ytr = load_classification("JapaneseVowels", split="train")
    Xte, yte = load_classification("JapaneseVowels", split="test")
    Xtr, Xte = [s.T for s in Xtr], [s.T for s in Xte]  # aeon (C, T_i) -> (T_i, C)
    out = []
    for bi in (False, True):
        kw = dict(hidden_size=64, bidirectional=bi, pooling="mean", epochs=5 if a.quick else 60,
                  batch_size=16, lr=3e-3, seed=a.seed)  # fmt: skip
        name = f"JapaneseVowels {'bi-' if bi else ''}LSTM"
        out.append(train_eval(name, Xtr, ytr, Xte, yte, a.quick, **kw))
    return {"results": out}


def run_fashion_pixels(a) -> dict:
    """Same data, same model size, same optimiser steps for each cell; times compared."""
    (Xtr, ytr), (Xte, yte) = fashion("train"), fashion("test")
    n_tr, n_te = (512, 256) if a.quick else (a.pixels_train, a.pixels_test)
    Xtr, ytr = Xtr[:n_tr].reshape(n_tr, 784, 1), ytr[:n_tr]
    Xte, yte = Xte[:n_te].reshape(n_te, 784, 1), yte[:n_te]
    out = []
    for cell in ("lstm", "gru", "rnn"):
        kw = dict(hidden_size=64, cell=cell, pooling="last", epochs=100, batch_size=64,
                  lr=2e-3, schedule=None)  # fmt: skip
        secs = 10 if a.quick else a.pixel_seconds
        from longshort import SequenceClassifier

        kw_fit = {"max_seconds": secs, "log_every": 5}
        out.append(_pixels_one(cell, Xtr, ytr, Xte, yte, kw, kw_fit, SequenceClassifier))
    _plot_curves(out, OUT / "fashion_pixels_curves.png")
    return {"results": out, "budget": f"{secs} s of training each (Adam, batches of 64 drawn "
            f"from the first {n_tr} training images); test on the first {n_te} test images"}  # fmt: skip


def _pixels_one(cell, Xtr, ytr, Xte, yte, kw, kw_fit, cls) -> dict:
    rows, m = [], cls(**kw)
    t0 = time.perf_counter()
    m.fit(Xtr, ytr, on_row=lambda r: rows.append({k: r.get(k) for k in ("step", "loss", "seconds")}),
          **kw_fit)  # fmt: skip
    train_s = time.perf_counter() - t0
    acc = m.score(Xte, yte)
    log(f"pixels {cell}: accuracy {acc:.4f}, {train_s:.0f} s for {m.history.step} steps")
    return {"name": f"fashion-pixels {cell.upper()}", "accuracy": acc, "train_seconds":
            round(train_s, 1), "steps": m.history.step, "seconds_per_step":
            round(train_s / max(m.history.step, 1), 3), "options": kw, "curve": rows}  # fmt: skip


def _plot_curves(results: list[dict], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    for r in results:
        c = [p for p in r["curve"] if p["loss"] is not None]
        ax1.plot([p["step"] for p in c], [p["loss"] for p in c], label=r["name"].split()[-1])
        ax2.plot([p["seconds"] for p in c], [p["loss"] for p in c], label=r["name"].split()[-1])
    ax1.set(xlabel="optimiser step", ylabel="training cross entropy", title="per step")
    ax2.set(xlabel="training seconds", title="per second (same machine)")
    ax1.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def run_ucr(a) -> dict:
    """Two fixed configurations for every set (no per-set tuning), both reported."""
    from aeon.datasets import load_classification

    configs = {"LSTM last": dict(bidirectional=False, pooling="last"),
               "bi-LSTM max": dict(bidirectional=True, pooling="max")}  # fmt: skip
    out = []
    for name in UCR_SETS[:2] if a.quick else UCR_SETS:
        Xtr, ytr = load_classification(name, split="train")
        Xte, yte = load_classification(name, split="test")
        Xtr, Xte = [s.T for s in Xtr], [s.T for s in Xte]
        for label, cfg in configs.items():
            kw = dict(hidden_size=64, batch_size=8, lr=3e-3, epochs=3 if a.quick else 300,
                      max_seconds=a.max_seconds, seed=a.seed, **cfg)  # fmt: skip
            r = train_eval(f"{name} {label}", Xtr, ytr, Xte, yte, a.quick, **kw)
            r["dataset"] = name
            out.append(r)
    return {"results": out}


def published(dataset: str) -> dict:
    """Accuracy of each classifier in aeon's shipped results (default split, mean of 30)."""
    import importlib.resources

    root = (
        importlib.resources.files("aeon") / "testing/example_results_files/classification/accuracy"
    )
    out = {}
    for f in sorted(Path(str(root)).glob("*.csv")):
        lines = f.read_text().splitlines()
        for line in lines[1:]:
            parts = line.split(",")
            if parts[0] == dataset:
                vals = [float(v) for v in parts[1:] if v.strip()]  # resample 0 = default split
                name = f.stem.removesuffix("_accuracy")
                out[name] = {"default_split": vals[0], "mean_30": round(float(np.mean(vals)), 4)}
    return out


def write_report() -> Path:
    """docs/classify/results.md: one table row per model from every results JSON."""
    lines = ["# Sequence classification results (generated by scripts/classify_benchmarks.py)", "",
             "| task | model | test accuracy | train s | steps | budget / notes | command |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for f in sorted(OUT.glob("*.json")):
        if f.stem.endswith("_quick"):
            continue
        res = json.loads(f.read_text())
        for r in res["results"]:
            pub = published(r["dataset"]) if res["task"] == "ucr" else {}
            note = res.get("budget", "") or (f"stop: {r.get('stop')}" if r.get("stop") else "")
            if pub:
                note = "aeon published (default split / mean of 30 resamples): " + ", ".join(
                    f"{k} {v['default_split']:.3f} / {v['mean_30']:.3f}"
                    for k, v in sorted(pub.items())
                )
            lines.append(f"| {res['task']} | {r['name']} | {r['accuracy']:.4f} | "
                         f"{r['train_seconds']} | {r['steps']} | {note} | `{res['command']}` |")  # fmt: skip
    path = OUT / "results.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("task", choices=["fashion-rows", "vowels", "fashion-pixels", "ucr", "report"])
    p.add_argument("--quick", action="store_true", help="tiny budgets: checks the script runs")
    p.add_argument("--max-seconds", type=float, default=None, help="training time cap per model")
    p.add_argument("--pixel-seconds", type=float, default=300, help="training budget per cell")
    p.add_argument("--pixels-train", type=int, default=10000)
    p.add_argument("--pixels-test", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.task == "report":
        log(f"wrote {write_report()}")
        return 0
    ensure_data()
    runs = {"fashion-rows": run_fashion_rows, "vowels": run_vowels,
            "fashion-pixels": run_fashion_pixels, "ucr": run_ucr}  # fmt: skip
    t0 = time.perf_counter()
    res = runs[a.task](a)
    res.update(
        task=a.task,
        command=" ".join(["python", *sys.argv]),
        quick=a.quick,
        total_seconds=round(time.perf_counter() - t0, 1),
        date=time.strftime("%Y-%m-%d"),
    )
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{a.task.replace('-', '_')}{'_quick' if a.quick else ''}.json"
    path.write_text(json.dumps(res, indent=1) + "\n")
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
