"""`longshort classify train|eval` end to end, the file readers, and bad input through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from longshort.cli import main
from longshort.data.readers import read_sequences


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory):
    """sklearn digits as 8 steps x 8: train .npz, test .npz, test long .csv and test .ts."""
    datasets = pytest.importorskip("sklearn.datasets", reason="pip install -e '.[test]'")
    d = datasets.load_digits()
    X, y = d.images / 16.0, d.target
    order = np.random.default_rng(0).permutation(len(X))
    tr, te = order[:1200], order[1200:1500]
    root = tmp_path_factory.mktemp("digits")
    np.savez(root / "train.npz", X=X[tr], y=y[tr])
    np.savez(root / "test.npz", X=X[te], y=y[te])
    write_long_csv(root / "test.csv", X[te], y[te])
    write_ts(root / "test.ts", X[te], y[te])
    return root


def write_long_csv(path, X, y):
    lines = ["id,time," + ",".join(f"f{j}" for j in range(X.shape[2])) + ",label"]
    for i in reversed(range(len(X))):  # ids out of order and steps reversed: the reader sorts
        for t in reversed(range(X.shape[1])):
            lines.append(f"s{i},{t}," + ",".join(repr(float(v)) for v in X[i, t]) + f",{y[i]}")
    path.write_text("\n".join(lines) + "\n")


def write_ts(path, X, y):
    """UCR/UEA .ts: one dimension per feature, values over time separated by commas."""
    head = ["# written by the test", "@problemName digits", "@timeStamps false",
            "@univariate false", f"@dimensions {X.shape[2]}", "@equalLength true",
            f"@classLabel true {' '.join(map(str, sorted(set(y))))}", "@data"]  # fmt: skip
    cases = [":".join(",".join(repr(float(v)) for v in x[:, j]) for j in range(x.shape[1]))
             + f":{label}" for x, label in zip(X, y)]  # fmt: skip
    path.write_text("\n".join(head + cases) + "\n")


def test_readers_agree(digit_files):
    Xn, yn = read_sequences(digit_files / "test.npz")
    Xc, yc = read_sequences(digit_files / "test.csv")
    Xt, yt = read_sequences(digit_files / "test.ts")
    Xc, yc = Xc[::-1], yc[::-1]  # the CSV lists the ids in reverse
    assert len(Xn) == len(Xc) == len(Xt) == 300 and Xn[0].shape == (8, 8)
    for a, b, c in zip(Xn, Xc, Xt):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert yn.tolist() == yc.tolist() == yt.tolist()


def test_train_then_eval(digit_files, tmp_path, capsys):
    out = tmp_path / "model"
    rc = main(["classify", "train", "--data", str(digit_files / "train.npz"), "--out", str(out),
               "--hidden", "32", "--epochs", "10", "--lr", "5e-3", "--pooling", "max"])  # fmt: skip
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 1200 and summary["classes"] == 10 and summary["train_accuracy"] > 0.9
    reports = []
    for name in ("test.npz", "test.csv", "test.ts"):
        png = tmp_path / f"{name}.png"
        rc = main(["classify", "eval", "--model", str(out), "--data", str(digit_files / name),
                   "--plot", str(png)])  # fmt: skip
        assert rc == 0
        reports.append(json.loads(capsys.readouterr().out))
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    r = reports[0]
    assert r["n"] == 300 and r["accuracy"] > 0.85, r  # held-out digits; chance is 0.1
    assert sorted(r["per_class"]) == [str(k) for k in range(10)]
    assert all(0 <= v <= 1 for v in r["per_class"].values())
    assert reports[1] == reports[0] == reports[2]  # same data in three formats, same answer
    assert (
        main(["classify", "eval", "--model", str(out), "--data", str(digit_files / "test.npz")])
        == 0
    )
    assert (out / "confusion.png").is_file()
    # the classifier's LSTM, traced on one held-out digit scaled as the classifier scales it
    from longshort.inspect import gate_trace
    from longshort.models.classifier import SequenceClassifier

    x = np.load(digit_files / "test.npz")["X"][0]  # (8, 8)
    np.save(tmp_path / "digit.npy", x)
    rc = main(["inspect", "gates", "--model", str(out), "--input", str(tmp_path / "digit.npy"),
               "--out", str(tmp_path / "gates")])  # fmt: skip
    assert rc == 0 and "gate traces of" in capsys.readouterr().out
    got = np.load(tmp_path / "gates" / "gates.npz")
    clf = SequenceClassifier.load(out)
    want = gate_trace(clf.net.rnn, (x - clf.mean) / clf.std)
    np.testing.assert_allclose(got["l0_f"], want[0]["f"], rtol=1e-5, atol=1e-6)
    assert got["x"].shape == (8, 8)


def _bad_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


BAD = {
    "ragged.ts": ("@classLabel true a b\n@data\n1,2,3:4,5,6:a\n1,2:b\n", "ragged features"),
    "missing.ts": ("@classLabel false\n@data\n1,2,3\n", "labels are missing"),
    "nan.ts": ("@classLabel true a b\n@data\n1,?,3:a\n1,2:b\n", "NaN"),
    "label.csv": ("id,time,f0,label\n1,0,0.5,a\n1,1,0.2,\n", "labels are missing"),
    "data.txt": ("1,2,3\n", "unknown file format '.txt'"),
    "empty.csv": ("\n \n", "is empty: it needs a header id,time"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_text_files_exit_2(tmp_path, capsys, name):
    text, match = BAD[name]
    (tmp_path / name).write_text(text)
    _expect_error(tmp_path, tmp_path / name, match, capsys)


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"X": np.zeros((3, 4, 2)), "y": np.array([0, 1, 1]), "lengths": np.array([4, 0, 2])},
         "sequence 1 has length 0"),
        ({"X": np.zeros((3, 4, 2))}, "labels are missing"),
        ({"X": np.arange(24.0).reshape(3, 4, 2), "y": np.array([5, 5, 5])}, "single class"),
        ({"X": np.array([[[0.0], [np.nan]], [[1.0], [2.0]]]), "y": np.array([0, 1])}, "NaN"),
        ({"X": np.array([[1, 2], [3]], dtype=object), "y": np.array([0, 1])}, "without pickle"),
    ],
)  # fmt: skip
def test_bad_npz_exit_2(tmp_path, capsys, arrays, match):
    _expect_error(tmp_path, _bad_npz(tmp_path / "bad.npz", **arrays), match, capsys)


def _expect_error(tmp_path, data, match, capsys):
    rc = main(["classify", "train", "--data", str(data), "--out", str(tmp_path / "m"),
               "--epochs", "1"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith("longshort: error: ") and match in err, err
    assert not (tmp_path / "m").exists()


def test_eval_of_a_missing_model_exit_2(tmp_path, capsys):
    rc = main(["classify", "eval", "--model", str(tmp_path / "nope"), "--data", "x.npz"])
    assert rc == 2 and f"{tmp_path / 'nope'} not found" in capsys.readouterr().err
