"""One real vLLM engine for the whole session, served by a real uvicorn on loopback.

Tests reach it over HTTP with the official `openai` client, sync and async, as users do.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import openai
import pytest

from service.app import create_app
from service.config import DEFAULT_MODEL, TEST_PROFILE, Settings
from service.engine.base import Engine, EngineRequest, GenerationChunk
from service.runtime.engine_lifecycle import EngineState
from tests.processes import server_process
from tests.servers import loop_in_thread, serve_on

pytestmark = pytest.mark.engine


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    settings: Settings
    state: EngineState
    loop: asyncio.AbstractEventLoop  # the engine's: apps sharing the engine are served on it

    @property
    def model(self) -> str:
        return self.settings.model_name


class Borrowed:
    """The session's engine, lent to another app: everything but `shutdown` goes through, and
    engine request ids get a prefix (the other app's warm-up is also "warmup")."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def generate(self, request: EngineRequest, *, stream: bool) -> AsyncIterator[GenerationChunk]:
        unique = replace(request, request_id=f"{id(self)}-{request.request_id}")
        return self.engine.generate(unique, stream=stream)

    def shutdown(self) -> None:
        return None  # the session's engine outlives this app


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    settings = Settings(**TEST_PROFILE)
    app = create_app(settings)
    with loop_in_thread() as loop, serve_on(app, loop) as base_url:
        yield LiveServer(base_url, settings, app.state.gateway.engine_state, loop)


@pytest.fixture(scope="session")
def sync_client(live_server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_server.base_url}/v1", api_key="unused", max_retries=0)


@pytest.fixture
def async_client(live_server: LiveServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"{live_server.base_url}/v1", api_key="unused", max_retries=0
    )


EMBEDDER = "smol-embed"


@dataclass(frozen=True)
class ServerInProcess:
    """A `python -m service` process of a test's own (tests/processes.py)."""

    base_url: str
    model: str
    log: Path | None = None
    pid: int | None = None


@pytest.fixture(scope="session")
def embedding_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInProcess]:
    """Both engines in one process: the generation engine, then the pooling one (the default
    model again, served as `smol-embed`), both with their KV caches sized `auto`. Shared by
    every embedding and rerank test.

    A process of its own: an engine started in the test process would take over the `vllm:`
    metric families of the shared engine (vLLM's stat logger registers them anew at start)."""
    flags = (
        f"--embedding-model={DEFAULT_MODEL}",
        f"--embedding-served-model-name={EMBEDDER}",
        "--cpu-kvcache-space=auto",
    )
    with server_process(tmp_path_factory.mktemp("embedding"), *flags) as server:
        model = Settings(**TEST_PROFILE).model_name
        yield ServerInProcess(server.base_url, model, server.log, server.pid)


@pytest.fixture(scope="session")
def embedding_client(embedding_server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{embedding_server.base_url}/v1", api_key="unused", max_retries=0
    )
