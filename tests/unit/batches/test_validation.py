"""An input file's structure, checked before a batch runs: every problem named by its line, as
OpenAI's validation names them; good lines come out in order, in groups."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from service.batches.validation import check_input, lines_of, numbered_lines
from service.store.batches import INSERT_ROWS

CHAT = "/v1/chat/completions"


def request(custom_id: Any = "a", **fields: Any) -> dict[str, Any]:
    line = {"custom_id": custom_id, "method": "POST", "url": CHAT, "body": {"model": "m"}}
    line.update(fields)
    return {k: v for k, v in line.items() if v is not ...}


def jsonl(*lines: Any) -> bytes:
    return "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines).encode()


async def chunks(content: bytes, size: int = 7) -> AsyncIterator[bytes]:
    """As the store hands a file out: in pieces that split lines anywhere."""
    for start in range(0, len(content), size):
        yield content[start : start + size]


async def test_lines_are_numbered_across_pieces_and_blank_lines_are_skipped() -> None:
    content = b'{"a": 1}\n\n  \n{"b": 2}\r\n{"c": 3}'
    found = [(n, raw) async for n, raw in numbered_lines(chunks(content, 3))]
    assert [n for n, _ in found] == [1, 4, 5]
    assert [json.loads(raw) for _, raw in found] == [{"a": 1}, {"b": 2}, {"c": 3}]


@pytest.mark.parametrize(
    ("bad", "code", "param"),
    [
        pytest.param("{not json", "invalid_json_line", None, id="not-json"),
        pytest.param("[1, 2]", "invalid_json_line", None, id="not-an-object"),
        pytest.param(request(custom_id=...), "missing_custom_id", "custom_id", id="no-custom-id"),
        pytest.param(request(custom_id=""), "missing_custom_id", "custom_id", id="empty-custom-id"),
        pytest.param(request(custom_id=7), "invalid_custom_id", "custom_id", id="number-custom-id"),
        pytest.param(request(method="GET"), "invalid_method", "method", id="get"),
        pytest.param(request(method=...), "invalid_method", "method", id="no-method"),
        pytest.param(request(url="/v1/completions"), "mismatched_endpoint", "url", id="other-url"),
        pytest.param(request(body=...), "missing_body", "body", id="no-body"),
        pytest.param(request(body="hi"), "missing_body", "body", id="body-not-object"),
        pytest.param(
            request(body={"model": "m", "stream": True}),
            "streaming_unsupported",
            "body.stream",
            id="stream",
        ),
    ],
)
async def test_a_bad_line_is_named_by_its_number(bad: Any, code: str, param: str | None) -> None:
    content = jsonl(request("first"), "", bad, request("last"))
    check = await check_input(chunks(content), CHAT, max_lines=10)
    assert not check.ok
    assert [(e.line, e.code, e.param) for e in check.errors] == [(3, code, param)]
    assert check.lines == 2


async def test_a_repeated_custom_id_names_both_lines() -> None:
    content = jsonl(request("x"), request("y"), request("x"))
    check = await check_input(chunks(content), CHAT, max_lines=10)
    assert [(e.line, e.code) for e in check.errors] == [(3, "duplicate_custom_id")]
    assert "line 1" in check.errors[0].message


async def test_more_lines_than_allowed_fail_at_the_first_one_over() -> None:
    content = jsonl(*(request(f"r{i}") for i in range(4)))
    check = await check_input(chunks(content), CHAT, max_lines=3)
    assert [(e.line, e.code) for e in check.errors] == [(4, "too_many_requests")]


async def test_an_empty_file_is_an_error_without_a_line() -> None:
    check = await check_input(chunks(b"\n\n"), CHAT, max_lines=3)
    assert [(e.line, e.code) for e in check.errors] == [(None, "empty_file")]


async def test_stream_false_is_fine() -> None:
    content = jsonl(request(body={"model": "m", "stream": False}))
    assert (await check_input(chunks(content), CHAT, max_lines=3)).ok


async def test_good_lines_come_out_in_order_in_groups() -> None:
    count = INSERT_ROWS + 5
    content = jsonl(*(request(f"r{i}", body={"model": "m", "n": i}) for i in range(count)))
    groups = [group async for group in lines_of(chunks(content, 4096), CHAT, max_lines=count)]
    assert [len(group) for group in groups] == [INSERT_ROWS, 5]
    flat = [line for group in groups for line in group]
    assert [line.line for line in flat] == list(range(1, count + 1))
    assert flat[-1].custom_id == f"r{count - 1}" and flat[-1].body == {"model": "m", "n": count - 1}
