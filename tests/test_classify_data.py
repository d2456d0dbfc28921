"""Real datasets that need `make data`: skipped, with the install command, when missing."""

from __future__ import annotations

import numpy as np
import pytest

import longshort as ls
from longshort.data import fashion_mnist

INSTALL_AEON = "aeon is not installed: run `make data` (or: .venv/bin/pip install -e '.[data]')"
INSTALL_FASHION = (
    "Fashion-MNIST is not installed: run `make data` "
    "(or: apt-get update && apt-get install -y dataset-fashion-mnist)"
)


def test_japanese_vowels_variable_lengths():
    """UEA JapaneseVowels: 12 channels, 7-29 steps; a few epochs already beat 0.9 on the test set."""
    datasets = pytest.importorskip("aeon.datasets", reason=INSTALL_AEON)
    Xtr, ytr = datasets.load_classification("JapaneseVowels", split="train")
    Xte, yte = datasets.load_classification("JapaneseVowels", split="test")
    Xtr, Xte = [s.T for s in Xtr], [s.T for s in Xte]  # (C, T_i) -> (T_i, C)
    assert {len(s) for s in Xtr} != {len(Xtr[0])}  # really variable lengths
    m = ls.SequenceClassifier(32, bidirectional=True, pooling="mean", epochs=8, batch_size=16,
                              lr=5e-3).fit(Xtr, ytr)  # fmt: skip
    assert m.score(Xte, yte) > 0.9  # 9 speakers: chance ~0.11


@pytest.mark.skipif(not fashion_mnist.available(), reason=INSTALL_FASHION)
def test_fashion_mnist_idx_reader():
    x, y = fashion_mnist.load_fashion_mnist("train")
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8
    assert y[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    xt, yt = fashion_mnist.load_fashion_mnist("test")
    assert xt.shape == (10000, 28, 28) and np.bincount(yt).tolist() == [1000] * 10


def test_idx_reader_rejects_other_files(tmp_path):
    (tmp_path / "x.idx").write_bytes(b"\x00\x00\x0d\x01" + b"\x00\x00\x00\x01" + b"\x00" * 4)
    with pytest.raises(ValueError, match="not an unsigned-byte IDX file"):
        fashion_mnist.read_idx(tmp_path / "x.idx")
    with pytest.raises(FileNotFoundError, match="make data"):
        fashion_mnist.load_fashion_mnist("train", root=tmp_path)


def test_ts_reader_matches_aeon_on_its_own_files():
    """Our .ts reader on the files aeon ships gives aeon's arrays (variable length, 12 channels)."""
    pytest.importorskip("aeon.datasets", reason=INSTALL_AEON)
    import importlib.resources

    from aeon.datasets import load_classification

    from longshort.data.readers import read_sequences

    path = importlib.resources.files("aeon") / "datasets/data/JapaneseVowels/JapaneseVowels_TEST.ts"
    X, y = read_sequences(str(path))
    Xa, ya = load_classification("JapaneseVowels", split="test")
    assert len(X) == len(Xa) == 370 and {len(s) for s in X} == {a.shape[1] for a in Xa}
    for mine, theirs in zip(X, Xa):
        np.testing.assert_allclose(mine, theirs.T)
    assert [str(v) for v in y] == [str(v) for v in ya]
