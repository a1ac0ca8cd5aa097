"""Pure ASGI middleware: budgets before a request reaches the engine, usage when it ends.

On the endpoints that run the engine (`SURFACES`: chat, completions, Responses, Messages, the
task API, embeddings, rerank):
1. Before the app: the caller's key is checked against its budgets (`UsageMeter.check`, in
   memory): over one, 429 `budget_exceeded` at once.
2. When the request ends, however it ends, or when the work it started ends if that outlives
   it (a background response): if it reached the engine, the tokens it used (the request
   context's, as the rate limiter's token bucket reads them) are charged to the key, or to the
   anonymous caller with authentication off (`UsageMeter.charge`, in memory).

It sits inside the security middleware, which made the caller (and refused wrong keys and rate
limits first), and outside the routes. Other paths pass straight through.
"""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from service.caller import Caller
from service.errors import BudgetExceededError
from service.http.encode import send_error
from service.http.security import caller_of
from service.services.tenants.meter import SURFACES, UsageMeter
from service.store import Store
from service.telemetry import context

_ANONYMOUS = Caller()  # whose usage is counted while authentication is off


def _endpoint(scope: Scope) -> str | None:
    """The metered endpoint the request is for, or None."""
    path: str = scope["path"]
    if path in SURFACES:
        return path
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) :] in SURFACES:
        return path[len(root) :]
    return None


class TenancyMiddleware:
    def __init__(self, app: ASGIApp, *, meter: UsageMeter) -> None:
        self.app = app
        self.meter = meter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = _endpoint(scope) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        caller = caller_of(scope) or _ANONYMOUS
        try:
            self.meter.check(caller)
        except BudgetExceededError as refusal:
            await send_error(send, refusal, context.current())
            return
        try:
            await self.app(scope, receive, send)
        finally:
            ctx = context.current()
            if ctx is not None:  # when the work the request started (a background response) ends
                await ctx.settle(partial(self._charge, caller, endpoint, ctx))

    async def _charge(self, caller: Caller, endpoint: str, ctx: context.RequestContext) -> None:
        """Charge the tokens the request used, if it reached the engine."""
        if ctx.engine_requests:
            self.meter.charge(
                caller,
                endpoint=endpoint,
                model=ctx.model,
                input_tokens=ctx.prompt_tokens,
                output_tokens=ctx.completion_tokens,
            )


def install_tenancy(app: FastAPI, store: Store) -> UsageMeter:
    """Add the middleware with a meter on `store`'s usage; call it before `install_security`,
    so that it runs inside it (the caller is known, wrong keys are already refused)."""
    meter = UsageMeter(store.usage)
    app.add_middleware(TenancyMiddleware, meter=meter)
    return meter
