"""The playground in a real headless Chromium, against a real uvicorn on the fake engine.

The engine can hold a stream after its first tokens (`HeldStreams`), so that a test sees
the page render part of an answer before the rest exists: incremental, not timed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Page

from service.app import create_app
from service.config import Settings
from service.engine.base import GenerationChunk
from service.engine.fake import FakeCall, FakeEngine
from tests.browser import Console, chromium, watch_console
from tests.servers import serve_in_thread

API_KEY = "sk-playground-browser"


class HeldStreams:
    """The handler of the playground's fake engine: streams stop after `hold_after` chunks
    until `release()`."""

    def __init__(self) -> None:
        self.hold_after: int | None = None
        self._held: asyncio.Event | None = None
        self._held_loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, call: FakeCall) -> AsyncIterator[GenerationChunk]:
        hold = (
            self.hold_after
            if call.stream and not call.request.request_id.startswith("warmup")
            else None
        )
        held = asyncio.Event()
        if hold is not None:
            self._held, self._held_loop = held, asyncio.get_running_loop()
        sent = 0
        async for chunk in call.reply():
            yield chunk
            sent += 1
            if sent == hold:
                await held.wait()

    def release(self) -> None:
        """Let the held stream go on (called from the test's thread)."""
        self.hold_after = None
        if self._held is not None and self._held_loop is not None:
            self._held_loop.call_soon_threadsafe(self._held.set)


@dataclass(frozen=True)
class Gateway:
    base_url: str
    engine: FakeEngine
    streams: HeldStreams

    @property
    def playground(self) -> str:
        return f"{self.base_url}/playground"


def _serve(settings: Settings) -> Iterator[Gateway]:
    streams = HeldStreams()
    engine = FakeEngine(handler=streams)
    app = create_app(settings, engine_factory=lambda: engine)
    with serve_in_thread(app) as base_url:
        yield Gateway(base_url, engine, streams)


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    yield from _serve(Settings(engine="fake"))


@pytest.fixture(scope="module")
def keyed_gateway() -> Iterator[Gateway]:
    yield from _serve(Settings(engine="fake", api_keys=[API_KEY], playground=True))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Per module, not per session: while Playwright's sync API is open it marks its own event
    # loop as this thread's running one, which would break the async tests that run later.
    with chromium() as launched:
        yield launched


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser: Browser, console: Console) -> Iterator[Page]:
    """A fresh page (its own context); no console error unless the test allowed it."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    opened = context.new_page()
    watch_console(opened, console)
    try:
        yield opened
    finally:
        context.close()
    assert console.unexpected() == [], f"console errors: {console.unexpected()}"
