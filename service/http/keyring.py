"""The keyring: the keys the security middleware accepts, made of two sets, and kept current.

- The keys of the settings and the key file (`keys.py`): read at start-up, read-only.
- The keys admin keys make at runtime (`/v1/organization/admin_api_keys`), kept in the store
  (`service/store/api_keys.py`) so that every replica, and the next start, has them.

The middleware reads one in-memory `KeyStore` (the same constant-time lookup for both sets);
`refresh` rebuilds it from the store, and `TenantSync` runs it every `tenants_sync_seconds` with
the usage meter's sync, so a key made, changed or deleted on one replica takes effect on every
replica within about that time, and at once on the replica that made the change. No request
waits on the store. Runtime keys exist only while authentication is on (`api_keys` or
`api_key_file`): with it off they are neither loaded nor made, so creating one never turns it on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable

from service.config import Settings
from service.errors import StoreUnavailableError
from service.http.keys import ApiKey
from service.http.security import SecurityPolicy, build_limiter
from service.services.tenants.meter import Budget, UsageMeter
from service.store import Store
from service.store.api_keys import KeyRecord
from service.telemetry.metrics import GatewayMetrics

logger = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 3600.0
LEDGER_KEPT_SECONDS = 62 * 86_400  # two months: the current window and the one before


def api_key_of(record: KeyRecord) -> ApiKey:
    return ApiKey(
        bytes.fromhex(record.digest),
        name=record.name,
        requests_per_minute=record.requests_per_minute,
        tokens_per_minute=record.tokens_per_minute,
        priority=record.priority,
        admin=record.admin,
        weight=record.weight,
        tokens_per_day=record.tokens_per_day,
        tokens_per_month=record.tokens_per_month,
        source="runtime",
        expires_at=None if record.expires_at is None else float(record.expires_at),
    )


class Keyring:
    def __init__(
        self,
        policy: SecurityPolicy,
        settings: Settings,
        store: Store,
        meter: UsageMeter,
        metrics: GatewayMetrics,
    ) -> None:
        self._policy = policy
        self._settings = settings
        self._store = store
        self._meter = meter
        self._metrics = metrics
        self.static: tuple[ApiKey, ...] = tuple(policy.keys) if policy.keys is not None else ()
        self._runtime: dict[str, ApiKey] = {}
        self._names: dict[str, str] = {}  # every key id ever named here, revoked ones too
        self.loaded_at = int(time.time())  # when the configured keys were read
        self._apply([])

    @property
    def enabled(self) -> bool:
        """Whether authentication is on, and with it runtime keys."""
        return self._policy.keys is not None

    def get(self, key_id: str) -> ApiKey | None:
        """A live key by its public id (from the settings, the key file or the store)."""
        runtime = self._runtime.get(key_id)
        if runtime is not None:
            return runtime
        return next((key for key in self.static if key.key_id == key_id), None)

    def names(self) -> dict[str, str]:
        """{key id: name} of every key known, revoked runtime keys included."""
        return {**self._names, **{k.key_id: k.name for k in self.static if k.name is not None}}

    def static_names(self) -> set[str]:
        return {key.name for key in self.static if key.name is not None}

    async def refresh(self) -> None:
        """Accept the live runtime keys in the store from now on."""
        if not self.enabled:
            return
        records = await self._store.runtime_keys.active()
        self._names = await self._store.runtime_keys.names()
        self._apply(records)

    def _apply(self, records: Iterable[KeyRecord]) -> None:
        runtime = {record.id: api_key_of(record) for record in records}
        keys = [*self.static, *runtime.values()]
        if self._policy.keys is not None:
            self._policy.keys.replace(keys)
        self._runtime = runtime
        self._meter.set_budgets(
            {key.key_id: Budget(key.tokens_per_day, key.tokens_per_month) for key in keys}
        )
        if self._policy.limiter is None and any(
            key.requests_per_minute or key.tokens_per_minute for key in keys
        ):
            self._policy.limiter = build_limiter(self._settings)  # the first limited key
            self._policy.attach_metrics(self._metrics)


class TenantSync:
    """The background loop: the meter's sync, the keyring's refresh, and pruning old usage."""

    def __init__(
        self, meter: UsageMeter, keyring: Keyring, store: Store, settings: Settings
    ) -> None:
        self.meter = meter
        self.keyring = keyring
        self._store = store
        self._interval = settings.tenants_sync_seconds
        self._retention = settings.usage_retention_days * 86_400
        self._pruned_at = 0.0
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def build(
        cls,
        meter: UsageMeter,
        policy: SecurityPolicy,
        settings: Settings,
        store: Store,
        metrics: GatewayMetrics,
    ) -> TenantSync:
        meter.attach_metrics(metrics)
        return cls(meter, Keyring(policy, settings, store, meter, metrics), store, settings)

    async def start(self) -> None:
        """Read the keys and the totals before the first request, then keep them current."""
        await self.once()
        self._task = asyncio.create_task(self._run(), name="tenant-sync")

    async def stop(self) -> None:
        """Stop the loop and write what is still counted (a graceful stop loses nothing)."""
        if self._task is None:
            return  # never started: the store did not open
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        try:
            await self.meter.sync()
        except StoreUnavailableError:
            logger.warning("usage of the last second could not be written: the store is down")

    async def once(self, *, prune: bool = False) -> None:
        await self.meter.sync()
        await self.keyring.refresh()
        now = time.time()
        if prune and now - self._pruned_at >= PRUNE_EVERY_SECONDS:
            self._pruned_at = now
            await self._store.usage.prune(
                usage_before=int(now) - self._retention,
                ledger_before=int(now) - LEDGER_KEPT_SECONDS,
            )

    async def _run(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.once(prune=True)
            except StoreUnavailableError as err:
                if not failing:  # once per outage, not once a second
                    logger.warning("tenant sync: %s; usage is kept until it is back", err)
                failing = True
            except Exception:
                logger.exception("tenant sync failed")
            else:
                if failing:
                    logger.info("tenant sync: the store is back")
                failing = False
