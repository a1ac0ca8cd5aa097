"""Stream chunks that differ only in one string, serialized without a model per event.

Most of a stream's events are the same chunk with another piece of text in it. `TextSlot` has
the surface's own model dump that chunk once, with a marker where the text goes, and keeps the
JSON before and after it; an event is then those two around the text's JSON string. Python's
JSON string encoding (non-ASCII kept) writes every code point as pydantic does, so the bytes are
the model's (`tests/unit/services/test_chunk_json.py` checks every code point, and each surface's
tests the fast events against the model path). A text pydantic refuses (a lone surrogate) is
refused here too, where the model would have been dumped: the stream ends with the same error.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable

# A JSON string, as pydantic writes one (`model_dump_json`: UTF-8, nothing escaped past ASCII).
json_string: Callable[[str], str] = json.JSONEncoder(ensure_ascii=False).encode

# Stands where the text goes in the dump the slot is cut from; no id or model name holds it.
_MARKER = f"text-slot-{secrets.token_hex(16)}"


class TextSlot:
    """A chunk's JSON with one string left open: `slot(text)` is the JSON `dump(text)` gives."""

    __slots__ = ("_prefix", "_suffix")

    def __init__(self, dump: Callable[[str], str]) -> None:
        marker = json_string(_MARKER)
        prefix, found, suffix = dump(_MARKER).partition(marker)
        if not found or marker in suffix:
            raise ValueError("the dump must hold the text exactly once")
        self._prefix = prefix
        self._suffix = suffix

    def __call__(self, text: str) -> str:
        if not text.isascii():
            text.encode()  # a lone surrogate fails here (a ValueError), as in the model's dump
        return self._prefix + json_string(text) + self._suffix
