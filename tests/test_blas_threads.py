"""NumPy's OpenBLAS runs on one thread inside the CLI, text evaluation and dynamic evaluation
(its idle threads would spin on the fused kernels' cores), and the count is restored after."""

import numpy as np
import pytest

from longshort import _blas_threads as bt
from longshort.models.language_model import LanguageModel
from longshort.text.dynamic import dynamic_evaluate
from longshort.text.workflow import evaluate

pytestmark = pytest.mark.skipif(bt.get_blas_threads() is None,
                                reason="NumPy's OpenBLAS thread control not found")  # fmt: skip


@pytest.fixture
def two_threads():
    before = bt.get_blas_threads()
    bt.set_blas_threads(2)
    yield
    bt.set_blas_threads(before)


def _recording_model(seen):
    lm = LanguageModel("char", embedding_size=8, hidden_size=16, vocab_size=12, seed=0)
    forward = lm.forward

    def spy(*a, **k):
        seen.append(bt.get_blas_threads())
        return forward(*a, **k)

    lm.forward = spy
    return lm


def test_text_evaluation_runs_on_one_blas_thread(two_threads):
    ids = np.random.default_rng(0).integers(0, 12, 400)
    seen = []
    lm = _recording_model(seen)
    evaluate(lm, ids, lanes=2, bptt=50)
    dynamic_evaluate(lm, ids, rule="sgd", bptt=50)
    assert seen and set(seen) == {1}
    assert bt.get_blas_threads() == 2


def test_cli_runs_on_one_blas_thread_and_restores(two_threads, monkeypatch, tmp_path):
    """The real parser and command; the command's first call records the count and fails."""
    from longshort import cli
    from longshort.text import workflow

    seen = []

    def load_model(directory):
        seen.append(bt.get_blas_threads())
        raise ValueError("stop here")

    monkeypatch.setattr(workflow, "load_model", load_model)
    argv = ["text", "eval", "--model", str(tmp_path), "--data", str(tmp_path / "t.txt")]
    assert cli.main(argv) == 2
    assert seen == [1] and bt.get_blas_threads() == 2


def test_thread_counts_are_checked_even_without_openblas(monkeypatch):
    for bad in (0, -1, 2**40, 1.0, True, "2"):
        with pytest.raises(ValueError, match="BLAS threads must be an integer in 1..4096"):
            bt.set_blas_threads(bad)
    monkeypatch.setattr(bt, "_GET", None)
    with pytest.raises(ValueError, match="BLAS threads must be an integer"):
        with bt.blas_threads(0):
            pass
    with bt.blas_threads(1):  # no OpenBLAS: a no-op
        assert bt.get_blas_threads() is None


def test_sequence_model_predict_runs_on_one_blas_thread(two_threads):
    from longshort.models.sequence_model import SequenceModel

    m = SequenceModel(input_size=3, hidden_size=8)
    x = np.random.default_rng(0).standard_normal((10, 5, 3)).astype(np.float32)
    seen, forward = [], m.forward

    def spy(*a, **k):
        seen.append(bt.get_blas_threads())
        return forward(*a, **k)

    m.forward = spy
    expected = forward(x, None, need_cache=False)
    np.testing.assert_allclose(m.predict(x, batch_size=4), expected, rtol=1e-6)
    assert seen == [1, 1, 1] and bt.get_blas_threads() == 2
