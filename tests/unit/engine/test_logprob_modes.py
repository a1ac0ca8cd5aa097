"""Token-id scoring and top-k logprobs requests never share a vLLM step (logprob_modes.py)."""

from __future__ import annotations

import asyncio

from service.engine.vllm.logprob_modes import LogprobModes


async def test_scoring_runs_when_no_top_k_request_does() -> None:
    modes = LogprobModes()
    async with modes.scoring() as first, modes.scoring() as second:
        assert first and second


async def test_scoring_is_refused_while_a_top_k_request_runs() -> None:
    modes = LogprobModes()
    async with modes.top_k(), modes.scoring() as allowed:
        assert not allowed
    async with modes.scoring() as allowed:
        assert allowed


async def test_a_top_k_request_waits_for_scoring_and_stops_new_scoring_meanwhile() -> None:
    modes = LogprobModes()
    entered = asyncio.Event()

    async def top_k() -> None:
        async with modes.top_k():
            entered.set()

    async with modes.scoring() as allowed:
        assert allowed
        waiter = asyncio.create_task(top_k())
        await asyncio.sleep(0)  # let it reach its wait (a scheduling step, not a timing)
        assert not entered.is_set()
        async with modes.scoring() as late:
            assert not late  # a waiting top-k request is not starved by new scoring
    await asyncio.wait_for(waiter, timeout=30)
    assert entered.is_set()
    async with modes.scoring() as allowed:
        assert allowed
