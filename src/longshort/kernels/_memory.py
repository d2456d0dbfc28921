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

glibc still maps any block over 32 MiB afresh (its largest mmap threshold), and an LSTM's gate
cache passes that at (128, 50, H = 512) or (64, 200, H = 256): 52 MB, 12,800 page faults per
forward, which took a (128, 50, 128, 512) forward with its cache from ~50 to 78-83 ms.
`reusable_empty` serves arrays that large from a small per-thread pool of blocks instead. A
block is handed out again only when no array views it any more (its reference count, checked
at each request), so a cache a caller still holds is never overwritten; `release_pool()` hands
a thread's blocks back (a process that has finished training with large batches). (Turning
glibc's mmap off instead, mallopt(M_MMAP_MAX, 0), did the same for us, but for every library in
the process: torch.nn.LSTM's training steps in the same process got 25-50 % faster with it.)
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import sys
import threading

import numpy as np

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


POOL_BLOCKS = 4  # blocks a thread keeps (a stacked or bidirectional layer holds one per pass)
POOL_BLOCK_MAX = 1 << 30  # bytes; a larger array is left to malloc, not kept after use
_POOL = threading.local()


def reusable_empty(shape: tuple, dt) -> np.ndarray:
    """np.empty(shape, dt); above MMAP_THRESHOLD bytes a view of a block this thread allocated
    before and nothing uses now (see above). The contents are undefined, as np.empty's."""
    dt = np.dtype(dt)
    n = math.prod(shape)
    if not MMAP_THRESHOLD < n * dt.itemsize <= POOL_BLOCK_MAX:
        return np.empty(shape, dt)
    blocks = _POOL.__dict__.setdefault("blocks", [])
    for b in blocks:  # references to a free block: the list, b, and getrefcount's argument
        if b.dtype == dt and b.size >= n and sys.getrefcount(b) == 3:
            return b[:n].reshape(shape)
    b = np.empty(n, dt)
    blocks.insert(0, b)
    while len(blocks) > POOL_BLOCKS:  # forget the oldest block (freed once its views are)
        blocks.pop()
    return b[:n].reshape(shape)


def release_pool() -> int:
    """Drop this thread's pooled blocks (the memory goes back to the system once no array views
    it); returns how many bytes the pool held. For a long-lived process that has finished
    training with large batches."""
    blocks = _POOL.__dict__.pop("blocks", [])
    return sum(b.nbytes for b in blocks)
