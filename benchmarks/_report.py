"""Print bench_lstm.py's results: a table of times and ratios, then each target met or missed."""

from __future__ import annotations


def _cfg(c) -> str:
    return "({},{},{},{},{})".format(*c)


def _ok(flag: bool) -> str:
    return "MET   " if flag else "MISSED"


def table(result) -> list[str]:
    lines = [
        f"{'config (B,T,I,H,L)':<22}{'infer ms: ls':>13}{'torch':>9}{'ort':>9}"
        f"{'ls/torch':>10}{'ls/ort':>8}{'train ms: ls':>14}{'torch':>9}{'ls/torch':>10}",
    ]
    for row in result["configs"]:
        i, t = row["inference"], row["train"]
        lines.append(
            f"{_cfg(row['config']):<22}{i['longshort'] * 1e3:>13.3f}{i['torch'] * 1e3:>9.3f}"
            f"{i['ort'] * 1e3:>9.3f}{i['longshort'] / i['torch']:>10.2f}"
            f"{i['longshort'] / i['ort']:>8.2f}{t['longshort'] * 1e3:>14.3f}"
            f"{t['torch'] * 1e3:>9.3f}{t['longshort'] / t['torch']:>10.2f}"
        )
    for row in result["configs"]:
        if "step" in row:
            s = row["step"]
            lines.append(
                f"streaming step {_cfg(row['config'])}: longshort {s['longshort'] * 1e6:.1f} us, "
                f"torch {s['torch'] * 1e6:.1f} us ({s['torch'] / s['longshort']:.1f}x faster)"
            )
    lines += roofline(result)
    if "memory" in result:
        for lib, m in result["memory"].items():
            peaks = ", ".join(f"{p:.0f}" for p in m["peaks_mb"])
            lines.append(
                f"peak RSS MB (64,200,64,256,2) {lib:<9}: before steps {m['base_mb']:.0f}, "
                f"after each step {peaks}"
            )
    if "cold_start" in result:
        for lib, c in result["cold_start"].items():
            lines.append(
                f"cold start {lib:<9}: {c['wall_s']:.2f} s wall (new process), "
                f"{c['import_and_forward_s']:.2f} s import + first forward"
            )
    return lines


def peak(result) -> float:
    """GFLOP/s: the CPU's measured FMA peak (older results: the best 2048^3 product), or the best
    rate any library reached in this run if that was higher (so the bound never overstates what
    is impossible)."""
    best = result["peak"]["peak_gflops"]
    for row in result.get("configs", []):
        for kind in ("inference", "train"):
            for t in row[kind].values():
                best = max(best, row["flops"][kind] / t / 1e9)
    return best


def roofline(result) -> list[str]:
    """GFLOP/s of every library and the smallest ratio to torch the machine's peak allows."""
    if "peak" not in result or "flops" not in result["configs"][0]:
        return []
    pk = dict(result["peak"], peak_gflops=peak(result))
    lines = [
        f"\nroofline: float32 peak {pk['peak_gflops']:.0f} GFLOP/s ("
        + (
            f"FMAs on every core: {pk['fma_gflops']:.0f}, one core {pk['fma_per_core']:.0f}; "
            if "fma_gflops" in pk
            else ""
        )
        + f"{pk.get('n', 2048)}^3 product: NumPy {pk['numpy']:.0f}, torch {pk['torch']:.0f}; "
        "or the best rate of this run); bound = FLOPs / peak / the other's time",
        f"{'config (B,T,I,H,L)':<22}{'infer GFLOP/s: ls':>18}{'torch':>7}{'ort':>7}"
        f"{'bound/ort':>10}{'train GFLOP/s: ls':>19}{'torch':>7}{'bound/torch':>12}",
    ]
    for row in result["configs"]:
        i, t, f = row["inference"], row["train"], row["flops"]
        gi = {k: f["inference"] / v / 1e9 for k, v in i.items()}
        gt = {k: f["train"] / v / 1e9 for k, v in t.items()}
        lines.append(
            f"{_cfg(row['config']):<22}{gi['longshort']:>18.1f}{gi['torch']:>7.1f}{gi['ort']:>7.1f}"
            f"{gi['ort'] / pk['peak_gflops']:>10.2f}{gt['longshort']:>19.1f}{gt['torch']:>7.1f}"
            f"{gt['torch'] / pk['peak_gflops']:>12.2f}"
        )
    return lines


