"""Bad classification input through the CLI: one line naming the file and the fix, exit code 2,
no traceback (damaged .npz, non-UTF-8 .csv, empty fields, one class, a missing model)."""

import subprocess
import sys

import numpy as np
import pytest

from longshort.cli import main
from longshort.train.checkpoint import usual_mode


def error_line(capsys, *argv) -> str:
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith("longshort: error: "), err
    return err


def train(capsys, tmp_path, data):
    return error_line(capsys, "classify", "train", "--data", data, "--out", tmp_path / "m",
                      "--epochs", "1")  # fmt: skip


def test_empty_and_truncated_npz_name_the_file_and_what_it_holds(tmp_path, capsys):
    empty, cut, npy = tmp_path / "e.npz", tmp_path / "t.npz", tmp_path / "a.npz"
    empty.write_bytes(b"")
    np.savez(tmp_path / "good.npz", X=np.zeros((4, 3)), y=np.arange(4))
    cut.write_bytes((tmp_path / "good.npz").read_bytes()[:200])
    np.save(tmp_path / "a.npy", np.zeros(3))
    npy.write_bytes((tmp_path / "a.npy").read_bytes())  # an .npy under an .npz name
    for path, what in ((empty, "is empty"), (cut, "is truncated or damaged"),
                       (npy, "is not an .npz file")):  # fmt: skip
        err = train(capsys, tmp_path, path)
        assert f"{path} {what}" in err and "arrays X (N, T)" in err and "y (N,)" in err
    assert not (tmp_path / "m").exists()


def test_empty_npz_in_a_subprocess_has_no_traceback(tmp_path):
    (tmp_path / "e.npz").write_bytes(b"")
    r = subprocess.run([sys.executable, "-m", "longshort", "classify", "train", "--data", "e.npz",
                        "--out", "co"], capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "e.npz is empty" in r.stderr


def test_binary_csv_is_named_as_not_utf8(tmp_path, capsys):
    f = tmp_path / "bin.csv"
    f.write_bytes(b"id,time,f,label\n1,0,\xf0\x28\x8c\x28,a\n")
    err = train(capsys, tmp_path, f)
    assert f"{f} is not UTF-8 text" in err and "saved as UTF-8" in err


def test_empty_field_is_a_missing_value_with_line_and_column(tmp_path, capsys):
    f = tmp_path / "d.csv"
    f.write_text("id,time,f0,f1,label\n1,0,0.5,1,a\n1,1,0.2,,a\n2,0,1,1,b\n")
    err = train(capsys, tmp_path, f)
    assert "line 3: missing value in column 'f1' (id 1)" in err and "must be numbers" not in err


def test_single_class_label_is_printed_plainly(tmp_path, capsys):
    f = tmp_path / "d.csv"
    f.write_text("id,time,f0,label\n1,0,0.5,a\n1,1,0.2,a\n2,0,1,a\n")
    err = train(capsys, tmp_path, f)
    assert "single class ('a')" in err and "np.str_" not in err


def test_eval_tells_a_missing_model_from_another_directory(tmp_path, capsys):
    data = tmp_path / "x.npz"
    np.savez(data, X=np.zeros((2, 3)), y=np.arange(2))
    err = error_line(capsys, "classify", "eval", "--model", tmp_path / "nope", "--data", data)
    assert f"{tmp_path / 'nope'} not found" in err and "classify train --out DIR" in err
    err = error_line(capsys, "classify", "eval", "--model", tmp_path, "--data", data)
    assert "is not a saved classifier" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["classify", "train", "--data", "d.csv", "--out", "OUT"],
        ["inspect", "gates", "--model", "m", "--input", "x.npy", "--out", "OUT"],
        ["inspect", "gradient-flow", "--length", "5", "--out", "OUT"],
        ["text", "train", "--data", "d.txt", "--out", "OUT", "--steps", "1"],
        ["classify", "train", "--data", "d.csv", "--out", "OUT/sub"],
    ],
)
def test_out_naming_a_file_fails_before_any_work(argv, tmp_path, capsys):
    (tmp_path / "OUT").write_text("a file\n")
    argv = [str(tmp_path / a) if a.startswith("OUT") else a for a in argv]
    with pytest.raises(SystemExit) as e:  # argparse: while the arguments are parsed
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1, err
    assert f"{tmp_path / 'OUT'} is a file" in err and "argument --out" in err


@pytest.mark.parametrize("cmd", [["export", "onnx", "--model", "m"],
                                 ["text", "cells", "--model", "m", "--data", "d"],
                                 ["classify", "eval", "--model", "m", "--data", "d", "--plot"]])  # fmt: skip
def test_output_file_naming_a_directory_fails_up_front(cmd, tmp_path, capsys):
    opt = [] if cmd[-1] == "--plot" else ["--out"]
    with pytest.raises(SystemExit) as e:
        main([*cmd, *opt, str(tmp_path)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"{tmp_path} is a directory, not a file" in err, err


def test_interrupt_is_one_line_exit_130(monkeypatch, tmp_path, capsys):
    import longshort.cli.classify as classify

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(classify, "_train", interrupted)
    rc = main(["classify", "train", "--data", "d.csv", "--out", str(tmp_path / "m")])
    assert rc == 130 and capsys.readouterr().err == "longshort: interrupted\n"


def test_onnx_hint_says_how_to_install_from_the_repository(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    err = error_line(capsys, "export", "onnx", "--model", tmp_path, "--out", tmp_path / "m.onnx")
    assert ".venv/bin/pip install -e '.[onnx]'" in err and "longshort[onnx]" not in err


def test_saved_classifier_files_get_the_usual_mode(tmp_path):
    import os

    from longshort.models.classifier import SequenceClassifier

    rng = np.random.default_rng(0)
    model = SequenceClassifier(4, epochs=1).fit(rng.normal(size=(6, 3, 2)), np.arange(6) % 2)
    old = os.umask(0o022)
    try:
        model.save(tmp_path / "m")
    finally:
        os.umask(old)
    for name in ("model.safetensors", "config.json"):
        assert os.stat(tmp_path / "m" / name).st_mode & 0o777 == usual_mode(), name
    assert SequenceClassifier.load(tmp_path / "m").predict(np.zeros((1, 3, 2))).shape == (1,)
