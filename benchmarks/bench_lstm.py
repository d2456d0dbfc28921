"""longshort vs torch.nn.LSTM vs ONNX Runtime, side by side in one run.

    python benchmarks/bench_lstm.py [--quick] [--json FILE] [--impl auto|fused|reference]
                                    [--isolate]

For each (B, T, I, H, L) it times, interleaving the implementations in rounds (per round and
library: one untimed call, then a block of back-to-back calls, at least two and 20 ms; medians of
the blocks' means over rounds):
    inference       longshort forward(need_cache=False) | torch no_grad forward | ORT session.run
    training step   forward + backward with parameter gradients; x is data, so neither library
                    computes its gradient (torch: x without requires_grad, y.backward(dy);
                    longshort: backward(dy, need_input_grad=False))
and for B = T = 1 also the streaming step: LSTM.step(x_t, state) vs a torch call on one step.
Then, each in a fresh process: peak RSS over repeated training steps of (64, 200, 64, 256, 2),
and cold start (interpreter + import + first forward of (32, 100, 32, 128, 1)).
Ratios are longshort / other; below 1 means longshort is faster. Timings on a shared machine are
noisy: compare ratios from the same run.

--isolate runs each library in a worker process of its own (benchmarks/_isolated.py), still
interleaved round by round, so no library's idle thread pool spins beside another's timed calls.

Roofline: the run first measures this machine's float32 peak (16-lane fused multiply-adds on
every core, benchmarks/_fma_peak.py; NumPy's and torch's 2048^3 matrix products reach only about
half of it here) and counts each configuration's GEMM FLOPs
(inference 2BT(I_l + H)4H per layer; a training step 3x that, less layer 0's dx). A library's
time can never be below FLOPs / peak, so `bound` = (FLOPs / peak) / torch's time is the smallest
ratio to torch any implementation could reach on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _fma_peak import fma_peak  # noqa: E402
from _report import print_report  # noqa: E402

GRID = [
    (1, 1, 32, 64, 1),
    (1, 100, 32, 128, 1),
    (32, 100, 32, 128, 1),
    (64, 200, 64, 256, 2),
    (128, 50, 128, 512, 1),
    (32, 1000, 16, 64, 1),
]
MEMORY_CFG = (64, 200, 64, 256, 2)
COLD_CFG = (32, 100, 32, 128, 1)


def build_longshort(cfg, impl):
    """A longshort LSTM (seed 0), its input x (B, T, I) and output gradient dy (B, T, H)."""
    import longshort as ls

    B, T, I, H, L = cfg
    layer = ls.nn.LSTM(I, H, num_layers=L, seed=0, impl=impl)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    dy = rng.standard_normal((B, T, H)).astype(np.float32)
    return layer, x, dy


def build(cfg, impl):
    """A longshort LSTM, a torch.nn.LSTM with the same weights, inputs and output gradients."""
    import torch

    layer, x, dy = build_longshort(cfg, impl)
    B, T, I, H, L = cfg
    tl = torch.nn.LSTM(I, H, num_layers=L, batch_first=True)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            getattr(tl, name).copy_(torch.from_numpy(p.data))
    return layer, tl, x, dy


def flops(cfg) -> tuple[float, float]:
    """(inference, training-step) GEMM FLOPs of a (B, T, I, H, L) unidirectional LSTM."""
    B, T, I, H, L = cfg
    fwd = sum(2 * B * T * ((I if layer == 0 else H) + H) * 4 * H for layer in range(L))
    return float(fwd), float(3 * fwd - 2 * B * T * I * 4 * H)  # torch skips layer 0's dx


def measure_peak(n: int = 2048, reps: int = 5) -> dict:
    """GFLOP/s of the best n^3 float32 matrix product, NumPy (OpenBLAS) and torch (MKL), and of
    the CPU's fused multiply-adds on every core; the peak is the higher."""
    import torch

    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    ta = torch.from_numpy(a)
    out = {}
    for name, f in (("numpy", lambda: a @ a), ("torch", lambda: torch.mm(ta, ta))):
        f()
        best = min(_timed(f) for _ in range(reps))
        out[name] = 2 * n**3 / best / 1e9
    out["gemm_gflops"] = max(out.values())
    out["n"] = n
    out.update(fma_peak())  # the vector units' own ceiling (benchmarks/_fma_peak.py)
    out["peak_gflops"] = max(out["gemm_gflops"], out["fma_gflops"])
    return out


