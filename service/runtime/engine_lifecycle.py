"""The engine's life in the app: starting, warming up, ready, draining, failed, stopped.

Readiness means "send me traffic": false while the engine starts, from the first moment of a
drain (SIGTERM), and for good once the engine has failed. A failed engine (dead, or wedged:
work in hand and no progress for `engine_stall_seconds`) is shut down so that in-flight
requests fail at once instead of hanging, and `on_fatal` stops the server, which then exits
non-zero so an orchestrator restarts it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from service.config import Settings
from service.engine.base import (
    EmbeddingEngine,
    Engine,
    EngineProgress,
    EngineRequest,
    SamplingOptions,
)
from service.errors import (
    DrainingError,
    EngineDeadError,
    EngineUnavailableError,
    ServiceUnavailableError,
)
from service.runtime.admission import Admission, default_bounds

logger = logging.getLogger(__name__)

EngineFactory = Callable[[], Engine]
EmbeddingEngineFactory = Callable[[], EmbeddingEngine]
# Work a service does on the started engine before it is ready (classify's preset priors).
WarmUp = Callable[[Engine], Awaitable[None]]


class EngineState:
    """Owned by one app (in `GatewayState`); the lifespan drives it.

    Besides the generation engine there may be an embedding engine (`embedding_factory`),
    started after it, warmed up, watched and stopped with it: ready means both are.
    """

    def __init__(
        self,
        factory: EngineFactory,
        settings: Settings,
        admission: Admission,
        *,
        embedding_factory: EmbeddingEngineFactory | None = None,
        embedding_admission: Admission | None = None,
        warm_ups: Sequence[WarmUp] = (),
    ) -> None:
        self._factory = factory
        self._warm_ups = tuple(warm_ups)
        self._settings = settings
        self.admission = admission
        self._embedding_factory = embedding_factory
        self.embedding_admission = embedding_admission or Admission(max_inflight=1, max_queued=0)
        self.engine: Engine | None = None
        self.embedding_engine: EmbeddingEngine | None = None
        self.ready = False
        self.failure: BaseException | None = None
        self.stopping = False
        self.draining = False
        # Called when the engine fails (at start-up or later), so the process can exit non-zero.
        self.on_fatal: Callable[[], None] | None = None
        self._startup: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._started = asyncio.Event()  # set when start-up ends, ready or failed

    @property
    def serves_embeddings(self) -> bool:
        """Whether an embedding engine is configured (started or not yet)."""
        return self._embedding_factory is not None

    def unavailable_error(self) -> ServiceUnavailableError:
        """The 503 to answer while not ready, saying why."""
        if self.failure is not None:
            if self._watchdog is None:
                return EngineDeadError("The engine failed to start; the server is restarting.")
            return EngineDeadError("The engine has failed; the server is restarting.")
        if self.stopping or self.draining:
            return DrainingError()
        return EngineUnavailableError("The engine is starting; retry shortly.")

    def begin(self) -> None:
        """Start the engine in the background, so /health answers while the model loads."""
        self._startup = asyncio.create_task(self._start(), name="engine-startup")

    async def _start(self) -> None:
        try:
            # Building the engine blocks for tens of seconds (it spawns the engine core).
            self.engine = await asyncio.to_thread(self._factory)
            for name, path in self._settings.lora_adapters.items():  # a bad one fails the start
                await self.engine.load_adapter(name, path)
            await self._warm_up(self.engine)
            for warm_up in self._warm_ups:
                await warm_up(self.engine)
            if self._embedding_factory is not None:
                # Only now: each engine's start sets the environment its engine core spawns with.
                self.embedding_engine = await asyncio.to_thread(self._embedding_factory)
                await self.embedding_engine.embed(
                    [self.embedding_engine.tokenizer.encode("Hello")], "warmup"
                )
        except Exception as err:
            logger.exception("the engine failed to start: %s", err)
            self.failure = err
            if self.on_fatal is not None:
                self.on_fatal()
        else:
            self._size_admission(self.engine)
            self.ready = not self.draining
            self._watchdog = asyncio.create_task(self._watch(), name="engine-watchdog")
            logger.info(
                "engine ready",
                extra={
                    "fields": {
                        "max_inflight_sequences": self.admission.max_inflight,
                        "max_queued_sequences": self.admission.max_queued,
                    }
                },
            )
        finally:
            self._started.set()

    def _size_admission(self, engine: Engine) -> None:
        inflight, queued = default_bounds(engine.max_num_seqs)
        s = self._settings
        self.admission.resize(
            max_inflight=s.max_inflight_sequences or inflight,
            max_queued=queued if s.max_queued_sequences is None else s.max_queued_sequences,
            running_slots=engine.max_num_seqs,  # the bound while tenants share (fair share)
        )
        if self.embedding_engine is not None:
            # Inputs are the unit: one input is one sequence of the pooling engine.
            slots = self.embedding_engine.max_num_seqs
            inflight, queued = default_bounds(slots)
            self.embedding_admission.resize(
                max_inflight=inflight, max_queued=queued, running_slots=slots
            )

    @staticmethod
    async def _warm_up(engine: Engine) -> None:
        """One real token through the whole path: /ready means a request will be served."""
        request = EngineRequest(
            prompt_token_ids=engine.tokenizer.encode("Hello"),
            options=SamplingOptions(max_tokens=1, temperature=0.0),
            request_id="warmup",
        )
        async for _ in engine.generate(request, stream=False):
            pass

    def engines(self) -> list[Engine | EmbeddingEngine]:
        """Every engine started so far: the generation engine first."""
        engines: list[Engine | EmbeddingEngine] = []
        if self.engine is not None:
            engines.append(self.engine)
        if self.embedding_engine is not None:
            engines.append(self.embedding_engine)
        return engines

    async def check_health(self) -> None:
        """Raise `EngineDeadError` when any engine is not healthy."""
        for engine in self.engines():
            await engine.check_health()

    def _progress(self) -> EngineProgress:
        each = [engine.progress() for engine in self.engines()]
        marker = tuple(m for p in each for m in p.marker)
        return EngineProgress(any(p.busy for p in each), marker)

    async def _watch(self) -> None:
        """Every health_check_interval: are the engines alive, and if they have work, moving?"""
        loop = asyncio.get_running_loop()
        interval = self._settings.health_check_interval_seconds
        stall = self._settings.engine_stall_seconds
        marker, since = self._progress().marker, loop.time()
        while True:
            await asyncio.sleep(interval)
            try:
                # Not asyncio.wait_for: on 3.11 it swallows a cancel that arrives as the check
                # finishes, and stop() then waited forever for this task (a flaky test found it).
                async with asyncio.timeout(max(interval, 5.0)):
                    await self.check_health()
            except Exception as err:
                self.fail("an engine is not healthy", err)
                return
            progress, now = self._progress(), loop.time()
            if not progress.busy or progress.marker != marker:
                marker, since = progress.marker, now
            elif now - since >= stall:
                self.fail(f"an engine has had work and made no progress for {stall:g} s", None)
                return

    def fail(self, reason: str, error: BaseException | None) -> None:
        """The engine is gone or wedged: refuse traffic, fail in-flight work, exit non-zero."""
        if self.failure is not None:
            return
        logger.error("engine failure: %s; stopping the server", reason, exc_info=error)
        self.failure = error or RuntimeError(reason)
        self.ready = False
        for engine in self.engines():
            try:  # in-flight requests get EngineDeadError now instead of hanging
                engine.shutdown()
            except Exception:
                logger.warning("shutting the failed engine down failed", exc_info=True)
        if self.on_fatal is not None:
            self.on_fatal()

    def drain(self) -> None:
        """SIGTERM: not ready from now on, refuse new requests, let admitted ones finish."""
        self.draining = True
        self.ready = False
        self.admission.drain()
        self.embedding_admission.drain()

    async def wait_started(self) -> None:
        """Wait for start-up to finish, ready or failed."""
        await self._started.wait()

    async def stop(self) -> None:
        self.stopping = True
        self.ready = False
        for task in (self._startup, self._watchdog):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        for engine in self.engines():
            # On the loop thread: vLLM cancels its output task here, which is not thread-safe.
            engine.shutdown()
        self.engine = None
        self.embedding_engine = None
