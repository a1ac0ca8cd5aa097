"""/v1/conversations on the fake engine: create (items, metadata), retrieve, update, delete; items
listed (order, after, limit), added, retrieved, deleted; responses that read a conversation and
add their input and output to it; truncation; and the errors (unknown ids, another key's
conversations and items, bad metadata, too many items)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from service.engine.fake import FakeEngine
from tests.api.helpers import assert_openai_error, make_app, serve
from tests.conftest import FAKE_MODEL

CONVERSATIONS = "/v1/conversations"
RESPONSES = "/v1/responses"


def message(text: str, role: str = "user") -> dict[str, Any]:
    return {"type": "message", "role": role, "content": text}


def texts(items: list[dict[str, Any]]) -> list[str]:
    return ["".join(part["text"] for part in item["content"]) for item in items]


def prompt_of(engine: FakeEngine) -> str:
    return engine.tokenizer.decode(engine.requests[-1].prompt_token_ids)


async def new_conversation(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    created = await client.post(CONVERSATIONS, json=fields)
    assert created.status_code == 200, created.text
    made: dict[str, Any] = created.json()
    return made


async def test_create_retrieve_update_delete(client: httpx.AsyncClient) -> None:
    made = await new_conversation(client, metadata={"topic": "capitals"})
    assert made["id"].startswith("conv_") and made["object"] == "conversation"
    assert made["metadata"] == {"topic": "capitals"} and made["created_at"] > 0
    path = f"{CONVERSATIONS}/{made['id']}"
    assert (await client.get(path)).json() == made
    updated = (await client.post(path, json={"metadata": {"topic": "rivers"}})).json()
    assert updated == made | {"metadata": {"topic": "rivers"}}
    deleted = (await client.delete(path)).json()
    assert deleted == {"id": made["id"], "object": "conversation.deleted", "deleted": True}
    assert_openai_error(await client.get(path), 404, param="conversation_id", code="not_found")


async def test_items_are_listed_in_order_with_after_and_limit(client: httpx.AsyncClient) -> None:
    words = ["one", "two", "three", "four", "five"]
    made = await new_conversation(client, items=[message(w) for w in words])
    items = f"{CONVERSATIONS}/{made['id']}/items"
    newest_first = (await client.get(items)).json()
    assert newest_first["object"] == "list" and not newest_first["has_more"]
    assert texts(newest_first["data"]) == words[::-1]
    first_page = (await client.get(items, params={"order": "asc", "limit": 2})).json()
    assert texts(first_page["data"]) == ["one", "two"] and first_page["has_more"]
    assert first_page["first_id"] == first_page["data"][0]["id"]
    after = {"order": "asc", "limit": 2, "after": first_page["last_id"]}
    second_page = (await client.get(items, params=after)).json()
    assert texts(second_page["data"]) == ["three", "four"] and second_page["has_more"]
    item = newest_first["data"][0]
    assert item["type"] == "message" and item["status"] == "completed"
    assert item["content"] == [{"type": "input_text", "text": "five"}]
    assert item["id"].startswith("msg_")


async def test_items_are_added_retrieved_and_deleted(client: httpx.AsyncClient) -> None:
    made = await new_conversation(client)
    items = f"{CONVERSATIONS}/{made['id']}/items"
    call = {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"}
    added = await client.post(
        items,
        json={"items": [message("hi"), message("hello", "assistant"), call]},
    )
    assert added.status_code == 200, added.text
    data = added.json()["data"]
    assert [item["type"] for item in data] == ["message", "message", "function_call"]
    assert data[1]["content"][0]["type"] == "output_text"
    one = await client.get(f"{items}/{data[2]['id']}")
    assert one.json() == data[2]
    deleted = await client.delete(f"{items}/{data[0]['id']}")
    assert deleted.json()["id"] == made["id"]  # the conversation, as OpenAI answers
    left = (await client.get(items, params={"order": "asc"})).json()["data"]
    assert [item["id"] for item in left] == [data[1]["id"], data[2]["id"]]
    assert_openai_error(await client.get(f"{items}/{data[0]['id']}"), 404, param="item_id")


async def test_responses_read_the_conversation_and_add_to_it(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    made = await new_conversation(client, items=[message("My name is Ada.")])
    first = await client.post(
        RESPONSES,
        json={"model": FAKE_MODEL, "input": "What is my name?", "conversation": made["id"]},
    )
    assert first.status_code == 200, first.text
    assert first.json()["conversation"] == {"id": made["id"]}
    assert "My name is Ada." in prompt_of(fake_engine)
    second = await client.post(
        RESPONSES,
        json={"model": FAKE_MODEL, "input": "And again?", "conversation": {"id": made["id"]}},
    )
    assert second.status_code == 200, second.text
    prompt = prompt_of(fake_engine)
    assert "What is my name?" in prompt and "assistant: The capital of France is Paris." in prompt
    listed = (await client.get(f"{CONVERSATIONS}/{made['id']}/items?order=asc")).json()["data"]
    assert [(item["type"], item.get("role")) for item in listed] == [
        ("message", "user"),
        ("message", "user"),
        ("message", "assistant"),
        ("message", "user"),
        ("message", "assistant"),
    ]
    assert listed[2]["id"] == first.json()["output"][0]["id"]  # output items keep their ids


async def test_truncation_auto_drops_the_oldest_items_disabled_refuses(tmp_path: Path) -> None:
    engine = FakeEngine(max_model_len=64)
    async with serve(make_app(engine, data_dir=tmp_path, default_max_tokens=8)) as client:
        long_ago = message("oldest " + "word " * 30)
        made = await new_conversation(client, items=[long_ago, message("recent words")])
        ask = {"model": FAKE_MODEL, "input": "Now?", "conversation": made["id"]}
        assert (await client.post(RESPONSES, json=ask)).status_code == 200  # it fits: as is
        ask |= {"max_output_tokens": 30}  # now it does not
        refused = await client.post(RESPONSES, json=ask)
        assert_openai_error(refused, 400, code="context_length_exceeded")
        fitted = await client.post(RESPONSES, json=ask | {"truncation": "auto"})
        assert fitted.status_code == 200, fitted.text
        assert fitted.json()["truncation"] == "auto"
        prompt = prompt_of(engine)
        assert "oldest" not in prompt and "recent words" in prompt and "Now?" in prompt
        listed = (await client.get(f"{CONVERSATIONS}/{made['id']}/items")).json()["data"]
    assert len(listed) == 6  # truncation shortens the prompt, not the conversation
    alone = {"model": FAKE_MODEL, "input": "word " * 80, "truncation": "auto"}
    async with serve(make_app(FakeEngine(max_model_len=64), data_dir=tmp_path)) as client:
        too_long = await client.post(RESPONSES, json=alone)
    assert_openai_error(too_long, 400, code="context_length_exceeded")


async def test_a_fitting_conversation_is_not_truncated(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    made = await new_conversation(client, items=[message("first words")])
    ask = {"model": FAKE_MODEL, "input": "Now?", "conversation": made["id"], "truncation": "auto"}
    assert (await client.post(RESPONSES, json=ask)).status_code == 200
    assert "first words" in prompt_of(fake_engine)


async def test_another_keys_conversation_and_items_do_not_exist(fake_engine: FakeEngine) -> None:
    one, two = {"Authorization": "Bearer key-one"}, {"Authorization": "Bearer key-two"}
    async with serve(make_app(fake_engine, api_keys=["key-one", "key-two"])) as client:
        made = (
            await client.post(CONVERSATIONS, json={"items": [message("secret")]}, headers=one)
        ).json()
        path = f"{CONVERSATIONS}/{made['id']}"
        (item,) = (await client.get(f"{path}/items", headers=one)).json()["data"]
        for method, url, payload in (
            ("GET", path, None),
            ("POST", path, {"metadata": {}}),
            ("DELETE", path, None),
            ("GET", f"{path}/items", None),
            ("POST", f"{path}/items", {"items": [message("mine")]}),
            ("GET", f"{path}/items/{item['id']}", None),
            ("DELETE", f"{path}/items/{item['id']}", None),
        ):
            answer = await client.request(method, url, json=payload, headers=two)
            assert_openai_error(answer, 404, param="conversation_id")
        use = {"model": FAKE_MODEL, "input": "hi", "conversation": made["id"]}
        borrowed = await client.post(RESPONSES, json=use, headers=two)
        assert_openai_error(borrowed, 404, param="conversation")
        assert (await client.get(f"{path}/items", headers=one)).json()["data"] == [item]


BAD = [
    pytest.param({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", id="17-pairs"),
    pytest.param({"metadata": {"k" * 65: "v"}}, "metadata." + "k" * 65, id="long-key"),
    pytest.param({"metadata": {"k": "v" * 513}}, "metadata.k", id="long-value"),
    pytest.param({"items": [message("x")] * 21}, "items", id="21-items"),
    pytest.param({"items": [{"type": "web_search_call"}]}, "items.0", id="unknown-item"),
    pytest.param({"frobnicate": 1}, "frobnicate", id="unknown-field"),
]


@pytest.mark.parametrize(("payload", "param"), BAD)
async def test_bad_conversations_are_400s(
    client: httpx.AsyncClient, payload: dict[str, Any], param: str
) -> None:
    assert_openai_error(await client.post(CONVERSATIONS, json=payload), 400, param=param)


async def test_unknown_ids_and_bad_lists_are_4xx(client: httpx.AsyncClient) -> None:
    made = await new_conversation(client, items=[message("hi")])
    items = f"{CONVERSATIONS}/{made['id']}/items"
    for path in ("conv_unknown", "a%00b", "x" * 300):
        assert_openai_error(await client.get(f"{CONVERSATIONS}/{path}"), 404)
        assert_openai_error(await client.get(f"{CONVERSATIONS}/{path}/items"), 404)
    assert_openai_error(await client.get(f"{items}/msg_unknown"), 404, param="item_id")
    assert_openai_error(await client.get(items, params={"limit": 0}), 400, param="limit")
    assert_openai_error(await client.get(items, params={"limit": 101}), 400, param="limit")
    assert_openai_error(await client.get(items, params={"order": "up"}), 400, param="order")
    assert (await client.get(items, params={"after": "msg_unknown"})).json()["data"] == []
    empty = await client.post(items, json={"items": []})
    assert_openai_error(empty, 400, param="items")
