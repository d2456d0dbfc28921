"""The classic long-time-lag tasks, generated on the fly from a seeded np.random.Generator.

Every generator returns a `TaskBatch(x, target, lengths)`: x (B, T_max, I) float, lengths (B,)
int64 (steps past a sequence's length are zero padding), and the task's target. Symbols: B batch,
T the task's minimal length, I input features. Positions below are 0-based.

Adding problem (Hochreiter & Schmidhuber 1997, "Long Short-Term Memory", Neural Computation 9(8),
experiment 4), `adding_problem`:
    - length L_b uniform in {T, ..., T + T//10}; x is (B, T + T//10, 2).
    - channel 0: values uniform in [-1, 1]; channel 1: markers in {-1, 0, 1}.
    - exactly two steps are marked 1: p1 uniform among the first 10 steps; p2 uniform among the
      first T//2 - 1 steps other than p1 (the paper's "first T/2 - 1 still unmarked pairs").
    - the first and the last step carry marker -1, unless marked (a mark takes precedence; the
      last step can be marked only when T = 10).
    - "X1 is set to zero in the rare case where the first pair got marked": when p1 = 0 the value
      at step 0 is 0 (we read X1 literally as the first mark, p1; a p2 = 0 keeps its value).
    - target 0.5 + (X1 + X2) / 4, at the last valid step; a sequence counts as solved when
      |prediction - target| < 0.04 (`adding_success_rate`). The paper tests on 2,560 sequences.
    Chance level (always answering the mean target 0.5; X1, X2 ~ U[-1, 1], X1 = 0 with
    probability 1/10), derived analytically with S = X1 + X2 (triangular on [-2, 2]):
        mean absolute error  E|S| / 4   = (0.9 * 2/3 + 0.1 * 1/2) / 4  = 0.1625
        mean squared error   E[S^2]/16  = (0.9 * 2/3 + 0.1 * 1/3) / 16 = 0.039583...
        success rate  P(|S| < 0.16)     = 0.9 * (1 - 1.84^2 / 4) + 0.1 * 0.16 = 0.15424
    (`ADDING_CHANCE`; the tests check them against 200,000 sampled sequences.)

Copy memory (Arjovsky, Shah & Bengio 2016, "Unitary Evolution RNNs", section 4.1), `copy_memory`:
    alphabet: 0 blank, 1..8 data symbols, 9 delimiter; inputs one-hot, I = 10; all sequences
    have length T + 20. Input: 10 symbols uniform in 1..8, T - 1 blanks, the delimiter, 10 blanks.
    Target (B, T + 20) ints in 0..8: blank for T + 10 steps, then the 10 symbols. Loss: the
    cross-entropy averaged over all T + 20 steps. Chance (blank for T + 10 steps, then uniform
    over the 8 symbols): 10 log 8 / (T + 20) (`copy_chance_loss`). `n_recall` (the lab's
    `--recall`, `copy_task(n)`) recalls a shorter sequence: n symbols, T - 1 blanks, the delimiter,
    n blanks; length T + 2n, chance n log 8 / (T + 2n), success all n recalled (chance 8^-n).

Temporal order (Hochreiter & Schmidhuber 1997, experiment 6a), `temporal_order`:
    alphabet a, b, c, d (noise, ids 0-3), X (4), Y (5), E (6, start), B (7, trigger); one-hot,
    I = 8. Length L_b uniform in {T, ..., T + T//10}; step 0 is E, step L_b - 1 is B, the rest
    are uniform noise from {a, b, c, d} except t1 uniform in {T//10, ..., 2T//10} and t2 uniform
    in {T//2, ..., 6T//10} holding X or Y (the paper's T = 100: length 100-110, t1 in 10-20,
    t2 in 50-60). Target: the class of the order, XX 0, XY 1, YX 2, YY 3 (the paper's Q, R, S, U).
    Chance: accuracy 1/4, cross-entropy log 4. We score by arg-max accuracy (the paper counts a
    sequence correct when every output unit's error is below 0.3).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..ops.losses import cross_entropy_backward, cross_entropy_forward, mse_backward, mse_forward

ADDING_TOLERANCE = 0.04
ADDING_CHANCE = {
    "mae": 0.1625,
    "mse": (0.9 * 2 / 3 + 0.1 / 3) / 16,
    "success_rate": 0.9 * (1 - 1.84**2 / 4) + 0.1 * 0.16,
}
COPY_BLANK, COPY_DELIMITER = 0, 9
COPY_RECALL = 10  # Arjovsky et al.'s recall length, the copy task's default
TEMPORAL_SYMBOLS = ("a", "b", "c", "d", "X", "Y", "E", "B")
TEMPORAL_CLASSES = ("XX", "XY", "YX", "YY")


class TaskBatch(NamedTuple):
    """One batch of a task: x (B, T_max, I), target (task-specific), lengths (B,) int64."""

    x: np.ndarray
    target: np.ndarray
    lengths: np.ndarray


def _rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _check(batch: int, T: int, min_T: int, task: str) -> None:
    if not isinstance(batch, int | np.integer) or batch < 1:
        raise ValueError(f"{task}: batch must be a positive integer, got {batch!r}")
    if not isinstance(T, int | np.integer) or T < min_T:
        raise ValueError(f"{task}: the length T must be an integer >= {min_T}, got {T!r}")


# --- adding problem ---------------------------------------------------------------------------
def adding_problem(batch: int, T: int, rng=None, dtype=np.float32) -> TaskBatch:
    """The 1997 adding problem (see the module docstring). Needs T >= 10.

    Returns:
        x (B, T + T//10, 2), target (B,) in [0, 1], lengths (B,) in [T, T + T//10].
    """
    _check(batch, T, 10, "adding_problem")
    g = _rng(rng)
    T_max = T + T // 10
    lengths = g.integers(T, T_max + 1, size=batch)  # (B,)
    rows = np.arange(batch)
    valid = np.arange(T_max)[None, :] < lengths[:, None]  # (B, T_max)
    x = np.zeros((batch, T_max, 2), dtype=np.float64)
    x[..., 0] = np.where(valid, g.uniform(-1.0, 1.0, (batch, T_max)), 0.0)
    x[rows, 0, 1] = -1.0
    x[rows, lengths - 1, 1] = -1.0
    n2 = T // 2 - 1  # X2 is drawn from the first T/2 - 1 steps, skipping p1
    p1 = g.integers(0, 10, size=batch)  # (B,)
    inside = p1 < n2
    r = (g.random(batch) * (n2 - inside)).astype(np.int64)  # uniform in {0, .., n_free - 1}
    p2 = r + (inside & (r >= p1))  # (B,), never equal to p1
    x[rows, p1, 1] = 1.0
    x[rows, p2, 1] = 1.0
    x[rows[p1 == 0], 0, 0] = 0.0  # the paper's rule: X1 = 0 when the first pair is marked
    target = 0.5 + (x[rows, p1, 0] + x[rows, p2, 0]) / 4.0  # (B,)
    return TaskBatch(x.astype(dtype), target.astype(dtype), lengths.astype(np.int64))


def adding_success_rate(pred, target, tol: float = ADDING_TOLERANCE) -> float:
    """Fraction of sequences with |pred - target| < tol (0.04 in the paper). pred (B,) or (B, 1)."""
    p, y = np.asarray(pred, np.float64).reshape(-1), np.asarray(target, np.float64).reshape(-1)
    if p.shape != y.shape:
        raise ValueError(f"pred has {p.size} values but target has {y.size}; one per sequence")
    return float(np.mean(np.abs(p - y) < tol))


def adding_error(pred, target) -> float:
    """Mean absolute error at the sequence ends (chance: ADDING_CHANCE["mae"] = 0.1625)."""
    p, y = np.asarray(pred, np.float64).reshape(-1), np.asarray(target, np.float64).reshape(-1)
    return float(np.mean(np.abs(p - y)))


# --- copy memory ------------------------------------------------------------------------------
def copy_memory(
    batch: int, T: int, rng=None, n_symbols: int = 8, n_recall: int = 10, dtype=np.float32
) -> TaskBatch:
    """Arjovsky et al.'s copy task with a delay of T (see the module docstring). Needs T >= 1.

    Returns:
        x (B, T + 2 n_recall, n_symbols + 2) one-hot, target (B, T + 2 n_recall) int64 in
        [0, n_symbols], lengths (B,) all T + 2 n_recall.
    """
    _check(batch, T, 1, "copy_memory")
    if n_symbols < 1 or n_recall < 1:
        raise ValueError(
            f"copy_memory: n_symbols and n_recall must be >= 1, got {n_symbols}, {n_recall}"
        )
    g = _rng(rng)
    L = T + 2 * n_recall
    data = g.integers(1, n_symbols + 1, size=(batch, n_recall))  # (B, n_recall)
    ids = np.full((batch, L), COPY_BLANK, np.int64)  # (B, L)
    ids[:, :n_recall] = data
    ids[:, n_recall + T - 1] = n_symbols + 1  # the delimiter: "recall now"
    target = np.full((batch, L), COPY_BLANK, np.int64)
    target[:, L - n_recall :] = data
    x = np.eye(n_symbols + 2, dtype=dtype)[ids]  # (B, L, n_symbols + 2)
    return TaskBatch(x, target, np.full(batch, L, np.int64))


def copy_chance_loss(T: int, n_symbols: int = 8, n_recall: int = 10) -> float:
    """Cross-entropy of the memoryless strategy: n_recall log(n_symbols) / (T + 2 n_recall)."""
    return n_recall * math.log(n_symbols) / (T + 2 * n_recall)


def copy_success_rate(logits, target, n_recall: int = 10) -> float:
    """Fraction of sequences whose last n_recall steps are all recalled correctly (arg-max)."""
    guess = np.asarray(logits).argmax(axis=-1)[:, -n_recall:]  # (B, n_recall)
    return float(np.mean(np.all(guess == np.asarray(target)[:, -n_recall:], axis=1)))


# --- temporal order ---------------------------------------------------------------------------
def temporal_order(batch: int, T: int, rng=None, dtype=np.float32) -> TaskBatch:
    """Experiment 6a of the 1997 paper, scaled with T (see the module docstring). Needs T >= 10.

    Returns:
        x (B, T + T//10, 8) one-hot, target (B,) int64 class in 0..3, lengths (B,).
    """
    _check(batch, T, 10, "temporal_order")
    g = _rng(rng)
    T_max = T + T // 10
    rows = np.arange(batch)
    lengths = g.integers(T, T_max + 1, size=batch)  # (B,)
    ids = g.integers(0, 4, size=(batch, T_max))  # (B, T_max) noise a..d
    ids[:, 0] = 6  # E starts every sequence
    ids[rows, lengths - 1] = 7  # B, the trigger, ends it
    t1 = g.integers(T // 10, 2 * T // 10 + 1, size=batch)
    t2 = g.integers(T // 2, 6 * T // 10 + 1, size=batch)
    s1, s2 = g.integers(0, 2, size=batch), g.integers(0, 2, size=batch)  # 0 = X, 1 = Y
    ids[rows, t1], ids[rows, t2] = 4 + s1, 4 + s2
    x = np.eye(len(TEMPORAL_SYMBOLS), dtype=dtype)[ids]  # (B, T_max, 8)
    x[np.arange(T_max)[None, :] >= lengths[:, None]] = 0.0  # padding
    return TaskBatch(x, (2 * s1 + s2).astype(np.int64), lengths.astype(np.int64))


def accuracy(logits, target) -> float:
    """Arg-max accuracy: logits (B, C), target (B,) ints. Chance on temporal order: 0.25."""
    return float(np.mean(np.asarray(logits).argmax(axis=-1) == np.asarray(target)))


# --- a registry for the lab -------------------------------------------------------------------
def _mse_last(pred, target):
    p = np.asarray(pred)
    loss, cache = mse_forward(p, np.asarray(target, p.dtype).reshape(p.shape))
    return loss, mse_backward(cache)


def _ce(pred, target):
    loss, cache = cross_entropy_forward(pred, target)
    return loss, cross_entropy_backward(cache)


@dataclass(frozen=True)
class Task:
    """How the lab drives one task: sizes, readout, loss and scores.

    generate(batch, T, rng) -> TaskBatch. The model reads x and answers at the last valid step
    (readout "last": pred (B, output_size)) or at every step ("all": (B, T_max, output_size)).
    loss(pred, target) -> (loss, dL/dpred). success_rate(pred, target) -> fraction solved.
    error(pred, target) -> the task's test error, comparable with chance_error(T).
    """

    name: str
    input_size: int
    output_size: int
    readout: str
    generate: Callable[..., TaskBatch]
    loss: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]
    success_rate: Callable[[np.ndarray, np.ndarray], float]
    error: Callable[[np.ndarray, np.ndarray], float]
    chance_error: Callable[[int], float]
    chance_success: float


def copy_task(n_recall: int = COPY_RECALL) -> Task:
    """The copy task recalling `n_recall` symbols (from 8) after a delay of T: a Task named "copy".

    n_recall = 10 is Arjovsky et al.'s setting (TASKS["copy"]); a shorter sequence (3 or 5) asks
    the same long-lag memory with less to hold: sequences of T + 2 n_recall steps, success = all
    n_recall recalled (chance 8^-n_recall), chance loss n_recall log 8 / (T + 2 n_recall).
    """
    if isinstance(n_recall, bool) or not isinstance(n_recall, int | np.integer) or n_recall < 1:
        raise ValueError(f"copy: the recall length must be a positive integer, got {n_recall!r}")
    n = int(n_recall)
    return Task(
        "copy", 10, 9, "all",
        lambda batch, T, rng=None: copy_memory(batch, T, rng, n_recall=n), _ce,
        lambda p, y: copy_success_rate(p, y, n_recall=n), lambda p, y: _ce(p, y)[0],
        lambda T: copy_chance_loss(T, n_recall=n), 8.0**-n,
    )  # fmt: skip


TASKS: dict[str, Task] = {
    "adding": Task(
        "adding", 2, 1, "last", adding_problem, _mse_last, adding_success_rate,
        adding_error, lambda T: ADDING_CHANCE["mae"], ADDING_CHANCE["success_rate"],
    ),
    "copy": copy_task(COPY_RECALL),
    "temporal_order": Task(
        "temporal_order", 8, 4, "last", temporal_order, _ce, accuracy,
        lambda p, y: _ce(p, y)[0], lambda T: math.log(4), 0.25,
    ),
}  # fmt: skip


def get_task(name: str, recall: int | None = None) -> Task:
    """The Task named `name` (adding, copy, temporal_order); `recall`: copy's recall length
    (None = the default, 10; the other tasks take none)."""
    try:
        task = TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASKS)}") from None
    if recall is None or (name == "copy" and recall == COPY_RECALL):
        return task
    if name != "copy":
        raise ValueError(f"the recall length applies to the copy task only, not {name!r}")
    return copy_task(recall)
