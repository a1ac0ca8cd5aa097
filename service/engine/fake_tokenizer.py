"""The fake engine's tokenizer (one token a word) and its stand-in for constrained decoding (a
small value that satisfies a JSON schema)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_SCALARS: dict[str, Any] = {"string": "Paris", "integer": 1, "number": 1, "boolean": True}


def example_of(schema: Any) -> Any:
    """A small value that satisfies a simple JSON schema: what a constrained engine might write.

    Covers what tool and response schemas use (objects, arrays, enums, anyOf, scalars); for
    anything else, `{"answer": "Paris"}`."""
    if not isinstance(schema, dict):
        return {"answer": "Paris"}
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    choices = schema.get("anyOf") or schema.get("oneOf")
    if choices:
        return example_of(choices[0])
    kind = schema.get("type")
    if kind == "array":
        return [example_of(schema.get("items", {})) for _ in range(schema.get("minItems", 1))]
    if kind in _SCALARS:
        return _SCALARS[kind]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: example_of(sub) for name, sub in props.items()}
    return {"answer": "Paris"}


class FakeTokenizer:
    """Whitespace 'tokenizer': each word (with its leading space) is one token id."""

    eos_token_id: int | None = 0

    def __init__(self) -> None:
        self._ids: dict[str, int] = {"<eos>": 0}
        self._words: list[str] = ["<eos>"]

    def _id(self, word: str) -> int:
        if word not in self._ids:
            self._ids[word] = len(self._words)
            self._words.append(word)
        return self._ids[word]

    def split(self, text: str) -> list[str]:
        words: list[str] = []
        for i, word in enumerate(text.split(" ")):
            if word:
                words.append(word if i == 0 and not words else " " + word)
        return words

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        return [self._id(w) for w in self.split(text)]

    def decode(self, token_ids: Sequence[int]) -> str:
        return "".join(self.token_text(t) for t in token_ids)

    def token_text(self, token_id: int) -> str:
        return self._words[token_id] if 0 < token_id < len(self._words) else ""

    chat_template: str | None = None

    def apply_chat_template(
        self,
        messages: list[dict[str, Any]],
        *,
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
        tools: list[dict[str, Any]] | None = None,
        chat_template: str | None = None,
    ) -> str:
        # No turn terminators: continuing the final message is ending the text after it.
        turns = [f"{m['role']}: {m.get('content') or ''}" for m in messages]
        if tools:
            turns.insert(0, "tools: " + " ".join(t["function"]["name"] for t in tools))
        return " ".join([*turns, "assistant:"] if add_generation_prompt else turns)
