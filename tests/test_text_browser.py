"""The cell page rendered by a real headless browser (Debian's chromium): the screenshot must be
non-blank and show the red/blue character colouring that the page's JavaScript paints."""

import shutil
import subprocess

import numpy as np
import pytest

import longshort as ls
from longshort.text import Vocab
from longshort.text.cells import write_cell_page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs chromium: `make browser` (apt-get install -y chromium)"
)

TEXT = 'KING.\nWhat say you, "good friend"? [Aside] Speak!\n\nFOOL.\nNothing, my lord.\n' * 8


def test_cell_page_screenshot(tmp_path):
    from PIL import Image

    vocab = Vocab.build(TEXT, "char")
    model = ls.LanguageModel("char", 16, 24, vocab_size=len(vocab), vocab=vocab, seed=0)
    page, shot = tmp_path / "cells.html", tmp_path / "cells.png"
    ranking = write_cell_page(model, vocab, TEXT, page, top=3)
    assert {r["property"] for r in ranking} >= {"inside_quotes", "inside_brackets"}
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--screenshot={shot}", "--window-size=1000,900", page.as_uri()],
        check=True, capture_output=True, timeout=90, cwd=tmp_path,
    )  # fmt: skip
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)  # (900, 1000, 3)
    assert img.shape[:2] == (900, 1000)
    assert img.std() > 10  # not blank
    spread = img.max(-1) - img.min(-1)  # saturation-like: 0 for greys, large for red / blue
    red = (img[..., 0] > img[..., 2] + 40) & (spread > 40)
    blue = (img[..., 2] > img[..., 0] + 40) & (spread > 40)
    assert red.sum() + blue.sum() > 2000, (red.sum(), blue.sum())
