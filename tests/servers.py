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
def serve_in_thread(app: FastAPI, *, startup_timeout: float = 900) -> Iterator[str]:
    """Serve `app` until the block ends; yields the base URL once its engine has started."""
    state: EngineState = app.state.gateway.engine_state
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(
        target=lambda: loop.run_until_complete(server.serve(sockets=[sock])),
        name="test-server",
        daemon=True,
    )
    thread.start()
    try:
        # Start-up ends when the engine has produced its warm-up token (or failed).
        asyncio.run_coroutine_threadsafe(state.wait_started(), loop).result(startup_timeout)
        if state.failure is not None:
            raise RuntimeError("the engine failed to start") from state.failure
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=120)
        sock.close()
        loop.close()
