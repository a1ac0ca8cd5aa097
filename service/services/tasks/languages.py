"""Which writing system a text is in, and the language names and codes that go with each.

Summaries are asked for in the text's language and checked against its script (chat and generate
when the caller names a language); classify picks the calibration inputs of the text's language.
Pure string work, once per text.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass

from service.errors import InvalidRequestError

# Script -> the language a summary is asked in when the text is in it. Latin script is left to
# "the language of the text": telling English from French needs more than the script.
SCRIPT_LANGUAGE = {
    "han": "Chinese",
    "kana": "Japanese",
    "hangul": "Korean",
    "cyrillic": "Russian",
    "arabic": "Arabic",
    "greek": "Greek",
    "hebrew": "Hebrew",
    "devanagari": "Hindi",
    "thai": "Thai",
}
# Language names and codes a `language` field may give -> the script its text is in.
LANGUAGE_SCRIPT = {
    **{name.lower(): script for script, name in SCRIPT_LANGUAGE.items()},
    **{code: "latin" for code in ("en", "fr", "de", "es", "it", "pt", "nl", "sv", "pl", "tr")},
    **{
        name: "latin"
        for name in (
            "english",
            "french",
            "german",
            "spanish",
            "italian",
            "portuguese",
            "dutch",
            "swedish",
            "polish",
            "turkish",
            "vietnamese",
            "indonesian",
        )
    },
    "zh": "han",
    "zh-cn": "han",
    "zh-tw": "han",
    "mandarin": "han",
    "中文": "han",
    "汉语": "han",
    "ja": "kana",
    "ko": "hangul",
    "ru": "cyrillic",
    "ar": "arabic",
    "el": "greek",
    "he": "hebrew",
    "hi": "devanagari",
    "th": "thai",
}


# Codes and other spellings -> the English name an instruction uses ("Write it in Chinese.").
_NAMES = {
    "en": "English",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "sv": "Swedish",
    "pl": "Polish",
    "tr": "Turkish",
    "zh": "Chinese",
    "zh-cn": "Chinese",
    "zh-tw": "Chinese",
    "mandarin": "Chinese",
    "中文": "Chinese",
    "汉语": "Chinese",
    "ja": "Japanese",
    "ko": "Korean",
    "ru": "Russian",
    "ar": "Arabic",
    "el": "Greek",
    "he": "Hebrew",
    "hi": "Hindi",
    "th": "Thai",
}


@dataclass(frozen=True, slots=True)
class Language:
    name: str  # what an instruction calls it: "Chinese"
    script: str  # what its text is written in: "han"


def known_language(value: str) -> Language | None:
    """A `language` field's value (a code such as zh, or a name) if this table knows it."""
    key = value.strip().lower()
    found = LANGUAGE_SCRIPT.get(key)
    if found is None:
        return None
    return Language(_NAMES.get(key, key.title()), found)


def requested_language(value: str | None, *, param: str = "language") -> Language | None:
    """The request's `language` field: None when not given, a 400 when not known."""
    if value is None:
        return None
    found = known_language(value)
    if found is None:
        raise InvalidRequestError(
            f"Unknown language '{value}': give a code such as en or zh, or a language's "
            "English name.",
            param=param,
        )
    return found


_SYLLABIC = frozenset({"han", "kana", "hangul"})


def _script_of(char: str) -> str | None:
    if not char.isalpha():
        return None
    code = ord(char)
    if 0x3040 <= code <= 0x30FF:
        return "kana"
    if 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF:
        return "hangul"
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF:
        return "han"
    name = unicodedata.name(char, "")
    for script in ("LATIN", "CYRILLIC", "ARABIC", "GREEK", "HEBREW", "DEVANAGARI", "THAI"):
        if name.startswith(script):
            return script.lower()
    return "other"


def script(text: str) -> str | None:
    """The writing system most of the text's letters are in (None: no letters).

    Japanese mixes kana and Han: any kana in a Han-majority text makes it Japanese.
    """
    counts: Counter[str] = Counter()
    for found in map(_script_of, text):
        if found is not None:
            # A Han, kana or hangul character carries about what a short Latin word does.
            counts[found] += 3 if found in _SYLLABIC else 1
    if not counts:
        return None
    best = counts.most_common(1)[0][0]
    if best == "han" and counts["kana"] * 10 >= counts["han"]:
        return "kana"
    return best
