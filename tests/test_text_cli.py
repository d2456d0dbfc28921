"""`longshort text ...` end to end on real text (CPython's own library source, always present):
train, resume, eval against the unigram and n-gram baselines, sample, cells, and bad input."""

import argparse
import json
import math
from collections import Counter
from pathlib import Path

import pytest

from longshort.cli import main

TINY = ["--hidden-size", "48", "--embedding-size", "16", "--lanes", "8", "--bptt", "32",
        "--lr", "1e-2", "--val-every", "50", "--log-every", "20", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    src = Path(argparse.__file__).read_text(encoding="utf-8")[:40000]
    p = tmp_path_factory.mktemp("text") / "argparse.txt"
    p.write_text(src, encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def model_dir(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("m") / "char"
    assert main(["text", "train", "--data", str(corpus), "--out", str(out), "--steps", "150",
                 *TINY]) == 0  # fmt: skip
    return out


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_char_model_learns_beyond_unigram(corpus, model_dir, capsys):
    code, out, _ = run(capsys, "text", "eval", "--model", str(model_dir), "--data", str(corpus))
    assert code == 0
    res = json.loads(out)
    text = corpus.read_text()
    train, test = text[: int(len(text) * 0.9)], text[-int(round(len(text) * 0.05)) :]
    counts, n = Counter(train), len(train)
    unigram = -sum(math.log2(counts.get(c, 0.5) / n) for c in test[1:]) / (len(test) - 1)
    assert res["tokens"] == len(test) - 1 and res["same_text_as_training"]
    assert res["bpc"] < unigram - 0.8, (res, unigram)
    assert res["perplexity"] == pytest.approx(2 ** res["bpc"])
    assert res["ngram"]["order"] == 5 and 0 < res["ngram"]["bpc"] < unigram
    rows = [json.loads(line) for line in (model_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 150 and any(r["val"] is not None for r in rows)


def test_resume_is_exact_with_dropout(corpus, tmp_path, capsys):
    from safetensors.numpy import load_file

    awd = ["--dropout-input", "0.1", "--weight-drop", "0.2", "--embedding-dropout", "0.1",
           "--ar", "1", "--tar", "1", "--variable-bptt", "--val-every", "1000"]  # fmt: skip
    straight, split = tmp_path / "s", tmp_path / "r"
    base = ["text", "train", "--data", str(corpus), *TINY, *awd]
    assert run(capsys, *base, "--out", str(straight), "--steps", "30")[0] == 0
    assert run(capsys, *base, "--out", str(split), "--steps", "20")[0] == 0
    code, stdout, _ = run(capsys, *base, "--out", str(split), "--steps", "30")
    assert code == 0 and "resuming from the checkpoint" in stdout and "at step 30" in stdout
    a, b = (
        load_file(str(straight / "model.safetensors")),
        load_file(str(split / "model.safetensors")),
    )
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_resume_keeps_the_schedule_it_started_with(corpus, tmp_path, capsys):
    """A rerun without --schedule resumes with the first run's schedule (it used to stop with
    "disagree on whether an lr schedule is used"), exactly as an uninterrupted run; a cosine
    schedule keeps the first run's period."""
    from safetensors.numpy import load_file

    base = ["text", "train", "--data", str(corpus), *TINY, "--val-every", "10"]
    straight, split = tmp_path / "s", tmp_path / "r"
    assert (
        run(capsys, *base, "--out", str(straight), "--steps", "30", "--schedule", "plateau")[0] == 0
    )
    assert run(capsys, *base, "--out", str(split), "--steps", "20", "--schedule", "plateau")[0] == 0
    code, stdout, _ = run(capsys, *base, "--out", str(split), "--steps", "30")
    assert code == 0 and "resuming from the checkpoint" in stdout and "at step 30" in stdout
    a, b = (load_file(str(d / "model.safetensors")) for d in (straight, split))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    cos = tmp_path / "c"
    assert run(capsys, *base, "--out", str(cos), "--steps", "20", "--schedule", "cosine")[0] == 0
    code, stdout, err = run(capsys, *base, "--out", str(cos), "--steps", "25")
    assert code == 0 and "at step 25" in stdout
    assert "anneals over the first run's 20 steps; past them its lr rises again" in err
    saved = json.loads((cos / "train_config.json").read_text())
    assert saved["schedule"] == "cosine" and saved["lr_t_max"] == 20
    step = tmp_path / "st"  # schedule options given on the rerun still apply
    assert run(capsys, *base, "--out", str(step), "--steps", "10", "--schedule", "step",
               "--lr-step", "5")[0] == 0  # fmt: skip
    assert run(capsys, *base, "--out", str(step), "--steps", "20", "--lr-step", "2")[0] == 0
    saved = json.loads((step / "train_config.json").read_text())
    assert saved["schedule"] == "step" and saved["lr_step_size"] == 2


def test_sample_is_seeded_and_uses_temperature(model_dir, capsys):
    a = run(capsys, "text", "sample", "--model", str(model_dir), "--length", "80", "--seed", "3")
    b = run(capsys, "text", "sample", "--model", str(model_dir), "--length", "80", "--seed", "3")
    assert a[0] == 0 and a[1] == b[1] and len(a[1]) >= 80
    c = run(capsys, "text", "sample", "--model", str(model_dir), "--prime", "def ", "--length",
            "40", "--temperature", "0.5", "--top-k", "5", "--top-p", "0.9")  # fmt: skip
    assert c[0] == 0 and c[1].startswith("def ")


def test_word_level_reports_perplexity(corpus, tmp_path, capsys):
    out = tmp_path / "w"
    code, _, _ = run(capsys, "text", "train", "--data", str(corpus), "--out", str(out),
                     "--level", "word", "--steps", "30", "--embedding-size", "16",
                     "--hidden-size", "32", "--lanes", "4", "--bptt", "20", "--tie",
                     "--dropout-output", "0.1", "--no-progress", "--schedule", "step",
                     "--lr-step", "10", "--val-every", "5", "--lr", "0.05")  # fmt: skip
    assert code == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["lr"] == 0.05 and rows[-1]["lr"] == pytest.approx(0.05 * 0.5**3)
    code, stdout, _ = run(capsys, "text", "eval", "--model", str(out), "--data", str(corpus))
    res = json.loads(stdout)
    vocab = json.loads((out / "vocab.json").read_text())
    assert res["level"] == "word" and res["ngram"]["order"] == 3
    assert 1 < res["perplexity"] < len(vocab["tokens"])  # better than uniform


def test_cells_page_ranks_cells(model_dir, corpus, tmp_path, capsys):
    page = tmp_path / "cells.html"
    code, out, _ = run(capsys, "text", "cells", "--model", str(model_dir), "--data", str(corpus),
                       "--out", str(page), "--chars", "800")  # fmt: skip
    html = page.read_text()
    assert code == 0 and "line_position" in out and "const D = {" in html
    data = json.loads(html.split("const D = ")[1].split(";\nconst pick")[0].replace("<\\/", "</"))
    assert len(data["text"]) == 800 and len(data["cells"][0]["c"]) == 800
    assert all(abs(r["r"]) <= 1 for r in data["ranking"])


def one_line_error(capsys, *argv) -> str:
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("longshort: error: "), err
    return err


def test_bad_input(tmp_path, model_dir, capsys):
    empty, binary, tiny = tmp_path / "e.txt", tmp_path / "b.txt", tmp_path / "t.txt"
    empty.write_text("  \n")
    binary.write_bytes(bytes(range(256)) * 4)
    tiny.write_text("To be or not to be.\n")
    train = ["text", "train", "--out", str(tmp_path / "o"), "--steps", "2", "--no-progress"]
    assert "empty" in one_line_error(capsys, *train, "--data", str(empty))
    assert "binary" in one_line_error(capsys, *train, "--data", str(binary))
    assert "BPTT window" in one_line_error(capsys, *train, "--data", str(tiny))
    assert "budget" in one_line_error(capsys, "text", "train", "--data", str(tiny), "--out",
                                      str(tmp_path / "p"))  # fmt: skip
    err = one_line_error(
        capsys, "text", "sample", "--model", str(model_dir), "--prime", "\u00e9\u4e2d"
    )
    assert "vocabulary" in err
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text('{"format": "longshort-model-1"}')
    for cmd in ("sample", "eval", "cells"):
        extra = [] if cmd == "sample" else ["--data", str(tiny)]
        extra += ["--out", str(tmp_path / "x.html")] if cmd == "cells" else []
        assert "not a text model" in one_line_error(
            capsys, "text", cmd, "--model", str(other), *extra
        )
    assert "not a text model" in one_line_error(capsys, "text", "train", "--data", str(tiny),
                                                "--out", str(other), "--steps", "1")  # fmt: skip


def test_resume_refuses_other_saved_settings(corpus, tmp_path, capsys):
    """A resumed run keeps its model and stream: options that would change them are named, and
    `--minutes 0` / `--steps 0` are refused by name."""
    out = tmp_path / "r"
    base = ["text", "train", "--data", str(corpus), "--out", str(out), *TINY]
    assert run(capsys, *base, "--steps", "5")[0] == 0
    err = one_line_error(capsys, *base, "--steps", "10", "--layers", "2", "--lr", "0.5")
    assert "--layers 2 (saved 1), --lr 0.5 (saved 0.01)" in err and "new --out" in err
    assert "--hidden-size 64 (saved 48)" in one_line_error(
        capsys, "text", "train", "--data", str(corpus), "--out", str(out), "--steps", "10",
        "--hidden-size", "64",
    )  # fmt: skip
    code, stdout, _ = run(capsys, "text", "train", "--data", str(corpus), "--out", str(out),
                          "--steps", "10", "--no-progress", "--val-every", "1000")  # fmt: skip
    assert code == 0 and "resuming" in stdout and "at step 10" in stdout  # options left out
    for budget in (["--minutes", "0"], ["--steps", "0"]):
        assert "budget must be positive" in one_line_error(capsys, *base[: -len(TINY)], *budget)


def test_forget_bias_is_saved_and_kept_on_resume(corpus, tmp_path, capsys):
    """--forget-bias 1 starts every forget gate at sigmoid(1) (b_ih = 1 on the f rows, b_hh = 0),
    is saved with the model, and a resume with another value is refused by name."""
    from longshort.text.workflow import read_meta

    out = tmp_path / "fb"
    base = ["text", "train", "--data", str(corpus), "--out", str(out), *TINY]
    assert run(capsys, *base, "--steps", "1", "--forget-bias", "1")[0] == 0
    assert read_meta(out)["model"]["forget_bias"] == 1.0
    err = one_line_error(capsys, *base, "--steps", "3", "--forget-bias", "2")
    assert "--forget-bias 2.0 (saved 1.0)" in err
    fresh = tmp_path / "fb0"
    assert run(capsys, "text", "train", "--data", str(corpus), "--out", str(fresh), *TINY,
               "--steps", "1", "--lr", "1e-3", "--forget-bias", "3")[0] == 0  # fmt: skip
    import numpy as np
    from safetensors.numpy import load_file

    w = load_file(str(fresh / "model.safetensors"))
    b_ih = next(v for k, v in w.items() if "bias_ih" in k)
    b_hh = next(v for k, v in w.items() if "bias_hh" in k)
    H = 48
    # one Adam step moves each weight by at most ~lr
    assert np.abs(b_ih[H : 2 * H] - 3).max() < 2e-3 and np.abs(b_hh[H : 2 * H]).max() < 2e-3
    assert np.abs(b_ih[:H]).max() < 0.5 and np.abs(b_ih[2 * H :]).max() < 0.5
