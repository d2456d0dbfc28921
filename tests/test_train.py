"""The training loop: learning, exact resume, atomic checkpoints, reproducibility, divergence,
early stopping, stateful truncated BPTT, metrics and the progress bar."""

import json
import os

import numpy as np
import pytest

from longshort.nn import Module, Parameter
from longshort.train import (
    ArrayBatches,
    LossOutput,
    StreamBatches,
    TrainConfig,
    Trainer,
    TrainingDiverged,
    detach_state,
    fit,
    load_checkpoint,
    reset_state,
    save_checkpoint,
    supervised_loss,
)
from longshort.train import checkpoint as ckpt_mod
from longshort.train.checkpoint import rng_state_from_json, rng_state_to_json
from train_models import SeqToOne, Stream


def adding_problem(n, T, rng):
    """The adding problem: x (n, T, 2) = (value, marker); y (n, 1) = 0.5 + (X1 + X2) / 4."""
    x = np.zeros((n, T, 2), np.float32)
    x[..., 0] = rng.uniform(-1, 1, (n, T))
    for b in range(n):
        x[b, rng.choice(T, 2, replace=False), 1] = 1
    y = 0.5 + (x[..., 0] * x[..., 1]).sum(1, keepdims=True) / 4  # (n, 1)
    return {"x": x, "y": y.astype(np.float32)}


@pytest.fixture(scope="module")
def adding():
    rng = np.random.default_rng(0)
    return adding_problem(1000, 10, rng), adding_problem(300, 10, rng)


def echo_stream(n, delay, rng):
    """y_t = x_{t - delay}: needs memory across a chunk boundary when delay > 0."""
    x = rng.standard_normal((n, 1))
    y = np.zeros_like(x)
    y[delay:] = x[:-delay]
    return {"x": x, "y": y}


