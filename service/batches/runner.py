"""Running one claimed line to its one result, or back to the store for later.

A line runs like a request of its batch's key: looked up again (revoked: `authentication_error`,
not run), validated and prepared by its endpoint (a bad body: the endpoint's 4xx is its
result), charged one request of the key's rate limit, then run on its engine's share
(`room.py`) under an admission permit at the batch class, within the request deadline
(`max_request_timeout_seconds`, or the body's `timeout`), in a request context of its own that
counts its tokens, which are then charged to the key (`LineAccounts.charge_line`).

A transient refusal (429 rate limit, 503 overloaded or draining or engine not ready, 504
deadline) is not a result: the line goes back to the store, to be claimed again after the
refusal's Retry-After. A line claimed more than `batch_max_attempts` times (a deadline missed
again and again, or a line whose run keeps ending its replica) fails with `too_many_attempts`.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from service.batches.accounts import LineAccounts
from service.batches.endpoints import PreparedLine, prepare_line
from service.batches.room import Room
from service.caller import Caller
from service.errors import GatewayError, error_body
from service.http.deps import GatewayState
from service.http.ratelimit import Refusal, Ticket
from service.store.batch_lines import ClaimedLine, LineResult
from service.store.batches import BatchRecord
from service.telemetry import context

logger = logging.getLogger(__name__)

TRANSIENT = frozenset({429, 503, 504})
DEFAULT_RETRY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Retry:
    """Not a result: claim the line again from `after` seconds on."""

    after: float
    ran: bool  # it reached the engine (the attempt counts)
    reason: str


def not_run(code: str, message: str) -> LineResult:
    """The result of a line that never ran: `error` set, no response (OpenAI's form)."""
    return LineResult(
        "failed", None, {"response": None, "error": {"code": code, "message": message}}
    )


def answered(status: int, ctx: context.RequestContext, body: dict[str, Any]) -> LineResult:
    """The result of a line the endpoint answered (its tokens from the line's context)."""
    response = {"status_code": status, "request_id": ctx.request_id, "body": body}
    return LineResult(
        "succeeded" if status < 300 else "failed",
        status,
        {"response": response, "error": None},
        input_tokens=ctx.prompt_tokens,
        output_tokens=ctx.completion_tokens,
    )


INTERNAL_ERROR = error_body(
    "The server had an error processing the request.", "server_error", code="internal_error"
)


REVOKED = not_run(
    "authentication_error",
    "The API key that created this batch is no longer valid; the request was not run.",
)


def _too_many(attempts: int) -> LineResult:
    return not_run(
        "too_many_attempts",
        f"The request was started {attempts - 1} times without a result; it is not retried.",
    )


class LineRunner:
    def __init__(
        self, gateway: GatewayState, accounts: LineAccounts, rooms: tuple[Room, Room]
    ) -> None:
        self.gateway = gateway
        self.accounts = accounts
        self.generation, self.pooling = rooms

    async def run(self, line: ClaimedLine, batch: BatchRecord) -> LineResult | Retry:
        caller = self.accounts.caller_of(batch)
        if caller is None:
            return REVOKED
        if line.attempts > self.gateway.settings.batch_max_attempts:
            return _too_many(line.attempts)
        request_id = f"breq-{secrets.token_hex(8)}"
        ctx = context.new_context(
            request_id,
            metrics=self.gateway.metrics,
            log_prompts=self.gateway.settings.log_prompts,
        )
        with context.bound(ctx):
            return await self._run(line, batch, caller, ctx)

    async def _run(
        self, line: ClaimedLine, batch: BatchRecord, caller: Caller, ctx: context.RequestContext
    ) -> LineResult | Retry:
        ticket: Ticket | None = None
        charged = False  # one request charged to the key: its tokens are charged too
        prepared: PreparedLine | None = None
        try:
            prepared = await prepare_line(batch.endpoint, line.body, self.gateway, caller)
            admitted = await self.accounts.admit(caller)
            if isinstance(admitted, Refusal):
                return Retry(admitted.retry_after, ran=False, reason="rate_limit")
            ticket, charged = admitted, True
            room = self.pooling if prepared.pooling else self.generation
            answer = await room.run(prepared.cost, prepared.work, seconds=self._timeout(prepared))
            return answered(200, ctx, answer.model_dump(mode="json", by_alias=True))
        except GatewayError as err:
            if err.status_code in TRANSIENT:
                after = float(err.retry_after or DEFAULT_RETRY_SECONDS)
                return Retry(after, ran=ctx.engine_requests > 0, reason=err.code or "transient")
            return answered(err.status_code, ctx, err.body())
        except Exception:
            logger.exception("a batch line failed", extra={"fields": {"batch_id": batch.id}})
            return answered(500, ctx, INTERNAL_ERROR)
        finally:
            if charged:
                await self.accounts.charge_line(
                    ticket,
                    caller,
                    model=prepared.model if prepared is not None else None,
                    endpoint=batch.endpoint,
                    prompt_tokens=ctx.prompt_tokens,
                    completion_tokens=ctx.completion_tokens,
                )

    def _timeout(self, prepared: PreparedLine) -> float:
        """The line's deadline from its start: its own `timeout`, within the server's cap."""
        cap = self.gateway.settings.max_request_timeout_seconds
        return min(prepared.timeout or cap, cap)
