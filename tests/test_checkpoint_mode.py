"""Atomically written files get the usual mode (0666 & ~umask), not mkstemp's 0600."""

import os

from longshort.train.checkpoint import atomic_write_bytes


def test_atomic_write_uses_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"xyz")
    finally:
        os.umask(old)
    assert (tmp_path / "a.bin").read_bytes() == b"xyz"
    assert (os.stat(tmp_path / "a.bin").st_mode & 0o777) == 0o644
