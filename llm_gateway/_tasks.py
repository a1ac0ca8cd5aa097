"""`client.tasks`: typed methods for /v1/generate, /v1/summarize, /v1/classify, /v1/chat and
/v1/rerank.

Every call goes through the openai client's own `post()`, so retries with backoff (honouring
`Retry-After` on 429/503), timeouts, typed exceptions per status (`openai.BadRequestError`, ...,
with the request id) and the client's headers and auth apply exactly as they do to
`client.chat.completions.create`. The body holds only the fields the caller passed; the gateway
validates it, so a bad value is the server's 400 with its message, as with the openai SDK.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Unpack, overload

import openai
from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from llm_gateway._streaming import AsyncTaskStream, TaskStream
from llm_gateway.types import (
    CALL_OPTIONS,
    ChatParams,
    ChatResponse,
    ClassifyParams,
    ClassifyResponse,
    GenerateParams,
    GenerateResponse,
    RerankParams,
    RerankResponse,
    SummarizeParams,
    SummarizeResponse,
    TaskChunk,
    _WithRequestId,
)

if TYPE_CHECKING:
    from llm_gateway._client import AsyncClient, Client

M = TypeVar("M", bound=_WithRequestId)


def _split(params: Mapping[str, Any]) -> tuple[dict[str, Any], openai.RequestOptions]:
    """The JSON body (the fields given, models dumped) and the openai request options."""
    body = {k: to_jsonable_python(v) for k, v in params.items() if k not in CALL_OPTIONS}
    options: openai.RequestOptions = {}
    if params.get("extra_headers") is not None:
        options["headers"] = params["extra_headers"]
    if params.get("extra_query") is not None:
        options["params"] = params["extra_query"]
    if params.get("extra_body") is not None:
        options["extra_json"] = params["extra_body"]
    if "timeout" in params:
        options["timeout"] = params["timeout"]
    return body, options


def _parse(model: type[M], content: bytes, response: Any, request_id: str | None) -> M:
    try:
        result = model.model_validate_json(content)
    except ValidationError as err:
        raise openai.APIResponseValidationError(response, content, message=str(err)) from err
    result._request_id = request_id
    return result


class Tasks:
    """The task endpoints, on a `Client`: `client.tasks.generate(prompt=...)`, ..."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def _call(self, path: str, model: type[M], params: Mapping[str, Any]) -> M:
        body, options = _split(params)
        raw = self._client.post(
            path, body=body, options=options, cast_to=openai.APIResponse[object]
        )
        return _parse(model, raw.read(), raw.http_response, raw.request_id)

    def _stream(self, path: str, params: Mapping[str, Any]) -> TaskStream:
        body, options = _split(params)
        return self._client.post(
            path,
            body={**body, "stream": True},
            options=options,
            cast_to=TaskChunk,
            stream=True,
            stream_cls=TaskStream,
        )

    @overload
    def generate(
        self, *, stream: Literal[False] = False, **params: Unpack[GenerateParams]
    ) -> GenerateResponse: ...
    @overload
    def generate(
        self, *, stream: Literal[True], **params: Unpack[GenerateParams]
    ) -> TaskStream: ...
    @overload
    def generate(
        self, *, stream: bool, **params: Unpack[GenerateParams]
    ) -> GenerateResponse | TaskStream: ...
    def generate(
        self, *, stream: bool = False, **params: Unpack[GenerateParams]
    ) -> GenerateResponse | TaskStream:
        """`/v1/generate`: text from `prompt` (or a batch of `prompts`), Hugging Face style.

        With `stream=True`, a `TaskStream` of `TaskChunk`s (`results[k].delta`).
        """
        if stream:
            return self._stream("/generate", params)
        return self._call("/generate", GenerateResponse, params)

    def summarize(self, **params: Unpack[SummarizeParams]) -> SummarizeResponse:
        """`/v1/summarize`: a summary of `text` (or of each of `texts`), of any length."""
        return self._call("/summarize", SummarizeResponse, params)

    def classify(self, **params: Unpack[ClassifyParams]) -> ClassifyResponse:
        """`/v1/classify`: the best of `labels` (or a preset) for `text` (or each of `texts`)."""
        return self._call("/classify", ClassifyResponse, params)

    def rerank(self, **params: Unpack[RerankParams]) -> RerankResponse:
        """`/v1/rerank`: `documents` by relevance to `query`, best first (embedding model)."""
        return self._call("/rerank", RerankResponse, params)

    @overload
    def chat(
        self, *, stream: Literal[False] = False, **params: Unpack[ChatParams]
    ) -> ChatResponse: ...
    @overload
    def chat(self, *, stream: Literal[True], **params: Unpack[ChatParams]) -> TaskStream: ...
    @overload
    def chat(self, *, stream: bool, **params: Unpack[ChatParams]) -> ChatResponse | TaskStream: ...
    def chat(
        self, *, stream: bool = False, **params: Unpack[ChatParams]
    ) -> ChatResponse | TaskStream:
        """`/v1/chat`: the assistant's reply to `message` (with `history`) or to `messages`.

        With `stream=True`, a `TaskStream` of `TaskChunk`s (`results[0].delta`).
        """
        if stream:
            return self._stream("/chat", params)
        return self._call("/chat", ChatResponse, params)


