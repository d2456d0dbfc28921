"""The examples run and print what they promise."""

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"


def run(name: str) -> str:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, check=True
    )
    return out.stdout


def test_quickstart():
    out = run("quickstart.py")
    assert "y (4, 10, 32) h_n (4, 4, 16) dx (4, 10, 3)" in out
    f = float(out.split("mean forget gate of layer 0:")[1])
    assert 0.0 < f < 1.0


def test_from_torch_matches():
    out = run("from_torch.py")
    err = float(out.split("max |y - y_torch| =")[1])
    assert err < 1e-12
