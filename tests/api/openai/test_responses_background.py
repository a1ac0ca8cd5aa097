"""Background responses on the fake engine, in process: queued at once, in_progress, then final;
cancel (here and through another replica, by the store), a refusal at admission and a deadline
as `failed`, a restart and a dead replica as `failed` (never a response left in_progress), the
events of a background stream replayed after a sequence number and followed from another
replica, and the errors (unknown ids, another key's, what cannot be cancelled or streamed)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.engine.fake import FakeEngine
from service.errors import EngineFailureError
from service.services.openai.responses import BackgroundResponses
from tests.api.helpers import (
    CHAT,
    assert_openai_error,
    chat_body,
    fails_mid_stream,
    make_app,
    serve,
    sse_named,
    until,
)
from tests.conftest import FAKE_MODEL, HANG_GUARD
from tests.observability import Scrape, delta

RESPONSES = "/v1/responses"
# Heartbeats and cross-replica reads every 50 ms: the tests wait for what they cause.
QUICK = {"background_heartbeat_seconds": 0.05, "response_stream_poll_seconds": 0.05}


def body(**fields: Any) -> dict[str, Any]:
    return {"model": FAKE_MODEL, "input": "What is the capital of France?", **fields}


def replica(engine: FakeEngine, data_dir: Path, **settings: Any) -> FastAPI:
    """An app on a store of the test's own (one SQLite file: replicas of one store)."""
    return make_app(engine, data_dir=data_dir, **QUICK, **settings)


