"""The drainer: one per replica, started in the app's lifespan, that runs batch lines from the
store behind interactive traffic, and finishes batches.

Each step (every `batch_poll_seconds`, and at once when a line ends or a batch is created or
cancelled here):
1. housekeeping: the unfinished lines of batches past their window are marked `expired`; every
   batch with no unfinished line (or whose finalizer died) gets its output files and final
   status (`results.py`); the store-wide gauges are refreshed;
2. claiming: while the engine is ready and no interactive request waits for admission, it
   claims lines (oldest batch first) up to its share of the engine (`room.py`), each under a
   lease of `batch_lease_seconds`; a line claimed is a line about to run (none is held back
   ahead of time, so a cancelled batch's lines not yet claimed never run);
3. each claimed line runs in a task of its own (`runner.py`) and its result is stored the moment
   it ends (or it goes back to the store, for a transient refusal).

A heartbeat renews the leases of the lines it holds every third of a lease, and stops the lines
it no longer holds (expired, cancelled, or taken over by another replica after a pause longer
than the lease). On shutdown the lines not finished are handed back at once. A replica killed
(kill -9) hands nothing back: its leases run out and any replica, itself after a restart
included, claims the lines again. The store being down delays all this; nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable

from service.batches.accounts import LineAccounts
from service.batches.events import count_lines, log_event, show_store
from service.batches.results import Finalizer
from service.batches.room import Room
from service.batches.runner import LineRunner, Retry
from service.errors import StoreUnavailableError
from service.http.deps import GatewayState
from service.store.batch_lines import ClaimedLine, LineKey, LineResult
from service.store.batches import BatchRecord

logger = logging.getLogger(__name__)

RELEASE_GUARD = 5.0  # seconds the shutdown waits to hand lines back


def replica_name() -> str:
    """Unique per process start: a restarted replica does not take its old leases for its own."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Drainer:
    def __init__(
        self,
        gateway: GatewayState,
        *,
        replica: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.gateway = gateway
        self.store = gateway.store
        self.replica = replica or replica_name()
        self.clock = clock
        settings = gateway.settings
        self.lease = settings.batch_lease_seconds
        state = gateway.engine_state
        fraction = settings.batch_max_inflight_fraction
        self.generation = Room(
            gateway.admission, lambda: state.engine.max_num_seqs if state.engine else 1, fraction
        )
        self.pooling = Room(
            state.embedding_admission,
            lambda: state.embedding_engine.max_num_seqs if state.embedding_engine else 1,
            fraction,
        )
        self.runner = LineRunner(
            gateway,
            LineAccounts(gateway.security, gateway.tenants.meter),
            (self.generation, self.pooling),
        )
        self.finalizer = Finalizer(self.store, self.replica, clock=clock, lease=self.lease)
        self.lines: dict[LineKey, asyncio.Task[None]] = {}
        self._dropped: set[LineKey] = set()  # lines stopped because they are not ours anymore
        self._batches: dict[str, BatchRecord] = {}  # the batches of lines held (immutable parts)
        self._wake = asyncio.Event()
        self._housekeeping_due = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self.store.batches.listen(self._changed)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._loop(), name="batch-drainer"),
            asyncio.create_task(self._heartbeat(), name="batch-heartbeat"),
        ]

    async def stop(self) -> None:
        """Stop claiming, stop the lines held, and hand them back for any replica."""
        for task in self._tasks:
            task.cancel()
        held = list(self.lines.items())
        for _, task in held:
            task.cancel()
        await asyncio.gather(*self._tasks, *(task for _, task in held), return_exceptions=True)
        with contextlib.suppress(StoreUnavailableError, TimeoutError):
            async with asyncio.timeout(RELEASE_GUARD):
                for key, _ in held:
                    await self.store.batch_lines.release(
                        key, self.replica, not_before=self.clock(), ran=False
                    )

    def _changed(self) -> None:
        self._housekeeping_due = 0.0
        self._wake.set()

    async def _loop(self) -> None:
        poll = self.gateway.settings.batch_poll_seconds
        while True:
            self._wake.clear()
            try:
                await self.step()
            except StoreUnavailableError as err:
                logger.warning("batch drainer: %s", err)
            except Exception:
                logger.exception("batch drainer step failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll):
                    await self._wake.wait()

    async def step(self) -> None:
        """One round: housekeeping when due, then claim and start lines if there is room."""
        if self.clock() >= self._housekeeping_due:
            self._housekeeping_due = self.clock() + self.gateway.settings.batch_poll_seconds
            await self.housekeeping()
        await self.claim()

    async def housekeeping(self) -> None:
        metrics = self.gateway.metrics
        count_lines(metrics, "expired", await self.store.batch_lines.expire(now=self.clock()))
        for batch_id in await self.store.batches.ready(now=self.clock()):
            await self.finalize(batch_id)
        waiting = await self.store.batch_lines.waiting()
        show_store(metrics, await self.store.batches.counts(), waiting)

    async def finalize(self, batch_id: str) -> BatchRecord | None:
        done = await self.finalizer.finalize(batch_id)
        if done is not None:
            self._batches.pop(batch_id, None)
            log_event(done.status, done)
        return done

    async def claim(self) -> list[ClaimedLine]:
        """Claim what this replica's share can hold, and start each line."""
        room = self.generation
        wanted = room.slots - len(self.lines)
        if not self.gateway.engine_state.ready or wanted <= 0 or not room.interactive_idle():
            return []
        claimed = await self.store.batch_lines.claim(
            self.replica, wanted, now=self.clock(), lease=self.lease
        )
        for line in claimed:
            self.lines[line.key] = asyncio.create_task(
                self._line(line), name=f"batch-line-{line.key.batch_id}-{line.key.line}"
            )
        self.gateway.metrics.batch_lines_running.set(len(self.lines))
        return claimed

    async def _batch(self, batch_id: str) -> BatchRecord | None:
        batch = self._batches.get(batch_id)
        if batch is None:
            batch = await self.store.batches.by_id(batch_id)
            if batch is not None:
                self._batches[batch_id] = batch
        return batch

    async def _line(self, line: ClaimedLine) -> None:
        try:
            batch = await self._batch(line.key.batch_id)
            if batch is not None:
                outcome = await self.runner.run(line, batch)
                await self._settle(line, outcome)
        except asyncio.CancelledError:
            if line.key not in self._dropped:
                raise  # shutting down: `stop` hands the line back
        except StoreUnavailableError as err:  # its lease runs out; it is run again
            logger.warning(
                "batch line %s of %s left to run again: %s", line.key.line, line.key.batch_id, err
            )
        finally:
            self.lines.pop(line.key, None)
            self._dropped.discard(line.key)
            self.gateway.metrics.batch_lines_running.set(len(self.lines))
            self._wake.set()

    async def _settle(self, line: ClaimedLine, outcome: LineResult | Retry) -> None:
        """Store a line's result (or hand it back), retrying while the store is down and the
        line's lease lasts."""
        metrics = self.gateway.metrics
        lines = self.store.batch_lines
        if isinstance(outcome, Retry):
            not_before = self.clock() + outcome.after
            await lines.release(line.key, self.replica, not_before=not_before, ran=outcome.ran)
            count_lines(metrics, "retried")
            return
        give_up = self.clock() + self.lease
        while True:
            try:
                finished = await lines.finish(line.key, outcome, now=self.clock())
                break
            except StoreUnavailableError:
                if self.clock() >= give_up:
                    raise
                await asyncio.sleep(1.0)
        count_lines(metrics, outcome.status if finished.stored else "discarded")
        if finished.batch_done:
            self._changed()  # finalize it now

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            keys = list(self.lines)
            try:
                held = await self.store.batch_lines.renew(
                    self.replica, keys, until=self.clock() + self.lease
                )
            except StoreUnavailableError as err:
                logger.warning("batch drainer could not renew its leases: %s", err)
                continue
            for key in keys:
                task = self.lines.get(key)
                if key not in held and task is not None and not task.done():
                    self._dropped.add(key)
                    task.cancel()
