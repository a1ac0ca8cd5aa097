"""API keys, in process on the fake engine: who is served, what is refused, and what is logged."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import openai
import pytest

from service.app import create_app
from service.config import Settings
from service.engine.fake import FakeEngine
from service.http.deps import CallerDep
from service.http.keys import KeyFileError
from tests.api.helpers import (
    AUTH,
    CHAT,
    KEY,
    OTHER_KEY,
    access_records,
    assert_openai_error,
    chat_body,
    engine_calls,
    everything_logged,
    fields_of,
    key_id,
    make_app,
    serve,
)
from tests.conftest import FAKE_MODEL


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-key"),
        pytest.param({"Authorization": "Bearer sk-wrong"}, id="wrong-key"),
        pytest.param({"Authorization": "Bearer "}, id="empty-key"),
        pytest.param({"Authorization": f"Basic {KEY}"}, id="not-bearer"),
        pytest.param({"Authorization": f"Bearer {KEY}x"}, id="key-plus-one"),
    ],
)
async def test_a_missing_or_wrong_key_is_a_401_before_the_engine(
    fake_engine: FakeEngine, headers: dict[str, str]
) -> None:
    app = make_app(fake_engine, api_keys=[KEY])
    async with serve(app) as http:
        response = await http.post(CHAT, json=chat_body(), headers=headers)
        assert_openai_error(response, 401, code="invalid_api_key")
        assert response.json()["error"]["type"] == "invalid_request_error"
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["x-request-id"]  # from the observability middleware
        assert KEY not in response.text
        response = await http.get("/v1/models", headers=headers)
        assert_openai_error(response, 401, code="invalid_api_key")
        metrics = (await http.get("/metrics")).text
    assert engine_calls(fake_engine) == 0
    # Answered before routing, yet counted under its route, not `unmatched`.
    assert (
        'gateway_requests_total{endpoint="/v1/chat/completions",method="POST",model="other",'
        'outcome="client_error",status="401"} 1.0' in metrics
    )


async def test_the_right_key_is_served(fake_engine: FakeEngine) -> None:
    app = make_app(fake_engine, api_keys=[OTHER_KEY, KEY])
    async with serve(app) as http:
        response = await http.post(CHAT, json=chat_body(), headers=AUTH)
        assert response.status_code == 200, response.text
        response = await http.post(
            CHAT, json=chat_body(), headers={"authorization": f"bearer  {OTHER_KEY} "}
        )
        assert response.status_code == 200, response.text
    assert engine_calls(fake_engine) == 2


async def test_the_openai_sdk_sends_its_key_as_we_expect(fake_engine: FakeEngine) -> None:
    app = make_app(fake_engine, api_keys=[KEY])
    async with serve(app) as http:
        client = openai.AsyncOpenAI(
            base_url="http://test/v1",
            api_key=KEY,
            http_client=http,  # type: ignore[arg-type]  # SDK types httpx2 only; accepts httpx too
            max_retries=0,
        )
        reply = await client.chat.completions.create(
            model=FAKE_MODEL, messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.choices[0].message.content
        wrong = openai.AsyncOpenAI(
            base_url="http://test/v1",
            api_key="sk-nope",
            http_client=http,  # type: ignore[arg-type]  # SDK types httpx2 only; accepts httpx too
            max_retries=0,
        )
        with pytest.raises(openai.AuthenticationError) as raised:
            await wrong.models.list()
        assert raised.value.code == "invalid_api_key"


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics", "/openapi.json", "/docs"])
async def test_probes_the_scrape_and_the_docs_need_no_key(
    fake_engine: FakeEngine, path: str
) -> None:
    app = make_app(fake_engine, api_keys=[KEY], requests_per_minute=1)
    async with serve(app) as http:
        for _ in range(3):  # and are not rate limited
            response = await http.get(path)
            assert response.status_code == 200, response.text


async def test_a_wrong_key_is_compared_with_every_stored_key_in_constant_time(
    fake_engine: FakeEngine, tmp_path: Path, compare_digest_calls: list[tuple[bytes, bytes]]
) -> None:
    file = tmp_path / "keys.toml"
    file.write_text('[[keys]]\nname = "a"\nkey = "sk-file-a"\n[[keys]]\nname = "b"\nkey = "sk-b"\n')
    app = make_app(fake_engine, api_keys=[KEY, OTHER_KEY], api_key_file=file)
    async with serve(app) as http:
        response = await http.get("/v1/models", headers={"Authorization": "Bearer sk-wrong"})
        assert response.status_code == 401
    stored = {hashlib.sha256(k).digest() for k in (KEY.encode(), OTHER_KEY.encode(), b"sk-file-a")}
    stored.add(hashlib.sha256(b"sk-b").digest())
    compared = compare_digest_calls
    assert len(compared) == 4
    assert {b for _, b in compared} == stored
    assert {a for a, _ in compared} == {hashlib.sha256(b"sk-wrong").digest()}


async def test_keys_never_reach_the_logs_but_their_hashed_id_does(
    fake_engine: FakeEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    file = tmp_path / "keys.toml"
    file.write_text(f'[[keys]]\nname = "team-a"\nkey = "{OTHER_KEY}"\n')
    app = make_app(fake_engine, api_keys=[KEY], api_key_file=file, log_prompts=True)
    caplog.set_level(logging.DEBUG)
    async with serve(app) as http:
        assert (await http.post(CHAT, json=chat_body(), headers=AUTH)).status_code == 200
        response = await http.post(
            CHAT, json=chat_body(stream=True), headers={"Authorization": f"Bearer {OTHER_KEY}"}
        )
        assert response.status_code == 200
        wrong = {"Authorization": f"Bearer {KEY}-almost"}
        assert (await http.post(CHAT, json=chat_body(), headers=wrong)).status_code == 401
    logged = everything_logged(caplog)
    assert KEY not in logged
    assert OTHER_KEY not in logged
    assert "Bearer" not in logged
    served, named, refused = access_records(caplog)
    assert fields_of(served)["key_id"] == key_id(KEY)
    assert "key_name" not in fields_of(served)
    assert (fields_of(named)["key_id"], fields_of(named)["key_name"]) == (
        key_id(OTHER_KEY),
        "team-a",
    )
    assert "key_id" not in fields_of(refused)  # not even the hash of a wrong key
    assert (fields_of(refused)["status"], fields_of(refused)["outcome"]) == (401, "client_error")


async def test_the_caller_carries_the_keys_priority_and_id(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    file = tmp_path / "keys.toml"
    file.write_text(
        f'[[keys]]\nname = "fast"\nkey = "{KEY}"\npriority = "high"\n'
        f'[[keys]]\nname = "slow"\nkey = "{OTHER_KEY}"\npriority = "low"\n'
        '[[keys]]\nname = "plain"\nkey = "sk-plain"\n'
    )
    app = make_app(fake_engine, api_key_file=file)

    @app.get("/whoami")
    async def whoami(caller: CallerDep) -> dict[str, Any]:
        return {"priority": caller.priority, "key_id": caller.key_id}

    async with serve(app) as http:
        for key, priority in ((KEY, -10), (OTHER_KEY, 10), ("sk-plain", 0)):
            response = await http.get("/whoami", headers={"Authorization": f"Bearer {key}"})
            assert response.json() == {"priority": priority, "key_id": key_id(key)}


def test_an_unusable_key_file_stops_the_start(tmp_path: Path) -> None:
    file = tmp_path / "keys.toml"
    file.write_text('[[keys]]\nname = "a"\nkey = "sk-a"\npriority = "urgent"\n')
    with pytest.raises(KeyFileError, match="priority must be one of"):
        create_app(Settings(engine="fake", api_key_file=file))
    with pytest.raises(KeyFileError, match="cannot be read"):
        create_app(Settings(engine="fake", api_key_file=tmp_path / "missing.toml"))
