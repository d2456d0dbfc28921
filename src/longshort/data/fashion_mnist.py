"""Fashion-MNIST (Zalando, MIT licence) from Debian's `dataset-fashion-mnist` IDX files.

load_fashion_mnist(split) -> images (N, 28, 28) uint8, labels (N,) uint8 in [0, 10)
train: N = 60,000; test: N = 10,000. Read row by row an image is 28 steps of 28 features;
pixel by pixel it is 784 steps of 1.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

ROOT = Path("/usr/share/datasets/fashion-mnist")
INSTALL = "make data (or: apt-get update && apt-get install -y dataset-fashion-mnist)"
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")  # fmt: skip
FILES = {"train": "train-{}-idx{}-ubyte.gz", "test": "t10k-{}-idx{}-ubyte.gz"}


def read_idx(path) -> np.ndarray:
    """An IDX file (optionally gzipped) -> array with the dims its header gives (uint8 data)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        b = f.read()
    if len(b) < 4 or b[0] != 0 or b[1] != 0 or b[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (magic {b[:4].hex()})")
    nd = b[3]
    dims = np.frombuffer(b, ">u4", nd, 4).astype(np.int64)  # (nd,)
    data = np.frombuffer(b, np.uint8, offset=4 + 4 * nd)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {tuple(dims)} but holds {data.size} values")
    return data.reshape(dims)


def available(root: str | Path = ROOT) -> bool:
    return all((Path(root) / f.format("labels", 1)).is_file() for f in FILES.values())


def load_fashion_mnist(
    split: str = "train", root: str | Path = ROOT
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) of the "train" or "test" split."""
    if split not in FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root)
    if not available(root):
        raise FileNotFoundError(f"Fashion-MNIST not found in {root}; install it with {INSTALL}")
    images = read_idx(root / FILES[split].format("images", 3))
    labels = read_idx(root / FILES[split].format("labels", 1))
    return images, labels