def _timed(f) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def spin(seconds: float) -> None:
    """Wait by busy-looping: the core stays awake. After a `time.sleep` of 25 ms this VM ran the
    next 5-50 ms of work slower (a 9.3 us streaming step timed at 14-16 us, alone)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def interleaved(fns: dict, reps: int, pause: float = 0.06, block_s: float = 0.02) -> dict:
    """Median seconds per call, measured in rounds: in each round every implementation runs one
    block of back-to-back calls, in an order rotating every round. A block is one untimed call
    (it wakes the library's threads after the pause) and then timed calls, at least two and at
    least `block_s` long: every library is timed warm, as a training or serving loop calling
    it again and again sees it.

    `pause` before each block (a busy wait, see `spin`) lets the previous library's thread pool
    go idle. ONNX Runtime's worker spins for about 40 ms after a run (the process used 40 ms of
    CPU in any sleep of 40-100 ms after a few runs of (32,100,32,128,1)): right after ORT and
    25 / 100 / 300 ms later, our (32,100,32,128,1) inference took 5.1 / 4.0 / 2.5 / 2.4 ms,
    1.9 ms with no ORT call before, hence 60 ms (25 ms before 2026-12-02 16:15). 2 ms after one a
    (128,50,128,512,1) longshort forward took 123 ms against 90 ms alone (98 ms after 20 ms);
    2 ms after torch's streaming step ours took 14.5 us against 9.3 alone. The untimed first call
    matters after the pause too: a (32,100,32,128,1) training step right after 25 ms of waiting
    took 7.5-7.7 ms against 6.9 back to back, torch's 10.9-11.1 against 10.3 (40 rounds each);
    and this VM's cores take several ms to come back to speed: (32,100,32,128,1) inference calls
    after a 20 ms pause ran 2.67, 2.57, 2.37, then 2.3 ms (medians of 30 by position) against 2.06
    in a tight loop, hence blocks of at least 20 ms (5 ms before 2026-12-02 16:10)."""
    inner = {}
    for n, f in fns.items():  # warm up (JIT, caches, thread pools) and size the blocks
        f()
        t0 = time.perf_counter()
        f()
        inner[n] = max(2, int(block_s / max(time.perf_counter() - t0, 1e-7)))
    names, times = list(fns), {n: [] for n in fns}
    for r in range(reps):
        for n in names[r % len(names) :] + names[: r % len(names)]:
            spin(pause)  # let another library's spinning threads go idle
            f, k = fns[n], inner[n]
            f()  # untimed: wakes this library's threads
            t0 = time.perf_counter()
            for _ in range(k):
                f()
            times[n].append((time.perf_counter() - t0) / k)
    return {n: float(np.median(t)) for n, t in times.items()}


def reps_for(cfg, quick: bool) -> int:
    B, T, I, H, L = cfg
    work = B * T * H * (H + I) * L  # ~ proportional to the time of one call
    reps = int(np.clip(4e9 / max(work, 1), 7, 41))
    return max(5, reps // 3) if quick else reps


def bench_config_isolated(cfg, impl, quick):
    from _isolated import Workers

    reps = reps_for(cfg, quick)
    w = Workers(["longshort", "torch", "ort"], cfg, impl)
    try:
        row = {"config": list(cfg), "reps": reps, "isolated": True}
        row["inference"] = w.interleaved("inference", ["longshort", "torch", "ort"], reps)
        row["train"] = w.interleaved("train", ["longshort", "torch"], reps)
        if cfg[0] == 1 and cfg[1] == 1:
            row["step"] = w.interleaved("step", ["longshort", "torch"], reps)
    finally:
        w.close()
    return row


def calls(lib: str, layer, tl, x, dy) -> dict:
    """{kind: zero-argument function} of one library for the same model and data: 'inference',
    'train' (forward + backward with parameter gradients) and, except for ORT, 'step' (one
    streaming step on x[:, :1]). `tl` (the torch twin) is needed only for lib == 'torch'."""
    L, H = layer.num_layers, layer.hidden_size
    if lib == "longshort":
        state = (np.zeros((L, 1, H), np.float32), np.zeros((L, 1, H), np.float32))

        def train():
            layer.zero_grad()
            layer(x)
            layer.backward(dy, need_input_grad=False)  # x is data, as for torch's xt

        return {
            "inference": lambda: layer(x, need_cache=False),
            "train": train,
            "step": lambda: layer.step(x[:, 0], state),
        }
    if lib == "torch":
        import torch

        xt, dyt = torch.from_numpy(x), torch.from_numpy(dy)
        tstate = tuple(torch.zeros(L, 1, H) for _ in range(2))

        def inf():
            with torch.no_grad():
                tl(xt)

        def ttrain():
            tl.zero_grad()
            y, _ = tl(xt)
            y.backward(dyt)

        def step():
            with torch.no_grad():
                tl(xt, tstate)

        return {"inference": inf, "train": ttrain, "step": step}
    from _onnx_lstm import ort_session

    run = ort_session(layer)
    return {"inference": lambda: run(x)}


def bench_config(cfg, impl, quick):
    layer, tl, x, dy = build(cfg, impl)
    fns = {lib: calls(lib, layer, tl, x, dy) for lib in ("longshort", "torch", "ort")}
    np.testing.assert_allclose(layer(x, need_cache=False)[0], fns["ort"]["inference"](), atol=1e-4)
    reps = reps_for(cfg, quick)

    def timed(kind, libs):
        return interleaved({lib: fns[lib][kind] for lib in libs}, reps)

    row = {"config": list(cfg), "reps": reps}
    row["inference"] = timed("inference", ["longshort", "torch", "ort"])
    row["train"] = timed("train", ["longshort", "torch"])
    if cfg[0] == 1 and cfg[1] == 1:
        row["step"] = timed("step", ["longshort", "torch"])
    return row


MEMORY_CHILD = """
import sys, json, numpy as np
lib, steps = sys.argv[1], int(sys.argv[2])
B, T, I, H, L = {cfg}
rng = np.random.default_rng(0)
x = rng.standard_normal((B, T, I)).astype(np.float32)
dy = rng.standard_normal((B, T, H)).astype(np.float32)
if lib == "torch":
    import torch
    m = torch.nn.LSTM(I, H, L, batch_first=True); xt, dyt = torch.from_numpy(x), torch.from_numpy(dy)
    def step():
        m.zero_grad(); y, _ = m(xt); y.backward(dyt)