class AsyncTasks:
    """The task endpoints, on an `AsyncClient`: `await client.tasks.generate(prompt=...)`, ..."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def _call(self, path: str, model: type[M], params: Mapping[str, Any]) -> M:
        body, options = _split(params)
        raw = await self._client.post(
            path, body=body, options=options, cast_to=openai.AsyncAPIResponse[object]
        )
        return _parse(model, await raw.read(), raw.http_response, raw.request_id)

    async def _stream(self, path: str, params: Mapping[str, Any]) -> AsyncTaskStream:
        body, options = _split(params)
        return await self._client.post(
            path,
            body={**body, "stream": True},
            options=options,
            cast_to=TaskChunk,
            stream=True,
            stream_cls=AsyncTaskStream,
        )

    @overload
    async def generate(
        self, *, stream: Literal[False] = False, **params: Unpack[GenerateParams]
    ) -> GenerateResponse: ...
    @overload
    async def generate(
        self, *, stream: Literal[True], **params: Unpack[GenerateParams]
    ) -> AsyncTaskStream: ...
    @overload
    async def generate(
        self, *, stream: bool, **params: Unpack[GenerateParams]
    ) -> GenerateResponse | AsyncTaskStream: ...
    async def generate(
        self, *, stream: bool = False, **params: Unpack[GenerateParams]
    ) -> GenerateResponse | AsyncTaskStream:
        """`/v1/generate`: text from `prompt` (or a batch of `prompts`), Hugging Face style.

        With `stream=True`, an `AsyncTaskStream` of `TaskChunk`s (`results[k].delta`).
        """
        if stream:
            return await self._stream("/generate", params)
        return await self._call("/generate", GenerateResponse, params)

    async def summarize(self, **params: Unpack[SummarizeParams]) -> SummarizeResponse:
        """`/v1/summarize`: a summary of `text` (or of each of `texts`), of any length."""
        return await self._call("/summarize", SummarizeResponse, params)

    async def classify(self, **params: Unpack[ClassifyParams]) -> ClassifyResponse:
        """`/v1/classify`: the best of `labels` (or a preset) for `text` (or each of `texts`)."""
        return await self._call("/classify", ClassifyResponse, params)

    async def rerank(self, **params: Unpack[RerankParams]) -> RerankResponse:
        """`/v1/rerank`: `documents` by relevance to `query`, best first (embedding model)."""
        return await self._call("/rerank", RerankResponse, params)

    @overload
    async def chat(
        self, *, stream: Literal[False] = False, **params: Unpack[ChatParams]
    ) -> ChatResponse: ...
    @overload
    async def chat(
        self, *, stream: Literal[True], **params: Unpack[ChatParams]
    ) -> AsyncTaskStream: ...
    @overload
    async def chat(
        self, *, stream: bool, **params: Unpack[ChatParams]
    ) -> ChatResponse | AsyncTaskStream: ...
    async def chat(
        self, *, stream: bool = False, **params: Unpack[ChatParams]
    ) -> ChatResponse | AsyncTaskStream:
        """`/v1/chat`: the assistant's reply to `message` (with `history`) or to `messages`.

        With `stream=True`, an `AsyncTaskStream` of `TaskChunk`s (`results[0].delta`).
        """
        if stream:
            return await self._stream("/chat", params)
        return await self._call("/chat", ChatResponse, params)
