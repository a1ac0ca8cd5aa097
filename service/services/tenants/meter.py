"""What each key used, and its budgets: counted in memory on the request path, kept in the store.

A request that reached the engine is charged when it ends (`charge`: its prompt and completion
tokens, as the token bucket is), by surface (`completions` or `embeddings`), key, model and
whether it was a batch line. That is a few dictionary additions; nothing on a request's path
touches the database. `sync`, run every `tenants_sync_seconds` in the background (and once at
shutdown), writes what was counted since the last one to the store in one transaction and reads
back every key's totals for the current UTC day and month, which all replicas add to. A budget
is checked before a request reaches the engine (`check`) against those totals plus what this
replica counted since: so replicas on one database enforce one budget, each learning the
others' usage within a sync, and a restart forgets nothing written (at most the last second of
a killed process).

The batch runner charges a line with `charge(..., batch=True)` after checking it with `check`,
as the HTTP path does for a request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from service.caller import Caller
from service.errors import BudgetExceededError
from service.services.tenants.windows import Windows
from service.store import ANONYMOUS_OWNER
from service.store.usage import LedgerKey, Surface, UsageKey, UsageStore, Window
from service.telemetry.metrics import GatewayMetrics, key_label

Clock = Callable[[], float]

# The endpoints whose requests count, and as what (OpenAI's usage reports: completions or
# embeddings). Beyond OpenAI's, the task API counts as completions and rerank as embeddings.
SURFACES: Mapping[str, Surface] = {
    "/v1/chat/completions": "completions",
    "/v1/completions": "completions",
    "/v1/responses": "completions",
    "/v1/messages": "completions",
    "/v1/generate": "completions",
    "/v1/summarize": "completions",
    "/v1/classify": "completions",
    "/v1/chat": "completions",
    "/v1/embeddings": "embeddings",
    "/v1/rerank": "embeddings",
}


@dataclass(frozen=True, slots=True)
class Budget:
    """A key's budgets in tokens (prompt + completion); None: none."""

    tokens_per_day: int | None = None
    tokens_per_month: int | None = None


