"""Keeping two kinds of sample logprobs out of one vLLM batch.

vLLM's sampler returns one kind of sample logprobs per batch: when any request in a step asks
for `logprob_token_ids`, every request of that step gets the token-id tensors, so a request in
the same step that asked for its top-k logprobs (`logprobs` >= 1) gets padding instead of its
top tokens (vllm/v1/sample/sampler.py, "prefer logprob_token_ids"; 0.32). The sampled token's own
logprob (`logprobs` 0) is right either way.

So the two kinds never run at once here. Token-id scoring (classify) never waits: it runs only
when no top-k request runs or waits, and otherwise the caller scores another way. A top-k
request waits for the scoring requests in flight, which are one-token requests, and while it
waits no new scoring starts, so a stream of classify calls cannot starve it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class LogprobModes:
    """Counts of the two kinds in flight; used on one event loop."""

    def __init__(self) -> None:
        self._scoring = 0
        self._top_k = 0
        self._top_k_waiting = 0
        self._idle = asyncio.Event()  # set while no scoring runs
        self._idle.set()

    @asynccontextmanager
    async def scoring(self) -> AsyncIterator[bool]:
        """Token-id scoring if it can start now (True), else nothing held (False)."""
        if self._top_k or self._top_k_waiting:
            yield False
            return
        self._scoring += 1
        self._idle.clear()
        try:
            yield True
        finally:
            self._scoring -= 1
            if not self._scoring:
                self._idle.set()

    @asynccontextmanager
    async def top_k(self) -> AsyncIterator[None]:
        """A top-k logprobs request, once no scoring runs."""
        if self._scoring:
            self._top_k_waiting += 1
            try:
                await self._idle.wait()
            finally:
                self._top_k_waiting -= 1
        self._top_k += 1
        try:
            yield
        finally:
            self._top_k -= 1
