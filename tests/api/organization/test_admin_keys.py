"""API keys managed at runtime, in process on the fake engine, with the openai SDK's admin
client: made, used at once, listed, changed, revoked; refused for plain keys, bad input and
while authentication is off."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from service.engine.fake import FakeEngine
from tests.api.helpers import CHAT, assert_openai_error, chat_body, make_app, serve

ADMIN_KEY = "sk-root-admin-77"
PLAIN_KEY = "sk-plain-team-12"
KEYS_PATH = "/v1/organization/admin_api_keys"


def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.toml"
    path.write_text(
        f'[[keys]]\nname = "root"\nkey = "{ADMIN_KEY}"\nadmin = true\n'
        f'[[keys]]\nname = "plain"\nkey = "{PLAIN_KEY}"\n'
    )
    return path


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def admin_client(http: httpx.AsyncClient) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url="http://test/v1",
        api_key="unused",
        admin_api_key=ADMIN_KEY,
        http_client=http,  # type: ignore[arg-type]  # SDK types httpx2 only; accepts httpx too
        max_retries=0,
    )


def app_for(fake_engine: FakeEngine, tmp_path: Path, **settings: Any) -> Any:
    return make_app(
        fake_engine, api_key_file=key_file(tmp_path), data_dir=tmp_path / "data", **settings
    )


async def test_a_key_made_at_runtime_works_at_once_and_a_revoked_one_is_refused_at_once(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    async with serve(app_for(fake_engine, tmp_path)) as http:
        admin = admin_client(http).admin.organization.admin_api_keys
        made = await admin.create(name="team-b")
        assert made.value.startswith("sk-gw-") and made.redacted_value.endswith(made.value[-4:])
        assert made.id == hashlib.sha256(made.value.encode()).hexdigest()[:12]
        response = await http.post(CHAT, json=chat_body(), headers=bearer(made.value))
        assert response.status_code == 200, response.text
        fetched = await admin.retrieve(made.id)
        assert fetched.name == "team-b" and not hasattr(fetched, "value")
        listed = [key.name async for key in admin.list()]
        assert listed == ["root", "plain", "team-b"]
        deleted = await admin.delete(made.id)
        assert (deleted.id, deleted.deleted) == (made.id, True)
        response = await http.post(CHAT, json=chat_body(), headers=bearer(made.value))
        assert_openai_error(response, 401, code="invalid_api_key")
        with pytest.raises(openai.NotFoundError):
            await admin.retrieve(made.id)


async def test_only_the_keys_digest_is_stored(fake_engine: FakeEngine, tmp_path: Path) -> None:
    async with serve(app_for(fake_engine, tmp_path)) as http:
        made = await admin_client(http).admin.organization.admin_api_keys.create(name="x")
    stored = b"".join(path.read_bytes() for path in (tmp_path / "data").rglob("gateway.db*"))
    assert made.value.encode() not in stored
    assert hashlib.sha256(made.value.encode()).hexdigest().encode() in stored


async def test_runtime_keys_outlive_a_restart(fake_engine: FakeEngine, tmp_path: Path) -> None:
    async with serve(app_for(fake_engine, tmp_path)) as http:
        made = await admin_client(http).admin.organization.admin_api_keys.create(name="kept")
    async with serve(app_for(FakeEngine(), tmp_path)) as http:  # a new process's engine
        response = await http.post(CHAT, json=chat_body(), headers=bearer(made.value))
        assert response.status_code == 200, response.text


async def test_an_update_changes_a_keys_terms_at_once(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    async with serve(app_for(fake_engine, tmp_path)) as http:
        made = (
            await http.post(
                KEYS_PATH,
                json={"name": "team", "weight": 3, "priority": "low"},
                headers=bearer(ADMIN_KEY),
            )
        ).json()
        assert (made["weight"], made["priority"], made["requests_per_minute"]) == (3.0, "low", None)
        path = f"{KEYS_PATH}/{made['id']}"
        changed = await http.post(
            path, json={"requests_per_minute": 1, "priority": "high"}, headers=bearer(ADMIN_KEY)
        )
        assert changed.status_code == 200, changed.text
        assert (changed.json()["requests_per_minute"], changed.json()["priority"]) == (1, "high")
        assert changed.json()["weight"] == 3.0  # fields not given are kept
        key = bearer(made["value"])
        assert (await http.post(CHAT, json=chat_body(), headers=key)).status_code == 200
        assert_openai_error(await http.post(CHAT, json=chat_body(), headers=key), 429)
        cleared = await http.post(
            path, json={"requests_per_minute": None}, headers=bearer(ADMIN_KEY)
        )
        assert cleared.json()["requests_per_minute"] is None


@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param({"name": "x", "colour": "blue"}, "colour", id="unknown-field"),
        pytest.param({"name": "x", "tokens_per_day": -5}, "tokens_per_day", id="negative-budget"),
        pytest.param({"name": "x", "tokens_per_month": 0}, "tokens_per_month", id="zero-budget"),
        pytest.param({"name": "x", "weight": 0}, "weight", id="zero-weight"),
        pytest.param({"name": "x", "priority": "urgent"}, "priority", id="priority"),
        pytest.param({"name": "  "}, "name", id="blank-name"),
        pytest.param({}, "name", id="no-name"),
        pytest.param({"name": "root"}, "name", id="a-key-file-name"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field(
    fake_engine: FakeEngine, tmp_path: Path, body: dict[str, Any], param: str
) -> None:
    async with serve(app_for(fake_engine, tmp_path)) as http:
        response = await http.post(KEYS_PATH, json=body, headers=bearer(ADMIN_KEY))
        assert_openai_error(response, 400, param=param)


async def test_a_duplicate_name_is_a_400(fake_engine: FakeEngine, tmp_path: Path) -> None:
    async with serve(app_for(fake_engine, tmp_path)) as http:
        admin = admin_client(http).admin.organization.admin_api_keys
        await admin.create(name="twice")
        with pytest.raises(openai.BadRequestError) as refused:
            await admin.create(name="twice")
        assert refused.value.param == "name"
        made = (await http.get(KEYS_PATH, headers=bearer(ADMIN_KEY))).json()["data"][-1]
        update = await http.post(
            f"{KEYS_PATH}/{made['id']}", json={"name": "renamed"}, headers=bearer(ADMIN_KEY)
        )
        assert_openai_error(update, 400, param="name", code="unknown_parameter")


async def test_configured_keys_are_listed_but_read_only(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    async with serve(app_for(fake_engine, tmp_path)) as http:
        listed = (await http.get(KEYS_PATH, headers=bearer(ADMIN_KEY))).json()
        root = listed["data"][0]
        assert (root["name"], root["source"], root["admin"]) == ("root", "file", True)
        path = f"{KEYS_PATH}/{root['id']}"
        assert_openai_error(
            await http.post(path, json={"weight": 2}, headers=bearer(ADMIN_KEY)),
            400,
            param="key_id",
        )
        assert_openai_error(await http.delete(path, headers=bearer(ADMIN_KEY)), 400, param="key_id")
        assert_openai_error(
            await http.get(f"{KEYS_PATH}/nope", headers=bearer(ADMIN_KEY)), 404, param="key_id"
        )


async def test_plain_keys_may_not_manage_keys(fake_engine: FakeEngine, tmp_path: Path) -> None:
    async with serve(app_for(fake_engine, tmp_path)) as http:
        for response in (
            await http.get(KEYS_PATH, headers=bearer(PLAIN_KEY)),
            await http.post(KEYS_PATH, json={"name": "mine"}, headers=bearer(PLAIN_KEY)),
        ):
            assert_openai_error(response, 403, code="permission_denied")
        assert_openai_error(await http.get(KEYS_PATH), 401)


async def test_with_authentication_off_keys_are_not_managed_nor_turned_on(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    async with serve(make_app(fake_engine, data_dir=tmp_path / "data")) as http:
        response = await http.post(KEYS_PATH, json={"name": "first"})
        assert_openai_error(response, 404, code="not_found")
        assert "authentication" in response.json()["error"]["message"]
        assert (await http.post(CHAT, json=chat_body())).status_code == 200  # still open


async def test_the_list_pages_by_after_and_limit(fake_engine: FakeEngine, tmp_path: Path) -> None:
    async with serve(app_for(fake_engine, tmp_path)) as http:
        admin = admin_client(http).admin.organization.admin_api_keys
        for name in ("k1", "k2", "k3"):
            await admin.create(name=name)
        first = await admin.list(limit=2)
        assert [k.name for k in first.data] == ["root", "plain"] and first.has_more
        names = [k.name async for k in await admin.list(limit=2)]
        assert names == ["root", "plain", "k1", "k2", "k3"]
        newest = await admin.list(limit=1, order="desc")
        assert [k.name for k in newest.data] == ["k3"]
