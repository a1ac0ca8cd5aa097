"""Fair share on the real engine: with two in flight, tenant A queues twelve requests, then
tenant B sends three, one after another. With fair share B's are served while A's queue is still
draining; first come, first served, B waits behind all of A's. Asserted by the order the answers
came in, not by time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.app import create_app
from service.config import TEST_PROFILE, Settings
from tests.conftest import HANG_GUARD
from tests.integration.conftest import Borrowed, LiveServer
from tests.servers import serve_on

KEY_A, KEY_B = "sk-flooding-tenant-a", "sk-patient-tenant-b"
FLOOD = 12
IN_FLIGHT = 2


@pytest.fixture(params=[pytest.param(True, id="fair-share"), pytest.param(False, id="fcfs")])
def gateway(
    request: pytest.FixtureRequest, live_server: LiveServer, tmp_path: Path
) -> Iterator[tuple[str, bool]]:
    """An app on the session's engine with two tenants and two sequences in flight."""
    keys = tmp_path / "keys.toml"
    keys.write_text(
        f'[[keys]]\nname = "a"\nkey = "{KEY_A}"\n[[keys]]\nname = "b"\nkey = "{KEY_B}"\n'
    )
    settings = Settings(
        **TEST_PROFILE,
        api_key_file=keys,
        data_dir=tmp_path / "data",
        max_inflight_sequences=IN_FLIGHT,
        max_queued_sequences=64,
        fair_share=request.param,
    )
    engine = live_server.state.engine
    assert engine is not None
    app = create_app(settings, engine_factory=lambda: Borrowed(engine))
    with serve_on(app, live_server.loop) as url:
        yield url, request.param
        assert app.state.gateway.admission.queued == 0


async def test_the_second_tenant_is_served_before_the_first_ones_queue_drains(
    gateway: tuple[str, bool], live_server: LiveServer
) -> None:
    url, fair = gateway
    body = {
        "model": live_server.model,
        "messages": [{"role": "user", "content": "Count to twenty."}],
        "max_tokens": 16,
        "ignore_eos": True,
        "temperature": 0,
    }
    answered: list[str] = []

    async def send(http: httpx.AsyncClient, key: str, name: str) -> None:
        response = await http.post(
            f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 200, response.text
        answered.append(name)

    async with httpx.AsyncClient(timeout=300) as http:
        flood = [asyncio.create_task(send(http, KEY_A, f"a{i}")) for i in range(FLOOD)]
        give_up = time.monotonic() + HANG_GUARD
        while await _queued(http, url) < FLOOD - IN_FLIGHT:  # A's queue has formed
            assert time.monotonic() < give_up, "A's requests never queued"
            await asyncio.sleep(0.01)  # polling the server's queue depth
        for i in range(3):
            await send(http, KEY_B, f"b{i}")
        b_done = len(answered)
        await asyncio.gather(*flood)
    a_before_b = sum(1 for name in answered[:b_done] if name.startswith("a"))
    if fair:  # B waited behind about one of A's requests each time, not behind A's queue
        assert a_before_b < FLOOD, answered
    else:  # first come, first served: all of A's first
        assert a_before_b == FLOOD, answered
    assert sorted(answered) == sorted([f"a{i}" for i in range(FLOOD)] + ["b0", "b1", "b2"])


async def _queued(http: httpx.AsyncClient, url: str) -> int:
    """The queue depth the load report shows (`/get_load`, open, no key)."""
    return int((await http.get(f"{url}/get_load")).json()["queue_depth"])
