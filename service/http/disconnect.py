"""Cancel a request's handler the moment its client disconnects.

Starlette keeps running a non-streaming handler after its client has gone, so the engine
would finish a generation nobody will read (vLLM's own server has a decorator for this,
`with_cancellation`). Once the handler has read the whole body, this middleware listens for
`http.disconnect` on the connection; if it comes before the response is complete, the handler
is cancelled, which closes its engine generators, which aborts the engine requests.

Only one party may wait on the server's `receive`: after the body, the handler's own calls
(sse-starlette listens for the disconnect too) are answered from the listener here.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# What a receive answers once the client is gone (or is treated as gone).
DISCONNECT: Message = {"type": "http.disconnect"}


class CancelOnDisconnect:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        handler = asyncio.current_task()
        assert handler is not None
        watch = _Watch(handler, receive, send)
        try:
            await self.app(scope, watch.receive, watch.send)
        except asyncio.CancelledError:
            if watch.cancelled_here and handler.uncancel() == 0:
                return  # the client is gone: there is no one to answer
            raise
        finally:
            if watch.listener is not None:
                watch.listener.cancel()


class _Watch:
    """One request's connection: the body goes to the handler, then a listener waits for the
    disconnect and cancels the handler if it comes before the response is complete."""

    def __init__(self, handler: asyncio.Task[object], receive: Receive, send: Send) -> None:
        self.handler = handler
        self._receive = receive
        self._send = send
        self.gone = asyncio.Event()
        self.listener: asyncio.Task[None] | None = None
        self.response_complete = False
        self.cancelled_here = False

    async def _listen(self) -> None:
        message = await self._receive()
        while message["type"] != "http.disconnect":  # pragma: no cover - pipelining
            message = await self._receive()
        self.gone.set()
        if not self.response_complete:
            self.cancelled_here = True
            self.handler.cancel()

    async def receive(self) -> Message:
        if self.listener is not None:
            await self.gone.wait()
            return DISCONNECT
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self.gone.set()
        elif not message.get("more_body", False):
            self.listener = asyncio.create_task(self._listen(), name="disconnect-listener")
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body"):
            self.response_complete = True
        await self._send(message)
