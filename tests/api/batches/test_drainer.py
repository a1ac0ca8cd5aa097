"""The drainer on the fake engine, stepped by hand where time matters (its clock is the test's):
behind interactive requests, cancel keeping partial output, expiry, a revoked key, rate limits
retried rather than failed, and lines of a dead replica taken over once their lease runs out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from service.engine.base import GenerationChunk
from service.engine.fake import FakeCall, FakeEngine
from service.http.keys import build_key_store
from service.http.ratelimit import LocalLimiter, RateLimiter
from tests.api.batches.helpers import (
    CHAT,
    batch_app,
    chat_line,
    finished,
    gateway,
    reaches,
    results,
    sdk,
    serve_with_drainer,
    submit,
)
from tests.api.helpers import KEY, OTHER_KEY, chat_body, engine_calls, serve, until

DAY = 86400.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def run_claimed(drainer: object) -> None:
    """Step the drainer once, and let the lines it claimed run to their end."""
    await drainer.step()  # type: ignore[attr-defined]
    await asyncio.gather(*list(drainer.lines.values()))  # type: ignore[attr-defined]


async def test_cancel_keeps_the_output_of_the_lines_that_finished(tmp_path: Path) -> None:
    release = asyncio.Event()

    async def slow_ones_wait(call: FakeCall) -> AsyncIterator[GenerationChunk]:
        if "slow" in call.engine.tokenizer.decode(call.request.prompt_token_ids):
            await release.wait()
        async for chunk in call.reply():
            yield chunk

    engine = FakeEngine(handler=slow_ones_wait)  # max_num_seqs 8: 4 lines at a time
    lines = [chat_line("fast-1"), chat_line("fast-2")]
    lines += [chat_line(f"slow-{i}", "slow") for i in range(4)]
    lines += [chat_line(f"later-{i}") for i in range(4)]
    async with serve_with_drainer(batch_app(engine, tmp_path)) as (http, _):
        client = sdk(http)
        batch = await submit(client, lines)
        await reaches(
            client,
            batch.id,
            lambda b: b.request_counts is not None and b.request_counts.completed == 2,
            "the fast lines finish",
        )
        await until(lambda: engine.active == 4, "the four slow lines hold the share")
        cancelling = await client.batches.cancel(batch.id)
        assert cancelling.status == "cancelling" and cancelling.cancelling_at
        assert (await client.batches.cancel(batch.id)).status == "cancelling"  # again: the same
        release.set()
        done = await finished(client, batch.id)
        outputs = await results(client, done.output_file_id)
    assert done.status == "cancelled" and done.cancelled_at and done.error_file_id is None
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed) == (10, 6)
    assert sorted(outputs) == ["fast-1", "fast-2", "slow-0", "slow-1", "slow-2", "slow-3"]
    assert engine_calls(engine) == 6  # the lines not started never ran


async def test_an_expired_batch_keeps_what_ran_and_marks_the_rest_expired(
    tmp_path: Path,
) -> None:
    engine = FakeEngine(max_num_seqs=4)  # 2 lines a step
    app = batch_app(engine, tmp_path, batch_drain=False)
    clock = Clock(0.0)
    async with serve_with_drainer(app, clock=clock) as (http, drainer):
        client = sdk(http)
        batch = await submit(client, [chat_line(f"r{i}") for i in range(5)])
        clock.now = batch.created_at + 60
        await run_claimed(drainer)  # two lines run
        clock.now = batch.created_at + DAY - 1
        await drainer.housekeeping()
        assert (await client.batches.retrieve(batch.id)).status == "in_progress"
        clock.now = batch.created_at + DAY
        await drainer.housekeeping()
        done = await client.batches.retrieve(batch.id)
        outputs = await results(client, done.output_file_id)
        errors = await results(client, done.error_file_id)
    assert done.status == "expired" and done.expired_at == batch.created_at + DAY
    assert sorted(outputs) == ["r0", "r1"]
    assert sorted(errors) == ["r2", "r3", "r4"]
    for error in errors.values():
        assert error["response"] is None and error["error"]["code"] == "batch_expired"
    assert engine_calls(engine) == 2


async def test_a_revoked_key_fails_its_remaining_lines(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    app = batch_app(fake_engine, tmp_path, batch_drain=False, api_keys=[KEY, OTHER_KEY])
    async with serve_with_drainer(app) as (http, drainer):
        client = sdk(http, KEY)
        batch = await submit(client, [chat_line(f"r{i}") for i in range(3)])
        security = gateway(app).security
        both = security.keys
        security.keys = build_key_store([SecretStr(OTHER_KEY)], None)  # KEY is revoked
        await run_claimed(drainer)
        await drainer.housekeeping()
        security.keys = both  # to read the results with it
        done = await client.batches.retrieve(batch.id)
        errors = await results(client, done.error_file_id)
    assert done.status == "completed" and done.output_file_id is None
    assert done.request_counts is not None and done.request_counts.failed == 3
    assert {e["error"]["code"] for e in errors.values()} == {"authentication_error"}
    assert engine_calls(fake_engine) == 0


async def test_a_rate_limited_line_is_retried_later_not_failed(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    app = batch_app(fake_engine, tmp_path, batch_drain=False, api_keys=[KEY], requests_per_minute=4)
    clock = Clock(1000.0)
    async with serve_with_drainer(app, clock=clock) as (http, drainer):
        gateway(app).security.limiter = LocalLimiter(RateLimiter(clock=clock))
        client = sdk(http, KEY)
        batch = await submit(client, [chat_line(f"r{i}") for i in range(4)])  # 2 requests
        await run_claimed(drainer)  # the key's bucket holds 2 more: 2 lines run
        await run_claimed(drainer)  # the others wait for their Retry-After
        registry = gateway(app).metrics.registry
        assert registry.get_sample_value("gateway_batch_lines_total", {"outcome": "retried"}) == 2
        assert engine_calls(fake_engine) == 2
        clock.now += 60  # the bucket refills
        await run_claimed(drainer)
        await drainer.housekeeping()
        done = await client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.error_file_id is None
    assert done.request_counts is not None and done.request_counts.completed == 4
    assert engine_calls(fake_engine) == 4


async def test_lines_wait_while_an_interactive_request_waits(tmp_path: Path) -> None:
    engine = FakeEngine()
    engine.gate = asyncio.Event()  # interactive requests hold the engine
    app = batch_app(
        engine, tmp_path, batch_drain=False, max_inflight_sequences=1, max_queued_sequences=4
    )
    async with serve_with_drainer(app) as (http, drainer):
        client = sdk(http)
        batch = await submit(client, [chat_line("r0")])
        admission = gateway(app).admission
        first = asyncio.create_task(http.post(CHAT, json=chat_body()))
        await until(lambda: admission.in_flight == 1, "an interactive request runs")
        second = asyncio.create_task(http.post(CHAT, json=chat_body()))
        await until(lambda: admission.queued == 1, "another waits for admission")
        assert await drainer.claim() == []
        engine.open_gate()
        assert (await first).status_code == 200 and (await second).status_code == 200
        engine.gate = None
        await run_claimed(drainer)
        await drainer.housekeeping()
        done = await client.batches.retrieve(batch.id)
    assert done.status == "completed"


async def test_a_dead_replica_s_lines_are_run_once_its_lease_runs_out(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    app = batch_app(fake_engine, tmp_path, batch_drain=False, batch_lease_seconds=30)
    clock = Clock(0.0)
    async with serve_with_drainer(app, clock=clock) as (http, drainer):
        client = sdk(http)
        batch = await submit(client, [chat_line(f"r{i}") for i in range(3)])
        clock.now = batch.created_at
        store = gateway(app).store
        dead = await store.batch_lines.claim("dead-replica", 2, now=clock.now, lease=30)
        assert len(dead) == 2
        await run_claimed(drainer)  # only the line nobody holds
        assert engine_calls(fake_engine) == 1
        clock.now += 30
        await run_claimed(drainer)
        await drainer.housekeeping()
        done = await client.batches.retrieve(batch.id)
        outputs = await results(client, done.output_file_id)
    assert done.status == "completed" and sorted(outputs) == ["r0", "r1", "r2"]
    assert engine_calls(fake_engine) == 3


@pytest.mark.parametrize("drain", [True, False], ids=["drainer", "no-drainer"])
async def test_a_replica_without_a_drainer_runs_no_line(
    fake_engine: FakeEngine, tmp_path: Path, drain: bool
) -> None:
    async with serve(batch_app(fake_engine, tmp_path, batch_drain=drain)) as http:
        client = sdk(http)
        batch = await submit(client, [chat_line("r0")])
        if drain:
            assert (await finished(client, batch.id)).status == "completed"
        else:
            assert (await client.batches.retrieve(batch.id)).status == "in_progress"
            assert engine_calls(fake_engine) == 0