class UsageMeter:
    """One per app (`GatewayState.tenants.meter`); the event loop is its only lock."""

    def __init__(
        self,
        usage: UsageStore,
        *,
        metrics: GatewayMetrics | None = None,
        clock: Clock = time.time,
    ) -> None:
        self._usage = usage
        self._metrics = metrics
        self._clock = clock
        self._budgets: dict[str, Budget] = {}  # by key id
        self._windows = Windows.at(clock())
        self._pending: dict[UsageKey, list[int]] = {}  # [input, output, requests]
        self._pending_ledger: dict[LedgerKey, int] = {}
        self._writing: dict[LedgerKey, int] = {}  # written, not yet in `_stored`
        self._stored: dict[LedgerKey, int] = {}  # every replica's, at the last sync
        self._sync_lock = asyncio.Lock()

    def attach_metrics(self, metrics: GatewayMetrics) -> None:
        self._metrics = metrics

    def set_budgets(self, budgets: Mapping[str, Budget]) -> None:
        """Every key's budgets (the keyring sets them when the keys change)."""
        self._budgets = {key_id: b for key_id, b in budgets.items() if b != Budget()}

    def used(self, key_id: str, window: Window) -> int:
        """Tokens the key used in the current `window`, as far as this replica knows."""
        windows = self._current()
        name: LedgerKey = (
            key_id,
            window,
            windows.day_start if window == "day" else windows.month_start,
        )
        return (
            self._stored.get(name, 0)
            + self._writing.get(name, 0)
            + self._pending_ledger.get(name, 0)
        )

    def check(self, caller: Caller) -> None:
        """Raise `BudgetExceededError` when the caller's key has used a budget up."""
        if caller.key_id is None:
            return
        budget = self._budgets.get(caller.key_id)
        if budget is None:
            return
        refusal = self._refusal(caller.key_id, budget)
        if refusal is not None:
            window, error = refusal
            if self._metrics is not None:
                self._metrics.budget_refusals.labels(key_label(caller), window).inc()
            raise error

    def _refusal(self, key_id: str, budget: Budget) -> tuple[Window, BudgetExceededError] | None:
        windows = self._current()
        now = self._clock()
        over: list[tuple[int, Window, int]] = []  # (seconds to the window's end, window, limit)
        if budget.tokens_per_day is not None and self.used(key_id, "day") >= budget.tokens_per_day:
            over.append((windows.day_end - int(now), "day", budget.tokens_per_day))
        if (
            budget.tokens_per_month is not None
            and self.used(key_id, "month") >= budget.tokens_per_month
        ):
            over.append((windows.month_end - int(now), "month", budget.tokens_per_month))
        if not over:
            return None
        retry_after, window, limit = max(over)  # both used up: the later reset frees it
        message = (
            f"This key has used its budget of {limit} tokens per {window} (UTC); it resets in "
            f"{retry_after}s. Ask an admin to raise tokens_per_{window}."
        )
        return window, BudgetExceededError(message, retry_after=retry_after)

    def charge(
        self,
        caller: Caller,
        *,
        endpoint: str,
        model: str | None,
        input_tokens: int,
        output_tokens: int,
        batch: bool = False,
    ) -> None:
        """Count a request (or a batch line) that reached the engine, when it has ended."""
        surface = SURFACES.get(endpoint)
        if surface is None:
            return
        now = self._clock()
        key_id = caller.key_id or ANONYMOUS_OWNER
        entry = (int(now // 60) * 60, surface, key_id, model or "", batch)
        sums = self._pending.get(entry)
        if sums is None:
            self._pending[entry] = [input_tokens, output_tokens, 1]
        else:
            sums[0] += input_tokens
            sums[1] += output_tokens
            sums[2] += 1
        if caller.key_id is not None:
            tokens = input_tokens + output_tokens
            windows = self._current()
            for name in (
                (key_id, "day", windows.day_start),
                (key_id, "month", windows.month_start),
            ):
                self._pending_ledger[name] = self._pending_ledger.get(name, 0) + tokens
        if self._metrics is not None:
            children = self._metrics.key(key_label(caller))
            children.requests.inc()
            children.input_tokens.inc(input_tokens)
            children.output_tokens.inc(output_tokens)

    async def sync(self) -> None:
        """Write what was counted since the last sync; read every replica's window totals.

        A store that cannot be written keeps the counts for the next sync (and raises
        `StoreUnavailableError`); the budgets go on from the last totals read."""
        async with self._sync_lock:
            usage, self._pending = self._pending, {}
            self._writing, self._pending_ledger = self._pending_ledger, {}
            try:
                if usage or self._writing:
                    await self._usage.add(usage, self._writing)
            except BaseException:
                self._put_back(usage)
                raise
            try:
                await self._read_totals()
            finally:  # what was written is in the totals read, or kept beside the old ones
                for name, tokens in self._writing.items():
                    self._stored[name] = self._stored.get(name, 0) + tokens
                self._writing = {}

    async def _read_totals(self) -> None:
        if not self._budgets:
            self._stored = {}
            self._writing = {}
            return
        windows = self._current()
        totals = await self._usage.window_totals(
            [("day", windows.day_start), ("month", windows.month_start)]
        )
        self._stored, self._writing = totals, {}

    def _put_back(self, usage: dict[UsageKey, list[int]]) -> None:
        for entry, sums in usage.items():
            kept = self._pending.setdefault(entry, [0, 0, 0])
            for i, value in enumerate(sums):
                kept[i] += value
        for name, tokens in self._writing.items():
            self._pending_ledger[name] = self._pending_ledger.get(name, 0) + tokens
        self._writing = {}

    def _current(self) -> Windows:
        now = self._clock()
        if not self._windows.holds(now):
            self._windows = Windows.at(now)
        return self._windows
