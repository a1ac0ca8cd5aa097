"""A real gateway on the fake engine, served by uvicorn on loopback, for the client SDK's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from llm_gateway import AsyncClient, Client
from service.app import create_app
from service.config import Settings
from service.engine.fake import FakeEngine
from service.engine.fake_embeddings import FakeEmbeddingEngine
from tests.conftest import FAKE_MODEL
from tests.servers import serve_in_thread


@dataclass(frozen=True)
class FakeGateway:
    base_url: str  # ends in /v1, as clients take it
    engine: FakeEngine


@pytest.fixture(scope="module")
def gateway() -> Iterator[FakeGateway]:
    engine = FakeEngine(max_model_len=1024)
    settings = Settings(
        model=FAKE_MODEL,
        embedding_model=FAKE_MODEL,
        default_max_tokens=16,
        sse_keepalive_seconds=5,
    )
    app = create_app(settings, engine_factory=lambda: engine, embedding_factory=FakeEmbeddingEngine)
    with serve_in_thread(app, startup_timeout=60) as url:
        yield FakeGateway(f"{url}/v1", engine)


@pytest.fixture(autouse=True)
def _healthy_engine(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests that break the module's engine get it back in working order."""
    yield
    if "gateway" in request.fixturenames:
        engine: FakeEngine = request.getfixturevalue("gateway").engine
        engine.fail_with = None
        engine.open_gate()
        engine.gate = None


@pytest.fixture
def client(gateway: FakeGateway) -> Iterator[Client]:
    with Client(base_url=gateway.base_url, max_retries=0) as client:
        yield client


@pytest.fixture
async def async_client(gateway: FakeGateway) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(base_url=gateway.base_url, max_retries=0) as client:
        yield client
