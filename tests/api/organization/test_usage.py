"""Usage reports, in process on the fake engines: the figures equal the tokens the responses
reported, on every surface that counts; read with the openai SDK's admin client; a batch line
charged through the meter shows as batch; metrics by key."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.admin.organization import usage_completions_response, usage_embeddings_response

from service.app import create_app
from service.caller import Caller
from service.config import Settings
from service.engine.fake import FakeEngine
from service.engine.fake_embeddings import FakeEmbeddingEngine
from tests.api.helpers import key_id, serve, until
from tests.conftest import FAKE_MODEL

ADMIN_KEY = "sk-usage-admin-3"
TEAM_KEY = "sk-usage-team-5"
EMBEDDER = "fake-embedder"


def app_for(tmp_path: Path, engine: FakeEngine | None = None) -> Any:
    path = tmp_path / "keys.toml"
    path.write_text(
        f'[[keys]]\nname = "root"\nkey = "{ADMIN_KEY}"\nadmin = true\n'
        f'[[keys]]\nname = "team"\nkey = "{TEAM_KEY}"\n'
    )
    settings = Settings(
        model=FAKE_MODEL,
        default_max_tokens=16,
        embedding_model=EMBEDDER,
        api_key_file=path,
        data_dir=tmp_path / "data",
    )
    return create_app(
        settings,
        engine_factory=FakeEngine if engine is None else lambda: engine,
        embedding_factory=FakeEmbeddingEngine,
    )


def sdk(http: httpx.AsyncClient) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url="http://test/v1",
        api_key=TEAM_KEY,
        admin_api_key=ADMIN_KEY,
        http_client=http,  # type: ignore[arg-type]  # SDK types httpx2 only; accepts httpx too
        max_retries=0,
    )


CompletionsResult = usage_completions_response.DataResultOrganizationUsageCompletionsResult
EmbeddingsResult = usage_embeddings_response.DataResultOrganizationUsageEmbeddingsResult


def completions_results(
    page: usage_completions_response.UsageCompletionsResponse,
) -> list[CompletionsResult]:
    """Every bucket's results, as the completions results they are."""
    found = [r for bucket in page.data for r in bucket.results]
    assert all(isinstance(r, CompletionsResult) for r in found), found
    return [r for r in found if isinstance(r, CompletionsResult)]


def embeddings_results(
    page: usage_embeddings_response.UsageEmbeddingsResponse,
) -> list[EmbeddingsResult]:
    found = [r for bucket in page.data for r in bucket.results]
    assert all(isinstance(r, EmbeddingsResult) for r in found), found
    return [r for r in found if isinstance(r, EmbeddingsResult)]


def sse_usage(text: str) -> dict[str, int]:
    """The `usage` of the last event that has one."""
    events = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    found = [json.loads(e)["usage"] for e in events if e != "[DONE]" and json.loads(e).get("usage")]
    return dict(found[-1])


async def completions_traffic(http: httpx.AsyncClient) -> tuple[int, int, int]:
    """One request on each completions surface; (input, output, requests) they reported."""
    team = {"Authorization": f"Bearer {TEAM_KEY}"}
    chat = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": "hi"}]}
    bodies: list[tuple[str, dict[str, Any]]] = [
        ("/v1/chat/completions", chat),
        ("/v1/completions", {"model": FAKE_MODEL, "prompt": "Say hi", "max_tokens": 5}),
        ("/v1/responses", {"model": FAKE_MODEL, "input": "hello", "store": False}),
        ("/v1/generate", {"model": FAKE_MODEL, "prompt": "Once upon a time"}),
        (
            "/v1/summarize",
            {"model": FAKE_MODEL, "text": "The council met. It voted.", "max_length": 32},
        ),
        ("/v1/classify", {"model": FAKE_MODEL, "text": "I love it", "labels": "sentiment"}),
        ("/v1/chat", {"model": FAKE_MODEL, "message": "hello there"}),
    ]
    prompt = output = 0
    for path, body in bodies:
        response = await http.post(path, json=body, headers=team)
        assert response.status_code == 200, (path, response.text)
        usage = response.json()["usage"]
        prompt += usage.get("prompt_tokens", usage.get("input_tokens", 0))
        output += usage.get("completion_tokens", usage.get("output_tokens", 0))
    streamed = await http.post(
        "/v1/chat/completions",
        json={**chat, "stream": True, "stream_options": {"include_usage": True}},
        headers=team,
    )
    usage = sse_usage(streamed.text)
    return prompt + usage["prompt_tokens"], output + usage["completion_tokens"], len(bodies) + 1


async def test_the_report_equals_the_tokens_the_responses_reported(tmp_path: Path) -> None:
    async with serve(app_for(tmp_path)) as http:
        started = int(time.time()) - 60
        prompt, output, requests = await completions_traffic(http)
        team = {"Authorization": f"Bearer {TEAM_KEY}"}
        embedded = await http.post(
            "/v1/embeddings",
            json={"model": EMBEDDER, "input": ["red", "green apples"]},
            headers=team,
        )
        reranked = await http.post(
            "/v1/rerank",
            json={"model": EMBEDDER, "query": "fruit", "documents": ["apple", "car"]},
            headers=team,
        )
        embedding_tokens = (
            embedded.json()["usage"]["prompt_tokens"] + reranked.json()["usage"]["total_tokens"]
        )
        admin = sdk(http).admin.organization.usage
        page = await admin.completions(start_time=started, group_by=["api_key_id", "model"])
        embeddings = await admin.embeddings(start_time=started, group_by=["api_key_id"])
    results = completions_results(page)
    assert len(results) == 1
    (result,) = results
    assert (result.input_tokens, result.output_tokens, result.num_model_requests) == (
        prompt,
        output,
        requests,
    )
    assert (result.api_key_id, result.model) == (key_id(TEAM_KEY), FAKE_MODEL)
    assert result.api_key_name == "team"  # type: ignore[attr-defined]  # the gateway's own field
    (pooled,) = embeddings_results(embeddings)
    assert (pooled.input_tokens, pooled.num_model_requests) == (embedding_tokens, 2)


