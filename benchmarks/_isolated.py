"""Each library in a process of its own, timed in interleaved rounds by the parent.

In one shared process, the libraries disturb each other: torch's OpenMP threads and ONNX
Runtime's pool keep spinning for a while after a call returns, so whoever runs next on this
2-core machine loses a core (the (32,100,32,128,1) forward of longshort took 6.2 ms alone and
11-13 ms interleaved in-process). Here every library gets a worker process that builds the same
model (same weights, inputs and output gradients) and times blocks of calls when asked; the
parent rotates the order every round and pauses between libraries, so a pool left spinning by
one library has gone idle before the next is timed. Nothing else differs from the in-process
measurement (same blocks, same medians).
"""

from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np


def _callables(lib: str, cfg, impl: str) -> dict:
    """{kind: zero-argument function} of `lib` (bench_lstm.calls); torch is imported only in
    the torch worker."""
    import bench_lstm

    if lib == "torch":
        layer, tl, x, dy = bench_lstm.build(cfg, impl)
    else:
        (layer, x, dy), tl = bench_lstm.build_longshort(cfg, impl), None
    return bench_lstm.calls(lib, layer, tl, x, dy)


def _serve(conn, lib, cfg, impl, path):
    import sys

    sys.path.insert(0, path)
    from bench_lstm import spin

    fns = _callables(lib, cfg, impl)
    conn.send("ready")
    while True:
        msg = conn.recv()
        if msg is None:
            return
        kind, k = msg
        f = fns[kind]
        spin(0.02)  # wake this process's core first (bench_lstm.spin)
        if k == 0:  # warm up and report one call's time
            f()
            t0 = time.perf_counter()
            f()
            conn.send(time.perf_counter() - t0)
            continue
        f()  # untimed: wakes this library's threads (as bench_lstm.interleaved)
        t0 = time.perf_counter()
        for _ in range(k):
            f()
        conn.send((time.perf_counter() - t0) / k)


class Workers:
    """One process per library, each holding the model of one configuration."""

    def __init__(self, libs, cfg, impl):
        import os

        ctx = mp.get_context("spawn")
        path = os.path.dirname(os.path.abspath(__file__))
        self.conns, self.procs = {}, []
        for lib in libs:
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_serve, args=(child, lib, cfg, impl, path), daemon=True)
            p.start()
            self.conns[lib], self.procs = parent, self.procs + [p]
        for lib, c in self.conns.items():
            if c.recv() != "ready":
                raise RuntimeError(f"benchmark worker for {lib} failed to start")

    def ask(self, lib, kind, k):
        self.conns[lib].send((kind, k))
        return self.conns[lib].recv()

    def interleaved(self, kind, libs, reps, pause=0.05, block_s=0.02) -> dict:
        inner = {n: max(2, int(block_s / max(self.ask(n, kind, 0), 1e-7))) for n in libs}
        times = {n: [] for n in libs}
        for r in range(reps):
            for n in libs[r % len(libs) :] + libs[: r % len(libs)]:
                time.sleep(pause)  # the previous library's pools go idle
                times[n].append(self.ask(n, kind, inner[n]))
        return {n: float(np.median(t)) for n, t in times.items()}

    def close(self):
        for c in self.conns.values():
            c.send(None)
        for p in self.procs:
            p.join(timeout=10)
