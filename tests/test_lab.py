"""The long-memory lab: a quick adding run that must learn, and the lab / inspect CLI end to end.

Settings are tiny (short lengths, small hidden sizes, a few thousand sequences) so the file runs in
seconds; the real experiments are in docs/lab.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from longshort.cli import UserError, main
from longshort.cli.inspect import read_sequence
from longshort.data.tasks import ADDING_CHANCE, adding_problem
from longshort.io.store import load
from longshort.lab import LabConfig, run
from longshort.lab.report import load_rows, markdown_table, run_name
from longshort.lab.runner import RESULT_SETTINGS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = ["--hidden-size", "8", "--budget-sequences", "320", "--budget-minutes", "0.5",
        "--val-size", "64", "--test-size", "128", "--val-every", "5"]  # fmt: skip


def test_lstm_beats_chance_on_a_short_adding_task(tmp_path):
    cfg = LabConfig(task="adding", model="lstm", length=20, hidden_size=16, lr=1e-2,
                    budget_sequences=9600, budget_minutes=1.0, val_size=256, test_size=1000,
                    val_every=25)  # fmt: skip
    row = run(cfg, tmp_path / "run")
    # chance: MAE 0.1625, success 15.4 % (always answering 0.5)
    assert row["test_error"] < 0.6 * ADDING_CHANCE["mae"]
    assert row["success_rate"] > 2 * ADDING_CHANCE["success_rate"]
    assert row["sequences_seen"] <= 9600 and row["sequences_seen"] % 32 == 0
    assert row["chance_error"] == pytest.approx(0.1625)
    # the saved model reloads and answers as well as the run measured
    net = load(tmp_path / "run" / "model")
    test = adding_problem(1000, 20, np.random.default_rng([0, 10_002]))
    pred = net.predict(test.x, test.lengths)
    assert np.mean(np.abs(pred[:, 0] - test.target) < 0.04) == pytest.approx(row["success_rate"])
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["result"]["success_rate"] == row["success_rate"]
    assert saved["config"]["length"] == 20


def test_same_seed_same_run():
    cfg = LabConfig(length=10, hidden_size=4, budget_sequences=320, val_size=32, test_size=64,
                    val_every=5)  # fmt: skip
    a, b = run(cfg), run(cfg)
    for key in ("success_rate", "test_error", "sequences_seen", "steps"):
        assert a[key] == b[key]


def test_warm_up_is_outside_the_budget_and_leaves_training_unchanged(monkeypatch):
    """The untimed warm-up (kernels compiled before the clock starts) runs once per run, before
    training, and changes neither the data nor the weights trained: a run without it is the same."""
    import longshort.lab.runner as runner

    cfg = LabConfig(length=10, hidden_size=4, budget_sequences=320, val_size=32, test_size=64,
                    val_every=5)  # fmt: skip
    calls = []
    real = runner._warm_up
    monkeypatch.setattr(runner, "_warm_up", lambda *a: (calls.append(1), real(*a)))
    a = run(cfg)
    monkeypatch.setattr(runner, "_warm_up", lambda *a: None)
    b = run(cfg)
    assert calls == [1]
    for key in ("success_rate", "test_error", "sequences_seen", "steps", "val_success"):
        assert a[key] == b[key]


def cfg_of(row: dict) -> dict:
    """The LabConfig fields of a results row."""
    d = {k: row[k] for k in ("task", "model", "length", *RESULT_SETTINGS)}
    if d["lstm_init"] == "-":
        d["lstm_init"] = "chrono"
    return d


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab") / "cmp"
    rc = main(["lab", "compare", "--task", "adding", "--lengths", "10,12", "--models", "lstm,rnn",
               "--out", str(out), "--quiet", *TINY])  # fmt: skip
    assert rc == 0
    return out


def test_compare_writes_json_png_and_markdown(compared, capsys):
    rows = load_rows(compared)
    assert sorted((r["model"], r["length"]) for r in rows) == [
        ("lstm", 10), ("lstm", 12), ("rnn", 10), ("rnn", 12)]  # fmt: skip
    for r in rows:
        assert r["task"] == "adding" and 0 <= r["success_rate"] <= 1 and r["test_error"] > 0
        assert 0 < r["sequences_seen"] <= 320 and r["seconds"] >= 0
        name = f"adding-{r['model']}-T{r['length']}-"  # + the hash of the (TINY) settings
        assert r["model_dir"].startswith(str(compared / "models" / name))
        assert (compared / "models" / run_name(LabConfig(**cfg_of(r))) / "model").is_dir()
    assert (compared / "results.png").read_bytes()[:8] == PNG_MAGIC
    md = (compared / "results.md").read_text()
    assert md == markdown_table(rows) and md.count("\n| adding |") == 4
    assert "| adding | rnn | 12 |" in md


def test_compare_resumes_and_skips_finished_rows(compared, capsys):
    before = {(r["model"], r["length"]): r for r in load_rows(compared)}
    rc = main(["lab", "compare", "--task", "adding", "--lengths", "10,12,14", "--models", "lstm",
               "--out", str(compared), "--quiet", *TINY])  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    assert "[1/1] LSTM on adding, T=14" in out and "T=10 (" not in out
    after = {(r["model"], r["length"]): r for r in load_rows(compared)}
    assert set(after) == set(before) | {("lstm", 14)}
    assert all(after[k] == before[k] for k in before)  # untouched, not re-run


def test_compare_keeps_rows_of_another_hidden_size_apart(tmp_path, capsys):
    out = tmp_path / "cmp"
    base = ["lab", "compare", "--task", "adding", "--lengths", "10", "--models", "rnn",
            "--out", str(out), "--quiet", *TINY]  # fmt: skip
    assert main(base) == 0
    assert main([*base, "--hidden-size", "4"]) == 0  # not skipped as done: another hidden size
    assert "[1/1] RNN on adding, T=10" in capsys.readouterr().out.split("rows in")[1]
    rows = load_rows(out)
    assert sorted(r["hidden_size"] for r in rows) == [4, 8]
    md = (out / "results.md").read_text()
    assert "| adding | rnn | 10 | - | 4 |" in md and "| adding | rnn | 10 | - | 8 |" in md
    assert (out / "results.png").read_bytes()[:8] == PNG_MAGIC


def test_inspect_gates_writes_heatmaps_arrays_and_stats(compared, tmp_path, capsys):
    seq = adding_problem(1, 12, np.random.default_rng(3))
    x = seq.x[0, : seq.lengths[0]]  # (T, 2)
    np.save(tmp_path / "seq.npy", x)
    out = tmp_path / "gates"
    row = next(r for r in load_rows(compared) if (r["model"], r["length"]) == ("lstm", 12))
    model = Path(row["model_dir"]).parent  # a run dir: its model/ is found
    assert main(["inspect", "gates", "--model", str(model), "--input", str(tmp_path / "seq.npy"),
                 "--out", str(out)]) == 0  # fmt: skip
    assert (out / "gates.png").read_bytes()[:8] == PNG_MAGIC
    with np.load(out / "gates.npz", allow_pickle=False) as z:
        assert z["l0_f"].shape == (len(x), 8) and np.all((z["l0_f"] > 0) & (z["l0_f"] < 1))
        np.testing.assert_allclose(z["x"], x, rtol=1e-6)
        f_mean = float(z["l0_f"].mean())
    stats = json.loads((out / "forget_stats.json").read_text())
    assert stats[0]["layer"] == "layer 0" and stats[0]["mean"] == pytest.approx(f_mean)
    assert "forget gate mean" in capsys.readouterr().out


def test_inspect_reads_csv_sequences(tmp_path):
    x = np.array([[0.5, -1.0], [0.25, 1.0], [-0.75, 0.0]])
    (tmp_path / "seq.csv").write_text("value,marker\n" + "\n".join(f"{a},{b}" for a, b in x))
    np.testing.assert_allclose(read_sequence(str(tmp_path / "seq.csv"), 2), x)
    (tmp_path / "nohead.csv").write_text("\n".join(f"{a},{b}" for a, b in x) + "\n")
    np.testing.assert_allclose(read_sequence(str(tmp_path / "nohead.csv"), 2), x)
    with pytest.raises(UserError, match=r"\(T, 3\)"):
        read_sequence(str(tmp_path / "seq.csv"), 3)


def test_inspect_gradient_flow_from_lab_and_trained(compared, tmp_path):
    out = tmp_path / "flow"
    assert main(["inspect", "gradient-flow", "--task", "adding", "--length", "12", "--from",
                 str(compared), "--out", str(out), "--batch", "16"]) == 0  # fmt: skip
    assert (out / "gradient_flow.png").read_bytes()[:8] == PNG_MAGIC
    lines = (out / "gradient_flow.csv").read_text().splitlines()
    assert lines[0] == "model,lag,dh_norm,dx_norm,dh_relative,dx_relative"
    assert {ln.split(",")[0] for ln in lines[1:]} == {"LSTM", "RNN"}
    assert len(lines) == 1 + 2 * 12  # lags 0..11: the shortest sequence has 12 steps
    rep = json.loads((out / "gradient_flow.json").read_text())
    assert "models" in rep["models"]["lstm"]["source"]
    out2 = tmp_path / "flow2"  # nothing saved for T=16: trains briefly
    assert main(["inspect", "gradient-flow", "--length", "16", "--out", str(out2), "--models",
                 "rnn", "--train-sequences", "64", "--batch", "8"]) == 0  # fmt: skip
    assert (out2 / "models" / "rnn" / "model" / "config.json").is_file()
    assert (out2 / "gradient_flow.csv").read_text().count("\nRNN,") == 16


def test_copy_recall_is_an_option_a_key_and_a_column(tmp_path, capsys):
    out = tmp_path / "cmp"
    base = ["lab", "compare", "--task", "copy", "--lengths", "6", "--models", "lstm",
            "--out", str(out), "--quiet", *TINY]  # fmt: skip
    assert main([*base, "--recall", "3"]) == 0
    assert "[1/1] LSTM on copy, T=6, recall 3" in capsys.readouterr().out
    assert main([*base, "--recall", "2"]) == 0  # another recall length: another row, not skipped
    assert main([*base, "--recall", "3"]) == 0  # already there: skipped
    assert "[1/" not in capsys.readouterr().out.split("rows in")[-2]
    rows = sorted(load_rows(out), key=lambda r: r["recall"])
    assert [r["recall"] for r in rows] == [2, 3]
    for r in rows:
        n = r["recall"]
        assert r["chance_success"] == 8.0**-n
        assert r["chance_error"] == pytest.approx(n * np.log(8) / (6 + 2 * n), abs=1e-6)
        assert Path(r["model_dir"]).parent.name.startswith(f"copy-lstm-T6-R{n}-")
        net = load(r["model_dir"])
        assert net.config.readout == "all" and net.config.output_size == 9
    md = (out / "results.md").read_text()
    assert "| task | model | T | recall | hidden |" in md
    assert "| copy | lstm | 6 | 2 | 8 |" in md and "| copy | lstm | 6 | 3 | 8 |" in md
    # rows without a recall (before the option) are Arjovsky's 10 symbols; other tasks show "-"
    old = {**rows[0], "length": 7}
    del old["recall"]
    adding = {**rows[0], "task": "adding", "length": 7}
    del adding["recall"]
    assert "| copy | lstm | 7 | 10 | 8 |" in markdown_table([old])
    assert "| adding | lstm | 7 | - | 8 |" in markdown_table([adding])


def test_a_diverged_run_keeps_its_best_weights_and_gives_a_row(monkeypatch):
    from longshort.lab import runner
    from longshort.train import TrainingDiverged

    step = runner.Trainer._train_step

    def blow_up(self, batch):
        if self.step == 40:
            raise TrainingDiverged("at step 41: the total gradient norm is inf")
        return step(self, batch)

    monkeypatch.setattr(runner.Trainer, "_train_step", blow_up)
    cfg = LabConfig(task="copy", recall=2, length=5, hidden_size=8, budget_sequences=3200,
                    val_size=64, test_size=64, val_every=10)  # fmt: skip
    seen = []
    row = run(cfg, on_progress=seen.append)
    assert row["stop_reason"] == "diverged" and not row["solved"]
    assert row["steps"] == 40 and row["sequences_seen"] == 40 * 32
    # the weights tested are the best validation ones (validated at steps 10, 20, 30, 40)
    assert [p["step"] for p in seen] == [10, 20, 30, 40]
    best = min(seen, key=lambda p: (1 - p["val_success"], p["val_error"]))
    assert row["val_success"] == pytest.approx(best["val_success"], abs=1e-6)
    assert np.isfinite(row["test_error"])


def test_lab_config_checks_the_recall_length():
    cfg = LabConfig(task="copy", recall=4, length=12)
    assert LabConfig.from_dict(cfg.to_dict()) == cfg and cfg.to_dict()["recall"] == 4
    with pytest.raises(ValueError, match="recall length"):
        LabConfig(task="copy", recall=0)
    with pytest.raises(ValueError, match="copy task only"):
        LabConfig(task="adding", recall=4)


def test_lstm_learns_a_short_copy_task():
    cfg = LabConfig(task="copy", model="lstm", length=5, recall=2, hidden_size=16,
                    budget_sequences=40_000, budget_minutes=0.5, val_size=256, test_size=500,
                    val_every=50)  # fmt: skip
    row = run(cfg)
    # chance: 1/64 of sequences whole, loss 2 log 8 / 9 = 0.462 per step
    assert row["recall"] == 2 and row["chance_success"] == 1 / 64
    assert row["success_rate"] > 0.9 and row["test_error"] < 0.2 * row["chance_error"]


@pytest.mark.parametrize(
    "argv",
    [
        ["lab", "run", "--length", "0"],
        ["lab", "run", "--length", "20", "--recall", "3"],
        ["lab", "run", "--task", "copy", "--length", "20", "--recall", "0"],
        ["lab", "run", "--length", "5"],
        ["lab", "compare", "--lengths", "10,x", "--out", "o"],
        ["lab", "compare", "--lengths", "10", "--models", "lstm,tcn", "--out", "o"],
        ["lab", "run", "--length", "20", "--model", "transformer"],
        ["inspect", "gates", "--model", "no/such/dir", "--input", "x.npy"],
    ],
)
def test_bad_options_are_one_line_errors(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's own errors: usage + one error line
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("longshort") and "error:" in err[-1] and "Traceback" not in err[-1]


def test_gates_rejects_an_input_of_the_wrong_width(compared, tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.zeros((12, 3)))
    row = next(r for r in load_rows(compared) if (r["model"], r["length"]) == ("lstm", 10))
    rc = main(["inspect", "gates", "--model", row["model_dir"],
               "--input", str(tmp_path / "bad.npy"), "--out", str(tmp_path / "o")])  # fmt: skip
    assert rc == 2
    assert "(T, 2)" in capsys.readouterr().err


def test_gradient_flow_finds_saved_copy_models_by_recall(tmp_path):
    """`inspect gradient-flow --recall R --from DIR` loads the -R<recall> models lab compare saved."""
    from longshort.lab.flow import saved_model_dir

    assert saved_model_dir("d", "copy", "lstm", 20, 5).parent.name == "copy-lstm-T20-R5"
    assert saved_model_dir("d", "copy", "lstm", 20, 10).parent.name == "copy-lstm-T20"
    assert saved_model_dir("d", "adding", "rnn", 50).parent.name == "adding-rnn-T50"
    lab = tmp_path / "lab"
    args = ["--task", "copy", "--recall", "2", "--lengths", "5", "--models", "lstm"]
    assert main(["lab", "compare", *args, "--budget-sequences", "2000", "--out", str(lab)]) == 0
    (row,) = load_rows(lab)  # a non-default budget: the directory name ends in a settings hash
    assert Path(row["model_dir"]).parent.name.startswith("copy-lstm-T5-R2-")
    assert Path(row["model_dir"]).is_dir()
    out = tmp_path / "flow"
    rc = main(["inspect", "gradient-flow", "--task", "copy", "--recall", "2", "--length", "5",
               "--from", str(lab), "--models", "lstm", "--out", str(out)])  # fmt: skip
    assert rc == 0
    rep = json.loads((out / "gradient_flow.json").read_text())
    assert rep["models"]["lstm"]["source"] == str(
        lab / "models" / Path(row["model_dir"]).parent.name / "model"
    )


def test_recall_with_another_task_in_gradient_flow_is_an_error(tmp_path, capsys):
    rc = main(["inspect", "gradient-flow", "--task", "adding", "--recall", "3", "--length", "20",
               "--out", str(tmp_path / "o")])  # fmt: skip
    assert rc == 2 and "--recall applies to --task copy only" in capsys.readouterr().err


def test_table_marks_a_diverged_run():
    from longshort.lab.report import markdown_table

    row = {"task": "copy", "model": "lstm", "length": 100, "recall": 5, "hidden_size": 32,
           "success_rate": 0.2, "test_error": 0.02, "chance_error": 0.09, "solved": False,
           "stop_reason": "diverged", "sequences_seen": 10, "seconds": 1.0, "cpu_seconds": 1.0}  # fmt: skip
    line = [r for r in markdown_table([row]).splitlines() if r.startswith("| copy")][0]
    assert "| no (diverged) |" in line
    assert "| no |" in markdown_table([dict(row, stop_reason="budget")])


def test_gradient_flow_from_a_missing_directory_is_an_error(tmp_path, capsys):
    rc = main(["inspect", "gradient-flow", "--length", "20", "--from", str(tmp_path / "nowhere"),
               "--out", str(tmp_path / "o")])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "nowhere: no such directory" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()  # nothing trained


TINY_RNN = ["lab", "compare", "--task", "adding", "--lengths", "10", "--models", "rnn", "--quiet",
            *TINY]  # fmt: skip


@pytest.mark.parametrize("option", [["--seed", "1"], ["--lr", "0.001"], ["--lstm-init", "uniform"]])
def test_compare_reruns_when_a_setting_changes_and_skips_only_identical_runs(
    option, tmp_path, capsys
):
    """Rows are keyed by every setting that changes the result: another seed or lr is a new run
    (not the old row reported again); the model-only lstm_init changes nothing for the RNN."""
    out = tmp_path / "cmp"
    base = [*TINY_RNN, "--out", str(out)]
    assert main(base) == 0
    capsys.readouterr()
    assert main([*base, *option]) == 0
    ran = "[1/1] RNN on adding, T=10" in capsys.readouterr().out
    rows = load_rows(out)
    if option[0] == "--lstm-init":  # not a setting of the RNN: the same run, skipped
        assert not ran and len(rows) == 1
        return
    assert ran and len(rows) == 2
    key = option[0][2:]
    assert sorted(r[key] for r in rows) == sorted([float(option[1]), LabConfig().__dict__[key]])
    assert main([*base, *option]) == 0  # now both are there: nothing runs
    assert "[1/" not in capsys.readouterr().out
    assert len({r["model_dir"] for r in rows}) == 2  # each row keeps its own model


def test_model_directories_of_other_settings_never_collide(tmp_path, capsys):
    """Another hidden size used to overwrite models/<task>-<model>-T<len>/model, leaving the older
    row pointing at the newer model; every row now has its own directory, and its model is its own."""
    out = tmp_path / "cmp"
    base = [*TINY_RNN, "--out", str(out)]
    assert main(base) == 0
    assert main([*base, "--hidden-size", "4"]) == 0
    assert main([*base, "--budget-sequences", "64"]) == 0
    rows = load_rows(out)
    assert len(rows) == 3 and len({r["model_dir"] for r in rows}) == 3
    for r in rows:
        net = load(r["model_dir"])
        assert net.config.hidden_size == r["hidden_size"]
        assert Path(r["model_dir"]).parent.name == run_name(LabConfig(**cfg_of(r)))
        saved = json.loads((Path(r["model_dir"]).parent / "result.json").read_text())
        assert saved["result"] == r
    # the default settings keep the plain name <task>-<model>-T<len>; 30 and 30.0 give one name
    assert run_name(LabConfig(model="rnn", length=10)) == "adding-rnn-T10"
    assert run_name(LabConfig(budget_minutes=5)) == run_name(LabConfig(budget_minutes=5.0))
    assert run_name(LabConfig(seed=1)) != run_name(LabConfig(lr=0.001)) != "adding-lstm-T100"
    assert run_name(LabConfig(model="gru", lstm_init="uniform")) == "adding-gru-T100"


def test_rows_without_the_new_settings_count_as_the_defaults():
    """results.json written before the settings were recorded: such a row is the default run."""
    from longshort.lab.report import row_key

    new = {**LabConfig().__dict__, "task": "adding", "model": "lstm", "length": 50}
    old = {"task": "adding", "model": "lstm", "length": 50, "hidden_size": 32, "seed": 0}
    assert row_key(old) == row_key(new)
    assert row_key(old) != row_key({**new, "seed": 1}) != row_key({**new, "lr": 0.001})


def test_flow_names_the_runs_when_several_match(tmp_path):
    from longshort.lab.flow import saved_model_dir

    out = tmp_path / "cmp"
    for seed in ("1", "2"):
        assert main([*TINY_RNN, "--out", str(out), "--seed", seed]) == 0
    with pytest.raises(ValueError, match="holds 2 rnn models for adding T=10"):
        saved_model_dir(out, "adding", "rnn", 10)


def test_lab_seed_must_be_a_non_negative_integer(capsys):
    with pytest.raises(SystemExit):
        main(["lab", "run", "--length", "5", "--seed", "-1"])
    err = capsys.readouterr().err
    assert "argument --seed" in err and "non-negative integer" in err
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="seed must be a non-negative integer"):
            LabConfig(seed=bad)


def test_table_tells_apart_rows_that_differ_in_seed_lr_or_other_settings():
    from longshort.lab.report import markdown_table

    row = {"task": "adding", "model": "lstm", "length": 50, "hidden_size": 32, "seed": 0,
           "success_rate": 1.0, "test_error": 0.001, "chance_error": 0.167, "solved": True,
           "sequences_seen": 1000, "seconds": 1.0, "cpu_seconds": 1.0}  # fmt: skip
    rows = [row, {**row, "seed": 1}, {**row, "lr": 3e-3}, {**row, "batch_size": 64},
            {**row, "budget_sequences": 2e6}]  # fmt: skip
    lines = [r for r in markdown_table(rows).splitlines() if r.startswith("| adding")]
    assert len(set(lines)) == 5
    assert any("| budget_sequences=2000000 |" in ln for ln in lines)
    assert "| seed | lr | other settings |" in markdown_table(rows)
    assert any("| 1 | 0.01 | - |" in ln for ln in lines)  # seed 1, the default lr
    assert any("| 0 | 0.003 | - |" in ln for ln in lines)
    assert any("| batch_size=64 |" in ln for ln in lines)
