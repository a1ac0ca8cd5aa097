"""Streams of task chunks: the openai SDK's own `Stream`/`AsyncStream`, typed to `TaskChunk`.

The SDK already parses the SSE framing (`data: {json}` ... `data: [DONE]`, keep-alive comments
skipped), closes the response, and raises `openai.APIError` for an in-band `{"error": {...}}`
event. The only addition: that error is re-raised as `StreamError`, which also carries the
request's id (the SDK gives `request_id` only to `APIStatusError`, and a stream's status is 200).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import openai

from llm_gateway.types import TaskChunk


class StreamError(openai.APIError):
    """An error the server sent after the stream had started (its HTTP status was already 200).

    `code`, `type` and `param` come from the server's error body, `message` is its message.
    """

    request_id: str | None

    def __init__(self, error: openai.APIError, *, request_id: str | None) -> None:
        super().__init__(error.message, error.request, body=error.body)
        self.request_id = request_id


class TaskStream(openai.Stream[TaskChunk]):
    """Iterate for `TaskChunk`s; use as a context manager (or read to the end) to free the
    connection. The last chunk before the end carries `usage`."""

    @property
    def request_id(self) -> str | None:
        return self.response.headers.get("x-request-id")

    def __stream__(self) -> Iterator[TaskChunk]:
        try:
            yield from super().__stream__()
        except openai.APIError as err:
            if type(err) is not openai.APIError:
                raise  # a connection or timeout error, not the server's error event
            raise StreamError(err, request_id=self.request_id) from err


class AsyncTaskStream(openai.AsyncStream[TaskChunk]):
    """`TaskStream` for `async for`; use `async with` (or read to the end)."""

    @property
    def request_id(self) -> str | None:
        return self.response.headers.get("x-request-id")

    async def __stream__(self) -> AsyncIterator[TaskChunk]:
        try:
            async for chunk in super().__stream__():
                yield chunk
        except openai.APIError as err:
            if type(err) is not openai.APIError:
                raise
            raise StreamError(err, request_id=self.request_id) from err
