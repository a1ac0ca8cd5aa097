"""Per-IP limits of a real gateway process behind two proxies, with uvicorn in the path: this
test on 127.0.0.1 plays a router, behind an edge proxy at 10.0.0.5 that clients reach; both
trusted, the clients are told apart by the addresses the edge proxy saw."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.processes import server_process

BODY = {"model": "fake", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def test_clients_behind_a_trusted_proxy_have_their_own_per_ip_limits(tmp_path: Path) -> None:
    env = {
        "GATEWAY_REQUESTS_PER_MINUTE": "1",
        "GATEWAY_TRUSTED_PROXIES": "127.0.0.0/8,10.0.0.0/8",
    }
    flags = ("--engine", "fake", "--served-model-name", "fake")
    with server_process(tmp_path, *flags, env=env) as server, httpx.Client(timeout=30) as http:

        def post(forwarded_for: str) -> int:
            url = f"{server.base_url}/v1/chat/completions"
            headers = {"x-forwarded-for": f"{forwarded_for}, 10.0.0.5"}  # + the edge proxy
            return http.post(url, json=BODY, headers=headers).status_code

        assert post("198.51.100.1") == 200
        assert post("198.51.100.1") == 429
        assert post("198.51.100.2") == 200  # another client behind the same proxies
        assert post("198.51.100.3, 198.51.100.2") == 429  # a prepended address is not believed
