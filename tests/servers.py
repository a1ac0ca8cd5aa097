"""A real uvicorn server for an app, in a thread with its own event loop, on a loopback port."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from service.runtime.engine_lifecycle import EngineState


@contextmanager
def loop_in_thread() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in a daemon thread until the block ends."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-server", daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=120)
        loop.close()


@contextmanager
def serve_on(
    app: FastAPI, loop: asyncio.AbstractEventLoop, *, startup_timeout: float = 900
) -> Iterator[str]:
    """Serve `app` on `loop` (running in another thread) until the block ends; yields the base
    URL once its engine has started. Apps served on one loop may share an engine."""
    state: EngineState = app.state.gateway.engine_state
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    serving = asyncio.run_coroutine_threadsafe(server.serve(sockets=[sock]), loop)
    try:
        # Start-up ends when the engine has produced its warm-up token (or failed).
        asyncio.run_coroutine_threadsafe(state.wait_started(), loop).result(startup_timeout)
        if state.failure is not None:
            raise RuntimeError("the engine failed to start") from state.failure
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        serving.result(timeout=120)
        sock.close()


@contextmanager
def serve_in_thread(app: FastAPI, *, startup_timeout: float = 900) -> Iterator[str]:
    """Serve `app` until the block ends; yields the base URL once its engine has started."""
    with loop_in_thread() as loop, serve_on(app, loop, startup_timeout=startup_timeout) as url:
        yield url
