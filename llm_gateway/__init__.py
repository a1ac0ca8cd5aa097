"""The gateway's Python client: the official openai SDK, plus typed task methods.

    from llm_gateway import Client

    client = Client()  # LLM_GATEWAY_BASE_URL / OPENAI_BASE_URL, else http://localhost:8000/v1
    client.chat.completions.create(model=..., messages=[...])  # the openai SDK, unchanged
    result = client.tasks.classify(text="I love it", labels="sentiment")
    print(result.results[0].label, result.request_id)

It needs neither vLLM, torch nor the server's web stack: only openai and pydantic, and the
request/response models of `service.schemas.tasks` (shared with the server).
"""

from __future__ import annotations

from openai import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)

from llm_gateway import types
from llm_gateway._client import DEFAULT_BASE_URL, AsyncClient, Client
from llm_gateway._streaming import AsyncTaskStream, StreamError, TaskStream
from llm_gateway._tasks import AsyncTasks, Tasks

__all__ = [
    "DEFAULT_BASE_URL",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncClient",
    "AsyncTaskStream",
    "AsyncTasks",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "StreamError",
    "TaskStream",
    "Tasks",
    "UnprocessableEntityError",
    "types",
]
