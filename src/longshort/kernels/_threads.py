"""Which of Numba's threading layers runs the batch chunks of the parallel kernels.

The fused kernels split the batch into one chunk per thread (`prange`), one parallel region per
forward or backward. On the 2-core test VM, (32, 100, 32, 128) float32, 60 calls per series,
medians (p25-p75 over all series), three processes of each, interleaved:
    layer       forward                     backward
    workqueue   2.6-4.6 ms (2.4-5.2)        6.8-10.3 ms (5.6-11.4)
    tbb         2.4-3.3 ms (2.4-3.5)        5.0-7.0 ms (4.8-7.5)
(benchmarks/README.md). Workqueue's idle workers wait in 1 us sleeps, which Linux stretches to
tens of microseconds, and the calling thread only waits, so three threads share two cores;
TBB's calling thread runs a chunk itself and its workers spin briefly before sleeping. TBB is
also the layer Numba documents as thread- and fork-safe.

So: TBB when the `tbb` wheel is installed (the `tbb` extra, which `make demo` and `make test`
install; its library sits in the environment's lib/, which the dynamic linker does not search,
so it is loaded by path first) and is 2021.6 or newer, else workqueue (OpenMP took ~16 ms to
start each region here). A user's NUMBA_THREADING_LAYER wins; LONGSHORT_THREADS=workqueue
forces the fallback (tests compare both).
"""

from __future__ import annotations

import ctypes
import glob
import logging
import os
import sys

import numba

log = logging.getLogger(__name__)


TBB_MIN_INTERFACE = 12060  # TBB 2021.6, the oldest Numba's TBB layer accepts


def _load_tbb() -> bool:
    """Make Numba's TBB layer loadable in this process; True on success. Checks the version as
    Numba's launch would: naming the layer explicitly turns a failed check there into an error
    on every parallel call instead of a fallback."""
    paths = []
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        paths += sorted(glob.glob(os.path.join(prefix, "lib", "libtbb.so.12*")))
    try:
        lib = ctypes.CDLL(paths[0] if paths else "libtbb.so.12", mode=ctypes.RTLD_GLOBAL)
        version = lib.TBB_runtime_interface_version
        version.argtypes, version.restype = [], ctypes.c_int
        if version() < TBB_MIN_INTERFACE:
            raise ImportError(f"TBB interface {version()} < {TBB_MIN_INTERFACE} (TBB 2021.6)")
        from numba.np.ufunc import tbbpool  # noqa: F401  (fails when libtbb is not found)
    except (OSError, ImportError, AttributeError) as e:
        log.debug("TBB threading layer unavailable: %s", e)
        return False
    return True


def choose() -> str:
    """Set numba.config.THREADING_LAYER (unless the user did) and return the layer's name."""
    if "NUMBA_THREADING_LAYER" in os.environ:
        return os.environ["NUMBA_THREADING_LAYER"]
    if os.environ.get("LONGSHORT_THREADS", "").lower() != "workqueue" and _load_tbb():
        numba.config.THREADING_LAYER = "tbb"
    else:
        numba.config.THREADING_LAYER = "workqueue"
    return numba.config.THREADING_LAYER


LAYER = choose()
