"""Who a batch's lines run as, and what they are charged: the one place where a line meets
the API keys and their limits, as a request meets them in the security middleware.

A line runs under the caller that created its batch (`Caller.stored`), looked up again in the
key store before it runs: a key revoked since (no longer there) fails its remaining lines with
`authentication_error`. Its class is `BATCH_PRIORITY`, below every key's, so vLLM's priority
scheduler (`scheduling_policy=priority`) runs interactive requests first. Each line is charged
one request of its key's rate limit before it runs, and refused while its key's token budget is
used up (either refusal is retried later, not failed); its tokens are charged when it ends, to
the rate limit and to the key's usage and budgets (`batch: true` in the usage reports).
"""

from __future__ import annotations

from dataclasses import replace

from service.caller import Caller
from service.http.keys import PRIORITIES
from service.http.ratelimit import Refusal, Ticket
from service.http.security import SecurityPolicy
from service.services.tenants.meter import UsageMeter
from service.store.batches import BatchRecord

# vLLM's convention: lower runs earlier. Below the lowest class a key can have.
BATCH_PRIORITY = max(PRIORITIES.values()) + 10


class LineAccounts:
    def __init__(self, policy: SecurityPolicy, meter: UsageMeter) -> None:
        self._policy = policy
        self._meter = meter

    def caller_of(self, batch: BatchRecord) -> Caller | None:
        """The caller the batch's lines run as, at the batch class; None when its key has been
        revoked. With authentication off (now or when it was made), the stored caller."""
        stored = Caller.stored(batch.caller)
        keys = self._policy.keys
        if stored.key_id is not None and keys is not None and keys.by_id(stored.key_id) is None:
            return None
        return replace(stored, priority=BATCH_PRIORITY)

    async def admit(self, caller: Caller) -> Ticket | Refusal | None:
        """Charge one request to the line's key (or its creator's address with authentication
        off), as the middleware charges a request; None: no limit applies. May raise the
        limiter's `GatewayError` (shared limits that cannot be checked: 503, retried), or
        `BudgetExceededError` (429, retried) while the key's budget is used up."""
        self._meter.check(caller)
        policy = self._policy
        if policy.limiter is None:
            return None
        key = None
        if caller.key_id is not None and policy.keys is not None:
            key = policy.keys.by_id(caller.key_id)
        if key is not None:
            name = "key:" + key.digest.hex()
            rpm = key.requests_per_minute or policy.requests_per_minute
            tpm = key.tokens_per_minute or policy.tokens_per_minute
        else:
            name = "ip:" + (caller.client or "unknown")
            rpm, tpm = policy.requests_per_minute, policy.tokens_per_minute
        if not (rpm or tpm):
            return None
        return await policy.limiter.admit(name, rpm, tpm)

    async def charge_line(
        self,
        ticket: Ticket | None,
        caller: Caller,
        *,
        model: str | None,
        endpoint: str,
        prompt_tokens: int,
        completion_tokens: int,
    ) -> None:
        """Charge a line's tokens to its key, as a request's are charged when it ends: its rate
        limit, its usage (reported as batch usage) and its budgets."""
        if ticket is not None:
            await ticket.finish(prompt_tokens + completion_tokens)
        if prompt_tokens or completion_tokens:  # it reached the engine
            self._meter.charge(
                caller,
                endpoint=endpoint,
                model=model,
                input_tokens=prompt_tokens,
                output_tokens=completion_tokens,
                batch=True,
            )
