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
        gone = asyncio.Event()
        listener: asyncio.Task[None] | None = None
        response_complete = False
        cancelled_here = False

        async def listen() -> None:
            nonlocal cancelled_here
            message = await receive()
            while message["type"] != "http.disconnect":  # pragma: no cover - pipelining
                message = await receive()
            gone.set()
            if not response_complete:
                cancelled_here = True
                handler.cancel()

        async def receive_body() -> Message:
            nonlocal listener
            if listener is not None:
                await gone.wait()
                return DISCONNECT
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()
            elif not message.get("more_body", False):
                listener = asyncio.create_task(listen(), name="disconnect-listener")
            return message

        async def send_tracking(message: Message) -> None:
            nonlocal response_complete
            if message["type"] == "http.response.body" and not message.get("more_body"):
                response_complete = True
            await send(message)

        try:
            await self.app(scope, receive_body, send_tracking)
        except asyncio.CancelledError:
            if cancelled_here and handler.uncancel() == 0:
                return  # the client is gone: there is no one to answer
            raise
        finally:
            if listener is not None:
                listener.cancel()
