"""Broken saved-model files give one-line errors naming the file, the problem and the fix.

Each model kind is saved for real (tiny and fast), then a file is truncated, replaced by garbage,
edited or removed; every loader and the CLI must say which file is broken, never a traceback.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import longshort as ls
from longshort.cli import main
from longshort.io import load, save
from longshort.io._read import read_json_object, read_safetensors
from longshort.models.classifier import SequenceClassifier
from longshort.models.language_model import LanguageModel
from longshort.text.vocab import Vocab
from longshort.text.workflow import load_model, save_model

BROKEN = "is not a readable safetensors file (truncated or corrupted"


def _truncate(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 5, 2))  # (N, T, F)
    y = (X[:, :, 0].sum(axis=1) > 0).astype(int)
    return X, y


@pytest.fixture(scope="module")
def clf_dir(data, tmp_path_factory):
    X, y = data
    m = SequenceClassifier(4, epochs=1, batch_size=8, impl="reference").fit(X, y)
    return m.save(tmp_path_factory.mktemp("clf") / "m")


@pytest.fixture(scope="module")
def npz(data, tmp_path_factory):
    p = tmp_path_factory.mktemp("d") / "d.npz"
    np.savez(p, X=data[0], y=data[1])
    return p


@pytest.fixture
def clf_copy(clf_dir, tmp_path):
    return shutil.copytree(clf_dir, tmp_path / "m")


@pytest.fixture(scope="module")
def text_dir(tmp_path_factory):
    vocab = Vocab.build("abc abd ab ba", "char")
    lm = LanguageModel("char", 4, 6, vocab=vocab, impl="reference")
    d = tmp_path_factory.mktemp("text") / "t"
    save_model(lm, vocab, d, {"data": {"sha256": "0"}})
    return d


# --- the shared readers ---------------------------------------------------------------------------
@pytest.mark.parametrize("content", [b"", b"\x01\x02garbage" * 9, None])
def test_read_safetensors_names_the_file(clf_copy, content):
    p = clf_copy / "model.safetensors"
    if content is None:
        _truncate(p)
    else:
        p.write_bytes(content)
    with pytest.raises(ValueError, match="re-save or retrain") as e:
        read_safetensors(p)
    assert str(p) in str(e.value) and BROKEN in str(e.value) and "\n" not in str(e.value)


def test_read_safetensors_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_safetensors(tmp_path / "model.safetensors")


def test_read_json_object_kinds(tmp_path):
    p = tmp_path / "c.json"
    p.write_text('{"a": [1, 2')
    with pytest.raises(ValueError, match="is not valid JSON \\(truncated or corrupted"):
        read_json_object(p)
    p.write_text("[1, 2]")
    with pytest.raises(ValueError, match="holds a JSON list"):
        read_json_object(p)


# --- classifier -----------------------------------------------------------------------------------
def test_classifier_truncated_weights(clf_copy, npz, capsys):
    _truncate(clf_copy / "model.safetensors")
    with pytest.raises(ValueError, match=BROKEN.replace("(", "\\(")):
        SequenceClassifier.load(clf_copy)
    err = _one_line_error(
        capsys, ["classify", "eval", "--model", str(clf_copy), "--data", str(npz)]
    )
    assert str(clf_copy / "model.safetensors") in err and "retrain" in err


def test_classifier_truncated_config(clf_copy, npz, capsys):
    _truncate(clf_copy / "config.json", 0.7)
    err = _one_line_error(
        capsys, ["classify", "eval", "--model", str(clf_copy), "--data", str(npz)]
    )
    assert f"{clf_copy / 'config.json'} is not valid JSON (truncated or corrupted" in err


def test_classifier_missing_key(clf_copy, npz, capsys):
    p = clf_copy / "config.json"
    meta = json.loads(p.read_text())
    del meta["std"]
    p.write_text(json.dumps(meta))
    err = _one_line_error(
        capsys, ["classify", "eval", "--model", str(clf_copy), "--data", str(npz)]
    )
    assert f"{p} is missing the key 'std'" in err


def test_classifier_config_is_a_list(clf_copy):
    (clf_copy / "config.json").write_text("[1, 2, 3]")
    with pytest.raises(ValueError, match="holds a JSON list"):
        SequenceClassifier.load(clf_copy)


def test_classifier_newer_format_says_which(clf_copy):
    p = clf_copy / "config.json"
    meta = json.loads(p.read_text())
    meta["format"] = "longshort-classifier-2"
    p.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="'longshort-classifier-2' but this version .* reads "
                                         "'longshort-classifier-1'"):  # fmt: skip
        SequenceClassifier.load(clf_copy)


def test_classifier_good_files_still_load(clf_dir, data):
    m = SequenceClassifier.load(clf_dir)
    assert m.predict(data[0]).shape == (len(data[0]),)


# --- classifier API messages ----------------------------------------------------------------------
def test_predict_one_sequence_says_pass_a_batch(clf_dir, data):
    m = SequenceClassifier.load(clf_dir)
    with pytest.raises(ValueError, match=r"pass a batch: X\[None\]"):
        m.predict(data[0][0])
    assert m.predict(data[0][0][None]).shape == (1,)


def test_score_checks_label_count(clf_dir, data):
    m = SequenceClassifier.load(clf_dir)
    with pytest.raises(ValueError, match="X holds 24 sequences but y has shape \\(5,\\)"):
        m.score(data[0], data[1][:5])
    assert 0.0 <= m.score(data[0], data[1]) <= 1.0


def test_language_model_messages():
    with pytest.raises(ValueError, match="level must be 'char' or 'word', got 'byte'"):
        LanguageModel("byte", 4, 6)
    lm = LanguageModel("char", 4, 6, vocab_size=5, impl="reference")
    with pytest.raises(ValueError, match=r"must be \(B, T\).*ids\[None\]"):
        lm.forward(np.array([1, 2, 3]))
    assert lm.forward(np.array([1, 2, 3])[None])[0].shape == (1, 3, 5)


# --- layers (io.load, export onnx) and forecaster -------------------------------------------------
def test_io_load_truncated_weights(tmp_path, capsys):
    d = save(ls.nn.LSTM(2, 3, impl="reference"), tmp_path / "lstm")
    _truncate(d / "model.safetensors")
    with pytest.raises(ValueError, match=BROKEN.replace("(", "\\(")):
        load(d)
    pytest.importorskip("onnx")
    err = _one_line_error(
        capsys, ["export", "onnx", "--model", str(d), "--out", str(tmp_path / "m.onnx")]
    )
    assert str(d / "model.safetensors") in err


def test_forecaster_truncated_weights(tmp_path):
    pd = pytest.importorskip("pandas")
    t = np.arange(60)
    df = pd.DataFrame({"t": t, "y": np.sin(2 * np.pi * t / 12)})
    f = ls.Forecaster(horizon=2, context=12, hidden_size=4, epochs=1, seed=0)
    d = f.fit(df, time="t", target="y").save(tmp_path / "f")
    _truncate(d / "model.safetensors")
    with pytest.raises(ValueError, match=BROKEN.replace("(", "\\(")) as e:
        ls.Forecaster.load(d)
    assert str(d / "model.safetensors") in str(e.value)
    _truncate(d / "config.json", 0.5)
    with pytest.raises(ValueError, match="config.json is not valid JSON"):
        ls.Forecaster.load(d)


# --- text model -----------------------------------------------------------------------------------
@pytest.fixture
def text_copy(text_dir, tmp_path):
    return shutil.copytree(text_dir, tmp_path / "t")


def test_text_model_loads(text_dir):
    model, vocab, meta = load_model(text_dir)
    assert len(vocab) == model.config.vocab_size


@pytest.mark.parametrize(
    "name, expect",
    [
        ("model.safetensors", BROKEN),
        (
            "vocab.json",
            "vocab.json: not a longshort vocabulary: invalid JSON, truncated or corrupted",
        ),
        ("text_model.json", "is not valid JSON (truncated or corrupted"),
    ],
)
def test_text_model_truncated_files(text_copy, capsys, name, expect):
    _truncate(text_copy / name, 0.6)
    with pytest.raises(ValueError) as e:
        load_model(text_copy)
    assert str(text_copy / name) in str(e.value) and expect in str(e.value)
    err = _one_line_error(capsys, ["text", "sample", "--model", str(text_copy)])
    assert str(text_copy / name) in err


def test_text_model_other_format(text_copy):
    p = text_copy / "text_model.json"
    meta = json.loads(p.read_text())
    meta["format"] = "longshort-text-model-9"
    p.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="'longshort-text-model-9' but this version"):
        load_model(text_copy)
