"""Finishing a summary's text: trimming a cut-off summary to its last complete sentence, and
the language to ask a summary in (from the text's writing system, languages.py).

Pure string work, per summary (never per token).
"""

from __future__ import annotations

import re

from service.services.tasks.languages import SCRIPT_LANGUAGE, known_language, script

# A sentence ends at one of these, optionally followed by closing quotes or brackets, and then
# whitespace or the end (Latin, CJK, Arabic, Devanagari stops). CJK full stops need no space.
_END = "[.!?\u2026\u3002\uff01\uff1f\u061f\u06d4\u0964\u203c\u2047\u2048\u2049]"
_CLOSE = "[\"'\u201d\u2019\u00bb)\\]\uff09\u300d\u300f\u3011]*"  # quotes, brackets
_SENTENCE_END = re.compile(rf"{_END}{_CLOSE}(?=\s|$)|[\u3002\uff01\uff1f]{_CLOSE}")
_BULLET = re.compile(r"^\s*(?:[-*•·]|\d+[.)])\s+")
_LIST_NUMBER = re.compile(r"\s*\d+\.")  # a line that is only "1.": a list begun, not a sentence


def language_for(text: str, requested: str | None) -> tuple[str | None, str | None]:
    """(language to ask for, script to expect) for a summary of `text`.

    A `language` field wins (a code is asked for by its name; a language this table does not
    know is asked for as given, and not checked); otherwise the text's script decides, and a
    Latin-script text is summarized "in the language of the text" with only the script checked.
    """
    if requested:
        known = known_language(requested)
        return (known.name, known.script) if known else (requested, None)
    found = script(text)
    return (SCRIPT_LANGUAGE.get(found) if found else None), found


def _sentence_ends(text: str) -> list[re.Match[str]]:
    """Where sentences end in the text; not after a list number alone on its line."""
    return [
        end
        for end in _SENTENCE_END.finditer(text)
        if not _LIST_NUMBER.fullmatch(text, text.rfind("\n", 0, end.start()) + 1, end.end())
    ]


def trim_to_sentence(text: str, style: str) -> str:
    """A cut-off summary without its unfinished end: the last complete sentence (paragraph),
    or the last complete bullet (bullets). A headline is a phrase and stays as it is. Returns
    the text unchanged when there is nothing complete to keep."""
    text = text.rstrip()
    if style == "headline":
        return text
    if style == "bullets":
        lines = text.splitlines()
        items = [i for i, line in enumerate(lines) if _BULLET.match(line)]
        if len(items) >= 2:
            # The last bullet was cut off: keep everything before it.
            return "\n".join(lines[: items[-1]]).rstrip()
        if items:
            return text
    ends = _sentence_ends(text)
    if not ends:
        return text
    return text[: ends[-1].end()].rstrip()


def ends_sentence(text: str) -> bool:
    """Whether the text ends at a sentence end (any script; closing quotes allowed)."""
    text = text.rstrip()
    return any(end.end() == len(text) for end in _sentence_ends(text))


def ends_mid_sentence(text: str, style: str) -> bool:
    """Whether a summary stops in the middle of a sentence: a paragraph that does not end at a
    sentence end; a bullet list whose last item does not, while an earlier item does (a list of
    phrases with no stops is complete). A headline is a phrase and never counts; nor does an
    empty summary."""
    text = text.rstrip()
    if style == "headline" or not text:
        return False
    if style == "bullets":
        lines = text.splitlines()
        starts = [i for i, line in enumerate(lines) if _BULLET.match(line)]
        if starts:
            ends = [*starts[1:], len(lines)]
            items = ["\n".join(lines[a:b]) for a, b in zip(starts, ends, strict=True)]
            return not ends_sentence(items[-1]) and any(map(ends_sentence, items[:-1]))
    return not ends_sentence(text)
