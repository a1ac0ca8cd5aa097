"""CORS: off by default; when configured, preflights need no key and errors carry the headers."""

from __future__ import annotations

from service.engine.fake import FakeEngine
from tests.api.helpers import AUTH, CHAT, KEY, chat_body, make_app, serve


def preflight_headers() -> dict[str, str]:
    return {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-request-timeout",
    }


async def test_cors_preflight_and_headers_when_configured(fake_engine: FakeEngine) -> None:
    app = make_app(fake_engine, api_keys=[KEY], cors_allow_origins=["https://app.example"])
    async with serve(app) as http:
        response = await http.options(CHAT, headers=preflight_headers())  # no key on a preflight
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        allowed = response.headers["access-control-allow-headers"].lower()
        assert {"authorization", "content-type", "x-request-timeout"} <= set(allowed.split(", "))
        origin = {"Origin": "https://app.example"}
        response = await http.post(CHAT, json=chat_body(), headers=origin)  # no key: 401
        assert response.status_code == 401
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        exposed = response.headers["access-control-expose-headers"].lower()
        assert {"x-request-id", "retry-after"} <= set(exposed.split(", "))
        response = await http.post(CHAT, json=chat_body(), headers={**origin, **AUTH})
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        evil = {**preflight_headers(), "Origin": "https://evil.example"}
        response = await http.options(CHAT, headers=evil)
        assert "access-control-allow-origin" not in response.headers


async def test_no_cors_by_default(fake_engine: FakeEngine) -> None:
    app = make_app(fake_engine)
    async with serve(app) as http:
        response = await http.options(CHAT, headers=preflight_headers())
        assert response.status_code == 405
        assert "access-control-allow-origin" not in response.headers
        response = await http.post(CHAT, json=chat_body(), headers={"Origin": "https://a.example"})
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers
