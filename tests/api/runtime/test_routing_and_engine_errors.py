"""Errors that are not about the request body: unknown paths and methods (404, 405), and engine
failures (500, 503), as OpenAI error bodies that leak nothing of the server."""

from __future__ import annotations

import httpx
import pytest

from service.app import create_app
from service.config import Settings
from service.engine.fake import FakeEngine
from service.errors import EngineFailureError, EngineUnavailableError
from tests.api.helpers import (
    CHAT,
    COMPLETIONS,
    ENDPOINTS,
    assert_openai_error,
    body_for,
    completion_body,
    serve,
)


async def test_unknown_path_is_an_openai_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/no-such-thing")
    assert_openai_error(response, 404, code="not_found")


async def test_wrong_method_is_an_openai_405(client: httpx.AsyncClient) -> None:
    response = await client.get(CHAT)
    assert_openai_error(response, 405, code="method_not_allowed")
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_an_unexpected_engine_error_is_a_500_without_details(
    settings: Settings, fake_engine: FakeEngine, path: str
) -> None:
    app = create_app(settings, engine_factory=lambda: fake_engine)
    # Starlette re-raises after answering (so the server logs it); the client sees the 500.
    async with serve(app, raise_app_exceptions=False) as client:
        fake_engine.fail_with = RuntimeError("boom in /srv/model.py")
        response = await client.post(path, json=body_for(path))
    error = assert_openai_error(response, 500)
    assert error["type"] == "server_error"
    for leak in ("boom", "Traceback", "/srv/model.py", "RuntimeError"):
        assert leak not in response.text


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        pytest.param(
            EngineFailureError("The engine failed to process the request."),
            500,
            "engine_error",
            id="engine-failure",
        ),
        pytest.param(
            EngineUnavailableError("The engine has stopped."),
            503,
            "engine_unavailable",
            id="engine-unavailable",
        ),
    ],
)
async def test_engine_errors_keep_their_status_and_message(
    client: httpx.AsyncClient,
    fake_engine: FakeEngine,
    failure: EngineFailureError | EngineUnavailableError,
    status: int,
    code: str,
) -> None:
    fake_engine.fail_with = failure
    response = await client.post(COMPLETIONS, json=completion_body(prompt=["a", "b"]))
    error = assert_openai_error(response, status, code=code)
    assert error["message"] == failure.message
    assert ("retry-after" in response.headers) == (status == 503)
