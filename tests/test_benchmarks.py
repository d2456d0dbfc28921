"""The benchmark script runs end to end (no speed is asserted here) and counts FLOPs correctly."""

import json
import os
import subprocess
import sys

import pytest

BENCH = os.path.join(os.path.dirname(__file__), "..", "benchmarks")
sys.path.insert(0, BENCH)


def test_flops_count_by_hand():
    from bench_lstm import flops

    # one layer: 2 B T (I + H) 4H; two layers: the second layer's input is H
    B, T, I, H = 2, 3, 5, 7
    inf, train = flops((B, T, I, H, 1))
    assert inf == 2 * B * T * (I + H) * 4 * H
    assert train == 3 * inf - 2 * B * T * I * 4 * H  # no dx for layer 0
    inf2, _ = flops((B, T, I, H, 2))
    assert inf2 == inf + 2 * B * T * (H + H) * 4 * H


@pytest.mark.parametrize("isolate", [False, True])
def test_bench_runs_and_reports(tmp_path, isolate):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    out = tmp_path / "r.json"
    cmd = [sys.executable, os.path.join(BENCH, "bench_lstm.py"), "--quick", "--skip-process"]
    cmd += ["--config", "1,1,8,8,1", "--config", "4,6,3,5,2", "--json", str(out)]
    cmd += ["--isolate"] if isolate else []
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "roofline" in r.stdout and "streaming step" in r.stdout
    res = json.loads(out.read_text())
    assert res["isolated"] is isolate and res["peak"]["peak_gflops"] > 0
    pk = res["peak"]  # the FMA peak is the ceiling: every core's rate >= one core's
    assert pk["peak_gflops"] >= pk["fma_gflops"] >= pk["fma_per_core"] * 0.9 > 0
    rows = {tuple(c["config"]): c for c in res["configs"]}
    assert set(rows[(1, 1, 8, 8, 1)]) >= {"inference", "train", "step", "flops"}
    assert set(rows[(4, 6, 3, 5, 2)]["inference"]) == {"longshort", "torch", "ort"}


def test_fma_loop_computes_what_it_times():
    """The peak loop's IR is real work, n iterations of it: c chains of a <- a * 0.5 + 0.25 from
    0 (a_n = 0.5 - 0.5^(n+1)), summed over the chains: c (0.25, 0.375, 0.4375) after 1, 2, 3
    iterations, c / 2 in every lane once converged (c = 8, 12, 16: 16 would spill on AVX2)."""
    import ctypes

    from _fma_peak import CHAINS, _compile

    for chains in CHAINS:
        engine, fn = _compile(8, chains)
        out = (ctypes.c_float * 8)()
        for n, a in ((1, 0.25), (2, 0.375), (3, 0.4375), (60, 0.5)):
            fn(n, ctypes.addressof(out))
            assert list(out) == [chains * a] * 8, (chains, n)
    del engine
