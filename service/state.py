"""The engine's life in the app: starting, warming up, ready, failed, stopped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from service.engine.base import Engine, SamplingOptions

logger = logging.getLogger(__name__)

EngineFactory = Callable[[], Engine]


class EngineState:
    """Owned by one app (on `app.state`); the lifespan drives it."""

    def __init__(self, factory: EngineFactory) -> None:
        self._factory = factory
        self.engine: Engine | None = None
        self.ready = False
        self.failure: BaseException | None = None
        self.stopping = False
        # Called when the engine cannot start, so the process can exit non-zero.
        self.on_fatal: Callable[[], None] | None = None
        self._startup: asyncio.Task[None] | None = None
        self._started = asyncio.Event()  # set when start-up ends, ready or failed

    def unavailable_reason(self) -> str:
        if self.stopping:
            return "The server is shutting down."
        if self.failure is not None:
            return "The engine failed to start."
        return "The engine is starting; retry shortly."

    def begin(self) -> None:
        """Start the engine in the background, so /health answers while the model loads."""
        self._startup = asyncio.create_task(self._start(), name="engine-startup")

    async def _start(self) -> None:
        try:
            # Building the engine blocks for tens of seconds (it spawns the engine core).
            self.engine = await asyncio.to_thread(self._factory)
            await self._warm_up(self.engine)
        except Exception as err:
            logger.exception("the engine failed to start")
            self.failure = err
            if self.on_fatal is not None:
                self.on_fatal()
        else:
            self.ready = True
            logger.info("engine ready")
        finally:
            self._started.set()

    @staticmethod
    async def _warm_up(engine: Engine) -> None:
        """One real token through the whole path: /ready means a request will be served."""
        prompt = engine.tokenizer.encode("Hello")
        options = SamplingOptions(max_tokens=1, temperature=0.0)
        async for _ in engine.generate(prompt, options, "warmup", stream=False):
            pass

    async def wait_started(self) -> None:
        """Wait for start-up to finish, ready or failed."""
        await self._started.wait()

    async def stop(self) -> None:
        self.stopping = True
        self.ready = False
        if self._startup is not None and not self._startup.done():
            self._startup.cancel()
            await asyncio.gather(self._startup, return_exceptions=True)
        if self.engine is not None:
            # On the loop thread: vLLM cancels its output task here, which is not thread-safe.
            self.engine.shutdown()
            self.engine = None
