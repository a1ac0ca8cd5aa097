"""Health, readiness, model listing and client errors against the real server."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.engine


def test_health_ready_models(live_server: LiveServer, sync_client: openai.OpenAI) -> None:
    assert httpx.get(f"{live_server.base_url}/health").status_code == 200
    ready = httpx.get(f"{live_server.base_url}/ready")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}
    models = sync_client.models.list()
    assert [m.id for m in models.data] == [live_server.model]


def test_unknown_model(sync_client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        sync_client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.code == "model_not_found"


def test_context_too_long(sync_client: openai.OpenAI, live_server: LiveServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sync_client.completions.create(
            model=live_server.model, prompt="hello " * 100, max_tokens=2000
        )
    assert caught.value.code == "context_length_exceeded"
    assert "2048" in caught.value.message


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        pytest.param(
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": 5}}}]},
            "tools.0.function.parameters",
            id="tool-parameters-schema",
        ),
        pytest.param({"logprobs": True, "top_logprobs": 50}, "top_logprobs", id="top-logprobs"),
        pytest.param({"temperature": 5}, "temperature", id="temperature"),
        pytest.param({"frobnicate": 1}, "frobnicate", id="unknown-field"),
    ],
)
def test_bad_fields_name_the_param(
    sync_client: openai.OpenAI, live_server: LiveServer, extra: dict[str, object], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sync_client.chat.completions.create(
            model=live_server.model,
            messages=[{"role": "user", "content": "hi"}],
            extra_body=extra,
        )
    assert caught.value.param == param


@pytest.mark.parametrize(
    "messages",
    [
        pytest.param([{"role": "wizard", "content": "hi"}], id="unknown-role"),
        pytest.param([{"role": "user"}], id="user-without-content"),
    ],
)
def test_bad_messages(live_server: LiveServer, messages: list[dict[str, str]]) -> None:
    r = httpx.post(
        f"{live_server.base_url}/v1/chat/completions",
        json={"model": live_server.model, "messages": messages},
    )
    assert r.status_code == 400
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}