async def test_a_background_response_counts_when_its_run_ends(tmp_path: Path) -> None:
    """The request answers `queued` before its run reaches the engine: the run's tokens are
    charged to the key when it ends (as the rate limiter's token bucket waits for them)."""
    engine = FakeEngine()
    engine.gate = asyncio.Event()  # the run waits in the engine until the request has ended
    app = app_for(tmp_path, engine)
    team = {"Authorization": f"Bearer {TEAM_KEY}"}
    async with serve(app) as http:
        started = int(time.time()) - 60
        created = await http.post(
            "/v1/responses",
            json={"model": FAKE_MODEL, "input": "hello", "background": True},
            headers=team,
        )
        assert created.json()["status"] == "queued", created.text
        await until(lambda: engine.active == 1, "the run reached the engine")
        engine.open_gate()
        runs = app.state.gateway.responses
        await until(lambda: created.json()["id"] not in runs.running(), "the run ended")
        final = (await http.get(f"/v1/responses/{created.json()['id']}", headers=team)).json()
        page = await sdk(http).admin.organization.usage.completions(
            start_time=started, group_by=["api_key_id"]
        )
    (result,) = completions_results(page)
    assert final["status"] == "completed" and final["usage"]["output_tokens"] > 0
    assert (result.input_tokens, result.output_tokens, result.num_model_requests) == (
        final["usage"]["input_tokens"],
        final["usage"]["output_tokens"],
        1,
    )
    assert result.api_key_id == key_id(TEAM_KEY)


async def test_a_plain_key_sees_its_own_usage_and_no_names(tmp_path: Path) -> None:
    app = app_for(tmp_path)
    async with serve(app) as http:
        started = int(time.time()) - 60
        await completions_traffic(http)
        root = {"Authorization": f"Bearer {ADMIN_KEY}"}
        await http.post(
            "/v1/chat/completions",
            json={"model": FAKE_MODEL, "messages": [{"role": "user", "content": "x"}]},
            headers=root,
        )
        params: dict[str, str | int] = {"start_time": started, "group_by": "api_key_id"}
        team = await http.get(
            "/v1/organization/usage/completions",
            params=params,
            headers={"Authorization": f"Bearer {TEAM_KEY}"},
        )
        everyone = await http.get("/v1/organization/usage/completions", params=params, headers=root)
    seen = [(r["api_key_id"], r["api_key_name"]) for b in team.json()["data"] for r in b["results"]]
    assert seen == [(key_id(TEAM_KEY), None)]
    seen = [
        (r["api_key_id"], r["api_key_name"]) for b in everyone.json()["data"] for r in b["results"]
    ]
    assert sorted(seen) == sorted([(key_id(TEAM_KEY), "team"), (key_id(ADMIN_KEY), "root")])


async def test_a_batch_line_charged_by_the_meter_is_reported_as_batch(tmp_path: Path) -> None:
    app = app_for(tmp_path)
    async with serve(app) as http:
        started = int(time.time()) - 60
        meter = app.state.gateway.tenants.meter
        line_caller = Caller(key_id=key_id(TEAM_KEY), key_name="team")
        meter.check(line_caller)
        meter.charge(
            line_caller,
            endpoint="/v1/summarize",
            model=FAKE_MODEL,
            input_tokens=100,
            output_tokens=20,
            batch=True,
        )
        report = await sdk(http).admin.organization.usage.completions(
            start_time=started, group_by=["batch"], bucket_width="1m", limit=5
        )
        metrics = (await http.get("/metrics")).text
    results = [(r.batch, r.input_tokens, r.output_tokens) for r in completions_results(report)]
    assert results == [(True, 100, 20)]
    assert 'gateway_key_requests_total{key="team"} 1.0' in metrics
    assert 'gateway_key_tokens_total{key="team",kind="input"} 100.0' in metrics


@pytest.mark.parametrize("auth", [pytest.param(False, id="authentication-off")])
async def test_without_keys_usage_is_reported_without_a_key_id(
    fake_engine: FakeEngine, tmp_path: Path, auth: bool
) -> None:
    settings = Settings(model=FAKE_MODEL, default_max_tokens=8, data_dir=tmp_path / "data")
    async with serve(create_app(settings, engine_factory=lambda: fake_engine)) as http:
        started = int(time.time()) - 60
        response = await http.post(
            "/v1/chat/completions",
            json={"model": FAKE_MODEL, "messages": [{"role": "user", "content": "hi"}]},
        )
        usage = response.json()["usage"]
        report = await http.get(
            "/v1/organization/usage/completions",
            params={"start_time": started, "group_by": ["api_key_id", "model"]},
        )
        metrics = (await http.get("/metrics")).text
    (result,) = [r for b in report.json()["data"] for r in b["results"]]
    assert (result["api_key_id"], result["model"], result["input_tokens"]) == (
        None,
        FAKE_MODEL,
        usage["prompt_tokens"],
    )
    assert 'gateway_key_requests_total{key="anonymous"} 1.0' in metrics
    assert 'gateway_admission_wait_seconds_count{key="anonymous"} 1.0' in metrics
