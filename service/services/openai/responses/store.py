"""Stored responses, for `previous_response_id` and GET/DELETE /v1/responses/{id}.

In memory, per replica (behind a load balancer a continuation must reach the replica that stored
its predecessor), bounded by `response_store_entries` (the oldest goes first) and
`response_store_ttl_seconds`. Each entry belongs to the API key that created it
(`Caller.owner`: its public id, or the one anonymous owner when auth is off): another key sees
a 404, as if it did not exist.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from service.schemas.responses import Response


@dataclass(frozen=True, slots=True)
class StoredResponse:
    response: Response
    # The whole conversation as chat messages, this response's output included: what a
    # continuation's prompt starts with.
    messages: list[dict[str, Any]]
    owner: str
    expires: float


class ResponseStore:
    def __init__(self, *, entries: int, ttl_seconds: float) -> None:
        self._entries = entries
        self._ttl = ttl_seconds
        self._items: OrderedDict[str, StoredResponse] = OrderedDict()

    def put(self, response: Response, messages: list[dict[str, Any]], owner: str) -> None:
        if self._entries == 0:
            return
        self._items[response.id] = StoredResponse(
            response, messages, owner, time.monotonic() + self._ttl
        )
        self._items.move_to_end(response.id)
        while len(self._items) > self._entries:
            self._items.popitem(last=False)

    def get(self, response_id: str, owner: str) -> StoredResponse | None:
        item = self._items.get(response_id)
        if item is None:
            return None
        if item.expires <= time.monotonic():
            del self._items[response_id]
            return None
        return item if item.owner == owner else None

    def delete(self, response_id: str, owner: str) -> bool:
        if self.get(response_id, owner) is None:
            return False
        del self._items[response_id]
        return True