# --- config ---------------------------------------------------------------------------------------
def test_config_json_round_trip_and_unknown_keys():
    c = TrainConfig(epochs=None, max_steps=50, schedule="cosine", clip_norm=None, patience=3)
    assert TrainConfig.from_json(c.to_json()) == c
    with pytest.raises(ValueError, match=r"unknown TrainConfig option\(s\) \['epoch'\]"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(ValueError, match="needs a budget"):
        TrainConfig(epochs=None)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        TrainConfig(optimizer="adagrad")


# --- learning and reproducibility -----------------------------------------------------------------
def test_learns_the_short_adding_problem(adding):
    train, val = adding
    chance = float(np.mean((val["y"] - train["y"].mean()) ** 2))  # always answer the mean
    cfg = TrainConfig(epochs=None, max_steps=300, lr=1e-2, val_every=100, schedule="cosine")
    r = fit(SeqToOne(2, 16, seed=0), train, cfg, val_data=val)
    assert r.stop_reason == "max_steps" and r.step == 300
    assert r.rows[-1]["val"] < 0.1 * chance  # chance is about 0.04
    assert r.sequences_seen == 9 * 1000 + 12 * 32  # 32 batches per epoch, the last of 8
    assert r.rows[-1]["lr"] < 1e-3  # the cosine schedule ran down


def test_same_seed_same_losses_other_seed_other_order(adding):
    train, _ = adding
    cfg = TrainConfig(epochs=None, max_steps=40, lr=1e-2, seed=3)
    runs = [fit(SeqToOne(2, 8, seed=1), train, cfg).losses for _ in range(2)]
    assert runs[0] == runs[1]
    other = fit(SeqToOne(2, 8, seed=1), train, cfg.replace(seed=4)).losses
    assert other != runs[0]


# --- exact resume ---------------------------------------------------------------------------------
def _resume_setup(kind, init_seed=0):
    rng = np.random.default_rng(0)  # the same data every time
    if kind == "seq2one":
        data = adding_problem(200, 8, rng)
        val = adding_problem(64, 8, rng)
        # two layers with dropout: the LSTM's own Generator must be restored too
        model = SeqToOne(2, 8, seed=init_seed, num_layers=2, dropout=0.3)
        return model, ArrayBatches(data, 24), val
    data = StreamBatches.from_stream(echo_stream(3 * 97, 2, rng), lanes=3, bptt=5)  # 20 chunks
    val = StreamBatches.from_stream(echo_stream(2 * 30, 2, rng), lanes=2, bptt=6)
    return Stream(1, 8, seed=init_seed, dtype=np.float64), data, val


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


@pytest.mark.parametrize("kind", ["seq2one", "stateful"])
def test_resumed_run_is_bit_identical(tmp_path, kind):
    # lr_t_max: by default the cosine period is max_steps, which differs between the two runs
    base = dict(epochs=None, max_steps=40, lr=5e-3, schedule="cosine", lr_t_max=40, clip_norm=0.5, seed=7,
                val_every=6, patience=100, log_every=4, checkpoint_every=5)  # fmt: skip
    ref_dir, cut_dir = tmp_path / "ref", tmp_path / "cut"

    def run(d, max_steps, init_seed):
        model, data, val = _resume_setup(kind, init_seed)
        cfg = TrainConfig(**{**base, "max_steps": max_steps}, checkpoint_dir=str(d),
                          metrics_path=str(d / "metrics.jsonl"))  # fmt: skip
        return model, fit(model, data, cfg, val_data=val)

    ref_model, ref = run(ref_dir, 40, 0)
    _, first = run(cut_dir, 17, 0)  # stops between checkpoints, mid-epoch
    assert first.step == 17 and first.rows[-1].get("partial")
    # a fresh process: different initial weights, restored from the checkpoint
    cut_model, second = run(cut_dir, 40, 99)
    assert second.losses[0][0] == 18
    assert first.losses + second.losses == ref.losses  # every step's loss, compared with ==
    assert _strip([r for r in first.rows if not r.get("partial")] + second.rows) == _strip(ref.rows)
    assert (second.best_val, second.best_step) == (ref.best_val, ref.best_step)
    for (name, a), b in zip(ref_model.state_dict().items(), cut_model.state_dict().values()):
        assert np.array_equal(a, b), name
    assert _strip(_jsonl(ref_dir / "metrics.jsonl")) == _strip(_jsonl(cut_dir / "metrics.jsonl"))


def test_resume_after_a_crash_between_checkpoints(tmp_path):
    """A run killed at step 13 (last checkpoint at 10) resumes and matches the uninterrupted one."""
    rng = np.random.default_rng(0)
    data = ArrayBatches(adding_problem(100, 6, rng), 16)
    cfg = TrainConfig(epochs=3, lr=1e-2, checkpoint_every=5, log_every=2,
                      checkpoint_dir=str(tmp_path / "a"), metrics_path=str(tmp_path / "a.jsonl"))  # fmt: skip
    ref = fit(SeqToOne(2, 6, seed=0), data, cfg)

    class Crash(BaseException):
        pass

    class Dying(ArrayBatches):
        def batch(self, epoch, index, seed):
            if epoch * len(self) + index == 13:
                raise Crash  # like SIGKILL: nothing after this step runs
            return super().batch(epoch, index, seed)

    cfg_b = cfg.replace(checkpoint_dir=str(tmp_path / "b"), metrics_path=str(tmp_path / "b.jsonl"))
    dying = Dying(data.arrays, 16)
    with pytest.raises(Crash):
        fit(SeqToOne(2, 6, seed=0), dying, cfg_b)
    assert load_checkpoint(tmp_path / "b" / "checkpoint.safetensors")[1]["step"] == 10
    rest = fit(SeqToOne(2, 6, seed=5), data, cfg_b)
    assert rest.losses == ref.losses[10:]
    assert _strip(_jsonl(tmp_path / "a.jsonl")) == _strip(_jsonl(tmp_path / "b.jsonl"))


def test_resume_refuses_a_changed_data_order(tmp_path, adding):
    train, _ = adding
    cfg = TrainConfig(epochs=None, max_steps=3, checkpoint_dir=str(tmp_path))
    fit(SeqToOne(2, 4), train, cfg)
    with pytest.raises(ValueError, match="batch_size: saved 32, now 16"):
        fit(SeqToOne(2, 4), train, cfg.replace(max_steps=6, batch_size=16))
    with pytest.raises(FileExistsError, match="resume=True"):
        fit(SeqToOne(2, 4), train, cfg.replace(resume=False))


# --- atomic checkpoint writes ---------------------------------------------------------------------
def test_interrupted_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.safetensors"
    old = {"w": np.arange(6.0).reshape(2, 3)}
    save_checkpoint(path, old, {"step": 1})
    real_fdopen = os.fdopen

    class HalfWriter:
        """Writes half of the bytes, then dies (a kill or a full disk in mid-write)."""

        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise KeyboardInterrupt

    monkeypatch.setattr(ckpt_mod.os, "fdopen", lambda fd, mode: HalfWriter(real_fdopen(fd, mode)))
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"w": np.zeros((2, 3))}, {"step": 2})
    monkeypatch.setattr(ckpt_mod.os, "fdopen", real_fdopen)
    monkeypatch.setattr(ckpt_mod.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("EIO")))
    with pytest.raises(OSError, match="EIO"):
        save_checkpoint(path, {"w": np.ones((2, 3))}, {"step": 3})
    arrays, meta = load_checkpoint(path)
    assert meta["step"] == 1 and np.array_equal(arrays["w"], old["w"])
    assert os.listdir(tmp_path) == ["checkpoint.safetensors"]  # no temporary files left


