"""Per-IP rate limits behind a proxy: clients told apart by X-Forwarded-For from trusted
proxies only (the in-process client's address is 127.0.0.1)."""

from __future__ import annotations

import httpx

from service.engine.fake import FakeEngine
from tests.api.helpers import CHAT, assert_openai_error, chat_body, make_app, serve


def from_client(address: str) -> dict[str, str]:
    return {"x-forwarded-for": address}


async def post(http: httpx.AsyncClient, address: str) -> httpx.Response:
    return await http.post(CHAT, json=chat_body(), headers=from_client(address))


async def test_behind_a_trusted_proxy_each_client_has_its_own_limit(
    fake_engine: FakeEngine,
) -> None:
    app = make_app(fake_engine, requests_per_minute=1, trusted_proxies=["127.0.0.0/8"])
    async with serve(app) as http:
        assert (await post(http, "198.51.100.1")).status_code == 200
        assert_openai_error(await post(http, "198.51.100.1"), 429, code="rate_limit_exceeded")
        assert (await post(http, "198.51.100.2")).status_code == 200  # another client
        # A client cannot pose as another by prepending to the header: the proxy appended it.
        forged = await post(http, "198.51.100.3, 198.51.100.1")
        assert_openai_error(forged, 429, code="rate_limit_exceeded")


async def test_from_an_untrusted_peer_the_header_is_ignored(fake_engine: FakeEngine) -> None:
    app = make_app(fake_engine, requests_per_minute=1, trusted_proxies=["10.0.0.0/8"])
    async with serve(app) as http:
        assert (await post(http, "198.51.100.1")).status_code == 200
        # Counted as 127.0.0.1 both times: a new X-Forwarded-For does not buy a new bucket.
        assert_openai_error(await post(http, "198.51.100.2"), 429, code="rate_limit_exceeded")