else:
    import longshort as ls
    m = ls.nn.LSTM(I, H, L, seed=0, impl=lib)
    m(x[:1, :2])  # load the kernels, as torch's import loads its own
    def step():
        m.zero_grad(); m(x); m.backward(dy, need_input_grad=False)
def rss():  # VmHWM: this process's peak resident set (ru_maxrss would include the parent's)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
base, peaks = rss(), []
for _ in range(steps):
    step(); peaks.append(rss())
print(json.dumps(dict(base_mb=base, peaks_mb=peaks)))
"""

COLD_CHILD = """
import time; t0 = time.perf_counter()
import sys, numpy as np
lib = sys.argv[1]
B, T, I, H, L = {cfg}
x = np.random.default_rng(0).standard_normal((B, T, I)).astype(np.float32)
if lib == "torch":
    import torch
    with torch.no_grad():
        torch.nn.LSTM(I, H, L, batch_first=True)(torch.from_numpy(x))
else:
    import longshort as ls
    ls.nn.LSTM(I, H, L, seed=0, impl=lib)(x, need_cache=False)
print(time.perf_counter() - t0)
"""


def _child(code: str, *args: str) -> tuple[str, float]:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{r.stderr}")
    return r.stdout.strip().splitlines()[-1], wall


def bench_memory(impl, steps):
    code = MEMORY_CHILD.format(cfg=MEMORY_CFG)
    return {lib: json.loads(_child(code, lib, str(steps))[0]) for lib in (impl, "torch")}


def bench_cold(impl, reps):
    code = COLD_CHILD.format(cfg=COLD_CFG)
    _child(code, impl)  # make sure the on-disk kernel cache exists (a first install compiles)
    out = {impl: [], "torch": []}
    for _ in range(reps):
        for lib in out:
            inner, wall = _child(code, lib)
            out[lib].append({"wall_s": wall, "import_and_forward_s": float(inner)})
    return {
        lib: {k: float(np.median([r[k] for r in rs])) for k in rs[0]} for lib, rs in out.items()
    }


def versions() -> dict:
    import numba
    import onnxruntime
    import torch

    import longshort
    from longshort.kernels import _blas

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "onnxruntime": onnxruntime.__version__,
        "longshort": getattr(longshort, "__version__", "?"),
        "blas": _blas.BACKEND,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, for a smoke run")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--impl", default="auto", choices=["auto", "fused", "reference"])
    ap.add_argument("--skip-process", action="store_true", help="skip memory and cold start")
    ap.add_argument(
        "--config", action="append", metavar="B,T,I,H,L", help="run only these (repeatable)"
    )
    ap.add_argument("--isolate", action="store_true", help="each library in its own worker process")
    args = ap.parse_args(argv)
    grid = [tuple(int(v) for v in c.split(",")) for c in args.config] if args.config else GRID
    result = {"versions": versions(), "impl": args.impl, "quick": args.quick, "configs": []}
    result["isolated"] = args.isolate
    result["peak"] = measure_peak(1024 if args.quick else 2048, reps=3 if args.quick else 7)
    run = bench_config_isolated if args.isolate else bench_config
    for cfg in grid:
        row = run(cfg, args.impl, args.quick)
        row["flops"] = dict(zip(("inference", "train"), flops(cfg)))
        result["configs"].append(row)
        print(f"done {cfg}", file=sys.stderr, flush=True)
    if not args.skip_process:
        result["memory"] = bench_memory(args.impl, 3 if args.quick else 5)
        result["cold_start"] = bench_cold(args.impl, 2 if args.quick else 5)
    print_report(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