def test_checkpoint_holds_no_pickle_and_rng_states_round_trip(tmp_path):
    for gen in (np.random.PCG64, np.random.MT19937):
        g = np.random.Generator(gen(5))
        g.random(3)
        s = json.loads(json.dumps(rng_state_to_json(g)))
        h = np.random.Generator(gen(0))
        rng_state_from_json(h, s)
        assert np.array_equal(g.random(4), h.random(4))
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"a": np.ones(2, np.float32)}, {"x": [1, 2]})
    assert b"pickle" not in path.read_bytes() and path.read_bytes()[8:9] == b"{"


# --- divergence -----------------------------------------------------------------------------------
class Scripted(Module):
    """A one-parameter model whose loss follows a script: for divergence tests."""

    def __init__(self, losses):
        super().__init__()
        self.w = Parameter(np.zeros(1))
        self.script, self.calls = list(losses), 0

    def loss(self, batch):
        self.calls += 1
        return LossOutput(self.script[self.calls - 1], lambda: None)


def test_nan_loss_names_the_step_and_the_fix():
    data = {"x": np.zeros((8, 1))}
    with pytest.raises(
        TrainingDiverged, match=r"loss is nan at step 3 \(epoch 1, batch 3/4\)"
    ) as e:
        fit(Scripted([1.0, 1.0, np.nan]), data, TrainConfig(epochs=1, batch_size=2))
    assert "Lower the learning rate" in str(e.value) and "clip" in str(e.value)


def test_exploding_loss_is_caught_against_the_running_median():
    script = [1.0] * 12 + [5.0, 2e3]
    cfg = TrainConfig(epochs=None, max_steps=14, batch_size=1, explode_factor=1e3)
    with pytest.raises(TrainingDiverged, match=r"loss exploded at step 14 .*running median 1"):
        fit(Scripted(script), {"x": np.zeros((20, 1))}, cfg)
    fit(Scripted(script), {"x": np.zeros((20, 1))}, cfg.replace(explode_factor=None))


