"""The CPU's float32 fused multiply-add peak, measured: the ceiling no GEMM can pass.

A 2048^3 product (NumPy's OpenBLAS, torch's MKL) is not the machine's peak: on this project's
AMD EPYC (Zen 5, AVX-512) both run AVX2-width kernels at about 110 GFLOP/s a core, while the
vector units do 16-lane fused multiply-adds at twice that. This loop measures the units themselves:

    acc_a <- acc_a * m + c    for a = 0..15 independent <W x float> accumulators, N times

compiled by llvmlite for this CPU (W = 16 lowers to one AVX-512 instruction, 8 to AVX2, and to
whatever the CPU has elsewhere), run on every core at once (ctypes releases the GIL). 8 or more
chains hide the 4-cycle FMA latency on 2 pipes; with 16 registers (AVX2) 16 chains spill to memory
(48 GFLOP/s a core on a Zen 3, against 90+ with 12). FLOPs = 2 W chains N per core; the best of
W = 8 and 16 with 8, 12 and 16 chains.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time

CHAINS = (8, 12, 16)


def _ir(width: int, chains: int) -> str:
    v = f"<{width} x float>"
    m = f"<{', '.join(['float 0.5'] * width)}>"
    c = f"<{', '.join(['float 0.25'] * width)}>"
    fma = f"@llvm.fmuladd.v{width}f32"
    lines = [
        "define void @fma_loop(i64 %n, ptr %out) nounwind {",
        "entry:",
        "  br label %loop",
        "loop:",
        "  %i = phi i64 [0, %entry], [%i1, %loop]",
    ]
    lines += [f"  %a{k} = phi {v} [zeroinitializer, %entry], [%b{k}, %loop]" for k in range(chains)]
    lines += [f"  %b{k} = call {v} {fma}({v} %a{k}, {v} {m}, {v} {c})" for k in range(chains)]
    lines += ["  %i1 = add i64 %i, 1", "  %more = icmp slt i64 %i1, %n",
              "  br i1 %more, label %loop, label %exit", "exit:"]  # fmt: skip
    acc = "%b0"
    for k in range(1, chains):  # use every chain, so none is optimised away
        lines.append(f"  %s{k} = fadd {v} {acc}, %b{k}")
        acc = f"%s{k}"
    lines += [f"  store {v} {acc}, ptr %out, align 4", "  ret void", "}",
              f"declare {v} {fma}({v}, {v}, {v})"]  # fmt: skip
    return "\n".join(lines)


def _compile(width: int, chains: int):
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    tm = llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(), opt=3
    )
    mod = llvm.parse_assembly(_ir(width, chains))
    mod.verify()
    engine = llvm.create_mcjit_compiler(mod, tm)
    engine.finalize_object()
    fn = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_void_p)(
        engine.get_function_address("fma_loop")
    )
    return engine, fn


def fma_peak(seconds: float = 0.3, threads: int | None = None) -> dict:
    """{'fma_gflops': best over widths on all cores, 'fma_per_core': one core, 'width': lanes}."""
    threads = threads or os.cpu_count() or 1
    best = {"fma_gflops": 0.0, "fma_per_core": 0.0, "width": 0, "chains": 0}
    for width, chains in ((w, c) for w in (8, 16) for c in CHAINS):
        engine, fn = _compile(width, chains)
        bufs = [(ctypes.c_float * width)() for _ in range(threads)]
        fn(1000, ctypes.addressof(bufs[0]))
        t0 = time.perf_counter()
        fn(1_000_000, ctypes.addressof(bufs[0]))
        n = max(1000, int(1_000_000 * seconds / max(time.perf_counter() - t0, 1e-6)))
        flops = 2 * width * chains * n
        rates = {}
        for k in (1, threads):
            best_k = 0.0
            for _ in range(3):
                ts = [threading.Thread(target=fn, args=(n, ctypes.addressof(bufs[i])))
                      for i in range(k)]  # fmt: skip
                t0 = time.perf_counter()
                for t in ts:
                    t.start()
                for t in ts:
                    t.join()
                best_k = max(best_k, k * flops / (time.perf_counter() - t0) / 1e9)
            rates[k] = best_k
        if rates[threads] > best["fma_gflops"]:
            best = {"fma_gflops": rates[threads], "fma_per_core": rates[1], "width": width,
                    "chains": chains}  # fmt: skip
        del engine
    return best


if __name__ == "__main__":
    print(fma_peak())
