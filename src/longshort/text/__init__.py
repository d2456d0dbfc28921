"""Text: vocabularies, stateful BPTT batches, an n-gram baseline, sampling and cell pages."""

from .data import TextStream, split_stream
from .ngram import KneserNey
from .vocab import UNK, Vocab, read_text, tokenize

__all__ = ["UNK", "KneserNey", "TextStream", "Vocab", "read_text", "split_stream", "tokenize"]