def test_a_real_divergence_is_reported(adding):
    train, _ = adding
    cfg = TrainConfig(epochs=1, optimizer="sgd", lr=1e6, clip_norm=None)
    with pytest.raises(TrainingDiverged, match=r"at step \d+"):
        fit(SeqToOne(2, 8, seed=0), {"x": train["x"] * 1e3, "y": train["y"]}, cfg)


# --- early stopping -------------------------------------------------------------------------------
def test_early_stopping_restores_the_best_weights(adding):
    train, _ = adding
    script, seen = [5.0, 3.0, 4.0, 4.5, 6.0, 1.0], []

    def val(model):
        seen.append(model.state_dict())
        return script[len(seen) - 1]

    cfg = TrainConfig(epochs=None, max_steps=100, val_every=5, patience=3, lr=1e-2)
    model = SeqToOne(2, 4, seed=0)
    r = fit(model, train, cfg, val_data=val)
    assert (r.stop_reason, r.step, r.best_val, r.best_step) == ("early_stopping", 25, 3.0, 10)
    for k, v in model.state_dict().items():
        assert np.array_equal(v, seen[1][k])
    assert not np.array_equal(seen[1]["head.weight"], seen[-1]["head.weight"])


# --- stateful truncated BPTT ----------------------------------------------------------------------
def test_chunks_with_carried_state_equal_the_whole_sequence():
    rng = np.random.default_rng(1)
    stream = {"x": rng.standard_normal((3 * 40, 2)), "y": np.zeros((3 * 40, 1))}
    batches = StreamBatches.from_stream(stream, lanes=3, bptt=7)  # 40 = 5 x 7 + 5: padded end
    model = Stream(2, 5, num_layers=2, dtype=np.float64, seed=0)
    whole, _ = model.forward(stream["x"].reshape(3, 40, 2))  # (3, 40, 1)
    outs, state = [], None
    for j in range(len(batches)):
        b = batches.batch(0, j)
        state = reset_state(state, b["reset"])
        out, state = model.forward(b["x"], state, b["lengths"])
        state = detach_state(state)
        outs.append(out)
    chunked = np.concatenate(outs, axis=1)[:, :40]
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-13)


def test_state_resets_where_a_sequence_ends():
    rng = np.random.default_rng(2)
    seqs = [rng.standard_normal((t, 2)) for t in (10, 5, 13)]
    b = StreamBatches({"x": seqs, "y": [np.zeros((len(s), 1)) for s in seqs]}, lanes=1, bptt=4)
    assert len(b) == 3 + 2 + 4 and b.starts[0].nonzero()[0].tolist() == [0, 3, 5]
    model = Stream(2, 6, dtype=np.float64, seed=0)
    outs, state = [], None
    for j in range(len(b)):
        batch = b.batch(0, j)
        out, state = model.forward(batch["x"], reset_state(state, batch["reset"]), batch["lengths"])
        outs.append(out[0, : batch["lengths"][0]])
    got = np.concatenate(outs)
    want = np.concatenate([model.forward(s[None])[0][0] for s in seqs])  # each from zero state
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13)


def test_the_loop_carries_detached_state_and_zeroes_reset_rows():
    rng = np.random.default_rng(3)
    seqs = [rng.standard_normal((t, 1)) for t in (8, 4, 12, 6)]
    data = StreamBatches({"x": seqs, "y": seqs}, lanes=2, bptt=4)
    got = []

    class Spy(Stream):
        def loss(self, batch, state=None):
            out = super().loss(batch, state)
            got.append((batch["reset"].copy(), state, out.state))
            return out

    fit(Spy(1, 3, dtype=np.float64), data, TrainConfig(epochs=2))
    assert len(got) == 2 * len(data)
    for j in range(1, len(got)):
        reset, state, prev = got[j][0], got[j][1], got[j - 1][2]
        if reset.all():
            assert state is None
            continue
        for s, p in zip(state, prev):
            assert not np.shares_memory(s, p)
            np.testing.assert_array_equal(s[:, ~reset], p[:, ~reset])
            assert not s[:, reset].any()


