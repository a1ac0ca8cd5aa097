"""One real vLLM engine for the whole session, served by a real uvicorn on loopback.

The server runs in a thread with its own event loop; tests reach it over HTTP with the official
`openai` client, sync and async, exactly as users do.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import openai
import pytest
import uvicorn

from service.app import create_app
from service.config import TEST_PROFILE, Settings
from service.state import EngineState

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
    state: EngineState = app.state.engine_state
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(
        target=lambda: loop.run_until_complete(server.serve(sockets=[sock])),
        name="live-server",
        daemon=True,
    )
    thread.start()
    # Start-up ends when the engine has produced its warm-up token (or failed).
    asyncio.run_coroutine_threadsafe(state.wait_started(), loop).result(timeout=900)
    if state.failure is not None:
        raise RuntimeError("the engine failed to start") from state.failure
    try:
        yield LiveServer(f"http://{host}:{port}", settings, state)
    finally:
        server.should_exit = True
        thread.join(timeout=120)
        sock.close()


@pytest.fixture(scope="session")
def sync_client(live_server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_server.base_url}/v1", api_key="unused", max_retries=0)


@pytest.fixture
def async_client(live_server: LiveServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"{live_server.base_url}/v1", api_key="unused", max_retries=0
    )
