"""`longshort classify train|eval`: sequence classification from .ts, .npz or long .csv files.

longshort classify train --data TRAIN --out DIR [--hidden 64 --layers 1 --bidirectional
                         --pooling last|mean|max --cell lstm|gru|rnn --epochs 30 ...]
longshort classify eval --model DIR --data TEST [--plot confusion.png]
    prints {"accuracy": .., "per_class": {label: recall}, "n": ..} and writes the confusion
    matrix as a PNG (default DIR/confusion.png)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from . import out_dir, out_file, seed_type


def _train(args: argparse.Namespace) -> int:
    from ..data.readers import read_sequences
    from ..models.classifier import SequenceClassifier

    X, y = read_sequences(args.data)
    model = SequenceClassifier(
        args.hidden, args.layers, args.bidirectional, args.pooling, cell=args.cell,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
        val_fraction=args.val_fraction, max_seconds=args.max_seconds,
    )  # fmt: skip
    model.fit(X, y)
    model.save(args.out)
    h = model.history
    summary = {"out": str(args.out), "n": len(y), "classes": len(model.classes_),
               "train_accuracy": round(model.score(X, y), 4), "steps": h.step,
               "seconds": round(h.seconds, 2)}  # fmt: skip
    print(json.dumps(summary))
    return 0


def evaluate(model, X, y) -> tuple[dict, np.ndarray]:
    """{"accuracy", "per_class" (recall per true label), "n"} and the confusion matrix (C, C)."""
    classes = model.classes_
    pred = model.predict(X)
    truth = np.asarray(y)
    unknown = sorted(set(truth.tolist()) - set(classes.tolist()))
    if unknown:
        raise ValueError(
            f"labels {unknown[:5]} were not seen in training; known: {classes.tolist()}"
        )
    index = {c: i for i, c in enumerate(classes.tolist())}
    cm = np.zeros((len(classes), len(classes)), np.int64)  # rows: true, columns: predicted
    for t, p in zip(truth.tolist(), pred.tolist()):
        cm[index[t], index[p]] += 1
    per_class = {str(c): round(float(cm[i, i] / cm[i].sum()), 4)
                 for i, c in enumerate(classes.tolist()) if cm[i].sum()}  # fmt: skip
    acc = float(np.trace(cm) / cm.sum())
    return {"accuracy": round(acc, 4), "per_class": per_class, "n": int(cm.sum())}, cm


def plot_confusion(cm: np.ndarray, labels, path, title: str = "") -> Path:
    """Write the confusion matrix (rows true, columns predicted) as a PNG; Agg, no pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    C = len(labels)
    size = min(4 + 0.45 * C, 14)
    fig = Figure(figsize=(size, size * 0.85))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set(xticks=range(C), yticks=range(C), xlabel="predicted", ylabel="true", title=title)
    ax.set_xticklabels([str(v) for v in labels], rotation=90)
    ax.set_yticklabels([str(v) for v in labels])
    if C <= 20:
        for i in range(C):
            for j in range(C):
                color = "white" if cm[i, j] > cm.max() / 2 else "black"
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", color=color, fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def _eval(args: argparse.Namespace) -> int:
    from ..data.readers import read_sequences
    from ..models.classifier import SequenceClassifier

    model = SequenceClassifier.load(args.model)
    X, y = read_sequences(args.data)
    report, cm = evaluate(model, X, y)
    plot = Path(args.plot) if args.plot else Path(args.model) / "confusion.png"
    title = f"{Path(args.data).name}: accuracy {report['accuracy']:.3f} (n={report['n']})"
    plot_confusion(cm, model.classes_.tolist(), plot, title)
    print(json.dumps(report))
    return 0


def register(sub) -> None:
    """Add `longshort classify train|eval` to the subcommand parser."""
    p = sub.add_parser("classify", help="train / evaluate a sequence classifier (.ts/.npz/.csv)")
    cs = p.add_subparsers(dest="action", metavar="<action>", required=True)
    t = cs.add_parser("train", help="train on a labelled file and save the model to --out")
    t.add_argument("--data", required=True, help="training data: .ts, .npz or long-format .csv")
    t.add_argument("--out", required=True, type=out_dir, help="directory for the saved model")
    t.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    t.add_argument("--hidden", type=int, default=64, help="hidden units (default 64)")
    t.add_argument("--layers", type=int, default=1, help="stacked layers (default 1)")
    t.add_argument("--bidirectional", action="store_true")
    t.add_argument("--pooling", default="last", choices=["last", "mean", "max"])
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument(
        "--val-fraction", type=float, default=0.0, help="held out to keep the best epoch"
    )
    t.add_argument("--max-seconds", type=float, default=None, help="training time budget")
    t.add_argument("--seed", type=seed_type, default=0)
    t.set_defaults(func=_train)
    e = cs.add_parser("eval", help="score a saved model on a labelled file; JSON + confusion PNG")
    e.add_argument("--model", required=True, help="directory written by `classify train`")
    e.add_argument("--data", required=True, help="test data: .ts, .npz or long-format .csv")
    e.add_argument(
        "--plot",
        default=None,
        type=out_file,
        help="confusion matrix PNG (default MODEL/confusion.png)",
    )
    e.set_defaults(func=_eval)