def test_stateful_training_uses_memory_across_chunks():
    rng = np.random.default_rng(4)
    cfg = TrainConfig(epochs=6, lr=2e-2, log_every=1000)

    class NoCarry(StreamBatches):  # the same chunks, but every one starts from zero
        def batch(self, epoch, index, seed=0):
            return {**super().batch(epoch, index), "reset": np.ones(self.lanes, bool)}

    stream = echo_stream(8 * 160, 3, rng)  # the target is 3 steps back; chunks are 4 long
    losses = {}
    for name, cls in (("carried", StreamBatches), ("reset", NoCarry)):
        r = fit(Stream(1, 12, seed=0), cls.from_stream(stream, 8, 4), cfg)
        losses[name] = np.mean([v for _, v in r.losses[-20:]])
    # without the carried state 3 of every 4 targets are unpredictable (variance 1): loss ~0.75
    assert losses["carried"] < 0.25 < 0.6 < losses["reset"]


# --- batches, metrics and the progress bar --------------------------------------------------------
def test_array_batches_cover_every_row_once_per_epoch():
    b = ArrayBatches({"i": np.arange(10)}, 4)
    epochs = [np.concatenate([b.batch(e, j, seed=1)["i"] for j in range(len(b))]) for e in (0, 1)]
    assert len(b) == 3 and all(sorted(e.tolist()) == list(range(10)) for e in epochs)
    assert epochs[0].tolist() != epochs[1].tolist()
    assert len(ArrayBatches({"i": np.arange(10)}, 4, drop_last=True)) == 2


def test_metrics_log_and_progress_bar(tmp_path, adding, capsys):
    train, val = adding
    path = tmp_path / "m.jsonl"
    cfg = TrainConfig(epochs=1, batch_size=100, log_every=3, metrics_path=str(path))
    fit(SeqToOne(2, 4), train, cfg, val_data=val)
    rows = [json.loads(s) for s in path.read_text().splitlines()]
    assert [r["step"] for r in rows] == [3, 6, 9, 10]
    keys = {"step", "epoch", "loss", "val", "lr", "seconds", "sequences_seen", "grad_norm"}
    assert keys <= set(rows[0]) and rows[-1]["val"] is not None and rows[0]["val"] is None
    assert rows[-1]["sequences_seen"] == 1000 and rows[-1]["epoch"] == 1.0
    assert capsys.readouterr().err == ""  # stderr is not a terminal under pytest: no bar
    fit(SeqToOne(2, 4), train, cfg.replace(metrics_path=None, progress=True))
    assert "10/10" in capsys.readouterr().err


def test_trainer_contract_errors(adding):
    train, _ = adding
    with pytest.raises(TypeError, match=r"no loss\(batch\) method"):
        Trainer(Module(), train)
    with pytest.raises(ValueError, match="needs validation data"):
        Trainer(SeqToOne(2, 4), train, TrainConfig(patience=2))
    t = Trainer(SeqToOne(2, 4), train, TrainConfig(epochs=None, max_steps=2))
    assert t.fit().step == 2
    with pytest.raises(RuntimeError, match="build a new Trainer"):
        t.fit()
    with pytest.raises(ValueError, match="loss kind must be one of"):
        supervised_loss(np.zeros(2), np.zeros(2), lambda d: None, kind="hinge")


def test_lr_schedules_step_and_plateau(adding):
    train, _ = adding
    cfg = TrainConfig(epochs=None, max_steps=7, lr=0.01, schedule="step", lr_step_size=3,
                      lr_gamma=0.5, log_every=1)  # fmt: skip
    r = fit(SeqToOne(2, 4), train, cfg)
    assert [row["lr"] for row in r.rows] == [0.01, 0.01, 0.005, 0.005, 0.005, 0.0025, 0.0025]
    cfg = cfg.replace(schedule="plateau", plateau_patience=1, val_every=2, max_steps=10)
    r = fit(SeqToOne(2, 4), train, cfg, val_data=lambda m: 1.0)  # never improves
    assert [row["lr"] for row in r.rows if row["val"] is not None] == [
        0.01,
        0.01,
        0.005,
        0.005,
        0.0025,
    ]


