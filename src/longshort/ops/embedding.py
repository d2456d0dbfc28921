"""Embedding lookup: integer ids to rows of a table.

Symbols: N any leading axes (batch, time, ...), V vocabulary size, E embedding size.

    y[n] = W[idx[n]]                    idx (N...) integers in [0, V), W (V, E), y (N..., E)

Backward scatters dy back into the rows that were read; a row used k times gets k contributions:

    dW[v] = sum over n with idx[n] = v of dy[n]        (np.add.at, which accumulates repeats)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class EmbeddingCache(NamedTuple):
    """What `embedding_backward` needs."""

    idx: np.ndarray  # (N...) int64 ids
    num_embeddings: int  # V
    dtype: np.dtype  # the table's dtype


def check_indices(idx, num_embeddings: int) -> np.ndarray:
    """idx as int64, every entry in [0, num_embeddings), else an error naming the bad ids."""
    a = np.asarray(idx)
    if not np.issubdtype(a.dtype, np.integer):
        if np.issubdtype(a.dtype, np.floating) and np.all(a == np.round(a)):
            a = a.astype(np.int64)
        else:
            raise TypeError(f"embedding indices must be integers, got dtype {a.dtype}")
    a = a.astype(np.int64, copy=False)
    bad = (a < 0) | (a >= num_embeddings)
    if np.any(bad):
        raise IndexError(
            f"embedding indices must lie in [0, {num_embeddings}); found {int(bad.sum())} outside, "
            f"e.g. {a[bad].ravel()[:5].tolist()}. Map unknown tokens to an <unk> id or build the "
            "table with a larger num_embeddings"
        )
    return a


def embedding_forward(idx, w: np.ndarray) -> tuple[np.ndarray, EmbeddingCache]:
    """y = W[idx].

    Args:
        idx: (N...) integer ids in [0, V). w: (V, E) table.

    Returns:
        y (N..., E) and the cache for `embedding_backward`.
    """
    if w.ndim != 2:
        raise ValueError(f"embedding table must have shape (num_embeddings, dim), got {w.shape}")
    idx = check_indices(idx, w.shape[0])
    y = w[idx]  # (N..., E), a copy
    return y, EmbeddingCache(idx, w.shape[0], w.dtype)


def embedding_backward(dy: np.ndarray, cache: EmbeddingCache) -> np.ndarray:
    """dW (V, E) from dy (N..., E): rows scattered with accumulation over repeated ids."""
    idx, V, dtype = cache
    if dy.ndim != idx.ndim + 1 or dy.shape[:-1] != idx.shape:
        raise ValueError(f"dy must have shape {idx.shape} + (E,), got {dy.shape}")
    E = dy.shape[-1]
    dw = np.zeros((V, E), dtype=dtype)  # (V, E)
    np.add.at(dw, idx.reshape(-1), dy.reshape(-1, E))
    return dw
