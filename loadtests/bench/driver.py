"""The load driver: one asyncio process, httpx streaming, on the method of vLLM's serving benchmark.

Every request streams with `stream_options.include_usage`, so output token counts come from the
server's own usage chunk. Time to first token is taken at the first chunk that carries text (a
role-only opening chunk does not count: servers differ in when they send it); inter-token
latencies are the gaps between later text chunks. No per-token printing or logging.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from loadtests import workload
from loadtests.bench.config import BenchConfig

Phase = Literal["closed", "poisson"]


@dataclass(frozen=True, slots=True)
class Level:
    """One load level and its requests, identical (bytes and arrival times) for every server."""

    phase: Phase
    value: float  # concurrency (closed) or requests/s (poisson)
    bodies: tuple[bytes, ...]
    arrivals: tuple[float, ...] = ()  # poisson: send offsets in seconds

    @property
    def key(self) -> str:
        return f"c={int(self.value)}" if self.phase == "closed" else f"rate={self.value:g}/s"


@dataclass(slots=True)
class Result:
    ok: bool = False
    error: str = ""
    start: float = 0.0
    end: float = 0.0
    ttft: float | None = None  # seconds
    itl: list[float] = field(default_factory=list)  # seconds
    chunks: int = 0  # stream events that carried text (a server may put several tokens in one)
    output_tokens: int = 0
    prompt_tokens: int = 0
    overhead_ms: float | None = None  # the gateway's x-gateway-overhead-ms, when sent

    @property
    def e2e(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class LevelRun:
    results: list[Result]
    duration_s: float


def build_levels(config: BenchConfig) -> list[Level]:
    """The seeded workload: a shuffled cycle of the prompt set for every level."""
    prompts = workload.load_prompts(config.prompts)
    levels: list[Level] = []

    def bodies(tag: str, count: int, *, max_tokens: int, ignore_eos: bool) -> tuple[bytes, ...]:
        rng = random.Random(f"{config.seed}-{tag}")
        chosen = [rng.choice(prompts) for _ in range(count)]
        if config.endpoint == "chat":
            return tuple(
                workload.encode(
                    workload.chat_body(
                        config.model_name,
                        p,
                        max_tokens=max_tokens,
                        stream=True,
                        ignore_eos=ignore_eos,
                    )
                )
                for p in chosen
            )
        return tuple(
            workload.encode(
                {
                    **workload.completion_body(
                        config.model_name, p, max_tokens=max_tokens, stream=True
                    ),
                    **({"ignore_eos": True} if ignore_eos else {}),
                }
            )
            for p in chosen
        )

    for users in config.concurrency:
        count = max(config.min_requests, users * config.requests_per_user)
        levels.append(
            Level(
                "closed",
                users,
                bodies(f"c{users}", count, max_tokens=config.output_len, ignore_eos=True),
            )
        )
    for rate in config.rates:
        rng = random.Random(f"{config.seed}-arrivals-{rate}")
        offsets, t = [], 0.0
        for _ in range(config.requests_per_rate):
            offsets.append(t)
            t += rng.expovariate(rate)
        levels.append(
            Level(
                "poisson",
                rate,
                bodies(
                    f"r{rate}",
                    config.requests_per_rate,
                    max_tokens=config.natural_max_tokens,
                    ignore_eos=False,
                ),
                tuple(offsets),
            )
        )
    return levels


def warmup_bodies(config: BenchConfig) -> list[bytes]:
    prompts = workload.load_prompts(config.prompts)
    return [
        workload.encode(workload.chat_body(config.model_name, p, max_tokens=8, stream=True))
        if config.endpoint == "chat"
        else workload.encode(
            workload.completion_body(config.model_name, p, max_tokens=8, stream=True)
        )
        for p in prompts[: config.warmup_requests]
    ]


def _text(event: dict[str, Any]) -> bool:
    for choice in event.get("choices") or ():
        if choice.get("text") or (choice.get("delta") or {}).get("content"):
            return True
    return False


async def send(client: httpx.AsyncClient, url: str, body: bytes) -> Result:
    result = Result(start=time.perf_counter())
    last = result.start
    try:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        async with client.stream("POST", url, content=body, headers=headers) as response:
            overhead = response.headers.get("x-gateway-overhead-ms")
            result.overhead_ms = float(overhead) if overhead is not None else None
            if response.status_code != 200:
                await response.aread()
                result.error = f"HTTP {response.status_code}: {response.text[:200]}"
                return result
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                if "error" in event:
                    result.error = str(event["error"].get("message", event["error"]))[:200]
                    continue
                if _text(event):
                    result.chunks += 1
                    now = time.perf_counter()
                    if result.ttft is None:
                        result.ttft = now - result.start
                    else:
                        result.itl.append(now - last)
                    last = now
                usage = event.get("usage")
                if usage:
                    result.output_tokens = int(usage.get("completion_tokens") or 0)
                    result.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        result.ok = not result.error and result.ttft is not None and result.output_tokens > 0
        if not result.ok and not result.error:
            result.error = "stream ended without text or usage"
    except (httpx.HTTPError, json.JSONDecodeError) as err:
        result.error = f"{type(err).__name__}: {err}"[:200]
    finally:
        result.end = time.perf_counter()
    return result


async def run_level(
    client: httpx.AsyncClient, url: str, level: Level, *, timeout_s: float
) -> LevelRun:
    """Run one level to completion (bounded by `timeout_s`; unfinished requests are errors)."""
    results: list[Result] = []
    began = time.perf_counter()

    async def closed_loop() -> None:
        queue = list(reversed(level.bodies))

        async def user() -> None:
            while queue:
                results.append(await send(client, url, queue.pop()))

        await asyncio.gather(*(user() for _ in range(int(level.value))))

    async def poisson() -> None:
        async def later(offset: float, body: bytes) -> None:
            await asyncio.sleep(max(0.0, began + offset - time.perf_counter()))
            results.append(await send(client, url, body))

        await asyncio.gather(
            *(later(o, b) for o, b in zip(level.arrivals, level.bodies, strict=True))
        )

    try:
        async with asyncio.timeout(timeout_s):
            await (closed_loop() if level.phase == "closed" else poisson())
    except TimeoutError:
        missing = len(level.bodies) - len(results)
        results.extend(
            Result(error=f"level timeout after {timeout_s:.0f} s") for _ in range(missing)
        )
    return LevelRun(results, time.perf_counter() - began)


async def warm_up(client: httpx.AsyncClient, url: str, bodies: list[bytes]) -> None:
    for body in bodies:
        result = await send(client, url, body)
        if not result.ok:
            raise RuntimeError(f"warm-up request failed: {result.error}")


def make_client(request_timeout_s: float) -> httpx.AsyncClient:
    """No connection cap (Poisson load may hold many streams open) and no proxies from the env.

    Idle connections are dropped after 2 s, before either server's keep-alive timeout (uvicorn's
    5 s in both) can close one just as a request is sent on it: with httpx's default (also 5 s)
    a request now and then failed with an empty `ReadError` that never reached the server,
    more often when a busy machine delayed the server's event loop.
    """
    return httpx.AsyncClient(
        timeout=httpx.Timeout(request_timeout_s, connect=10.0),
        limits=httpx.Limits(
            max_connections=None, max_keepalive_connections=256, keepalive_expiry=2.0
        ),
        trust_env=False,
    )
