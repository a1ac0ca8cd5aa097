"""Split a long text into pieces of at most N tokens, on paragraph and sentence boundaries.

Token counts are added up piece by piece (plus a separator allowance) instead of re-counting
each growing chunk, so splitting stays linear in the text's length.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

_PARAGRAPHS = re.compile(r"\n\s*\n")
# Latin sentence ends before whitespace; CJK ones (written as escapes) end a sentence even
# without it, as Chinese and Japanese put no space between sentences.
_SENTENCES = re.compile(r"(?<=[.!?])\s+|(?<=[\u3002\uff01\uff1f])\s*")
_PARAGRAPH_JOIN = 2  # what "\n\n" between two pieces may cost, in tokens
_WORD_JOIN = 1  # what a space between two words may cost

CountTokens = Callable[[str], int]


def _pack(
    units: Iterator[tuple[str, int]], limit: int, sep: str, join: int
) -> Iterator[tuple[str, int]]:
    current: list[str] = []
    size = 0
    for text, tokens in units:
        if current and size + join + tokens > limit:
            yield sep.join(current), size
            current, size = [], 0
        size += tokens + (join if current else 0)
        current.append(text)
    if current:
        yield sep.join(current), size


def _units(text: str, limit: int, count: CountTokens) -> Iterator[tuple[str, int]]:
    """Paragraphs, else their sentences, else words: the coarsest units under `limit`."""
    for paragraph in _PARAGRAPHS.split(text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        tokens = count(paragraph)
        if tokens <= limit:
            yield paragraph, tokens
            continue
        for sentence in _SENTENCES.split(paragraph):
            if not sentence:  # the split after a final CJK full stop
                continue
            tokens = count(sentence)
            if tokens <= limit:
                yield sentence, tokens
            else:  # one "sentence" longer than a chunk: cut between words
                words = ((w, count(w)) for w in sentence.split())
                yield from _pack(words, limit, " ", _WORD_JOIN)


def split_by_tokens(text: str, limit: int, count: CountTokens) -> list[str]:
    """Chunks of at most `limit` tokens (by the separator allowance), in text order."""
    units = _units(text, limit, count)
    return [chunk for chunk, _ in _pack(units, limit, "\n\n", _PARAGRAPH_JOIN)]
