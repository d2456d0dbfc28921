"""`longshort text` on awkward input and events: Ctrl-C while training (one line, exit 130,
resumable), --out naming a file, characters the model never saw, word-level sampling after a
prime, and the file mode of the saved weights."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from longshort.cli import main
from longshort.train.checkpoint import usual_mode

TINY = ["--hidden-size", "16", "--embedding-size", "8", "--lanes", "4", "--bptt", "10",
        "--no-progress"]  # fmt: skip
WORDS = "KING HENRY . the cat sat on mat and dog ran , far away ; Constable dealt".split()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    import random

    rng = random.Random(0)
    p = tmp_path_factory.mktemp("text") / "c.txt"
    p.write_text("\n".join(" ".join(rng.choice(WORDS) for _ in range(10)) for _ in range(400)))
    return p


@pytest.fixture(scope="module")
def word_model(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("m") / "word"
    old = os.umask(0o022)
    try:
        assert main(["text", "train", "--data", str(corpus), "--out", str(out), "--level", "word",
                     "--steps", "10", *TINY]) == 0  # fmt: skip
    finally:
        os.umask(old)
    return out


def test_saved_files_get_the_usual_mode(word_model):
    for f in word_model.iterdir():
        assert f.stat().st_mode & 0o777 == usual_mode(), f.name


def test_word_sample_separates_the_prime_from_the_continuation(word_model, capsys):
    """The printed text is what the vocabulary's own joining rule makes of its tokens: decoding
    its encoding gives it back ("KING HENRY.Constable" would come back with the space)."""
    from longshort.text.vocab import Vocab

    vocab = Vocab.load(word_model / "vocab.json")
    for prime in ("KING HENRY.", "KING HENRY. ", "KING HENRY.\n"):
        for seed in range(3):
            assert main(["text", "sample", "--model", str(word_model), "--prime", prime,
                         "--length", "6", "--seed", str(seed)]) == 0  # fmt: skip
            out = capsys.readouterr().out[:-1]  # the final newline is the CLI's
            assert out.startswith(prime) and "  " not in out
            if prime == "KING HENRY.":
                assert vocab.decode(vocab.encode(out)) == out


def test_eval_warns_once_about_unknown_characters(word_model, corpus, tmp_path, capsys):
    f = tmp_path / "u.txt"
    f.write_text("the cat \u00e9t\u00e9 \u00fcber\n" * 20 + corpus.read_text())
    assert main(["text", "eval", "--model", str(word_model), "--data", str(f),
                 "--split", "all"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("longshort: warning: 40 of ")
    assert "'\u00e9t\u00e9', '\u00fcber'" in err[0] and "<unk>" in err[0]
    assert '"perplexity"' in captured.out
    assert main(["text", "eval", "--model", str(word_model), "--data", str(corpus)]) == 0
    assert capsys.readouterr().err == ""


def test_out_or_model_naming_a_file_says_so(corpus, capsys):
    with pytest.raises(SystemExit) as e:
        main(["text", "train", "--data", str(corpus), "--out", str(corpus), "--steps", "1"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"{corpus} is a file, not a directory" in err
    assert main(["text", "eval", "--model", str(corpus), "--data", str(corpus)]) == 2
    err = capsys.readouterr().err
    assert f"{corpus} is a file, not a model directory" in err and "no model directory" not in err


def test_ctrl_c_while_training_is_one_line_and_resumable(corpus, tmp_path):
    out = tmp_path / "m"
    base = [sys.executable, "-m", "longshort", "text", "train", "--data", str(corpus), "--out",
            str(out), "--checkpoint-every", "5", *TINY]  # fmt: skip
    p = subprocess.Popen(
        [*base, "--minutes", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 90
    while not (out / "checkpoint.safetensors").exists() and p.poll() is None:
        if time.monotonic() > deadline:
            p.kill()
            pytest.skip("no checkpoint within 90 s (a very slow machine)")
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    # progress lines (no terminal: plain lines on stderr) may come first; the interrupt is one line
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    msg = err.strip().splitlines()[-1]
    assert msg.startswith("longshort: interrupted at step "), err
    assert f"the last checkpoint is at {out / 'checkpoint.safetensors'} (step " in msg
    assert msg.endswith("rerun the same command to resume")
    step = int(msg.split("(step ")[1].split(")")[0])
    assert step >= 5 and step % 5 == 0
    r = subprocess.run([*base, "--steps", str(step + 2)], capture_output=True, text=True)
    assert r.returncode == 0 and f"resuming from the checkpoint in {out}" in r.stdout, r.stderr
    assert f"at step {step + 2}," in r.stdout
