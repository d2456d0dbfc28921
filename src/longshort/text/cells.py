"""Look inside a character model: which memory cells track simple properties of the text.

For a text of N characters read by the model (eval mode, state carried from zero), every layer's
cell state c_t (N, H_l) is squashed to tanh(c_t) in (-1, 1) and correlated (Pearson r) with
properties of the character just read, each an (N,) array:

    inside_quotes    1 between double quotes ("..." or curly quotes)
    inside_brackets  1 between ( ) or [ ] (stage directions in Shakespeare)
    line_position    characters since the last newline
    speaker_turn     1 on the line after a blank line (a speaker's name starting a turn)

The best cells by |r| are listed, and `write_cell_page` writes one self-contained HTML page that
colours each character by a chosen cell's tanh(c) (red > 0, blue < 0) and shows the gates
i, f, o of that cell on hover (Karpathy, Johnson & Fei-Fei 2015, "Visualizing and Understanding
Recurrent Networks").
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

PROPERTIES = ("inside_quotes", "inside_brackets", "line_position", "speaker_turn")


def text_properties(text: str) -> dict[str, np.ndarray]:
    """The PROPERTIES of each character of `text`, each (N,) float64."""
    n = len(text)
    props = {k: np.zeros(n) for k in PROPERTIES}
    quote, depth, col, prev_blank, turn = False, 0, 0, True, False
    line_start = True
    for t, ch in enumerate(text):
        if line_start:
            turn, line_start = prev_blank and ch != "\n", False
        if ch in '"\u201c\u201d':
            quote = ch != "\u201d" and not quote if ch == '"' else ch == "\u201c"
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(depth - 1, 0)
        props["inside_quotes"][t] = quote
        props["inside_brackets"][t] = depth > 0
        props["line_position"][t] = col
        props["speaker_turn"][t] = turn
        if ch == "\n":
            prev_blank, col, line_start = col == 0, 0, True
        else:
            col += 1
    return props


def trace_cells(model, vocab, text: str) -> list[dict[str, np.ndarray]]:
    """Per layer {"c": tanh(c) (N, H_l), "i", "f", "o": gates (N, H_l)} for `text`."""
    if model.config.level != "char":
        raise ValueError("the cell page is for character-level models (this one is word level)")
    ids = vocab.encode(text)
    if len(ids) < 2:
        raise ValueError("the text for the cell page needs at least 2 characters")
    was = model.training
    model.eval()
    try:
        model.forward(ids[None, :], None, need_cache=True)
        out = []
        for rnn in model.rnns:
            tr = rnn.gate_trace()[0]  # each (1, N, H)
            out.append({"c": np.tanh(tr["c"][0]), **{k: tr[k][0] for k in "ifo"}})
    finally:
        model.train(was)
    return out


def rank_cells(traces, props: dict[str, np.ndarray], top: int = 5) -> list[dict]:
    """The `top` cells per property by |Pearson r|, as dicts sorted by |r| (largest first)."""
    rows = []
    for name, p in props.items():
        if p.std() == 0:
            continue  # the property never changes in this text
        pz = (p - p.mean()) / p.std()
        found = []
        for layer, tr in enumerate(traces):
            c = tr["c"].astype(np.float64)  # (N, H)
            sd = c.std(0)
            r = np.where(
                sd > 1e-9, ((c - c.mean(0)) * pz[:, None]).mean(0) / np.maximum(sd, 1e-9), 0
            )
            found += [(float(r[h]), layer, int(h)) for h in range(c.shape[1])]
        found.sort(key=lambda x: -abs(x[0]))
        rows += [{"property": name, "layer": la, "cell": h, "r": r} for r, la, h in found[:top]]
    return sorted(rows, key=lambda d: -abs(d["r"]))


def write_cell_page(model, vocab, text: str, path, top: int = 5) -> list[dict]:
    """Write the HTML page to `path`; returns the ranking (see rank_cells)."""
    traces = trace_cells(model, vocab, text)
    ranking = rank_cells(traces, text_properties(text), top)
    chosen = list(dict.fromkeys((r["layer"], r["cell"]) for r in ranking)) or [(0, 0)]
    cells = [
        {"name": f"layer {la} cell {h}",
         **{k: np.round(traces[la][k][:, h].astype(np.float64), 2 if k != "c" else 3).tolist()
            for k in ("c", "i", "f", "o")}}
        for la, h in chosen
    ]  # fmt: skip
    data = {"text": text, "cells": cells, "ranking": ranking}
    page = _PAGE.replace("__DATA__", json.dumps(data).replace("</", "<\\/"))
    page = page.replace(
        "__TITLE__", html.escape(f"cells of a {model.config.hidden_size}-unit LSTM")
    )
    Path(path).write_text(page, encoding="utf-8")
    return ranking


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body{font-family:sans-serif;margin:16px;background:#fff}
#text{font-family:monospace;font-size:14px;line-height:1.5;white-space:pre-wrap;width:640px}
#text span{padding:1px 0}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #ccc;padding:2px 8px}
tr.pick{cursor:pointer} tr.pick:hover{background:#eef}
#tip{position:fixed;background:#222;color:#fff;padding:4px 8px;font:12px monospace;display:none}
</style></head><body>
<h2>__TITLE__</h2>
<p>Each character is coloured by the chosen cell's tanh(c) after reading it: red &gt; 0, blue
&lt; 0. Hover a character for its gates i, f, o. Click a row of the ranking (Pearson r of the
cell with a property of the text) to show that cell.</p>
<div style="display:flex;gap:24px;align-items:flex-start">
<div id="text"></div>
<div><label>cell: <select id="pick"></select></label>
<table id="rank"><tr><th>property</th><th>layer</th><th>cell</th><th>r</th></tr></table></div>
</div><div id="tip"></div>
<script>
const D = __DATA__;
const pick = document.getElementById("pick"), box = document.getElementById("text");
const tip = document.getElementById("tip");
D.cells.forEach((c, k) => { const o = document.createElement("option");
  o.value = k; o.textContent = c.name; pick.appendChild(o); });
D.ranking.forEach(r => { const tr = document.createElement("tr"); tr.className = "pick";
  tr.innerHTML = `<td>${r.property}</td><td>${r.layer}</td><td>${r.cell}</td>` +
    `<td>${r.r.toFixed(3)}</td>`;
  tr.onclick = () => { pick.value = D.cells.findIndex(
    c => c.name === `layer ${r.layer} cell ${r.cell}`); show(); };
  document.getElementById("rank").appendChild(tr); });
function colour(a) { const v = Math.round(255 * (1 - Math.abs(a)));
  return a > 0 ? `rgb(255,${v},${v})` : `rgb(${v},${v},255)`; }
function show() {
  const c = D.cells[+pick.value]; box.innerHTML = "";
  const frag = document.createDocumentFragment();
  [...D.text].forEach((ch, t) => { const s = document.createElement("span");
    s.textContent = ch === "\\n" ? "\\u21b5\\n" : ch; s.style.background = colour(c.c[t]);
    s.dataset.t = t; frag.appendChild(s); });
  box.appendChild(frag); }
box.onmousemove = e => { const t = e.target.dataset.t; if (t === undefined) return;
  const c = D.cells[+pick.value];
  tip.textContent = `tanh(c)=${c.c[t]} i=${c.i[t]} f=${c.f[t]} o=${c.o[t]}`;
  tip.style.left = (e.clientX + 12) + "px"; tip.style.top = (e.clientY + 12) + "px";
  tip.style.display = "block"; };
box.onmouseleave = () => { tip.style.display = "none"; };
pick.onchange = show; show();
</script></body></html>
"""
