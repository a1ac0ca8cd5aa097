"""Token budgets, in process on the fake engine: a key over its daily budget is refused before
the engine with 429 budget_exceeded until UTC midnight, the openai SDK does not retry it, and a
restart on SQLite forgets nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import openai

from service.engine.fake import FakeEngine
from service.services.tenants.windows import Windows
from tests.api.helpers import (
    CHAT,
    assert_openai_error,
    chat_body,
    engine_calls,
    make_app,
    serve,
)
from tests.conftest import FAKE_MODEL

KEY = "sk-budgeted-team-41"
FREE_KEY = "sk-unbudgeted-team-7"
BUDGET = 20  # tokens a day: about two chat requests on the fake engine


def app_for(engine: FakeEngine, tmp_path: Path, **settings: Any) -> Any:
    path = tmp_path / "keys.toml"
    path.write_text(
        f'[[keys]]\nname = "team"\nkey = "{KEY}"\ntokens_per_day = {BUDGET}\n'
        f'[[keys]]\nname = "free"\nkey = "{FREE_KEY}"\n'
    )
    return make_app(engine, api_key_file=path, data_dir=tmp_path / "data", **settings)


AUTH = {"Authorization": f"Bearer {KEY}"}


async def spend_the_budget(http: httpx.AsyncClient) -> int:
    """Send chat requests until the budget refuses one; the tokens the answers reported."""
    used = 0
    while used < BUDGET:
        response = await http.post(CHAT, json=chat_body(max_tokens=8), headers=AUTH)
        assert response.status_code == 200, response.text
        used += response.json()["usage"]["total_tokens"]
    return used


async def test_a_key_over_its_budget_is_refused_before_the_engine_until_midnight(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    async with serve(app_for(fake_engine, tmp_path)) as http:
        used = await spend_the_budget(http)
        assert used >= BUDGET  # the last request admitted may pass it, as the bucket's may
        calls = engine_calls(fake_engine)
        earliest = Windows.at(time.time()).day_end - int(time.time())
        response = await http.post(CHAT, json=chat_body(), headers=AUTH)
        latest = Windows.at(time.time()).day_end - int(time.time())
        error = assert_openai_error(response, 429, code="budget_exceeded")
        assert error["type"] == "tokens"
        assert latest <= int(response.headers["retry-after"]) <= earliest
        assert response.headers["x-should-retry"] == "false"
        assert engine_calls(fake_engine) == calls
        stream = await http.post(CHAT, json=chat_body(stream=True), headers=AUTH)
        assert_openai_error(stream, 429, code="budget_exceeded")
        other = await http.post(
            CHAT, json=chat_body(), headers={"Authorization": f"Bearer {FREE_KEY}"}
        )
        assert other.status_code == 200  # another key's budget is its own
        assert (await http.get("/v1/models", headers=AUTH)).status_code == 200
        report = await http.get(
            "/v1/organization/usage/completions", params={"start_time": 0}, headers=AUTH
        )
        assert report.status_code == 200  # a key over budget still reads its usage
        metrics = (await http.get("/metrics")).text
    assert 'gateway_budget_refusals_total{key="team",window="day"} 2.0' in metrics


async def test_the_openai_sdk_does_not_retry_a_budget_refusal(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    async with serve(app_for(fake_engine, tmp_path)) as http:
        await spend_the_budget(http)
        sent: list[httpx.Request] = []

        async def count(request: httpx.Request) -> None:
            sent.append(request)

        http.event_hooks["request"].append(count)
        client = openai.AsyncOpenAI(
            base_url="http://test/v1",
            api_key=KEY,
            http_client=http,  # type: ignore[arg-type]  # SDK types httpx2 only; accepts httpx too
            max_retries=3,
        )
        try:
            await client.chat.completions.create(
                model=FAKE_MODEL, messages=[{"role": "user", "content": "hi"}]
            )
        except openai.RateLimitError as refused:
            assert refused.code == "budget_exceeded"
        else:
            raise AssertionError("the budget did not refuse")
    assert len(sent) == 1


async def test_a_restart_on_sqlite_forgets_nothing(fake_engine: FakeEngine, tmp_path: Path) -> None:
    async with serve(app_for(fake_engine, tmp_path)) as http:
        await spend_the_budget(http)  # counted in memory; written at shutdown
    async with serve(app_for(FakeEngine(), tmp_path)) as http:
        response = await http.post(CHAT, json=chat_body(), headers=AUTH)
        assert_openai_error(response, 429, code="budget_exceeded")


async def test_a_budget_raised_at_runtime_admits_the_key_again(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    admin_file = tmp_path / "admin.toml"
    admin_file.write_text('[[keys]]\nname = "root"\nkey = "sk-root-1"\nadmin = true\n')
    app = make_app(fake_engine, api_key_file=admin_file, data_dir=tmp_path / "data")
    root = {"Authorization": "Bearer sk-root-1"}
    async with serve(app) as http:
        made = await http.post(
            "/v1/organization/admin_api_keys",
            json={"name": "team", "tokens_per_month": 5},
            headers=root,
        )
        key = {"Authorization": f"Bearer {made.json()['value']}"}
        assert (
            await http.post(CHAT, json=chat_body(max_tokens=16), headers=key)
        ).status_code == 200
        refused = await http.post(CHAT, json=chat_body(), headers=key)
        assert_openai_error(refused, 429, code="budget_exceeded")
        assert "per month" in refused.json()["error"]["message"]
        raised = await http.post(
            f"/v1/organization/admin_api_keys/{made.json()['id']}",
            json={"tokens_per_month": 1_000_000},
            headers=root,
        )
        assert raised.status_code == 200
        assert (await http.post(CHAT, json=chat_body(), headers=key)).status_code == 200
