"""A batch's input file, checked line by line as OpenAI checks it, before anything runs.

Each line of the JSONL file is one request: `{"custom_id", "method": "POST", "url", "body"}`.
A line that is not a JSON object, a missing or repeated `custom_id`, a method other than POST,
a `url` other than the batch's endpoint, a missing `body`, `stream: true` in it, or more lines
than `batch_max_lines`: the batch fails with `errors` naming each line (the first
`MAX_ERRORS`). What a body holds is the endpoint's to judge when the line runs (a bad value is
that line's 4xx in the error file, as the endpoint would answer it).

The file is read as a stream, twice: once to check it, once to copy its lines into the batch
(`lines_of`), so a 100 MB file is never held whole in memory.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from service.store.batches import INSERT_ROWS, NewLine

MAX_ERRORS = 100  # errors kept in a failed batch's `errors`
MAX_CUSTOM_ID = 512  # characters (the column's width)


@dataclass(frozen=True, slots=True)
class LineError:
    line: int | None
    code: str
    message: str
    param: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "param": self.param, "line": self.line}


@dataclass(slots=True)
class InputCheck:
    errors: list[LineError] = field(default_factory=list)
    lines: int = 0  # requests found

    @property
    def ok(self) -> bool:
        return not self.errors


async def numbered_lines(chunks: AsyncIterable[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    """(line number from 1, its bytes) of a stream, blank lines left out."""
    number, tail = 0, b""
    async for chunk in chunks:
        pieces = (tail + chunk).split(b"\n")
        tail = pieces.pop()
        for piece in pieces:
            number += 1
            if piece.strip():
                yield number, piece
    if tail.strip():
        yield number + 1, tail


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _problem(request: dict[str, Any], number: int, endpoint: str) -> LineError | None:
    """What is wrong with one parsed line, or None."""
    custom_id = request.get("custom_id")
    if custom_id is None or custom_id == "":
        return LineError(number, "missing_custom_id", "The line has no custom_id.", "custom_id")
    if not isinstance(custom_id, str) or len(custom_id) > MAX_CUSTOM_ID:
        message = f"custom_id must be a string of at most {MAX_CUSTOM_ID} characters."
        return LineError(number, "invalid_custom_id", message, "custom_id")
    if request.get("method") != "POST":
        return LineError(number, "invalid_method", "method must be POST.", "method")
    if request.get("url") != endpoint:
        message = f"url must be the batch's endpoint, {endpoint}."
        return LineError(number, "mismatched_endpoint", message, "url")
    body = request.get("body")
    if not isinstance(body, dict):
        return LineError(number, "missing_body", "The line has no body object.", "body")
    if body.get("stream") is True:
        message = "A batch cannot stream: stream must be false or absent."
        return LineError(number, "streaming_unsupported", message, "body.stream")
    return None


async def requests(
    chunks: AsyncIterable[bytes], endpoint: str, max_lines: int
) -> AsyncIterator[NewLine | LineError]:
    """Each line of the file as a request to run, or what is wrong with it."""
    seen: dict[str, int] = {}
    count = 0
    async for number, raw in numbered_lines(chunks):
        count += 1
        if count > max_lines:
            message = f"The file has more than {max_lines} requests."
            yield LineError(number, "too_many_requests", message)
            return
        request = _parse(raw)
        if request is None:
            yield LineError(number, "invalid_json_line", "The line is not a JSON object.")
            continue
        problem = _problem(request, number, endpoint)
        if problem is not None:
            yield problem
            continue
        custom_id: str = request["custom_id"]
        if custom_id in seen:
            message = f"custom_id {custom_id!r} is already the custom_id of line {seen[custom_id]}."
            yield LineError(number, "duplicate_custom_id", message, "custom_id")
            continue
        seen[custom_id] = number
        yield NewLine(number, custom_id, request["body"])


async def check_input(chunks: AsyncIterable[bytes], endpoint: str, max_lines: int) -> InputCheck:
    """Every line's problem (the first `MAX_ERRORS`), and how many requests the file has."""
    check = InputCheck()
    async for item in requests(chunks, endpoint, max_lines):
        if isinstance(item, LineError):
            if len(check.errors) < MAX_ERRORS:
                check.errors.append(item)
        else:
            check.lines += 1
    if check.ok and check.lines == 0:
        check.errors.append(LineError(None, "empty_file", "The input file has no requests."))
    return check


async def lines_of(
    chunks: AsyncIterable[bytes], endpoint: str, max_lines: int
) -> AsyncIterator[list[NewLine]]:
    """The requests of a checked file, in groups of `INSERT_ROWS`."""
    group: list[NewLine] = []
    async for item in requests(chunks, endpoint, max_lines):
        if isinstance(item, NewLine):
            group.append(item)
            if len(group) == INSERT_ROWS:
                yield group
                group = []
    if group:
        yield group