@pytest.fixture
def gated() -> FakeEngine:
    engine = FakeEngine()
    engine.gate = asyncio.Event()  # generations wait until the test opens it (not the warm-up)
    return engine


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Ask until the server has done something on its own (bounded, not a timing assertion)."""
    give_up = time.monotonic() + HANG_GUARD
    while not await check():
        if time.monotonic() > give_up:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.01)


async def status_of(client: httpx.AsyncClient, response_id: str) -> dict[str, Any]:
    got = await client.get(f"{RESPONSES}/{response_id}")
    assert got.status_code == 200, got.text
    answer: dict[str, Any] = got.json()
    return answer


async def until_status(client: httpx.AsyncClient, response_id: str, status: str) -> dict[str, Any]:
    async def reached() -> bool:
        return bool((await status_of(client, response_id))["status"] == status)

    await eventually(reached, f"{response_id} became {status}")
    return await status_of(client, response_id)


def engine_request(engine: FakeEngine) -> str:
    """The id of the engine request a background run made (the last one)."""
    return engine.requests[-1].request_id


async def test_background_answers_queued_then_runs_to_completed(
    gated: FakeEngine, tmp_path: Path
) -> None:
    async with serve(replica(gated, tmp_path)) as client:
        created = await client.post(RESPONSES, json=body(background=True))
        assert created.status_code == 200, created.text
        queued = created.json()
        assert queued["status"] == "queued" and queued["background"] is True
        assert queued["output"] == []
        await until(lambda: gated.active == 1, "the run reached the engine")
        assert (await status_of(client, queued["id"]))["status"] == "in_progress"
        listed = await client.get(f"{RESPONSES}/{queued['id']}/input_items")  # while it runs
        gated.open_gate()
        final = await until_status(client, queued["id"], "completed")
    (item,) = listed.json()["data"]
    assert item["content"] == [{"type": "input_text", "text": "What is the capital of France?"}]
    assert final["output"][0]["content"][0]["text"] == "The capital of France is Paris."
    assert final["usage"]["output_tokens"] > 0 and final["background"] is True


async def test_a_background_runs_tokens_reach_the_token_metrics_when_it_ends(
    gated: FakeEngine, tmp_path: Path
) -> None:
    async with serve(replica(gated, tmp_path)) as client:
        before = Scrape((await client.get("/metrics")).text)
        queued = (await client.post(RESPONSES, json=body(background=True))).json()
        await until(lambda: gated.active == 1, "the run reached the engine")
        gated.open_gate()  # after the create request has ended
        usage = (await until_status(client, queued["id"], "completed"))["usage"]

        async def moved(sample: str) -> float:
            after = Scrape((await client.get("/metrics")).text)
            return delta(before, after, sample, endpoint=RESPONSES)

        async def counted() -> bool:
            return await moved("gateway_completion_tokens_total") > 0

        await eventually(counted, "the run's tokens were counted")
        assert await moved("gateway_completion_tokens_total") == usage["output_tokens"]
        assert await moved("gateway_prompt_tokens_total") == usage["input_tokens"]


async def test_cancel_stops_the_engine_work_and_is_idempotent(
    gated: FakeEngine, tmp_path: Path
) -> None:
    async with serve(replica(gated, tmp_path)) as client:
        made = (await client.post(RESPONSES, json=body(background=True))).json()
        await until(lambda: gated.active == 1, "the run reached the engine")
        cancelled = await client.post(f"{RESPONSES}/{made['id']}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        await until(lambda: engine_request(gated) in gated.aborted, "the engine work stopped")
        again = await client.post(f"{RESPONSES}/{made['id']}/cancel")
        assert again.json()["status"] == "cancelled"
        assert (await status_of(client, made["id"]))["status"] == "cancelled"


async def test_what_cannot_be_cancelled_is_a_400_and_unknown_ids_a_404(tmp_path: Path) -> None:
    async with serve(replica(FakeEngine(), tmp_path)) as client:
        foreground = (await client.post(RESPONSES, json=body())).json()
        refused = await client.post(f"{RESPONSES}/{foreground['id']}/cancel")
        assert_openai_error(refused, 400, param="response_id")
        assert "background" in refused.json()["error"]["message"]
        done = (await client.post(RESPONSES, json=body(background=True))).json()
        await until_status(client, done["id"], "completed")
        finished = await client.post(f"{RESPONSES}/{done['id']}/cancel")
        assert_openai_error(finished, 400, param="response_id")
        assert "completed" in finished.json()["error"]["message"]
        for path in ("resp_unknown", "a%00b", "x" * 300):
            assert_openai_error(await client.post(f"{RESPONSES}/{path}/cancel"), 404)
            assert_openai_error(await client.get(f"{RESPONSES}/{path}"), 404, code="not_found")
            assert_openai_error(await client.delete(f"{RESPONSES}/{path}"), 404)


async def test_another_keys_background_response_does_not_exist(
    gated: FakeEngine, tmp_path: Path
) -> None:
    app = replica(gated, tmp_path, api_keys=["key-one", "key-two"])
    one, two = {"Authorization": "Bearer key-one"}, {"Authorization": "Bearer key-two"}
    async with serve(app) as client:
        made = (await client.post(RESPONSES, json=body(background=True), headers=one)).json()
        for method, path in (
            ("POST", f"{RESPONSES}/{made['id']}/cancel"),
            ("GET", f"{RESPONSES}/{made['id']}"),
            ("GET", f"{RESPONSES}/{made['id']}?stream=true"),
            ("DELETE", f"{RESPONSES}/{made['id']}"),
        ):
            assert_openai_error(await client.request(method, path, headers=two), 404)
        gated.open_gate()
        await eventually(
            lambda: _has_status(client, made["id"], "completed", one), "the run completed"
        )


async def _has_status(
    client: httpx.AsyncClient, response_id: str, status: str, headers: dict[str, str]
) -> bool:
    got = await client.get(f"{RESPONSES}/{response_id}", headers=headers)
    return bool(got.json()["status"] == status)


async def test_a_refusal_at_admission_marks_the_run_failed(
    gated: FakeEngine, tmp_path: Path
) -> None:
    app = replica(gated, tmp_path, max_inflight_sequences=1, max_queued_sequences=0)
    async with serve(app) as client:
        holding = asyncio.create_task(client.post(CHAT, json=chat_body()))
        await until(lambda: gated.active == 1, "a request holds the only slot")
        made = (await client.post(RESPONSES, json=body(background=True))).json()
        failed = await until_status(client, made["id"], "failed")
        gated.open_gate()
        assert (await holding).status_code == 200
    assert failed["error"]["code"] == "overloaded"
    assert failed["error"]["message"]


async def test_a_run_keeps_its_request_deadline(gated: FakeEngine, tmp_path: Path) -> None:
    async with serve(replica(gated, tmp_path)) as client:
        made = (await client.post(RESPONSES, json=body(background=True, timeout=0.2))).json()
        failed = await until_status(client, made["id"], "failed")
        await until(lambda: engine_request(gated) in gated.aborted, "the engine work stopped")
    assert failed["error"]["code"] == "timeout"


async def test_a_restart_marks_the_unfinished_run_failed(gated: FakeEngine, tmp_path: Path) -> None:
    async with serve(replica(gated, tmp_path)) as client:
        made = (await client.post(RESPONSES, json=body(background=True))).json()
        await until(lambda: gated.active == 1, "the run reached the engine")
    async with serve(replica(FakeEngine(), tmp_path)) as client:
        after = await status_of(client, made["id"])
    assert after["status"] == "failed"
    assert "stopped" in after["error"]["message"]


async def test_the_run_of_a_dead_replica_is_failed_by_another(
    gated: FakeEngine, tmp_path: Path
) -> None:
    """Another replica whose clock reads past `background_stale_seconds` since this run's last
    heartbeat (as if this replica had died) marks it failed; this replica, still alive, then
    stops the run at its next heartbeat instead of overwriting the verdict."""
    app = replica(gated, tmp_path)
    async with serve(app) as client:
        made = (await client.post(RESPONSES, json=body(background=True))).json()
        await until(lambda: gated.active == 1, "the run reached the engine")
        gateway = app.state.gateway
        later = time.time() + 2 * gateway.settings.background_stale_seconds
        survivor = BackgroundResponses(gateway.store, gateway.settings, clock=lambda: later)
        await survivor.tick()
        failed = await status_of(client, made["id"])
        await until(lambda: engine_request(gated) in gated.aborted, "the dead run was stopped")
        assert (await status_of(client, made["id"]))["status"] == "failed"
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "server_error"
    assert "stopped responding" in failed["error"]["message"]


async def test_a_cancel_through_another_replica_stops_the_run(
    gated: FakeEngine, tmp_path: Path
) -> None:
    async with (
        serve(replica(gated, tmp_path)) as owner,
        serve(replica(FakeEngine(), tmp_path)) as other,
    ):
        made = (await owner.post(RESPONSES, json=body(background=True))).json()
        await until(lambda: gated.active == 1, "the run reached the engine")
        cancelled = await other.post(f"{RESPONSES}/{made['id']}/cancel")
        assert cancelled.json()["status"] == "cancelled", cancelled.text
        await until(lambda: engine_request(gated) in gated.aborted, "the owner stopped the run")
        assert (await status_of(owner, made["id"]))["status"] == "cancelled"


async def test_a_background_stream_keeps_its_events_for_a_replay(tmp_path: Path) -> None:
    async with serve(replica(FakeEngine(), tmp_path)) as client:
        created = await client.post(RESPONSES, json=body(background=True, stream=True))
        events = sse_named(created.text)
        response_id = events[0]["response"]["id"]
        replay = sse_named((await client.get(f"{RESPONSES}/{response_id}?stream=true")).text)
        tail = await client.get(f"{RESPONSES}/{response_id}?stream=true&starting_after=3")
    kinds = [event["type"] for event in events]
    assert kinds[:3] == ["response.created", "response.queued", "response.in_progress"]
    assert events[0]["response"]["status"] == "queued"
    assert kinds[-1] == "response.completed"
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    assert replay == events
    assert sse_named(tail.text) == events[4:]


async def test_a_background_stream_is_followed_live_from_another_replica(
    gated: FakeEngine, tmp_path: Path
) -> None:
    """The other replica reads the run's events from the store: those made before it looked,
    then the rest as the run makes them."""
    owner_app, other_app = replica(gated, tmp_path), replica(FakeEngine(), tmp_path)
    async with serve(owner_app) as owner, serve(other_app):
        # httpx's ASGI transport answers once the stream has ended: it runs as a task.
        created = asyncio.create_task(
            owner.post(RESPONSES, json=body(background=True, stream=True))
        )
        await until(lambda: gated.active == 1, "the run reached the engine")
        (response_id,) = owner_app.state.gateway.responses.running()
        other: BackgroundResponses = other_app.state.gateway.responses
        followed = other.follow(await other.stored("anonymous", response_id), -1)
        before = [json.loads((await anext(followed)).data)["type"] for _ in range(3)]
        gated.open_gate()
        rest = [json.loads(event.data) async for event in followed]
        whole = sse_named((await created).text)
    assert before == ["response.created", "response.queued", "response.in_progress"]
    assert rest == whole[3:]
    assert rest[-1]["type"] == "response.completed"


async def test_only_background_streams_can_be_streamed_again(tmp_path: Path) -> None:
    async with serve(replica(FakeEngine(), tmp_path)) as client:
        plain = (await client.post(RESPONSES, json=body())).json()
        whole = (await client.post(RESPONSES, json=body(background=True))).json()
        await until_status(client, whole["id"], "completed")
        for made in (plain, whole):
            again = await client.get(f"{RESPONSES}/{made['id']}?stream=true")
            assert_openai_error(again, 400, param="stream")
        bad = await client.get(f"{RESPONSES}/{plain['id']}?stream=true&starting_after=soon")
        assert_openai_error(bad, 400, param="starting_after")


async def test_a_runs_tokens_are_charged_to_its_key_when_it_ends(
    gated: FakeEngine, tmp_path: Path
) -> None:
    """The request ends before its run does; its key's token rate limit still counts the run's
    tokens (a long prompt puts the key in debt for minutes: the next request is refused)."""
    auth = {"Authorization": "Bearer key-one"}
    app = replica(gated, tmp_path, api_keys=["key-one"], tokens_per_minute=10)
    async with serve(app) as client:
        long_input = body(background=True, input="word " * 100)
        made = (await client.post(RESPONSES, json=long_input, headers=auth)).json()
        gated.open_gate()  # the run ends after its request
        runs = app.state.gateway.responses
        await until(lambda: made["id"] not in runs.running(), "the run ended")
        refused = await client.post(RESPONSES, json=body(), headers=auth)
    error = assert_openai_error(refused, 429, code="rate_limit_exceeded")
    assert error["type"] == "tokens"


async def test_an_engine_failure_ends_a_background_stream_with_response_failed(
    tmp_path: Path,
) -> None:
    engine = fails_mid_stream(EngineFailureError("The engine failed."))
    async with serve(replica(engine, tmp_path)) as client:
        created = await client.post(RESPONSES, json=body(background=True, stream=True))
        events = sse_named(created.text)
        stored = await status_of(client, events[0]["response"]["id"])
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"]["code"] == "engine_error"
    assert stored["status"] == "failed" and stored["error"] == events[-1]["response"]["error"]


async def test_followers_of_a_dead_replicas_stream_get_response_failed(
    gated: FakeEngine, tmp_path: Path
) -> None:
    owner_app, other_app = replica(gated, tmp_path), replica(FakeEngine(), tmp_path)
    async with serve(owner_app) as owner, serve(other_app):
        created = asyncio.create_task(
            owner.post(RESPONSES, json=body(background=True, stream=True))
        )
        await until(lambda: gated.active == 1, "the run reached the engine")
        (response_id,) = owner_app.state.gateway.responses.running()
        other: BackgroundResponses = other_app.state.gateway.responses
        settings = other_app.state.gateway.settings
        later = time.time() + 2 * settings.background_stale_seconds
        survivor = BackgroundResponses(other_app.state.gateway.store, settings, clock=lambda: later)
        await survivor.tick()
        stored = await other.stored("anonymous", response_id)
        followed = [json.loads(event.data) async for event in other.follow(stored, -1)]
        await created
    assert [event["type"] for event in followed] == [
        "response.created",
        "response.queued",
        "response.in_progress",
        "response.failed",
    ]
    assert followed[-1]["sequence_number"] == 3
    assert followed[-1]["response"]["status"] == "failed"
