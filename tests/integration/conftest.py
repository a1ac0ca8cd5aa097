"""One real vLLM engine for the whole session, served by a real uvicorn on loopback.

Tests reach it over HTTP with the official `openai` client, sync and async, as users do.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import openai
import pytest

from service.app import create_app
from service.config import DEFAULT_MODEL, TEST_PROFILE, Settings
from service.runtime.engine_lifecycle import EngineState
from tests.servers import serve_in_thread

pytestmark = pytest.mark.engine


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    settings: Settings
    state: EngineState

    @property
    def model(self) -> str:
        return self.settings.model_name


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    settings = Settings(**TEST_PROFILE)
    app = create_app(settings)
    with serve_in_thread(app) as base_url:
        yield LiveServer(base_url, settings, app.state.gateway.engine_state)


@pytest.fixture(scope="session")
def sync_client(live_server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_server.base_url}/v1", api_key="unused", max_retries=0)


@pytest.fixture
def async_client(live_server: LiveServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"{live_server.base_url}/v1", api_key="unused", max_retries=0
    )


EMBEDDER = "smol-embed"


@pytest.fixture(scope="session")
def embedding_server() -> Iterator[LiveServer]:
    """Both engines in one process: the generation engine, then the pooling one (the default
    model again, served as `smol-embed`). Shared by every embedding and rerank test."""
    settings = Settings(
        **{**TEST_PROFILE, "embedding_model": DEFAULT_MODEL},
        embedding_served_model_name=EMBEDDER,
    )
    app = create_app(settings)
    with serve_in_thread(app) as base_url:
        yield LiveServer(base_url, settings, app.state.gateway.engine_state)


@pytest.fixture(scope="session")
def embedding_client(embedding_server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{embedding_server.base_url}/v1", api_key="unused", max_retries=0
    )