def test_an_early_stopped_run_stays_stopped_on_resume(tmp_path, adding):
    train, _ = adding
    script = iter([3.0, 2.0, 4.0, 5.0])
    cfg = TrainConfig(epochs=None, max_steps=50, val_every=2, patience=2,
                      checkpoint_dir=str(tmp_path))  # fmt: skip
    first_model = SeqToOne(2, 4)
    first = fit(first_model, train, cfg, val_data=lambda m: next(script))
    assert (first.stop_reason, first.step, first.best_step) == ("early_stopping", 8, 4)
    model = SeqToOne(2, 4, seed=3)
    again = fit(model, train, cfg.replace(max_steps=100), val_data=lambda m: 0.0)
    assert (again.stop_reason, again.step, again.losses) == ("early_stopping", 8, [])
    for a, b in zip(model.state_dict().values(), first_model.state_dict().values()):
        assert np.array_equal(a, b)  # the best weights, from the checkpoint


def test_time_budget_and_validation_every_n_epochs(adding):
    train, val = adding
    r = fit(SeqToOne(2, 4), train, TrainConfig(epochs=None, max_seconds=0.05))
    assert r.stop_reason == "max_seconds" and r.step >= 1 and r.seconds >= 0.05
    cfg = TrainConfig(epochs=4, batch_size=250, val_every_epochs=2, log_every=100)
    r = fit(SeqToOne(2, 4), train, cfg, val_data=val)
    assert [(row["step"], row["epoch"]) for row in r.rows if row["val"] is not None] == [
        (8, 2.0),
        (16, 4.0),
    ]


def test_stop_from_a_metrics_callback(adding):
    train, _ = adding
    holder = {}

    def on_row(row):
        if row["step"] == 6:
            holder["t"].stop("target reached")

    t = holder["t"] = Trainer(SeqToOne(2, 4), train, TrainConfig(log_every=3), on_row=on_row)
    r = t.fit()
    assert (r.stop_reason, r.step, len(r.losses)) == ("target reached", 6, 6)


def test_fit_runs_numpy_blas_on_one_thread_and_restores_it(adding):
    """Idle OpenBLAS threads spin on the fused kernels' cores, so fit() runs NumPy's BLAS on
    TrainConfig.blas_threads (default 1) and puts the count back afterwards, also after an error."""
    from longshort import _blas_threads as bt

    if bt.get_blas_threads() is None:
        pytest.skip("NumPy's OpenBLAS thread control not found")
    train, _ = adding
    before = bt.get_blas_threads()
    bt.set_blas_threads(2)
    try:
        seen = []
        cfg = TrainConfig(max_steps=4, epochs=None, log_every=2)
        Trainer(
            SeqToOne(2, 4), train, cfg, on_row=lambda row: seen.append(bt.get_blas_threads())
        ).fit()
        assert seen == [1, 1] and bt.get_blas_threads() == 2
        seen.clear()
        Trainer(SeqToOne(2, 4), train, cfg.replace(blas_threads=None),
                on_row=lambda row: seen.append(bt.get_blas_threads())).fit()  # fmt: skip
        assert seen == [2, 2]

        def boom(row):
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            Trainer(SeqToOne(2, 4), train, cfg, on_row=boom).fit()
        assert bt.get_blas_threads() == 2
        with pytest.raises(ValueError, match="blas_threads must be an integer >= 1"):
            TrainConfig(blas_threads=0)
        with pytest.raises(ValueError, match="BLAS threads must be an integer in 1..4096"):
            bt.set_blas_threads(0)
    finally:
        bt.set_blas_threads(before)
