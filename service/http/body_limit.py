"""The request body size limit, for bodies without a Content-Length (chunked uploads).

A declared Content-Length over the limit is refused before the body is read (`security.py`);
this wrapper counts what streams in and answers 413 once the limit is passed.
"""

from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send

from service.errors import PayloadTooLargeError
from service.http.disconnect import DISCONNECT
from service.http.encode import send_error
from service.telemetry.context import RequestContext


def too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"The request body is larger than the limit of {limit} bytes.")


class BodyLimit:
    """`receive` that answers 413 once more than `limit` bytes came in, then tells the app the
    client left; `send` that drops what the app still sends after that 413."""

    __slots__ = ("_receive", "_send", "ctx", "limit", "replaced", "scope", "seen", "started")

    def __init__(
        self, scope: Scope, receive: Receive, send: Send, limit: int, ctx: RequestContext | None
    ):
        self.scope = scope  # its path says the error's shape
        self._receive = receive
        self._send = send
        self.limit = limit
        self.ctx = ctx
        self.seen = 0
        self.started = False  # the app has started its answer: too late for a 413
        self.replaced = False  # the 413 was sent in place of the app's answer

    async def receive(self) -> Message:
        if self.replaced:
            return DISCONNECT
        message = await self._receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit and not self.started:
                self.replaced = True
                await send_error(self._send, too_large(self.limit), self.ctx, self.scope)
                return DISCONNECT
        return message

    async def send(self, message: Message) -> None:
        if self.replaced:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)
