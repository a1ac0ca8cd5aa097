"""vllm-router (the real binary, cache_aware policy) in front of two real gateway processes.

The replicas run the fake engine (`--engine fake`): the subject is the wire between router and
gateway (the render calls, the fields the router adds, health checks on /ready), not the model.
Which replica served a request is read from its own /metrics (`gateway_requests_total`).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import ServerProcess, server_process
from tests.scale_out.router import RouterProcess, router_process

CHAT = "/v1/chat/completions"
SHIPPING = "You answer questions for the shipping department of a small furniture company. " * 6
CONTRACTS = "You translate legal contracts between French and German, clause by clause. " * 6


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    tmp = tmp_path_factory.mktemp("replicas")
    with (
        server_process(tmp, "--engine", "fake") as first,
        server_process(tmp, "--engine", "fake") as second,
    ):
        yield [first, second]


@pytest.fixture(scope="module")
def router(
    replicas: list[ServerProcess], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RouterProcess]:
    urls = [replica.base_url for replica in replicas]
    with router_process(tmp_path_factory.mktemp("router"), urls, "--policy=cache_aware") as r:
        yield r


def model_of(router: RouterProcess) -> str:
    name: str = httpx.get(f"{router.base_url}/v1/models", timeout=30).json()["data"][0]["id"]
    return name


def served(replica: ServerProcess, endpoint: str) -> float:
    return replica.sample_sum("gateway_requests_total", endpoint=endpoint, status="200")


def chat(model: str, system: str, question: str) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": question}],
        "max_tokens": 4,
    }


REQUESTS = [
    pytest.param(CHAT, {"messages": [{"role": "user", "content": "Hi"}]}, id="chat"),
    pytest.param(
        CHAT,
        {"messages": [{"role": "user", "content": "Hi"}], "stream": True},
        id="chat-stream",
    ),
    pytest.param("/v1/completions", {"prompt": "Once upon a time"}, id="completions"),
    pytest.param(
        "/v1/completions", {"prompt": ["One", "Two"], "stream": True}, id="completions-stream"
    ),
    pytest.param("/v1/generate", {"prompt": "Write a haiku"}, id="generate"),
    pytest.param("/v1/chat", {"message": "Hi"}, id="task-chat"),
    pytest.param("/v1/classify", {"text": "I love it", "labels": "sentiment"}, id="classify"),
    pytest.param(
        "/v1/summarize",
        {"text": "A long day. It rained. We stayed in.", "max_length": 20},
        id="summarize",
    ),
]


@pytest.mark.parametrize(("path", "body"), REQUESTS)
def test_requests_through_the_router_succeed(
    router: RouterProcess, replicas: list[ServerProcess], path: str, body: dict[str, Any]
) -> None:
    before = sum(served(replica, path) for replica in replicas)
    response = httpx.post(
        f"{router.base_url}{path}", json={"model": model_of(router), **body}, timeout=60
    )
    assert response.status_code == 200, response.text
    if body.get("stream"):
        assert response.text.rstrip().endswith("data: [DONE]")
    else:
        assert response.json()["model"] == model_of(router)
    assert sum(served(replica, path) for replica in replicas) == before + 1


def test_the_router_renders_prompts_on_the_replicas(
    router: RouterProcess, replicas: list[ServerProcess]
) -> None:
    model = model_of(router)
    response = httpx.post(
        f"{router.base_url}{CHAT}", json=chat(model, SHIPPING, "Rendered?"), timeout=60
    )
    assert response.status_code == 200, response.text
    renders = [
        replica.sample_sum("gateway_requests_total", endpoint=f"{path}/render")
        for replica in replicas
        for path in (CHAT, "/v1/completions")
    ]
    ok = [
        replica.sample_sum("gateway_requests_total", endpoint=f"{path}/render", status="200")
        for replica in replicas
        for path in (CHAT, "/v1/completions")
    ]
    assert sum(renders) > 0  # the router asked (it does before routing a request)
    assert ok == renders  # and every answer was a 200


def test_same_prefix_requests_land_on_one_replica(
    router: RouterProcess, replicas: list[ServerProcess]
) -> None:
    """Concurrent requests: by load alone they would spread (cache_aware falls back to the
    least-loaded replica for a prompt it has not seen); a shared prefix keeps them together."""
    model = model_of(router)
    for system in (SHIPPING, CONTRACTS):
        before = [served(replica, CHAT) for replica in replicas]
        bodies = [chat(model, system, f"Question {i}?") for i in range(8)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(
                pool.map(
                    lambda body: (
                        httpx.post(f"{router.base_url}{CHAT}", json=body, timeout=60).status_code
                    ),
                    bodies,
                )
            )
        assert statuses == [200] * 8
        counts = sorted(served(r, CHAT) - b for r, b in zip(replicas, before, strict=True))
        assert counts == [0, 8], f"{system[:20]}...: spread {counts}"


def test_a_killed_replicas_traffic_moves_to_the_other_without_5xx(tmp_path: Path) -> None:
    with (
        server_process(tmp_path, "--engine", "fake") as first,
        server_process(tmp_path, "--engine", "fake") as second,
        router_process(tmp_path, [first.base_url, second.base_url], "--policy=cache_aware") as r,
    ):
        model = model_of(r)
        url = f"{r.base_url}{CHAT}"
        assert httpx.post(url, json=chat(model, SHIPPING, "Warm?"), timeout=60).is_success
        owner, survivor = (first, second) if served(first, CHAT) == 1 else (second, first)
        assert served(owner, CHAT) == 1 and served(survivor, CHAT) == 0

        os.killpg(owner.pid, signal.SIGKILL)  # the replica this prefix sticks to
        owner.wait()
        statuses = [
            httpx.post(url, json=chat(model, SHIPPING, f"After {i}?"), timeout=60).status_code
            for i in range(10)
        ]
        assert statuses == [200] * 10, r.log_text()[-3000:]
        assert served(survivor, CHAT) == 10
        # The health checks on /ready take it out of the rotation too (polled, bounded).
        give_up = time.monotonic() + 30
        while r.workers()[owner.base_url]["is_healthy"]:
            assert time.monotonic() < give_up, "the router never marked the dead replica"
            time.sleep(0.1)
