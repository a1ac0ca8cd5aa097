"""Reasoning output on /v1/chat/completions, on a fake engine that thinks aloud: with a reasoning
parser the thought goes to `message.reasoning` / `delta.reasoning` and the rest to `content`;
reasoning sent back on input messages is accepted."""

from __future__ import annotations

from collections.abc import Sequence

from service.engine.base import ParsedDelta
from service.engine.fake import FakeEngine
from tests.api.helpers import CHAT, chat_body, make_app, serve, sse_json

THOUGHT = "<think> The capital is Paris. </think> Paris."


class ThinkTags:
    """A `<think>...</think>` reader with the ReasoningParser protocol (vLLM's are unit-tested
    in tests/unit/engine/test_vllm_parsers.py)."""

    def __init__(self) -> None:
        self.text = ""

    def extract(self, text: str) -> tuple[str | None, str | None]:
        head, _, tail = text.partition("</think>")
        return head.replace("<think>", "").strip() or None, tail.strip() or None

    def extract_streaming(self, delta_text: str, delta_ids: Sequence[int]) -> ParsedDelta | None:
        inside = "</think>" not in self.text
        self.text += delta_text
        if delta_text.strip() in ("<think>", "</think>"):
            return None
        return ParsedDelta(reasoning=delta_text) if inside else ParsedDelta(content=delta_text)


async def test_reasoning_is_split_from_content_whole_and_streamed() -> None:
    engine = FakeEngine(reply=THOUGHT, reasoning=ThinkTags)
    async with serve(make_app(engine, reasoning_parser="deepseek_r1")) as client:
        whole = (await client.post(CHAT, json=chat_body())).json()
        streamed = sse_json((await client.post(CHAT, json=chat_body(stream=True))).text)
    message = whole["choices"][0]["message"]
    assert message["reasoning"] == "The capital is Paris."
    assert message["content"] == "Paris."
    deltas = [c["choices"][0]["delta"] for c in streamed if c["choices"]]
    reasoning = "".join(d.get("reasoning") or "" for d in deltas)
    content = "".join(d.get("content") or "" for d in deltas)
    assert reasoning.strip() == "The capital is Paris."
    assert content.strip() == "Paris."


async def test_without_a_parser_the_thought_stays_in_content() -> None:
    engine = FakeEngine(reply=THOUGHT, reasoning=ThinkTags)
    async with serve(make_app(engine)) as client:
        message = (await client.post(CHAT, json=chat_body())).json()["choices"][0]["message"]
    assert "reasoning" not in message and message["content"] == THOUGHT


async def test_reasoning_on_input_messages_is_accepted() -> None:
    history = [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris.", "reasoning_content": "Easy."},
        {"role": "assistant", "content": "Paris.", "reasoning": "Still easy."},
        {"role": "user", "content": "And Italy?"},
    ]
    engine = FakeEngine()
    async with serve(make_app(engine)) as client:
        response = await client.post(CHAT, json=chat_body() | {"messages": history})
    assert response.status_code == 200, response.text
    assert "Easy." not in engine.tokenizer.decode(engine.requests[-1].prompt_token_ids)


async def test_include_reasoning_false_leaves_the_reasoning_out() -> None:
    """vLLM's `include_reasoning: false`: the parser still splits the thought from the answer,
    and the thought is not sent."""
    engine = FakeEngine(reply=THOUGHT, reasoning=ThinkTags)
    quiet = chat_body(include_reasoning=False)
    async with serve(make_app(engine, reasoning_parser="deepseek_r1")) as client:
        whole = (await client.post(CHAT, json=quiet)).json()
        streamed = sse_json((await client.post(CHAT, json=quiet | {"stream": True})).text)
    message = whole["choices"][0]["message"]
    assert "reasoning" not in message and message["content"] == "Paris."
    deltas = [c["choices"][0]["delta"] for c in streamed if c["choices"]]
    assert not any("reasoning" in delta for delta in deltas)
    assert "".join(d.get("content") or "" for d in deltas).strip() == "Paris."
