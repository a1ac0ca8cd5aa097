"""The HTTP server: uvicorn, with SIGTERM turned into a drain.

uvicorn's own SIGTERM handling closes the listener and then waits for open connections, so a
load balancer still sending traffic gets connection errors and long requests are cut at the
orchestrator's kill. Here the first SIGTERM turns /ready to 503 and refuses new requests with
503 `draining` while the listener stays open; once the admitted requests have finished (or
`drain_timeout_seconds` has passed) uvicorn's shutdown runs and the process exits 0. A second
SIGTERM, or SIGINT, is uvicorn's usual immediate shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from types import FrameType

import uvicorn

from service.runtime.engine_lifecycle import EngineState

logger = logging.getLogger("service")

# After the drain, how long uvicorn may wait for connections still open before closing them.
CLOSE_GRACE_SECONDS = 5


class GatewayServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, state: EngineState, drain_timeout: float) -> None:
        super().__init__(config)
        self._state = state
        self._drain_timeout = drain_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain: asyncio.Task[None] | None = None
        self._draining = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and not self._draining and self._loop is not None:
            self._draining = True  # runs in the signal handler: hand over to the loop
            self._loop.call_soon_threadsafe(self._begin_drain)
            return
        super().handle_exit(sig, frame)

    def _begin_drain(self) -> None:
        self._state.drain()
        self._drain = asyncio.create_task(self._drain_then_exit(), name="drain")

    async def _drain_then_exit(self) -> None:
        admission, embeddings = self._state.admission, self._state.embedding_admission
        logger.info(
            "SIGTERM: draining",
            extra={"fields": {"sequences": admission.in_flight + admission.queued}},
        )
        try:
            async with asyncio.timeout(self._drain_timeout):
                await asyncio.gather(admission.idle.wait(), embeddings.idle.wait())
            logger.info("drained: every admitted request has finished")
        except TimeoutError:
            logger.warning(
                "drain timeout passed; stopping with requests still in flight",
                extra={"fields": {"sequences": admission.in_flight + admission.queued}},
            )
        self.should_exit = True
