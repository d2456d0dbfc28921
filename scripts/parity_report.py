"""Largest differences between longshort and torch.nn.LSTM / GRU / RNN, over the test grid.

Same weights, same inputs, the same random projection of outputs and final states backpropagated
through both; reports the worst output or gradient difference per layer kind, dtype and impl.
Needs the test extras (torch). Run: .venv/bin/python scripts/parity_report.py
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import longshort as ls  # noqa: E402
from reference.torch_ref import compare_with_torch  # noqa: E402

KINDS = {
    "LSTM": (ls.nn.LSTM, torch.nn.LSTM, 2),
    "GRU": (ls.nn.GRU, torch.nn.GRU, 1),
    "RNN": (ls.nn.RNN, torch.nn.RNN, 1),
}
CONFIGS = [(1, False), (3, False), (2, True), (3, True)]


def worst(kind: str, dtype, impl: str) -> tuple[float, str]:
    ours, theirs, n_states = KINDS[kind]
    rng = np.random.default_rng(1)
    B, T, I, H = 4, 7, 5, 6
    result = (0.0, "")
    for (L, bi), use_len, use_state in itertools.product(CONFIGS, (False, True), (False, True)):
        layer = ours(I, H, num_layers=L, bidirectional=bi, dtype=dtype, seed=3, impl=impl)
        x = rng.standard_normal((B, T, I)).astype(dtype)
        lengths = np.array([7, 1, 4, 7]) if use_len else None
        state = None
        if use_state:
            s = [rng.standard_normal((L * (1 + bi), B, H)).astype(dtype) for _ in range(n_states)]
            state = tuple(s) if n_states == 2 else s[0]
        errs = compare_with_torch(layer, theirs, x, lengths, state)
        name = max(errs, key=errs.get)
        if errs[name] > result[0]:
            where = f"{name} (L={L}, bidirectional={bi}, lengths={use_len}, h0={use_state})"
            result = (errs[name], where)
    return result


def main() -> None:
    print(f"{'layer':<6}{'dtype':<9}{'impl':<11}{'max abs error':>15}  worst case")
    for kind, dtype, impl in itertools.product(
        KINDS, (np.float64, np.float32), ("reference", "auto")
    ):
        err, where = worst(kind, dtype, impl)
        print(f"{kind:<6}{np.dtype(dtype).name:<9}{impl:<11}{err:15.2e}  {where}")


if __name__ == "__main__":
    main()
