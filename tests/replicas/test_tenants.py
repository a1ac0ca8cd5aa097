"""Tenants across real gateway processes (fake engine): two replicas on one real PostgreSQL
enforce one token budget and see each other's runtime keys made and revoked; one replica on
SQLite killed with SIGKILL and started again still refuses a key over its budget."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from tests.conftest import HANG_GUARD
from tests.processes import ServerProcess, server_process

ADMIN_KEY = "sk-replica-admin-1"
TEAM_KEY = "sk-replica-team-2"
BUDGET = 40  # tokens a day; a fake-engine chat request uses 9 (3 prompt, 6 completion)
PER_REQUEST = 9
BODY = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}
CHAT = "/v1/chat/completions"
USAGE = "/v1/organization/usage/completions"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def until(condition: Callable[[], bool], what: str) -> None:
    give_up = time.monotonic() + HANG_GUARD
    while not condition():
        if time.monotonic() > give_up:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)  # polling another process's state


def key_file(tmp: Path) -> Path:
    path = tmp / "keys.toml"
    path.write_text(
        f'[[keys]]\nname = "root"\nkey = "{ADMIN_KEY}"\nadmin = true\n'
        f'[[keys]]\nname = "team"\nkey = "{TEAM_KEY}"\ntokens_per_day = {BUDGET}\n'
    )
    return path


@contextmanager
def replicas(tmp: Path, count: int, **env: str) -> Iterator[list[ServerProcess]]:
    settings = {
        "GATEWAY_API_KEY_FILE": str(key_file(tmp)),
        "GATEWAY_TENANTS_SYNC_SECONDS": "0.2",
        **env,
    }
    flags = ("--engine", "fake", "--served-model-name", "fake")
    with ExitStack() as stack:
        yield [stack.enter_context(server_process(tmp, *flags, env=settings)) for _ in range(count)]


def test_two_replicas_on_one_postgresql_enforce_one_budget(
    tmp_path: Path, postgres_url: str
) -> None:
    with (
        replicas(tmp_path, 2, GATEWAY_DATABASE_URL=postgres_url) as pair,
        httpx.Client(timeout=30) as http,
    ):
        accepted = 0
        turn = 0
        while True:
            here, there = pair[turn % 2], pair[(turn + 1) % 2]
            response = http.post(f"{here.base_url}{CHAT}", json=BODY, headers=bearer(TEAM_KEY))
            if response.status_code == 429:
                break
            assert response.status_code == 200, response.text
            accepted += response.json()["usage"]["total_tokens"]
            # A usage report syncs its replica: the first writes, the other reads it back.
            for replica in (here, there):
                http.get(
                    f"{replica.base_url}{USAGE}", params={"start_time": 0}, headers=bearer(TEAM_KEY)
                )
            turn += 1
        assert response.json()["error"]["code"] == "budget_exceeded"
        # One budget: the requests both admitted add up to it (separate budgets: twice it).
        assert BUDGET <= accepted < BUDGET + PER_REQUEST
        for replica in pair:
            refused = http.post(f"{replica.base_url}{CHAT}", json=BODY, headers=bearer(TEAM_KEY))
            assert refused.status_code == 429
            assert refused.headers["x-should-retry"] == "false"


def test_a_budget_spent_on_one_replica_refuses_on_the_other_within_a_sync(
    tmp_path: Path, postgres_url: str
) -> None:
    with (
        replicas(tmp_path, 2, GATEWAY_DATABASE_URL=postgres_url) as (a, b),
        httpx.Client(timeout=30) as http,
    ):
        while (
            http.post(f"{a.base_url}{CHAT}", json=BODY, headers=bearer(TEAM_KEY)).status_code == 200
        ):
            pass
        until(
            lambda: (
                http.post(f"{b.base_url}{CHAT}", json=BODY, headers=bearer(TEAM_KEY)).status_code
                == 429
            ),
            "the second replica refuses the key",
        )


def test_a_key_made_on_one_replica_works_on_the_other_and_revoked_fails_on_both(
    tmp_path: Path, postgres_url: str
) -> None:
    with (
        replicas(tmp_path, 2, GATEWAY_DATABASE_URL=postgres_url) as (a, b),
        httpx.Client(timeout=30) as http,
    ):
        made = http.post(
            f"{a.base_url}/v1/organization/admin_api_keys",
            json={"name": "late-tenant"},
            headers=bearer(ADMIN_KEY),
        ).json()
        key = bearer(made["value"])
        assert http.post(f"{a.base_url}{CHAT}", json=BODY, headers=key).status_code == 200
        until(
            lambda: http.post(f"{b.base_url}{CHAT}", json=BODY, headers=key).status_code == 200,
            "the other replica accepts the new key",
        )
        deleted = http.delete(
            f"{b.base_url}/v1/organization/admin_api_keys/{made['id']}", headers=bearer(ADMIN_KEY)
        )
        assert deleted.status_code == 200, deleted.text
        assert http.post(f"{b.base_url}{CHAT}", json=BODY, headers=key).status_code == 401
        until(
            lambda: http.post(f"{a.base_url}{CHAT}", json=BODY, headers=key).status_code == 401,
            "the first replica refuses the revoked key",
        )


def test_a_replica_killed_and_started_again_on_sqlite_still_refuses(tmp_path: Path) -> None:
    data = {"GATEWAY_DATA_DIR": str(tmp_path / "data")}
    with replicas(tmp_path, 1, **data) as (server,), httpx.Client(timeout=30) as http:
        while (
            http.post(f"{server.base_url}{CHAT}", json=BODY, headers=bearer(TEAM_KEY)).status_code
            == 200
        ):
            pass
        until(
            lambda: (
                server.sample_sum("gateway_key_requests_total", key="team") >= BUDGET // PER_REQUEST
            ),
            "the requests are counted",
        )
        # Written within a sync: a usage report forces one rather than waiting for it.
        http.get(f"{server.base_url}{USAGE}", params={"start_time": 0}, headers=bearer(TEAM_KEY))
        server.signal(signal.SIGKILL)
        server.wait()
    with replicas(tmp_path, 1, **data) as (restarted,), httpx.Client(timeout=30) as http:
        response = http.post(f"{restarted.base_url}{CHAT}", json=BODY, headers=bearer(TEAM_KEY))
        assert response.status_code == 429, response.text
        assert response.json()["error"]["code"] == "budget_exceeded"
