"""`/playground`: when it is served, what it serves, and how it sits with keys and metrics.

What the page does in a browser is tested in tests/playground (a real Chromium)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.engine.fake import FakeEngine
from service.routes import playground
from tests.api.helpers import make_app, serve

KEY = "sk-playground-test"
FILES = [
    pytest.param("/playground", "text/html", "<title>LLM gateway playground</title>", id="page"),
    pytest.param("/playground/playground.js", "text/javascript", "./api.js", id="script"),
    pytest.param("/playground/api.js", "text/javascript", "ReadableStream", id="api-module"),
    pytest.param("/playground/live.js", "text/javascript", "/metrics", id="live-module"),
    pytest.param("/playground/playground.css", "text/css", "box-sizing", id="style"),
]


@pytest.mark.parametrize(("path", "media_type", "content"), FILES)
async def test_the_page_and_its_files_are_served(
    fake_engine: FakeEngine, path: str, media_type: str, content: str
) -> None:
    async with serve(make_app(fake_engine)) as http:
        response = await http.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert content in response.text
    assert response.headers["x-request-id"]


async def test_the_page_loads_nothing_from_elsewhere(fake_engine: FakeEngine) -> None:
    async with serve(make_app(fake_engine)) as http:
        page = (await http.get("/playground")).text
    assert "http://" not in page and "https://" not in page  # works offline: no CDN, no fonts
    assert 'href="playground/playground.css"' in page  # relative: works behind a path prefix


async def test_config_says_whether_a_key_is_needed(fake_engine: FakeEngine) -> None:
    async with serve(make_app(fake_engine)) as http:
        open_config = (await http.get("/playground/config.json")).json()
    async with serve(make_app(fake_engine, api_keys=[KEY], playground=True)) as http:
        keyed_config = (await http.get("/playground/config.json")).json()
    assert open_config == {"model": "fake-model", "auth": False, "max_labels": 64}
    assert keyed_config["auth"] is True


@pytest.mark.parametrize(
    ("settings", "served"),
    [
        pytest.param({}, True, id="on-by-default"),
        pytest.param({"playground": False}, False, id="turned-off"),
        pytest.param({"api_keys": [KEY]}, False, id="off-by-default-with-keys"),
        pytest.param({"api_keys": [KEY], "playground": True}, True, id="enabled-with-keys"),
    ],
)
async def test_the_setting_turns_it_on_and_off(
    fake_engine: FakeEngine, settings: dict[str, object], served: bool
) -> None:
    async with serve(make_app(fake_engine, **settings)) as http:
        statuses = {path: (await http.get(path)).status_code for path in playground.PATHS}
    # With keys and no playground, every path is an unknown one behind the key check (401).
    off = 401 if "api_keys" in settings else 404
    assert statuses == dict.fromkeys(playground.PATHS, 200 if served else off)


async def test_with_keys_the_page_is_open_and_the_api_is_not(fake_engine: FakeEngine) -> None:
    async with serve(make_app(fake_engine, api_keys=[KEY], playground=True)) as http:
        page = await http.get("/playground")
        without_key = await http.post("/v1/classify", json={"text": "hi", "labels": "sentiment"})
        with_key = await http.post(
            "/v1/classify",
            json={"text": "hi", "labels": "sentiment"},
            headers={"Authorization": f"Bearer {KEY}"},
        )
        near_miss = await http.get("/playground/other.js")
    assert page.status_code == 200
    assert without_key.status_code == 401
    assert with_key.status_code == 200
    assert near_miss.status_code == 401  # only the page's own files are open


async def test_metrics_name_the_page_by_its_route(fake_engine: FakeEngine) -> None:
    async with serve(make_app(fake_engine)) as http:
        for path in ("/playground", "/playground/playground.js", "/playground/nothing-here"):
            await http.get(path)
        text = (await http.get("/metrics")).text
    endpoints = {
        sample.labels["endpoint"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "gateway_requests_total"
    }
    assert {"/playground", "/playground/playground.js", "unmatched"} <= endpoints
    assert "/playground/nothing-here" not in endpoints  # labels stay bounded


def test_the_files_ship_as_package_data() -> None:
    pyproject = (Path(__file__).parents[3] / "pyproject.toml").read_text()
    assert 'service = ["static/playground/*"]' in pyproject
    shipped = {path.name for path in playground.STATIC_DIR.iterdir()}
    assert shipped == {"index.html", *playground.ASSETS}
