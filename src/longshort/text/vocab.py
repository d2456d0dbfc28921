"""Character and word vocabularies, saved as JSON beside a model; reading text files safely.

A vocabulary maps tokens to ids 0..V-1. Id 0 is always `<unk>`: characters (or words) never seen
in training, or cut by `min_count` / `max_size`, map to it, so any text can be encoded.

    char level: tokens are single characters           "to be" -> [t, o, ' ', b, e]
    word level: words, punctuation marks and newlines  "To be,\n" -> ["To", "be", ",", "\n"]

JSON: {"level": "char"|"word", "tokens": [...], "unk": "<unk>"}.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np

from .._validate import no_file

UNK = "<unk>"
LEVELS = ("char", "word")
_WORD_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)*|\n|[^\w\s]|_")


def tokenize(text: str, level: str) -> list[str]:
    """Split text into tokens: characters, or words / punctuation / newlines for "word"."""
    if level == "char":
        return list(text)
    if level == "word":
        return _WORD_RE.findall(text)
    raise ValueError(f"level must be one of {LEVELS}, got {level!r}")


class Vocab:
    """Token <-> id tables. Build with `Vocab.build(text, level)`; id 0 is `<unk>`.

    Args:
        tokens: the id order, tokens[0] must be "<unk>". level: "char" or "word".
    """

    def __init__(self, tokens: list[str], level: str):
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        if not tokens or tokens[0] != UNK:
            raise ValueError(f"a vocabulary's first token must be {UNK!r}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("a vocabulary must not repeat tokens")
        self.tokens, self.level = list(tokens), level
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def build(cls, text: str, level: str = "char", min_count: int = 1, max_size: int | None = None):
        """Vocabulary of `text`'s tokens seen >= min_count times, most frequent first (ties by
        first appearance), at most max_size tokens including <unk>."""
        counts = Counter(tokenize(text, level))
        counts.pop(UNK, None)
        kept = [t for t, n in counts.most_common() if n >= min_count]
        if max_size is not None:
            kept = kept[: max(max_size - 1, 0)]
        return cls([UNK, *kept], level)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> np.ndarray:
        """text -> ids (N,) int32; unknown tokens -> 0."""
        get = self.index.get
        return np.fromiter((get(t, 0) for t in tokenize(text, self.level)), np.int32)

    def unknown(self, text: str) -> list[str]:
        """The distinct tokens of `text` that are not in the vocabulary, in order of appearance."""
        return list(dict.fromkeys(t for t in tokenize(text, self.level) if t not in self.index))

    def decode(self, ids, after: str | None = None) -> str:
        """ids -> text; words are joined by spaces except around newlines and before punctuation.

        `after`: the text these ids continue (a sampling prime), so that the first word is joined
        to it by the same rule (a space after "HENRY." unless the text ends in whitespace).
        """
        toks = [self.tokens[int(i)] for i in np.asarray(ids).ravel()]
        if self.level == "char":
            return "".join("\ufffd" if t == UNK else t for t in toks)
        out = [] if not after or after[-1].isspace() else tokenize(after, self.level)[-1:]
        start = len(out)
        for t in toks:
            glue = not out or out[-1] == "\n" or t == "\n" or re.fullmatch(r"[^\w\s(\[]", t)
            out.append(t if glue else " " + t)
        return "".join(out[start:])

    def to_json(self) -> str:
        return json.dumps({"level": self.level, "tokens": self.tokens, "unk": UNK})

    @classmethod
    def from_json(cls, text: str) -> Vocab:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"not a longshort vocabulary: invalid JSON, truncated or corrupted "
                             f"({e})") from None  # fmt: skip
        if not isinstance(d, dict) or "tokens" not in d or "level" not in d:
            raise ValueError("not a longshort vocabulary (expected keys 'level' and 'tokens')")
        if not isinstance(d["tokens"], list) or not all(isinstance(t, str) for t in d["tokens"]):
            raise ValueError("not a longshort vocabulary ('tokens' must be a list of strings)")
        return cls(d["tokens"], d["level"])

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read a vocabulary written by save(); errors name the file and what is wrong with it."""
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(no_file(p, "it is written beside the model by `longshort text "
                                               "train`; retrain the model"))  # fmt: skip
        try:
            return cls.from_json(p.read_text(encoding="utf-8"))
        except UnicodeDecodeError as e:
            raise ValueError(f"{p} is not UTF-8 text (byte {e.start}): it is corrupted; "
                             "retrain the model") from None  # fmt: skip
        except ValueError as e:
            raise ValueError(f"{p}: {e}; restore it or retrain the model") from None


def read_text(path: str | Path) -> str:
    """Read a UTF-8 text file, with clear errors for a missing, empty or binary file."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(no_file(p, "pass a UTF-8 text file"))
    raw = p.read_bytes()
    if not raw.strip():
        raise ValueError(f"{p} is empty; give a UTF-8 text file with some text in it")
    if b"\x00" in raw[:65536]:
        raise ValueError(f"{p} looks like a binary file (it contains NUL bytes); give a UTF-8 text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{p} is not valid UTF-8 (byte {e.start}: {raw[e.start : e.start + 1]!r}); "
            "convert it, e.g. iconv -f latin1 -t utf-8"
        ) from None
