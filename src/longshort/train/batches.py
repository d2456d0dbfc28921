"""Batch sources the loop reads, with random access so that a data position is two integers.

A batch is a dict of arrays whose first axis is the batch B. Any object with

    stateful: bool                                  carry the recurrent state between batches?
    __len__() -> int                                batches per epoch
    batch(epoch, index, seed) -> dict[str, array]   the same arguments always give the same batch

can feed the loop, so a run resumes at (epoch, index) with nothing else to restore.

ArrayBatches: shuffled minibatches of independent examples (e.g. windows for sequence-to-one
regression); epoch e's order is the permutation drawn by default_rng([seed, e]).

StreamBatches: truncated BPTT over long sequences. B lanes each hold whole sequences one after
another; each sequence is padded to a multiple of the chunk length K, so a sequence always starts
at a chunk boundary. Chunk j of every lane forms batch j, with

    <key> (B, K, ...)  the data, zero where padded
    mask (B, K) bool   True on real steps        lengths (B,) int   real steps in the chunk
    reset (B,) bool    True where a new sequence (or the epoch) starts: its state must be zeroed

and the loop carries the final state of chunk j into chunk j + 1, detached (no gradient flows back
into chunk j), zeroing the rows flagged by `reset`. Recurrent states are arrays (or tuples of
arrays) with the batch on axis 1, (L*D, B, H), as returned by the nn layers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


class ArrayBatches:
    """Minibatches of the rows of equally long arrays, reshuffled every epoch.

    Args:
        arrays: name -> array (N, ...), e.g. {"x": X (N, T, I), "y": Y (N, O)}.
        batch_size: rows per batch. shuffle: permute rows each epoch (else in order).
        drop_last: skip the final short batch.
    """

    stateful = False

    def __init__(
        self,
        arrays: Mapping[str, np.ndarray],
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
    ):
        if not arrays:
            raise ValueError("ArrayBatches needs at least one array, e.g. {'x': X, 'y': Y}")
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        sizes = {k: v.shape[0] if v.ndim else None for k, v in self.arrays.items()}
        if len(set(sizes.values())) != 1 or None in sizes.values():
            raise ValueError(f"arrays must share their first (example) axis; got lengths {sizes}")
        self.n = next(iter(sizes.values()))
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        if self.n == 0:
            raise ValueError(
                "the data holds 0 examples (its arrays have length 0 on the first axis); pass at "
                "least one example, or hold out less of it for validation"
            )
        if len(self) == 0:
            raise ValueError(
                f"{self.n} examples make no full batch of {batch_size}, and drop_last=True drops "
                f"the short one; use a batch_size of at most {self.n} or drop_last=False"
            )
        self._order: tuple[tuple[int, int], np.ndarray] | None = None

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def order(self, epoch: int, seed: int) -> np.ndarray:
        """Row order of an epoch, (N,) ints; cached for the current epoch."""
        if self._order is None or self._order[0] != (epoch, seed):
            perm = (
                np.random.default_rng([seed, epoch]).permutation(self.n)
                if self.shuffle
                else np.arange(self.n)
            )
            self._order = ((epoch, seed), perm)
        return self._order[1]

    def batch(self, epoch: int, index: int, seed: int) -> dict[str, np.ndarray]:
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        rows = self.order(epoch, seed)[index * self.batch_size : (index + 1) * self.batch_size]
        return {k: v[rows] for k, v in self.arrays.items()}


class StreamBatches:
    """Chunks of K steps over B lanes of concatenated sequences, for stateful truncated BPTT.

    Args:
        sequences: name -> list of arrays (T_i, ...); the i-th arrays of every name belong to the
            same sequence and share T_i. A single long series is a list of one (see from_stream).
        lanes: B, sequences processed side by side. Sequences go, in order, to the lane with the
            fewest steps so far (ties: the lowest lane), so the layout is deterministic.
        bptt: K, steps per chunk (the truncation length of BPTT).
    """

    stateful = True

    def __init__(self, sequences: Mapping[str, Sequence[np.ndarray]], lanes: int, bptt: int):
        if lanes < 1 or bptt < 1:
            raise ValueError(f"lanes and bptt must be >= 1, got {lanes} and {bptt}")
        reserved = {"mask", "lengths", "reset"} & set(sequences)
        if reserved or not sequences:
            raise ValueError(f"sequence names must be given and not use {sorted(reserved)}")
        seqs = {k: [np.asarray(a) for a in v] for k, v in sequences.items()}
        lens = [[a.shape[0] for a in v] for v in seqs.values()]
        if any(lg != lens[0] for lg in lens) or not lens[0]:
            raise ValueError("every name needs the same number of sequences with the same lengths")
        self.lanes, self.bptt = lanes, bptt
        K = bptt
        padded = [-(-t // K) * K for t in lens[0]]  # each sequence padded to a multiple of K
        lane_of, fill = [], [0] * lanes
        for p in padded:
            b = int(np.argmin(fill))
            lane_of.append((b, fill[b]))
            fill[b] += p
        total = max(fill)
        self.n_chunks = total // K
        self.data = {
            k: np.zeros((lanes, total) + v[0].shape[1:], v[0].dtype) for k, v in seqs.items()
        }  # each (B, n_chunks*K, ...)
        self.valid = np.zeros((lanes, total), bool)  # (B, n_chunks*K)
        self.starts = np.zeros((lanes, self.n_chunks), bool)  # a sequence starts at chunk j
        for i, (b, at) in enumerate(lane_of):
            t = lens[0][i]
            for k, v in seqs.items():
                self.data[k][b, at : at + t] = v[i]
            self.valid[b, at : at + t] = True
            self.starts[b, at // K] = True
        self.starts[:, 0] = True  # every epoch begins from a zero state

    @classmethod
    def from_stream(cls, stream: Mapping[str, np.ndarray], lanes: int, bptt: int):
        """Cut one long stream (name -> (N, ...)) into `lanes` contiguous pieces (drops N % B)."""
        n = min(np.asarray(v).shape[0] for v in stream.values())
        piece = n // lanes
        if piece < 1:
            raise ValueError(f"a stream of {n} steps cannot fill {lanes} lanes")
        return cls(
            {
                k: [np.asarray(v)[b * piece : (b + 1) * piece] for b in range(lanes)]
                for k, v in stream.items()
            },
            lanes,
            bptt,
        )

    def __len__(self) -> int:
        return self.n_chunks

    def batch(self, epoch: int, index: int, seed: int = 0) -> dict[str, np.ndarray]:
        """Chunk `index` of every lane (the same in every epoch; epoch and seed are unused)."""
        if not 0 <= index < self.n_chunks:
            raise IndexError(f"chunk {index} out of range for {self.n_chunks} chunks")
        sl = slice(index * self.bptt, (index + 1) * self.bptt)
        out = {k: v[:, sl] for k, v in self.data.items()}  # each (B, K, ...)
        out["mask"] = self.valid[:, sl]  # (B, K)
        out["lengths"] = out["mask"].sum(axis=1)  # (B,); real steps form a prefix of the chunk
        out["reset"] = self.starts[:, index]  # (B,)
        return out


def detach_state(state):
    """A copy of a recurrent state (array, tuple of arrays, or None) that owns its memory.

    Without autograd, "detaching" means: the next chunk's backward is not given a gradient for
    this state (the loop never calls backward into the previous chunk), and later in-place
    updates cannot alias it.
    """
    if state is None:
        return None
    if isinstance(state, tuple | list):
        return type(state)(detach_state(s) for s in state)
    return np.array(state, copy=True)


def reset_state(state, reset: np.ndarray | None):
    """Zero the batch rows (axis 1 of each (L*D, B, H) array) where `reset` (B,) is True."""
    if state is None or reset is None or not np.any(reset):
        return state
    if np.all(reset):
        return None  # the model starts from its own zero state
    if isinstance(state, tuple | list):
        return type(state)(reset_state(s, reset) for s in state)
    out = np.array(state, copy=True)
    out[:, np.asarray(reset, bool)] = 0
    return out
