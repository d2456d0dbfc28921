"""Keep freed work buffers in the process instead of handing them back to the kernel.

A training step allocates its cache (gates, states, tanh(c): a few MB each) and frees it after
the backward pass. glibc serves blocks that large with mmap, or returns the top of the heap to
the OS once more than M_TRIM_THRESHOLD is free, so the next step maps fresh pages and takes a
page fault per 4 KiB page: on this project's 2-core VM that cost 3 ms of a 9 ms
(16, 100, 32, 128) forward and 5-15 % of whole training steps (measured in benchmarks/README.md).
Raising both thresholds once makes glibc reuse the same memory step after step. Peak memory is
unchanged (the same blocks are reused); the process just does not shrink between steps.

Applied once, when the fused kernels load, on glibc only, and never when the user has set
MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ or LONGSHORT_MALLOC=system.
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest accepted value (HEAP_MAX_SIZE / 2 on 64-bit)
TRIM_THRESHOLD = 2**30


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as described above; True when applied."""
    if os.environ.get("LONGSHORT_MALLOC", "").lower() == "system":
        return False
    if any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    log.debug("glibc malloc thresholds raised: %s", ok)
    return ok


APPLIED = keep_freed_memory()
