"""The fused kernels tune glibc's malloc once (kernels/_memory.py), unless the user opts out."""

import os
import platform
import subprocess
import sys

import pytest

pytest.importorskip("numba")
CODE = "import longshort.kernels.lstm, longshort.kernels._memory as m, ctypes;print(m.APPLIED)"


def _applied(**env) -> str:
    e = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    e.update(env)
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=e)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.mark.skipif(platform.system() != "Linux" or not platform.libc_ver()[0] == "glibc",
                    reason="glibc only")  # fmt: skip
def test_applied_on_glibc_and_opt_outs():
    assert _applied() == "True"
    assert _applied(LONGSHORT_MALLOC="system") == "False"
    assert _applied(MALLOC_TRIM_THRESHOLD_="131072") == "False"


def test_results_do_not_depend_on_it():
    """Same numbers with and without the tuning (it only changes where memory comes from)."""
    code = (
        "import numpy as np, longshort as ls;"
        "m = ls.nn.LSTM(3, 5, seed=0); x = np.random.default_rng(0).standard_normal((4, 6, 3));"
        "y, _ = m(x.astype(np.float32)); m.backward(np.ones_like(y));"
        "print(float(y.sum()), float(m.weight_hh_l0.grad.sum()))"
    )
    outs = []
    for env in ({}, {"LONGSHORT_MALLOC": "system"}):
        e = dict(os.environ, **env)
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e)
        assert r.returncode == 0, r.stderr
        outs.append(r.stdout)
    assert outs[0] == outs[1]
