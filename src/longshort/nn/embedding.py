"""A lookup table in torch.nn.Embedding's names and layout.

    y = W[idx]           idx (N...) integers in [0, V) -> y (N..., E); weight W (V, E)

Initialisation as PyTorch's default: W ~ N(0, 1).
"""

from __future__ import annotations

import numpy as np

from ..ops.embedding import embedding_backward, embedding_forward
from .module import Module, Parameter


class Embedding(Module):
    """Token ids to vectors; `backward` scatters dy into weight.grad (repeated ids accumulate).

    Example:
        >>> emb = Embedding(100, 16)
        >>> emb(np.array([[1, 2, 3]])).shape
        (1, 3, 16)
    """

    def __init__(
        self, num_embeddings: int, embedding_dim: int, dtype=np.float32, seed: int | None = None
    ):
        super().__init__()
        for arg, val in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if not isinstance(val, int | np.integer) or val < 1:
                raise ValueError(f"Embedding: {arg} must be a positive integer, got {val!r}")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"Embedding: dtype must be float32 or float64, got {self.dtype}")
        rng = np.random.default_rng(seed)
        shape = (self.num_embeddings, self.embedding_dim)
        self.weight = Parameter(rng.standard_normal(shape).astype(self.dtype))
        self._cache = None

    def forward(self, idx) -> np.ndarray:
        """idx (...) integer ids -> y (..., embedding_dim)."""
        y, self._cache = embedding_forward(idx, self.weight.data)
        return y

    def backward(self, dy) -> None:
        """dy (..., embedding_dim): accumulate into weight.grad. Ids have no gradient: None."""
        if self._cache is None:
            raise RuntimeError("Embedding.backward() needs a forward pass first")
        self.weight.grad += embedding_backward(np.asarray(dy, dtype=self.dtype), self._cache)
        return None

    def __repr__(self) -> str:
        return f"Embedding({self.num_embeddings}, {self.embedding_dim}, dtype={self.dtype.name})"
