"""A structured-output constraint that keeps generated text in one writing system.

The last resort when a model keeps answering in another language than asked: a grammar (EBNF),
handed to vLLM's structured outputs, that allows only text in the target script:

- every sentence (and every line) starts with a letter of the target script, after an optional
  list marker ("- ", "1. ") and opening quote or bracket;
- inside a sentence: the script's letters and marks, digits, punctuation and spaces;
- Latin words (names, terms) in runs of at most three, each followed within 16 characters
  (digits, punctuation, spaces) by a letter of the target script: Latin cannot make up a
  sentence, nor a run of numbers after Latin words (not for a Latin target, whose letters are
  the Latin ones);
- with `complete`, the text may end only after a sentence's end mark, so the model cannot stop
  mid-sentence (it may still be cut at its maximum length).

Scripts are spelled as explicit code-point ranges: the xgrammar backend does not understand
Unicode property classes (`\\p{Han}` matches a literal "p"). Every character in a class is a
`\\uXXXX` escape, so no punctuation needs escaping rules (tests/unit checks the language with
xgrammar itself; tests/integration that the engine compiles and follows it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from service.engine.base import StructuredOutput

Ranges = tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class ScriptChars:
    letters: Ranges  # what a sentence may start with
    marks: Ranges = ()  # combining marks and the like: inside a word only
    digits: Ranges = ()  # the script's own digits, besides 0-9
    stops: str = ""  # the script's own sentence-end marks, besides the Latin and CJK ones
    punctuation: str = ""  # its own marks inside a sentence


_HAN: Ranges = ((0x3007, 0x3007), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF))
_LATIN: Ranges = (
    (0x41, 0x5A),
    (0x61, 0x7A),
    (0xC0, 0xD6),
    (0xD8, 0xF6),
    (0xF8, 0x24F),
    (0x1E00, 0x1EFF),
)

# By the script names of languages.py.
SCRIPTS: dict[str, ScriptChars] = {
    "han": ScriptChars(letters=_HAN),
    "kana": ScriptChars(  # Japanese: kana and kanji
        letters=(
            (0x3041, 0x3096),
            (0x309D, 0x309F),
            (0x30A1, 0x30FA),
            (0x30FC, 0x30FF),
            (0x31F0, 0x31FF),
            (0xFF66, 0xFF9D),
            *_HAN,
        ),
        marks=((0x3099, 0x309C), (0xFF9E, 0xFF9F)),
    ),
    "hangul": ScriptChars(letters=((0x1100, 0x11FF), (0x3131, 0x318E), (0xAC00, 0xD7A3))),
    "cyrillic": ScriptChars(letters=((0x400, 0x481), (0x48A, 0x52F)), marks=((0x483, 0x489),)),
    "greek": ScriptChars(
        letters=(
            (0x370, 0x373),
            (0x376, 0x377),
            (0x37B, 0x37D),
            (0x386, 0x386),
            (0x388, 0x3FF),
            (0x1F00, 0x1FFF),
        ),
        stops="\u037e",  # the Greek question mark
        punctuation="\u0387",
    ),
    "arabic": ScriptChars(
        letters=(
            (0x620, 0x64A),
            (0x66E, 0x66F),
            (0x671, 0x6D3),
            (0x6D5, 0x6D5),
            (0x6EE, 0x6EF),
            (0x6FA, 0x6FC),
            (0x6FF, 0x6FF),
            (0x750, 0x77F),
        ),
        marks=((0x64B, 0x65F), (0x670, 0x670), (0x6D6, 0x6ED)),
        digits=((0x660, 0x669), (0x6F0, 0x6F9)),
        stops="\u061f\u06d4",
        punctuation="\u060c\u061b",
    ),
    "hebrew": ScriptChars(
        letters=((0x5D0, 0x5EA), (0x5EF, 0x5F2), (0xFB1D, 0xFB4F)),
        marks=((0x591, 0x5BD), (0x5BF, 0x5BF), (0x5C1, 0x5C2), (0x5C4, 0x5C5), (0x5C7, 0x5C7)),
        punctuation="\u05be\u05f3\u05f4",
    ),
    "devanagari": ScriptChars(
        letters=((0x904, 0x939), (0x93D, 0x93D), (0x950, 0x950), (0x958, 0x961), (0x971, 0x97F)),
        marks=((0x900, 0x903), (0x93A, 0x93C), (0x93E, 0x94F), (0x951, 0x957), (0x962, 0x963)),
        digits=((0x966, 0x96F),),
        stops="\u0964\u0965",
    ),
    "thai": ScriptChars(
        letters=((0xE01, 0xE30), (0xE32, 0xE33), (0xE40, 0xE46)),
        marks=((0xE31, 0xE31), (0xE34, 0xE3A), (0xE47, 0xE4E)),
        digits=((0xE50, 0xE59),),
    ),
    "latin": ScriptChars(letters=_LATIN, marks=((0x300, 0x36F),)),
}

_DIGITS: Ranges = ((0x30, 0x39), (0xFF10, 0xFF19))
# Inside a sentence (ASCII, general, CJK and fullwidth forms). Not "." "!" "?": those end one.
_PUNCTUATION = (
    ",;:'\"()[]{}-/%&+*#@=<>_~^|\\$"
    "\u2013\u2014\u2018\u2019\u201c\u201d\u00ab\u00bb\u2026\u00b7\u2022\u00b0\u00a7"
    "\u3001\uff0c\uff1b\uff1a\uff08\uff09\u300c\u300d\u300e\u300f\u300a\u300b\u3008\u3009"
    "\u3010\u3011\u3014\u3015\u30fb\uff5e\uff05\uff0b\uff0d\uff0f\uff1d\uff20\uff03\uff06\uff0a"
)
_STOPS = ".!?\u3002\uff01\uff1f"
_CLOSING = "\"')]\u201d\u2019\u300d\u300f\uff09\u3011\u300b"  # after a sentence's end
_OPENING = "\"'([\u201c\u2018\u300c\u300e\uff08\u3010\u300a"  # before its first letter
_SPACE = " \u3000"
_LIST_MARKS = "-*\u2022"


def _escape(chars: str) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in chars)


def _ranges(ranges: Ranges) -> str:
    return "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges)


@dataclass(frozen=True, slots=True)
class _Classes:
    """The character classes of one script's grammar, as EBNF `[...]` bodies."""

    letters: str  # the script's letters: what a sentence starts with
    word: str  # letters and marks
    digits: str
    between: str  # digits, punctuation and spaces: what may stand between words
    stops: str

    @classmethod
    def of(cls, chars: ScriptChars) -> _Classes:
        digits = _ranges((*_DIGITS, *chars.digits))
        letters = _ranges(chars.letters)
        return cls(
            letters=letters,
            word=letters + _ranges(chars.marks),
            digits=digits,
            between=digits + _escape(_PUNCTUATION + chars.punctuation + _SPACE),
            stops=_escape(_STOPS + chars.stops),
        )


