"""The long-time-lag tasks obey their published protocols; the lab's model learns the adding task."""

import math

import numpy as np
import pytest

from longshort.data.tasks import (
    ADDING_CHANCE,
    TASKS,
    accuracy,
    adding_error,
    adding_problem,
    adding_success_rate,
    copy_chance_loss,
    copy_memory,
    copy_success_rate,
    copy_task,
    get_task,
    temporal_order,
)
from longshort.models.sequence_model import SequenceModel, SequenceModelConfig
from longshort.optim import Adam, clip_grad_norm
from reference.fd import numerical_grad, rel_error


# --- adding problem ---------------------------------------------------------------------------
@pytest.mark.parametrize("T", [10, 17, 40, 100])
def test_adding_protocol(T):
    B = 3000
    x, y, lengths = adding_problem(B, T, np.random.default_rng(T), dtype=np.float64)
    assert x.shape == (B, T + T // 10, 2) and y.shape == (B,) and lengths.dtype == np.int64
    assert lengths.min() == T and lengths.max() == T + T // 10  # both ends are drawn
    rows = np.arange(B)
    steps = np.arange(x.shape[1])[None, :]
    pad = steps >= lengths[:, None]
    assert np.all(x[pad] == 0)
    val, mark = x[..., 0], x[..., 1]
    assert np.all(np.abs(val) <= 1) and set(np.unique(mark)) <= {-1.0, 0.0, 1.0}
    marked = mark == 1
    assert np.all(marked.sum(axis=1) == 2)  # exactly two marks
    first, last = marked.argmax(axis=1), (x.shape[1] - 1) - marked[:, ::-1].argmax(axis=1)
    assert np.all(first < 10) and np.all(last < max(10, T // 2 - 1))
    assert np.all(np.minimum(last, first) < T // 2 - 1)  # one mark in the first T/2 - 1 steps
    # -1 on the first and the last valid step unless marked; 0 everywhere else.
    assert np.all(mark[~marked[:, 0], 0] == -1)
    assert np.all((mark[rows, lengths - 1] == -1) | marked[rows, lengths - 1])
    inner = ~pad & ~marked
    inner[:, 0] = False
    inner[rows, lengths - 1] = False
    assert np.all(mark[inner] == 0)
    np.testing.assert_allclose(y, 0.5 + (val * marked).sum(axis=1) / 4.0, atol=1e-12)
    assert np.all((y >= 0) & (y <= 1))


def test_adding_first_pair_rule_and_positions_are_uniform():
    x, _, _ = adding_problem(40000, 30, np.random.default_rng(0), dtype=np.float64)
    # X1 = 0 exactly when the first pair is p1: probability 1/10 (values are continuous otherwise).
    zero_first = (x[:, 0, 1] == 1) & (x[:, 0, 0] == 0)
    assert abs(zero_first.mean() - 0.1) < 0.01
    # Marks among the first 10 steps: p1 uniform there, plus p2 (uniform on the first 14).
    counts = (x[:, :14, 1] == 1).sum(axis=0) / len(x)
    # P(mark at k) = P(p1 = k) + P(p1 != k) / 13: p2 avoids p1, 13 free slots in 0..13.
    expected = np.r_[np.full(10, 0.1 + 0.9 / 13), np.full(4, 1 / 13)]
    np.testing.assert_allclose(counts, expected, atol=0.01)


def test_adding_chance_figures_match_an_empirical_estimate():
    _, y, _ = adding_problem(200_000, 20, np.random.default_rng(7), dtype=np.float64)
    mean_answer = np.full_like(y, 0.5)
    assert abs(y.mean() - 0.5) < 0.002  # the mean target is 0.5
    assert abs(adding_error(mean_answer, y) - ADDING_CHANCE["mae"]) < 0.0015
    assert abs(np.mean((y - 0.5) ** 2) - ADDING_CHANCE["mse"]) < 0.0008
    assert abs(adding_success_rate(mean_answer, y) - ADDING_CHANCE["success_rate"]) < 0.004
    assert ADDING_CHANCE["mae"] == 0.1625 and abs(ADDING_CHANCE["mse"] - 0.0395833) < 1e-6


def test_adding_seeded_reproducibility_and_bad_arguments():
    a, b = adding_problem(8, 50, 3), adding_problem(8, 50, np.random.default_rng(3))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a.x, adding_problem(8, 50, 4).x)
    g = np.random.default_rng(0)
    assert not np.array_equal(adding_problem(8, 50, g).x, adding_problem(8, 50, g).x)
    with pytest.raises(ValueError, match="T must be an integer >= 10"):
        adding_problem(4, 9)
    with pytest.raises(ValueError, match="batch"):
        adding_problem(0, 20)


def test_adding_success_rate_threshold():
    y = np.array([0.5, 0.5, 0.5, 0.5])
    assert adding_success_rate(np.array([0.5, 0.539, 0.461, 0.6]), y) == 0.75
    assert adding_success_rate(np.array([[0.5], [0.5], [0.5], [0.5]]), y) == 1.0
    with pytest.raises(ValueError, match="one per sequence"):
        adding_success_rate(np.zeros(3), y)


# --- copy memory ------------------------------------------------------------------------------
@pytest.mark.parametrize("T", [1, 5, 60])
def test_copy_protocol(T):
    B = 64
    x, y, lengths = copy_memory(B, T, 0)
    L = T + 20
    assert x.shape == (B, L, 10) and y.shape == (B, L) and np.all(lengths == L)
    assert np.all(x.sum(axis=-1) == 1)  # one-hot at every step
    ids = x.argmax(axis=-1)
    assert np.all((ids[:, :10] >= 1) & (ids[:, :10] <= 8))
    assert np.all(ids[:, T + 9] == 9) and np.all((ids == 9).sum(axis=1) == 1)  # one delimiter
    rest = np.ones(L, bool)
    rest[:10] = rest[T + 9] = False
    assert np.all(ids[:, rest] == 0)  # blanks elsewhere
    assert np.all(y[:, : T + 10] == 0) and np.array_equal(y[:, T + 10 :], ids[:, :10])
    np.testing.assert_array_equal(copy_memory(B, T, 0).x, x)


def test_copy_chance_loss_is_the_memoryless_strategy():
    T, B = 100, 32
    assert copy_chance_loss(T) == pytest.approx(10 * math.log(8) / 120)
    _, y, _ = copy_memory(B, T, 1)
    p = np.zeros((B, T + 20, 9))
    p[:, : T + 10, 0] = 1.0  # certain blank while nothing can be recalled
    p[:, T + 10 :, 1:] = 1 / 8  # then a uniform guess among the 8 symbols
    logits = np.log(np.maximum(p, 1e-300))
    assert TASKS["copy"].error(logits, y) == pytest.approx(copy_chance_loss(T), rel=1e-9)
    assert copy_success_rate(np.eye(9)[y] * 5, y) == 1.0
    assert copy_success_rate(logits, y) < 0.05


@pytest.mark.parametrize("n", [1, 3, 5])
def test_copy_with_a_shorter_recall(n):
    B, T = 200, 30
    x, y, lengths = copy_memory(B, T, 2, n_recall=n)
    L = T + 2 * n
    assert x.shape == (B, L, 10) and y.shape == (B, L) and np.all(lengths == L)
    ids = x.argmax(axis=-1)
    assert np.all((ids[:, :n] >= 1) & (ids[:, :n] <= 8))
    assert np.all(ids[:, n + T - 1] == 9) and np.all((ids == 9).sum(axis=1) == 1)
    assert np.all(ids[:, n : n + T - 1] == 0) and np.all(ids[:, n + T :] == 0)
    assert np.all(y[:, : T + n] == 0) and np.array_equal(y[:, T + n :], ids[:, :n])
    task = get_task("copy", n)
    assert task.name == "copy" and copy_task(n).chance_success == task.chance_success
    b = task.generate(B, T, 2)
    np.testing.assert_array_equal(b.x, x)
    np.testing.assert_array_equal(b.target, y)
    assert task.chance_success == 8.0**-n
    assert task.chance_error(T) == pytest.approx(n * math.log(8) / (T + 2 * n))
    # the memoryless answer scores the chance loss; a perfect one succeeds on every sequence
    p = np.zeros((B, L, 9))
    p[:, : T + n, 0] = 1.0
    p[:, T + n :, 1:] = 1 / 8
    logits = np.log(np.maximum(p, 1e-300))
    assert task.error(logits, y) == pytest.approx(task.chance_error(T), rel=1e-9)
    perfect = np.eye(9)[y] * 5
    assert task.success_rate(perfect, y) == 1.0
    perfect[0, -1] = np.roll(perfect[0, -1], 1)  # one wrong symbol fails its whole sequence
    assert task.success_rate(perfect, y) == pytest.approx(1 - 1 / B)


def test_copy_recall_length_is_checked():
    assert get_task("copy") is TASKS["copy"] and get_task("copy", 10) is TASKS["copy"]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="recall length"):
            get_task("copy", bad)
    with pytest.raises(ValueError, match="copy task only"):
        get_task("adding", 5)
    with pytest.raises(ValueError, match="n_recall"):
        copy_memory(4, 10, 0, n_recall=0)


# --- temporal order ---------------------------------------------------------------------------
def test_temporal_order_protocol_at_the_papers_length():
    B, T = 4000, 100
    x, y, lengths = temporal_order(B, T, 5)
    assert x.shape == (B, 110, 8) and y.shape == (B,)
    assert lengths.min() == 100 and lengths.max() == 110
    valid = np.arange(110)[None, :] < lengths[:, None]
    assert np.all(x.sum(-1) == valid)  # one-hot where valid, zero padding
    ids = np.where(valid, x.argmax(-1), -1)
    assert np.all(ids[:, 0] == 6) and np.all(ids[np.arange(B), lengths - 1] == 7)  # E ... B
    rel = (ids == 4) | (ids == 5)
    assert np.all(rel.sum(1) == 2)
    t1, t2 = rel.argmax(1), 109 - rel[:, ::-1].argmax(1)
    assert t1.min() == 10 and t1.max() == 20 and t2.min() == 50 and t2.max() == 60
    s1, s2 = ids[np.arange(B), t1] - 4, ids[np.arange(B), t2] - 4
    np.testing.assert_array_equal(y, 2 * s1 + s2)  # XX 0, XY 1, YX 2, YY 3
    noise = valid & ~rel
    noise[:, 0] = False
    noise[np.arange(B), lengths - 1] = False
    assert set(np.unique(ids[noise])) == {0, 1, 2, 3}
    freq = np.bincount(y, minlength=4) / B
    assert np.all(np.abs(freq - 0.25) < 0.03)
    assert abs(accuracy(np.tile([1.0, 0, 0, 0], (B, 1)), y) - 0.25) < 0.03  # chance
    assert TASKS["temporal_order"].error(np.zeros((B, 4)), y) == pytest.approx(math.log(4))


def test_registry_sizes_match_the_generators():
    for name, task in TASKS.items():
        b = task.generate(4, 12, 0)
        assert b.x.shape[-1] == task.input_size, name
        assert get_task(name) is task
    with pytest.raises(ValueError, match="unknown task"):
        get_task("parity")


# --- the lab's model --------------------------------------------------------------------------
@pytest.mark.parametrize("cell,readout", [("lstm", "last"), ("gru", "all"), ("rnn", "last")])
def test_sequence_model_gradients_by_finite_differences(cell, readout):
    rng = np.random.default_rng(0)
    m = SequenceModel(
        SequenceModelConfig(cell, 3, 4, 2, num_layers=2, readout=readout, dtype="float64")
    )
    x = rng.standard_normal((3, 5, 3))
    lengths = np.array([5, 2, 4])
    R = rng.standard_normal(m(x, lengths).shape)

    def f():
        return float(np.sum(m(x, lengths, need_cache=False) * R))

    m.zero_grad()
    m(x, lengths)
    dx = m.backward(R)
    assert rel_error(dx, numerical_grad(f, x)) < 1e-6
    for name, p in m.named_parameters():
        assert rel_error(p.grad, numerical_grad(f, p.data)) < 1e-6, name
    np.testing.assert_allclose(m.predict(x, lengths, batch_size=2), m(x, lengths), atol=1e-12)


def test_lstm_beats_chance_on_a_short_adding_problem():
    task = get_task("adding")
    cfg = SequenceModelConfig("lstm", 2, 16, 1, forget_bias=1.0, seed=0)
    m = SequenceModel(cfg)
    opt = Adam(m.parameters(), lr=1e-2)
    rng = np.random.default_rng(1)
    for _ in range(500):
        b = adding_problem(32, 20, rng)
        m.zero_grad()
        _, dpred = task.loss(m(b.x, b.lengths), b.target)
        m.backward(dpred)
        clip_grad_norm(m.parameters(), 1.0)
        opt.step()
    test = adding_problem(2560, 20, 123)
    pred = m.predict(test.x, test.lengths)
    assert adding_error(pred, test.target) < 0.4 * ADDING_CHANCE["mae"]
    assert adding_success_rate(pred, test.target) > 3 * ADDING_CHANCE["success_rate"]
    assert SequenceModelConfig.from_dict(cfg.to_dict()) == cfg
