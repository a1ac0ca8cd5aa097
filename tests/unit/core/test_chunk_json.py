"""A text slot writes the bytes the model's own dump writes, for every text."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import BaseModel, TypeAdapter

from service.services.core.chunk_json import TextSlot, json_string


class Piece(BaseModel):
    id: str
    text: str
    index: int = 0
    note: str | None = None


def dump(text: str) -> str:
    return Piece(id="chunk-1", text=text).model_dump_json()


TEXTS = [
    pytest.param(" Paris", id="word"),
    pytest.param("", id="empty"),
    pytest.param('say "hi"\\', id="quotes-backslash"),
    pytest.param("a\nb\r\tc\x00\x1f\x7f", id="controls"),
    pytest.param("café 東京 😀 \u2028\u2029", id="non-ascii"),
    pytest.param('","text":"', id="looks-like-json"),
]


def test_json_strings_are_pydantics_for_every_code_point() -> None:
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    assert json_string(every) == TypeAdapter(str).dump_json(every).decode()


@pytest.mark.parametrize("text", TEXTS)
def test_the_slot_writes_the_models_dump(text: str) -> None:
    assert TextSlot(dump)(text) == dump(text)


def test_a_slot_takes_one_dump_and_any_number_of_texts() -> None:
    slot = TextSlot(dump)
    assert [slot(t) for t in ("a", "b", "a")] == [dump("a"), dump("b"), dump("a")]


@pytest.mark.parametrize(
    "wrong",
    [
        pytest.param(lambda text: Piece(id="x", text="").model_dump_json(), id="text-missing"),
        pytest.param(lambda text: Piece(id=text, text=text).model_dump_json(), id="text-twice"),
    ],
)
def test_a_dump_must_hold_the_text_exactly_once(wrong: Callable[[str], str]) -> None:
    with pytest.raises(ValueError, match="exactly once"):
        TextSlot(wrong)


def test_a_lone_surrogate_fails_as_in_the_models_dump() -> None:
    with pytest.raises(ValueError):
        dump("a\ud800")
    with pytest.raises(ValueError):
        TextSlot(dump)("a\ud800")
