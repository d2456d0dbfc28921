"""Training-step time of each LSTM variant against the plain fused LSTM, in the same run.

    python benchmarks/bench_variants.py [--reps N] [--shape B T I H]

A training step is forward + backward with parameter gradients, at (32, 100, 32, 128) by
default, float32, impl="auto" (variants without a fused kernel run the NumPy reference: their
rows say "reference"). The implementations are interleaved call by call and the medians compared;
ratio = variant / plain. Targets (issue 9): <= 1.3x, layer norm <= 1.6x. Timings on a shared
machine are noisy: compare ratios from the same run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import longshort as ls
from longshort.kernels import get_lstm_variant_ops

VARIANTS = {
    "plain": {},
    "peepholes": dict(peepholes=True),
    "cell_clip": dict(cell_clip=3.0),
    "input_forget": dict(input_forget=True),
    "zoneout": dict(zoneout=(0.1, 0.05)),
    "recurrent_dropout": dict(recurrent_dropout=0.25),
    "weight_drop": dict(weight_drop=0.5),
    "proj_size=64": dict(proj_size=64),
    "layer_norm": dict(layer_norm=True),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--shape", type=int, nargs=4, default=(32, 100, 32, 128))
    args = ap.parse_args()
    B, T, I, H = args.shape
    x = np.random.default_rng(0).standard_normal((B, T, I)).astype(np.float32)
    layers = {n: ls.nn.LSTM(I, H, seed=0, **kw) for n, kw in VARIANTS.items()}
    times = {n: [] for n in layers}
    for rep in range(args.reps + 1):
        for name, layer in layers.items():
            t0 = time.perf_counter()
            y, _ = layer(x)
            layer.backward(np.ones_like(y))
            if rep:  # the first round compiles and warms up
                times[name].append(time.perf_counter() - t0)
    base = np.median(times["plain"])
    print(f"training step at (B, T, I, H) = {(B, T, I, H)}, float32, median of {args.reps}")
    print(f"| {'variant':<18} | {'path':<9} | {'ms':>7} | {'ratio':>5} |")
    print(f"|{'-' * 20}|{'-' * 11}|{'-' * 9}|{'-' * 7}|")
    for name, layer in layers.items():
        feats = layer.variants.features
        fwd = get_lstm_variant_ops(feats, "auto")[0] if feats else None
        path = "fused" if fwd is None or "kernels" in fwd.__module__ else "reference"
        med = np.median(times[name])
        print(f"| {name:<18} | {path:<9} | {med * 1e3:7.1f} | {med / base:5.2f} |")


if __name__ == "__main__":
    main()
