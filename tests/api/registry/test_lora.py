"""LoRA adapters on the fake engine: selection by `model`, /v1/models, runtime load/unload,
admin-only keys (the real engine: tests/integration/test_lora.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from service.config import Settings
from service.engine.fake import DEFAULT_REPLY, FakeEngine
from tests.api.helpers import CHAT, assert_openai_error, chat_body, make_app, serve
from tests.conftest import FAKE_MODEL

LOAD = "/v1/load_lora_adapter"
UNLOAD = "/v1/unload_lora_adapter"


def reply(body: dict[str, Any]) -> str:
    content: str = body["choices"][0]["message"]["content"]
    return content


async def test_a_start_time_adapter_is_listed_and_selected_by_model(tmp_path: Path) -> None:
    app = make_app(FakeEngine(), lora_modules=[f"sql={tmp_path}"], default_max_tokens=64)
    async with serve(app) as client:
        models = (await client.get("/v1/models")).json()["data"]
        adapted = await client.post(CHAT, json={**chat_body(), "model": "sql"})
        base = await client.post(CHAT, json=chat_body())
        unknown = await client.post(CHAT, json={**chat_body(), "model": "nope"})
        task = await client.post("/v1/generate", json={"model": "sql", "prompt": "hi"})
    assert [(m["id"], m["parent"]) for m in models] == [(FAKE_MODEL, None), ("sql", FAKE_MODEL)]
    assert adapted.json()["model"] == "sql"
    assert reply(adapted.json()).startswith("sql:")
    assert reply(base.json()) == DEFAULT_REPLY
    assert_openai_error(unknown, 404, param="model", code="model_not_found")
    assert task.json()["model"] == "sql"
    assert task.json()["results"][0]["generations"][0]["text"].startswith("sql:")


async def test_an_adapter_that_fails_to_load_at_start_fails_the_start(tmp_path: Path) -> None:
    app = make_app(FakeEngine(), lora_modules=[f"gone={tmp_path / 'missing'}"])
    async with serve(app) as client:
        assert_openai_error(await client.get("/ready"), 503, code="engine_dead")


async def test_runtime_updates_are_off_unless_enabled(tmp_path: Path) -> None:
    async with serve(make_app(FakeEngine())) as client:
        response = await client.post(LOAD, json={"lora_name": "a", "lora_path": str(tmp_path)})
    assert_openai_error(response, 404, code="not_found")


async def test_load_use_unload_and_a_failed_load_leaves_the_server_serving(
    tmp_path: Path,
) -> None:
    app = make_app(FakeEngine(), enable_lora_runtime_updates=True)
    async with serve(app) as client:
        bad = await client.post(LOAD, json={"lora_name": "x", "lora_path": str(tmp_path / "no")})
        loaded = await client.post(LOAD, json={"lora_name": "x", "lora_path": str(tmp_path)})
        used = await client.post(CHAT, json={**chat_body(), "model": "x"})
        unloaded = await client.post(UNLOAD, json={"lora_name": "x"})
        after = await client.post(CHAT, json={**chat_body(), "model": "x"})
        again = await client.post(UNLOAD, json={"lora_name": "x"})
        base = await client.post(CHAT, json=chat_body())
    assert_openai_error(bad, 400, param="lora_path")
    assert loaded.json() == {"status": "loaded", "lora_name": "x"}
    assert reply(used.json()).startswith("x:")
    assert unloaded.status_code == 200
    assert_openai_error(after, 404, param="model")
    assert_openai_error(again, 404, param="lora_name")
    assert base.status_code == 200


@pytest.mark.parametrize("name", [FAKE_MODEL, ""])
async def test_an_adapter_may_not_take_a_served_name(tmp_path: Path, name: str) -> None:
    app = make_app(FakeEngine(), enable_lora_runtime_updates=True)
    async with serve(app) as client:
        response = await client.post(LOAD, json={"lora_name": name, "lora_path": str(tmp_path)})
    assert_openai_error(response, 400, param="lora_name")


async def test_with_keys_on_only_admin_keys_may_load(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(
        '[[keys]]\nname = "ops"\nkey = "sk-admin-0123456789"\nadmin = true\n'
        '[[keys]]\nname = "app"\nkey = "sk-user-0123456789"\n'
    )
    app = make_app(FakeEngine(), enable_lora_runtime_updates=True, api_key_file=keys)
    body = {"lora_name": "a", "lora_path": str(tmp_path)}
    async with serve(app) as client:
        user = await client.post(
            LOAD, json=body, headers={"authorization": "Bearer sk-user-0123456789"}
        )
        admin = await client.post(
            LOAD, json=body, headers={"authorization": "Bearer sk-admin-0123456789"}
        )
        used = await client.post(
            CHAT,
            json={**chat_body(), "model": "a"},
            headers={"authorization": "Bearer sk-user-0123456789"},
        )
    assert_openai_error(user, 403, code="permission_denied")
    assert admin.status_code == 200
    assert used.status_code == 200


def test_lora_modules_are_name_equals_path() -> None:
    settings = Settings(lora_modules="a=/x, b=/y")
    assert settings.lora_adapters == {"a": "/x", "b": "/y"}
    assert settings.enable_lora
    for bad in (["a"], ["=/x"], ["a=/x", "a=/y"]):
        with pytest.raises(ValidationError, match="lora_modules"):
            Settings(lora_modules=bad)


async def test_the_model_label_is_the_served_name_or_other(tmp_path: Path) -> None:
    app = make_app(FakeEngine(), lora_modules=[f"sql={tmp_path}"])
    async with serve(app) as client:
        await client.post(CHAT, json={**chat_body(), "model": "sql"})
        await client.post(CHAT, json=chat_body())
        await client.post(CHAT, json={**chat_body(), "model": "made-up-name"})
        metrics = (await client.get("/metrics")).text
    requests = [line for line in metrics.splitlines() if line.startswith("gateway_requests_total")]
    chat = [line for line in requests if 'endpoint="/v1/chat/completions"' in line]
    assert any('model="sql"' in line and 'status="200"' in line for line in chat)
    assert any(f'model="{FAKE_MODEL}"' in line and 'status="200"' in line for line in chat)
    assert any('model="other"' in line and 'status="404"' in line for line in chat)
    assert "made-up-name" not in metrics  # an unknown name never becomes a label
    tokens = [line for line in metrics.splitlines() if line.startswith("gateway_prompt_tokens")]
    assert any('model="sql"' in line for line in tokens)
