"""The events of a background stream: kept, and followed live.

`EventLog` is a run's own log, on the replica that runs it: events in memory for this replica's
followers, and written to the store in order, in batches (one transaction for whatever came
while the last write ran), so a follower on any replica, or after the run, replays them.
`follow_stored` is that follower: the stored events after a sequence number, then new ones as
the store gets them (read every `poll` seconds) until the response has ended and its final event
is read.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

from service.services.openai.responses.events import FINAL_EVENTS, ResponseEvent
from service.store.responses import EVENTS_PAGE, Responses, StoredEvent, StoredResponse

logger = logging.getLogger(__name__)


class EventLog:
    def __init__(self, response_id: str, responses: Responses) -> None:
        self.response_id = response_id
        self._responses = responses
        self.events: list[ResponseEvent] = []  # by sequence number, from 0
        self._unwritten: list[ResponseEvent] = []
        self._writer: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self.closed = False

    def append(self, event: ResponseEvent) -> None:
        self.events.append(event)
        self._unwritten.append(event)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name=f"events {self.response_id}")
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _write(self) -> None:
        while self._unwritten:
            batch, self._unwritten = self._unwritten, []
            stored = [StoredEvent(e.sequence_number, e.type, e.data) for e in batch]
            try:
                await self._responses.append_events(self.response_id, stored)
            except Exception:  # the store is down, or the response was deleted meanwhile
                logger.warning(
                    "events %d-%d of %s were not stored",
                    stored[0].sequence_number,
                    stored[-1].sequence_number,
                    self.response_id,
                    exc_info=True,
                )

    async def close(self) -> None:
        """No more events: followers end once they have them all; returns once all are
        written (or given up)."""
        self.closed = True
        self._wake()
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)
        await self._write()

    async def follow(self, after: int) -> AsyncIterator[ResponseEvent]:
        """The events after sequence number `after`, then each as it comes, until the log
        closes."""
        index = max(after + 1, 0)
        while True:
            while index < len(self.events):
                yield self.events[index]
                index += 1
            if self.closed:
                return
            await self._changed.wait()


def _failed_event(response: StoredResponse, sequence_number: int) -> ResponseEvent:
    """The end of a stream whose run failed without saying so (its replica died)."""
    payload = {
        "type": "response.failed",
        "sequence_number": sequence_number,
        "response": response.body,
    }
    return ResponseEvent("response.failed", sequence_number, json.dumps(payload))


async def follow_stored(
    responses: Responses,
    response: StoredResponse,
    after: int,
    *,
    poll: float,
    settle: float,
) -> AsyncIterator[ResponseEvent]:
    """The stored events of `response` after `after`, then new ones until it has ended.

    A run records its end before its log has written its last events (the final one is made
    from the recorded response), so a follower that sees the end keeps reading until the final
    event, for at most `settle` seconds (the writer's own give-up time); a cancelled run has no
    final event."""
    last, final = after, False
    current: StoredResponse | None = response
    settle_by: float | None = None  # once the response has ended
    loop = asyncio.get_running_loop()
    while current is not None:
        events = await responses.events_after(response.id, last)
        for stored in events:
            last, final = stored.sequence_number, stored.type in FINAL_EVENTS
            yield ResponseEvent(stored.type, stored.sequence_number, stored.data)
        if len(events) == EVENTS_PAGE:
            continue
        if final:
            break
        if settle_by is None:
            current = await responses.get(response.owner, response.id)
            if current is not None and not current.active:
                settle_by = loop.time() + (0.0 if current.status == "cancelled" else settle)
                continue  # one more read: the events written before it ended
        elif loop.time() >= settle_by:
            break
        await asyncio.sleep(poll)
    if current is not None and current.status == "failed" and not final:
        yield _failed_event(current, last + 1)
