"""`Client` and `AsyncClient`: the official openai clients, configured for the gateway, plus
`client.tasks`.

Everything of `openai.OpenAI` keeps working unchanged (`client.chat.completions.create`,
`client.completions.create`, `client.models.list`, `with_options`, `with_raw_response`, ...).
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any

import openai

from llm_gateway._tasks import AsyncTasks, Tasks

DEFAULT_BASE_URL = "http://localhost:8000/v1"
# The openai SDK refuses to build a client without a key; with the gateway's auth off any
# value will do, and with it on this one gets a clear 401 (invalid_api_key).
NO_API_KEY = "no-api-key"


def resolve_api_key(api_key: str | None = None) -> str:
    """`api_key`, else `LLM_GATEWAY_API_KEY`, else `OPENAI_API_KEY`, else a placeholder."""
    return (
        api_key
        or os.environ.get("LLM_GATEWAY_API_KEY")
        or os.environ.get("OPENAI_API_KEY")
        or NO_API_KEY
    )


def resolve_base_url(base_url: Any = None) -> Any:
    """`base_url`, else `LLM_GATEWAY_BASE_URL`, else `OPENAI_BASE_URL`, else localhost:8000."""
    return (
        base_url
        or os.environ.get("LLM_GATEWAY_BASE_URL")
        or os.environ.get("OPENAI_BASE_URL")
        or DEFAULT_BASE_URL
    )


class Client(openai.OpenAI):
    """`openai.OpenAI` for the gateway, with the task endpoints under `client.tasks`.

    `api_key` and `base_url` default to `LLM_GATEWAY_API_KEY` / `LLM_GATEWAY_BASE_URL`, then
    `OPENAI_API_KEY` / `OPENAI_BASE_URL`, then no key (auth off) and `http://localhost:8000/v1`.
    Every other argument is the openai client's: `timeout`, `max_retries` (default 2; 429 and
    503 are retried after their `Retry-After`), `default_headers`, `http_client`, ...
    """

    def __init__(self, *, api_key: str | None = None, base_url: Any = None, **kwargs: Any) -> None:
        super().__init__(
            api_key=resolve_api_key(api_key), base_url=resolve_base_url(base_url), **kwargs
        )

    @cached_property
    def tasks(self) -> Tasks:
        """`generate`, `summarize`, `classify` and `chat` (`/v1/generate`, ...)."""
        return Tasks(self)


class AsyncClient(openai.AsyncOpenAI):
    """`openai.AsyncOpenAI` for the gateway, with the task endpoints under `client.tasks`.

    Configured like `Client`.
    """

    def __init__(self, *, api_key: str | None = None, base_url: Any = None, **kwargs: Any) -> None:
        super().__init__(
            api_key=resolve_api_key(api_key), base_url=resolve_base_url(base_url), **kwargs
        )

    @cached_property
    def tasks(self) -> AsyncTasks:
        """`generate`, `summarize`, `classify` and `chat` (`/v1/generate`, ...)."""
        return AsyncTasks(self)
