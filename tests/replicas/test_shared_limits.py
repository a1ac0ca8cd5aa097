"""Two real gateway processes (fake engine) sharing one real Redis: one rate limit for both,
and what they do when Redis goes away."""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractContextManager
from pathlib import Path

import httpx

from tests.processes import ServerProcess, server_process
from tests.redis_server import RedisServer

KEY = "sk-shared-limit-test"
AUTH = {"Authorization": f"Bearer {KEY}"}
BODY = {"model": "fake", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
PER_MINUTE = 30
SENT = 60


def replica_env(redis: RedisServer, **settings: str) -> dict[str, str]:
    env = {"GATEWAY_API_KEYS": KEY, "GATEWAY_REDIS_URL": redis.url}
    return env | {f"GATEWAY_{name.upper()}": value for name, value in settings.items()}


def fake_replica(tmp: Path, env: dict[str, str]) -> AbstractContextManager[ServerProcess]:
    return server_process(tmp, "--engine", "fake", "--served-model-name", "fake", env=env)


async def send(
    http: httpx.AsyncClient, replicas: list[ServerProcess], count: int, concurrency: int = 8
) -> list[tuple[int, httpx.Response]]:
    """`count` chat requests, alternating between the replicas, `concurrency` at a time."""
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> tuple[int, httpx.Response]:
        replica = i % len(replicas)
        async with slots:
            url = f"{replicas[replica].base_url}/v1/chat/completions"
            return replica, await http.post(url, json=BODY, headers=AUTH)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def test_a_key_limit_holds_across_two_replicas(
    tmp_path: Path, redis_process: RedisServer
) -> None:
    env = replica_env(redis_process, requests_per_minute=str(PER_MINUTE))
    with fake_replica(tmp_path, env) as a, fake_replica(tmp_path, env) as b:
        async with httpx.AsyncClient(timeout=30) as http:
            started = time.monotonic()
            answers = await send(http, [a, b], SENT)
            elapsed = time.monotonic() - started
    statuses = [response.status_code for _, response in answers]
    assert set(statuses) <= {200, 429}, statuses
    accepted = [replica for replica, response in answers if response.status_code == 200]
    # The bucket starts full (30) and refills 1 per 2 s while the burst lasts.
    assert PER_MINUTE <= len(accepted) <= PER_MINUTE + int(elapsed * PER_MINUTE / 60)
    assert set(accepted) == {0, 1}  # both replicas admitted their share of the one limit
    refused = next(r for _, r in answers if r.status_code == 429)
    assert "shared by all replicas" in refused.json()["error"]["message"]
    assert int(refused.headers["retry-after"]) >= 1


async def test_redis_stopping_mid_run_fails_open_or_closed_as_set(
    tmp_path: Path, redis_process: RedisServer
) -> None:
    env = replica_env(redis_process, requests_per_minute="1000", redis_timeout_seconds="0.5")
    with (
        fake_replica(tmp_path, env | {"GATEWAY_REDIS_FAILURE": "open"}) as open_,
        fake_replica(tmp_path, env | {"GATEWAY_REDIS_FAILURE": "closed"}) as closed,
    ):
        async with httpx.AsyncClient(timeout=30) as http:
            before = await send(http, [open_, closed], 10)
            redis_process.stop()
            after = await send(http, [open_, closed], 20)
        errors = [r.sample_sum("gateway_ratelimit_backend_errors_total") for r in (open_, closed)]
        logs = [r.log_text() for r in (open_, closed)]
    assert [r.status_code for _, r in before] == [200] * 10
    assert [r.status_code for replica, r in after if replica == 0] == [200] * 10
    for _, response in (answer for answer in after if answer[0] == 1):
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "rate_limit_unavailable"
        assert response.headers["retry-after"] == "1"
    assert errors == [10, 10]
    assert "failing open" in logs[0] and "failing closed" in logs[1]