def targets(result) -> list[str]:
    rows, out = result["configs"], []
    for row in rows:
        r = row["train"]["longshort"] / row["train"]["torch"]
        note = ""
        if "flops" in row:
            bound = row["flops"]["train"] / peak(result) / 1e9
            bound /= row["train"]["torch"]
            note = f"; peak-FLOP bound {bound:.2f}" + (
                " (target unreachable)" if bound > 0.67 else ""
            )
        out.append(
            f"{_ok(r <= 0.67)} training {_cfg(row['config'])}: {r:.2f} x torch (<= 0.67){note}"
        )
    for row in rows:
        i = row["inference"]
        r = i["longshort"] / i["ort"]
        note = ""
        if "flops" in row:
            bound = row["flops"]["inference"] / peak(result) / 1e9 / i["ort"]
            note = f"; peak-FLOP bound {bound:.2f}"
        out.append(
            f"{_ok(r <= 1.0)} inference {_cfg(row['config'])}: {r:.2f} x ORT (<= 1), "
            f"{i['longshort'] / i['torch']:.2f} x torch{note}"
        )
    for row in rows:
        if "step" in row:
            s = row["step"]
            us, speedup = s["longshort"] * 1e6, s["torch"] / s["longshort"]
            out.append(f"{_ok(us <= 16)} streaming step: {us:.1f} us (<= 16)")
            out.append(f"{_ok(speedup >= 10)} streaming step: {speedup:.1f} x faster than torch")
    if "memory" in result:
        mem = result["memory"]
        lib = next(k for k in mem if k != "torch")
        ours, theirs = mem[lib]["peaks_mb"], mem["torch"]["peaks_mb"]
        out.append(
            f"{_ok(ours[-1] <= theirs[-1])} peak RSS (64,200,64,256,2): {ours[-1]:.0f} MB vs "
            f"torch {theirs[-1]:.0f} MB (process totals, each with its own imports)"
        )
        # growth = a leak: the peak must stay put from the second step on. The first step's peak
        # is lower for both libraries (allocator layout: the second step's buffers do not all
        # fit the holes the first left; the NumPy memory traced by tracemalloc peaks at the
        # same 258.9 MB in every step), so that warm-up rise is printed, not judged
        grow, warm, twarm = ours[-1] - ours[1], ours[1] - ours[0], theirs[1] - theirs[0]
        out.append(
            f"{_ok(grow <= 0.01 * ours[-1])} no growth over {len(ours)} steps: "
            f"+{grow:.0f} MB from step 2 to {len(ours)} (step 1 -> 2: +{warm:.0f} MB; "
            f"torch +{twarm:.0f} MB)"
        )
    if "cold_start" in result:
        lib = next(k for k in result["cold_start"] if k != "torch")
        wall = result["cold_start"][lib]["wall_s"]
        out.append(f"{_ok(wall <= 1.5)} cold start: {wall:.2f} s (<= 1.5)")
    return out


def print_report(result) -> None:
    v = result["versions"]
    print(
        f"longshort impl={result['impl']} | numpy {v['numpy']} ({v['blas']}), numba {v['numba']}, "
        f"torch {v['torch']} ({v['torch_threads']} threads), onnxruntime {v['onnxruntime']}, "
        f"{v['cores']} cores"
        + (" | QUICK run" if result.get("quick") else "")
        + (" | each library in its own process" if result.get("isolated") else "")
    )
    print("\n".join(table(result)))
    print("\nTargets:")
    print("\n".join(targets(result)))
