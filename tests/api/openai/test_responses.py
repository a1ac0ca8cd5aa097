"""/v1/responses on the fake engine: create, input items, json_schema output, function tools, the
stream's event sequence (named events, as OpenAI sends them), the store (previous_response_id,
GET, DELETE, the input items list, per API key, after a restart) and the errors, each a 4xx
naming the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.engine.fake import FakeEngine
from service.errors import EngineFailureError
from tests.api.helpers import (
    assert_openai_error,
    assert_rejected_before_the_engine,
    fails_mid_stream,
    make_app,
    serve,
    sse_named,
)
from tests.conftest import FAKE_MODEL

RESPONSES = "/v1/responses"
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
TOOLS = [{"type": "function", "name": "get_weather", "parameters": WEATHER}]


def body(**fields: Any) -> dict[str, Any]:
    return {"model": FAKE_MODEL, "input": "What is the capital of France?", **fields}


def prompt_of(engine: FakeEngine) -> str:
    return engine.tokenizer.decode(engine.requests[-1].prompt_token_ids)


def output_text(response: dict[str, Any]) -> str:
    return "".join(
        part["text"]
        for item in response["output"]
        if item["type"] == "message"
        for part in item["content"]
    )


async def test_create_answers_with_a_message(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    response = await client.post(
        RESPONSES, json=body(instructions="Be brief.", max_output_tokens=8)
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["id"].startswith("resp_") and answer["object"] == "response"
    assert answer["status"] in ("completed", "incomplete")
    assert "Paris" in output_text(answer)
    usage = answer["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    prompt = prompt_of(fake_engine)
    assert prompt.startswith("system: Be brief.") and "France?" in prompt
    assert fake_engine.requests[-1].options.max_tokens == 8


async def test_json_schema_output(client: httpx.AsyncClient) -> None:
    fmt = {"type": "json_schema", "name": "city", "schema": WEATHER, "strict": True}
    answer = (await client.post(RESPONSES, json=body(text={"format": fmt}))).json()
    assert json.loads(output_text(answer)) == {"city": "Paris"}
    assert answer["text"]["format"]["name"] == "city"


async def test_function_tools_give_function_call_items(client: httpx.AsyncClient) -> None:
    answer = (await client.post(RESPONSES, json=body(tools=TOOLS, tool_choice="required"))).json()
    (call,) = answer["output"]
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    assert call["call_id"].startswith("call_") and call["id"].startswith("fc_")
    assert json.loads(call["arguments"]) == {"city": "Paris"}


async def test_function_call_output_items_reach_the_prompt(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    items = [
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    ]
    response = await client.post(RESPONSES, json=body(input=items, tools=TOOLS))
    assert response.status_code == 200, response.text
    assert "tool: sunny" in prompt_of(fake_engine)


@pytest.mark.parametrize("tools", [False, True])
async def test_stream_sends_the_official_event_sequence(
    client: httpx.AsyncClient, tools: bool
) -> None:
    fields: dict[str, Any] = {"tools": TOOLS, "tool_choice": "required"} if tools else {}
    whole = (await client.post(RESPONSES, json=body(**fields))).json()
    events = sse_named((await client.post(RESPONSES, json=body(stream=True, **fields))).text)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    kinds = [e["type"] for e in events]
    if tools:
        middle = ["response.output_item.added", "response.function_call_arguments.delta"]
        end = ["response.function_call_arguments.done", "response.output_item.done"]
    else:
        middle = [
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
        ]
        end = [
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
        ]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[2 : 2 + len(middle)] == middle
    assert kinds[-1 - len(end) : -1] == end
    assert kinds[-1] in ("response.completed", "response.incomplete")
    final = events[-1]["response"]
    assert final["usage"]["output_tokens"] > 0
    if tools:
        deltas = "".join(e["delta"] for e in events if e["type"].endswith("arguments.delta"))
        assert deltas == final["output"][0]["arguments"] == whole["output"][0]["arguments"]
    else:
        deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        assert deltas == output_text(final) == output_text(whole)


async def test_an_error_mid_stream_is_an_error_event_and_nothing_is_kept() -> None:
    engine = fails_mid_stream(EngineFailureError("The engine failed."))
    async with serve(make_app(engine)) as client:
        streamed = await client.post(RESPONSES, json=body(stream=True))
        events = sse_named(streamed.text)
        made = events[0]["response"]["id"]
        kept = await client.get(f"{RESPONSES}/{made}")
    assert streamed.text.rstrip().splitlines()[-2] == "event: error"
    assert events[-1]["error"]["code"] == "engine_error"
    assert kept.status_code == 404


async def test_previous_response_id_continues_and_get_delete_work(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    first = (await client.post(RESPONSES, json=body(instructions="Old rules."))).json()
    second = await client.post(
        RESPONSES, json=body(input="And of Italy?", previous_response_id=first["id"])
    )
    assert second.status_code == 200, second.text
    prompt = prompt_of(fake_engine)
    assert "France?" in prompt and "assistant: " + output_text(first) in prompt
    assert "And of Italy?" in prompt and "Old rules." not in prompt  # instructions do not carry
    assert (await client.get(f"{RESPONSES}/{first['id']}")).json()["id"] == first["id"]
    deleted = await client.delete(f"{RESPONSES}/{first['id']}")
    assert deleted.json() == {"id": first["id"], "object": "response.deleted", "deleted": True}
    assert (await client.get(f"{RESPONSES}/{first['id']}")).status_code == 404


async def test_input_items_list_the_requests_own_items_in_pages(
    client: httpx.AsyncClient,
) -> None:
    items = [
        {"role": "developer", "content": "Answer in one word."},
        {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    ]
    made = (await client.post(RESPONSES, json=body(input=items, tools=TOOLS))).json()
    listed = f"{RESPONSES}/{made['id']}/input_items"
    newest_first = (await client.get(listed)).json()
    assert newest_first["object"] == "list" and not newest_first["has_more"]
    data = newest_first["data"]
    assert [item["type"] for item in data] == [
        "function_call_output",
        "function_call",
        "message",
        "message",
    ]
    assert data[0]["output"] == "sunny" and data[0]["call_id"] == "call_1"
    assert data[1]["name"] == "get_weather" and data[1]["arguments"] == "{}"
    assert data[2]["role"] == "user"
    assert data[2]["content"] == [{"type": "input_text", "text": "Weather in Paris?"}]
    assert data[3]["role"] == "developer"
    assert len({item["id"] for item in data}) == 4 and all(item["id"] for item in data)
    assert (newest_first["first_id"], newest_first["last_id"]) == (data[0]["id"], data[-1]["id"])
    first_page = (await client.get(listed, params={"order": "asc", "limit": 3})).json()
    assert [item["id"] for item in first_page["data"]] == [item["id"] for item in data[:0:-1]]
    assert first_page["has_more"]
    rest = await client.get(
        listed, params={"order": "asc", "limit": 3, "after": first_page["last_id"]}
    )
    assert [item["id"] for item in rest.json()["data"]] == [data[0]["id"]]
    assert not rest.json()["has_more"]
    assert (await client.get(listed, params={"after": "msg_unknown"})).json()["data"] == []
    assert_openai_error(await client.get(listed, params={"limit": 0}), 400, param="limit")
    assert_openai_error(await client.get(listed, params={"limit": 101}), 400, param="limit")
    assert_openai_error(await client.get(listed, params={"order": "up"}), 400, param="order")
    for unknown in ("resp_unknown", "a%00b", "x" * 300):
        assert_openai_error(await client.get(f"{RESPONSES}/{unknown}/input_items"), 404)


async def test_a_continuation_lists_only_its_own_input(client: httpx.AsyncClient) -> None:
    first = (await client.post(RESPONSES, json=body())).json()
    second = (
        await client.post(
            RESPONSES, json=body(input="And of Italy?", previous_response_id=first["id"])
        )
    ).json()
    (item,) = (await client.get(f"{RESPONSES}/{second['id']}/input_items")).json()["data"]
    assert item["role"] == "user"
    assert item["content"] == [{"type": "input_text", "text": "And of Italy?"}]
    (earlier,) = (await client.get(f"{RESPONSES}/{first['id']}/input_items")).json()["data"]
    assert earlier["content"][0]["text"] == "What is the capital of France?"


async def test_unstored_and_unknown_responses_are_404(
    client: httpx.AsyncClient, fake_engine: FakeEngine
) -> None:
    unstored = (await client.post(RESPONSES, json=body(store=False))).json()
    assert (await client.get(f"{RESPONSES}/{unstored['id']}")).status_code == 404
    await assert_rejected_before_the_engine(
        client,
        fake_engine,
        RESPONSES,
        body(previous_response_id="resp_nope"),
        404,
        param="previous_response_id",
        code="not_found",
    )


async def test_a_stored_response_is_visible_only_to_its_key(fake_engine: FakeEngine) -> None:
    async with serve(make_app(fake_engine, api_keys=["key-one", "key-two"])) as client:
        one = {"Authorization": "Bearer key-one"}
        two = {"Authorization": "Bearer key-two"}
        made = (await client.post(RESPONSES, json=body(), headers=one)).json()
        assert (await client.get(f"{RESPONSES}/{made['id']}", headers=one)).status_code == 200
        assert (await client.get(f"{RESPONSES}/{made['id']}", headers=two)).status_code == 404
        follow = body(previous_response_id=made["id"])
        assert (await client.post(RESPONSES, json=follow, headers=two)).status_code == 404
        assert (await client.delete(f"{RESPONSES}/{made['id']}", headers=two)).status_code == 404
        listed = f"{RESPONSES}/{made['id']}/input_items"
        assert (await client.get(listed, headers=one)).status_code == 200
        assert (await client.get(listed, headers=two)).status_code == 404


async def test_the_store_keeps_the_newest_entries(fake_engine: FakeEngine, tmp_path: Path) -> None:
    async with serve(make_app(fake_engine, response_store_entries=1, data_dir=tmp_path)) as client:
        first = (await client.post(RESPONSES, json=body())).json()
        second = (await client.post(RESPONSES, json=body())).json()
        assert (await client.get(f"{RESPONSES}/{first['id']}")).status_code == 404
        assert (await client.get(f"{RESPONSES}/{second['id']}")).status_code == 200


async def test_with_no_store_nothing_is_kept(fake_engine: FakeEngine, tmp_path: Path) -> None:
    async with serve(make_app(fake_engine, response_store_entries=0, data_dir=tmp_path)) as client:
        made = (await client.post(RESPONSES, json=body())).json()
        assert (await client.get(f"{RESPONSES}/{made['id']}")).status_code == 404
        refused = await client.post(RESPONSES, json=body(background=True))
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "background"


async def test_a_stored_response_outlives_a_restart(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    async with serve(make_app(fake_engine, data_dir=tmp_path)) as client:
        first = (await client.post(RESPONSES, json=body())).json()
    async with serve(make_app(FakeEngine(), data_dir=tmp_path)) as client:
        again = await client.get(f"{RESPONSES}/{first['id']}")
        listed = await client.get(f"{RESPONSES}/{first['id']}/input_items")
        follow = await client.post(RESPONSES, json=body(previous_response_id=first["id"]))
    assert again.json() == first
    assert follow.status_code == 200, follow.text
    assert listed.json()["data"][0]["content"][0]["text"] == "What is the capital of France?"


BAD = [
    pytest.param(
        body(tools=[{"type": "function", "name": "f", "parameters": {"type": 3}}]),
        400,
        "tools.0.parameters",
        id="invalid-parameters-schema",
    ),
    pytest.param(
        body(tools=TOOLS, tool_choice={"type": "function", "name": "nope"}),
        400,
        "tool_choice",
        id="named-unknown-function",
    ),
    pytest.param(
        body(input=[{"type": "function_call_output", "call_id": "call_x", "output": "1"}]),
        400,
        "input",
        id="output-without-call",
    ),
    pytest.param(body(model="other"), 404, "model", id="unknown-model"),
    pytest.param(body(tool_choice="required"), 400, "tool_choice", id="choice-without-tools"),
    pytest.param(body(tools=[{"type": "web_search"}]), 400, "tools.0.type", id="non-function-tool"),
    pytest.param(body(reasoning={"effort": "high"}), 400, "reasoning", id="unsupported-field"),
    pytest.param(body(background=True, store=False), 400, "background", id="background-unstored"),
    pytest.param(
        body(conversation="conv_1", previous_response_id="resp_1"),
        400,
        "conversation",
        id="conversation-and-previous",
    ),
    pytest.param(body(conversation="conv_nope"), 404, "conversation", id="unknown-conversation"),
    pytest.param(body(truncation="middle"), 400, "truncation", id="unknown-truncation"),
    pytest.param(body(frobnicate=1), 400, "frobnicate", id="unknown-field"),
]


@pytest.mark.parametrize(("request_body", "status", "param"), BAD)
async def test_bad_requests_name_the_field(
    client: httpx.AsyncClient,
    fake_engine: FakeEngine,
    request_body: dict[str, Any],
    status: int,
    param: str,
) -> None:
    await assert_rejected_before_the_engine(
        client, fake_engine, RESPONSES, request_body, status, param=param
    )