# The most digits, punctuation and spaces after a Latin run: enough for "1,234,567 (2024-01-15)",
# too few for a model to run on in numbers instead of words (the default model did, unbounded).
MAX_BETWEEN = 16


@cache
def script_grammar(script: str, *, complete: bool, continuation: bool = False) -> str | None:
    """The EBNF grammar (None: no table for this script; see the module docstring).

    `continuation`: the text goes on from a prompt's last words (/v1/generate), so its first
    sentence need not start with a letter; it keeps the rule on Latin runs.

    Written as a state machine, each rule ending in a choice of the next rule: xgrammar fills
    a token mask for that in about 0.05 ms, where the same language as one regular expression
    (nested repetitions) took 10-150 ms a token for a 49k vocabulary on 2 CPU cores. (For a
    Latin target the first token of a line or list item still takes 40-70 ms: most of the
    vocabulary could start one there, and xgrammar tries each.)
    """
    chars = SCRIPTS.get(script)
    if chars is None:
        return None
    c = _Classes.of(chars)
    end = "" if complete else ' | ""'  # may the text end mid-sentence
    space = f"[{_escape(_SPACE)}]*"
    body = f"[{c.word}{c.between}]* next"  # the rest of a sentence
    marker = (  # of a list item
        f"([{_escape(_LIST_MARKS)}] | [{c.digits}] [{c.digits}]? [{_escape('.)、')}]) "
        f"[{_escape(_SPACE)}]?"
    )
    rules = {
        "root": "inside" if continuation else f'("\\n" {space})? ("\\n" {space})? start',
        # The sentence's body is written out here rather than left to `inside`: xgrammar
        # decides a token within one rule from its cache, and a token crossing into the next
        # (" one" after a list marker) only by trying it: 20-50 ms for the whole vocabulary.
        "start": f"({marker})? [{_escape(_OPENING)}]? [{c.letters}] {body}",
        "inside": body,
        # A "." before a digit is a decimal point; else a sentence ends (stop).
        "next": f'"." [{c.digits}] inside | stop | newline{end}',
        "stop": f"[{c.stops}]+ [{_escape(_CLOSING)}]? {space} "
        f'(start | "\\n" {space} ("\\n" {space})? (start | "") | "")',
        "newline": f'"\\n" {space} ("\\n" {space})? start',
    }
    if script != "latin":
        word = f"[{_ranges(_LATIN)}] [{_ranges(((0x30, 0x39), *_LATIN))}{_escape(chr(39) + '-')}]*"
        rules["next"] += " | latin1"
        # Up to three Latin words, then a letter of the script before any other Latin word.
        rules["latin1"] = f'{word} (" " latin2 | after_latin)'
        rules["latin2"] = f'{word} (" " latin3 | after_latin)'
        rules["latin3"] = f"{word} after_latin"
        rules["after_latin"] = (
            f'[{c.between}]{{0,{MAX_BETWEEN}}} ("." [{c.digits}] after_latin '
            f"| [{c.letters}] inside | stop | newline{end})"
        )
    return "\n".join(f"{name} ::= {rule}" for name, rule in rules.items())


def script_constraint(
    script: str | None, *, complete: bool, continuation: bool = False
) -> StructuredOutput | None:
    """The constraint for text in `script` (None where there is no table for it)."""
    if not script:
        return None
    grammar = script_grammar(script, complete=complete, continuation=continuation)
    return None if grammar is None else StructuredOutput(grammar=grammar)
