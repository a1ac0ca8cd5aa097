"""Reliability on real server processes and the real engine: API keys and rate limits, a burst
beyond the admission bound, 50 client disconnects, SIGTERM under load, a SIGKILLed engine core.

Two engine starts in all: one server for everything up to SIGTERM (which ends it), and one
whose engine core is killed; a third server stops before its engine starts (a KV cache too
small). Waits poll the server's state with a generous hang guard; nothing here asserts a
duration.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.processes import ServerProcess, free_port, profile_flags, server_process

pytestmark = pytest.mark.engine

MAIN_KEY = "sk-test-main-0123456789"
LIMITED_KEY = "sk-test-limited-0123456789"
RETRY_KEY = "sk-test-retry-0123456789"  # 60 a minute: one more each second once spent
INFLIGHT, QUEUED = 8, 56  # the admission bound: 64 sequences
HANG_GUARD = 300.0


def key_file(tmp: Path) -> Path:
    path = tmp / "keys.toml"
    path.write_text(
        f'''
[[keys]]
name = "main"
key_sha256 = "{hashlib.sha256(MAIN_KEY.encode()).hexdigest()}"

[[keys]]
name = "limited"
key = "{LIMITED_KEY}"
requests_per_minute = 2

[[keys]]
name = "retry"
key = "{RETRY_KEY}"
requests_per_minute = 60
'''
    )
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("lifecycle")
    with server_process(
        tmp,
        f"--api-key-file={key_file(tmp)}",
        f"--max-inflight-sequences={INFLIGHT}",
        f"--max-queued-sequences={QUEUED}",
        "--drain-timeout-seconds=240",
    ) as process:
        yield process


def auth(key: str = MAIN_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def chat(max_tokens: int, *, stream: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "messages": [{"role": "user", "content": "Count from one to one hundred."}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "ignore_eos": True,
        "stream": stream,
        **extra,
    }


def until(condition: Callable[[], bool], what: str, guard: float = HANG_GUARD) -> None:
    give_up = time.monotonic() + guard
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)  # polling a server process's state


async def async_until(condition: Callable[[], bool], what: str) -> None:
    give_up = time.monotonic() + HANG_GUARD
    while not await asyncio.to_thread(condition):
        if time.monotonic() > give_up:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.05)


def engine_requests(server: ServerProcess) -> float:
    """Requests the engine has finished, whatever the reason (vLLM's own counter)."""
    return server.metrics().get("vllm:request_success_total", 0.0)


def engine_busy(server: ServerProcess) -> float:
    m = server.metrics()
    return m.get("vllm:num_requests_running", 0.0) + m.get("vllm:num_requests_waiting", 0.0)


# ---------------------------------------------------------------------------- API keys
def test_api_keys_guard_the_api_but_not_the_probes(server: ServerProcess) -> None:
    url = f"{server.base_url}/v1/chat/completions"
    missing = httpx.post(url, json=chat(2))
    wrong = httpx.post(url, json=chat(2), headers=auth("sk-wrong"))
    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert response.headers["www-authenticate"].startswith("Bearer")
    for path in ("/health", "/ready", "/metrics"):
        assert httpx.get(f"{server.base_url}{path}").status_code == 200
    ok = httpx.post(url, json=chat(2), headers=auth(), timeout=120)
    assert ok.status_code == 200, ok.text
    key_id = hashlib.sha256(MAIN_KEY.encode()).hexdigest()[:12]
    # The access line is written just after the last byte is sent.
    until(lambda: key_id in server.log_text(), "the access log names the hashed key id")
    log = server.log_text()
    assert MAIN_KEY not in log and "sk-wrong" not in log


def test_a_key_over_its_rate_limit_gets_429_with_retry_after(server: ServerProcess) -> None:
    url = f"{server.base_url}/v1/chat/completions"
    before = engine_requests(server)
    statuses = [
        httpx.post(url, json=chat(2), headers=auth(LIMITED_KEY), timeout=120) for _ in range(3)
    ]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    refused = statuses[2]
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(refused.headers["retry-after"]) >= 1
    assert engine_requests(server) - before == 2  # the refused request never reached vLLM


def test_the_client_sdk_waits_out_a_429_and_then_succeeds(server: ServerProcess) -> None:
    from llm_gateway import Client

    statuses: list[int] = []
    http_client = httpx.Client(event_hooks={"response": [lambda r: statuses.append(r.status_code)]})
    client = Client(
        base_url=f"{server.base_url}/v1", api_key=RETRY_KEY, http_client=http_client, max_retries=3
    )
    for _ in range(600):  # spend the bucket (it refills 1/s) on a route the engine never sees
        response = httpx.get(f"{server.base_url}/v1/models", headers=auth(RETRY_KEY))
        if response.status_code == 429:
            break
        assert response.status_code == 200
    assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1
    result = client.tasks.classify(text="I love this phone!", labels="sentiment")
    assert statuses[0] == 429 and statuses[-1] == 200, statuses
    assert result.results[0].label in {"positive", "negative", "neutral"}
    assert result.request_id


# ---------------------------------------------------------------- burst beyond the bound
def test_a_burst_of_ten_times_the_bound_is_admitted_or_refused_never_lost(
    server: ServerProcess, record_property: Callable[[str, object], None]
) -> None:
    burst = 10 * (INFLIGHT + QUEUED)
    before = engine_requests(server)

    async def fire() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        async with httpx.AsyncClient(
            base_url=server.base_url, timeout=HANG_GUARD, limits=limits
        ) as http:
            return await asyncio.gather(
                *(
                    http.post(
                        "/v1/chat/completions",
                        json=chat(16),
                        headers={**auth(), "x-request-id": f"burst-{i}"},
                    )
                    for i in range(burst)
                )
            )

    responses = asyncio.run(fire())
    statuses = collections.Counter(r.status_code for r in responses)
    record_property("burst_statuses", dict(statuses))
    assert set(statuses) <= {200, 503}, statuses
    ids = [r.headers["x-request-id"] for r in responses]
    assert sorted(ids) == sorted(f"burst-{i}" for i in range(burst))  # none lost or duplicated
    for response in responses:
        if response.status_code == 503:
            assert response.json()["error"]["code"] == "overloaded"
            assert int(response.headers["retry-after"]) >= 1
        else:
            assert response.json()["choices"][0]["finish_reason"] == "length"
    # The bound admits at least its own size; the rest of a burst this large is refused.
    assert statuses[200] >= INFLIGHT + QUEUED
    assert statuses[503] > 0
    # Exactly the admitted requests reached the engine: the refused ones cost it nothing.
    until(lambda: engine_requests(server) - before == statuses[200], "engine count settled")
    print(f"burst of {burst}: {dict(statuses)}")


# -------------------------------------------------------------------------- disconnects
def test_fifty_clients_leaving_mid_generation_leave_the_engine_idle(
    server: ServerProcess, record_property: Callable[[str, object], None]
) -> None:
    before = server.metrics()
    aborted_before = server.sample_sum("gateway_requests_total", outcome="aborted")

    async def leave() -> None:
        first_token = asyncio.Event()
        async with httpx.AsyncClient(base_url=server.base_url, timeout=HANG_GUARD) as http:

            async def stream_until_first_token() -> None:
                body = chat(1500, stream=True)
                async with http.stream(
                    "POST", "/v1/chat/completions", json=body, headers=auth()
                ) as response:
                    assert response.status_code == 200
                    async for line in response.aiter_lines():
                        if line.startswith("data: {") and json.loads(line[6:])["choices"][0][
                            "delta"
                        ].get("content"):
                            first_token.set()
                            await asyncio.Event().wait()  # hold the stream open until cancelled

            def admitted(count: int) -> Callable[[], bool]:
                def check() -> bool:
                    m = server.metrics()
                    return m["gateway_sequences_in_flight"] + m["gateway_queue_depth"] == count

                return check

            def plain_request() -> asyncio.Task[httpx.Response]:
                body = chat(1500)
                return asyncio.create_task(
                    http.post("/v1/chat/completions", json=body, headers=auth())
                )

            # In this order, so that both kinds are generating (8 in flight) and both are queued.
            plain = [plain_request() for _ in range(INFLIGHT // 2)]
            await async_until(admitted(INFLIGHT // 2), "the first non-streaming requests run")
            streams = [asyncio.create_task(stream_until_first_token()) for _ in range(25)]
            await asyncio.wait_for(first_token.wait(), HANG_GUARD)  # a stream is generating
            plain += [plain_request() for _ in range(25 - INFLIGHT // 2)]
            await async_until(admitted(50), "all 50 requests were admitted or queued")
            assert engine_busy(server) > 0
            for task in (*streams, *plain):
                task.cancel()  # each closes its connection
            await asyncio.gather(*streams, *plain, return_exceptions=True)

    asyncio.run(leave())
    until(lambda: engine_busy(server) == 0, "vLLM's running + waiting reached 0")
    after = server.metrics()
    assert after["gateway_sequences_in_flight"] == 0 and after["gateway_queue_depth"] == 0
    leaked = engine_busy(server)
    # Usage generated before the aborts is counted.
    generated = after["gateway_completion_tokens_total"] - before["gateway_completion_tokens_total"]
    record_property("disconnects", {"clients": 50, "leaked": leaked, "tokens": generated})
    assert generated > 0
    aborted = server.sample_sum("gateway_requests_total", outcome="aborted") - aborted_before
    assert aborted == 50


# ---------------------------------------------------------------------- SIGTERM under load
def test_sigterm_drains_admitted_requests_then_exits_zero(server: ServerProcess) -> None:
    """Last in the module: it ends the shared server."""
    count = 12

    async def run() -> tuple[list[httpx.Response], httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=HANG_GUARD) as http:
            work = [
                asyncio.create_task(
                    http.post("/v1/chat/completions", json=chat(48), headers=auth())
                )
                for _ in range(count)
            ]

            def admitted() -> bool:
                m = server.metrics()
                return m["gateway_sequences_in_flight"] + m["gateway_queue_depth"] == count

            await async_until(admitted, "every request was admitted")
            server.signal(signal.SIGTERM)
            await async_until(
                lambda: httpx.get(f"{server.base_url}/ready").status_code == 503,
                "readiness turned false",
            )
            ready = await http.get("/ready")
            refused = await http.post("/v1/chat/completions", json=chat(2), headers=auth())
            return list(await asyncio.gather(*work)), ready, refused

    responses, ready, refused = asyncio.run(run())
    assert ready.json()["error"]["code"] == "draining"
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "draining"
    assert [r.status_code for r in responses] == [200] * count
    assert all(r.json()["choices"][0]["finish_reason"] == "length" for r in responses)
    assert server.wait() == 0


# ------------------------------------------------------------------ the engine core killed
def test_a_killed_engine_core_makes_the_server_unready_and_exit_nonzero(
    tmp_path: Path,
) -> None:
    with server_process(tmp_path) as server:
        children = psutil.Process(server.pid).children(recursive=True)
        cores = [c for c in children if "EngineCore" in " ".join([c.name(), *c.cmdline()])]
        assert cores, [(c.name(), c.cmdline()) for c in children]

        async def kill_under_load() -> tuple[httpx.Response, httpx.Response]:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=HANG_GUARD) as http:
                in_flight = asyncio.create_task(http.post("/v1/chat/completions", json=chat(1500)))
                await async_until(lambda: engine_busy(server) > 0, "the engine was generating")
                for core in cores:
                    core.send_signal(signal.SIGKILL)
                failed = await in_flight
                await async_until(
                    lambda: (
                        server.process.poll() is not None
                        or httpx.get(f"{server.base_url}/ready").status_code == 503
                    ),
                    "readiness turned false",
                )
                try:
                    after = await http.post("/v1/chat/completions", json=chat(2))
                except httpx.TransportError:  # the server already exited
                    after = httpx.Response(503, json={"error": {"code": "engine_dead"}})
                return failed, after

        failed, after = asyncio.run(kill_under_load())
        assert failed.status_code == 503, failed.text
        assert failed.json()["error"]["code"] == "engine_dead"
        assert after.status_code == 503
        assert server.wait() != 0


# ------------------------------------------------------------- a KV cache too small to start
def test_a_kv_cache_too_small_for_one_request_stops_the_start_naming_the_setting(
    tmp_path: Path,
) -> None:
    """0.05 GiB holds 1,120 tokens of the default model (35 blocks of 32); the test profile's
    max_model_len is 2048. The server exits non-zero before vLLM's engine core is spawned, and
    its log says which setting, what it holds and what one request needs."""
    log = tmp_path / "server.log"
    flag = "--cpu-kvcache-space=0.05"
    command = [sys.executable, "-m", "service", "--port", str(free_port()), "--log-format", "text"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, *profile_flags(flag), flag],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        code = process.wait(timeout=HANG_GUARD)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
    text = log.read_text(errors="replace")
    assert code != 0, text
    assert "the engine failed to start: cpu_kvcache_space=0.05 GiB holds 1,120 tokens" in text
    assert "fewer than one request at max_model_len 2048 needs (0.09 GiB)" in text
    assert "Initializing a V1 LLM engine" not in text  # refused before the engine core
