"""Rate limits in Redis on the real engine: two gateway apps (replicas) sharing the session's
engine and one real Redis; a key's token limit is charged with the tokens the model really
used, on one replica, and refuses on the other."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from service.app import create_app
from service.config import TEST_PROFILE, Settings
from tests.integration.conftest import Borrowed, LiveServer
from tests.redis_server import RedisServer
from tests.servers import serve_on

KEY = "sk-real-engine-shared-limit"
AUTH = {"Authorization": f"Bearer {KEY}"}
TOKENS_PER_MINUTE = 20  # less than one chat request's prompt and reply


@pytest.fixture
def replicas(live_server: LiveServer, redis_process: RedisServer) -> Iterator[list[str]]:
    """Two apps with their limits in one Redis, on the session's engine (and its loop)."""
    engine = live_server.state.engine
    assert engine is not None
    settings = Settings(
        **TEST_PROFILE,
        api_keys=[KEY],
        tokens_per_minute=TOKENS_PER_MINUTE,
        redis_url=redis_process.url,
    )
    with ExitStack() as stack:
        urls = [
            stack.enter_context(
                serve_on(
                    create_app(settings, engine_factory=lambda: Borrowed(engine)),
                    live_server.loop,
                )
            )
            for _ in range(2)
        ]
        yield urls


def test_tokens_used_on_one_replica_are_a_debt_on_the_other(
    replicas: list[str], live_server: LiveServer
) -> None:
    body = {
        "model": live_server.model,
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 8,
        "temperature": 0,
    }
    with httpx.Client(timeout=120) as http:
        first = http.post(f"{replicas[0]}/v1/chat/completions", json=body, headers=AUTH)
        assert first.status_code == 200, first.text
        used = first.json()["usage"]["total_tokens"]
        assert used > TOKENS_PER_MINUTE  # the real prompt and reply: a debt
        second = http.post(f"{replicas[1]}/v1/chat/completions", json=body, headers=AUTH)
    assert second.status_code == 429, second.text
    error = second.json()["error"]
    assert error["type"] == "tokens" and error["code"] == "rate_limit_exceeded"
    assert "shared by all replicas" in error["message"]
    # The debt is repaid at 20 tokens a minute: the wait says how many tokens were charged.
    wait = int(second.headers["retry-after"])
    assert (used - TOKENS_PER_MINUTE) * 60 / TOKENS_PER_MINUTE - 2 <= wait
    assert wait <= (used - TOKENS_PER_MINUTE) * 60 / TOKENS_PER_MINUTE + 1
