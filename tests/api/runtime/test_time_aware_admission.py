"""Time-aware admission on a slowed fake engine, in process: once the queue's drain rate is
known, a request that cannot be admitted before its deadline is refused at once."""

from __future__ import annotations

import asyncio

from service.engine.fake import FakeEngine
from tests.api.helpers import CHAT, assert_openai_error, chat_body, make_app, serve, until

SECONDS_PER_REQUEST = 1.0  # the slowed engine: one request at a time, at least 1 s each
QUEUED = 60  # about 60 s of work waiting


def reached_the_engine(engine: FakeEngine, word: str) -> bool:
    return any(
        word in engine.tokenizer.decode(prompt)
        for prompt in (r.prompt_token_ids for r in engine.requests)
    )


async def test_a_request_behind_too_much_queued_work_is_refused_before_the_engine(
    fake_engine: FakeEngine,
) -> None:
    fake_engine.delay = SECONDS_PER_REQUEST
    app = make_app(
        fake_engine,
        max_inflight_sequences=1,
        max_queued_sequences=200,
        max_queue_wait_seconds=600,  # only the request's own deadline bounds its wait here
    )
    admission = app.state.gateway.admission
    async with serve(app) as client:
        running = asyncio.create_task(client.post(CHAT, json=chat_body()))
        await until(lambda: admission.in_flight == 1, "the first request was admitted")
        queued = [
            asyncio.create_task(client.post(CHAT, json=chat_body(timeout=600)))
            for _ in range(QUEUED)
        ]
        await until(lambda: admission.queued == QUEUED, "the queue filled")
        await until(lambda: admission.drain_rate.per_second is not None, "a drain rate is known")
        assert admission.queued >= QUEUED - 1  # at most one admitted meanwhile: ~59 s of work

        refused = await client.post(CHAT, json=chat_body("refused-probe", timeout=2))

        assert_openai_error(refused, 503, code="overloaded")
        assert int(refused.headers["retry-after"]) >= 2
        assert "deadline" in refused.json()["error"]["message"]
        stream = await client.post(CHAT, json=chat_body("refused-probe", timeout=2, stream=True))
        assert_openai_error(stream, 503, code="overloaded")  # a status, before any event
        assert not reached_the_engine(fake_engine, "refused-probe")
        metrics = (await client.get("/metrics")).text
        wait = next(
            float(line.split()[1])
            for line in metrics.splitlines()
            if line.startswith("gateway_queue_wait_seconds ")
        )
        assert wait >= 2  # the gauge shows the estimate the refusal was made on

        # A request whose deadline covers the wait is queued as before.
        before = admission.queued
        fits = asyncio.create_task(client.post(CHAT, json=chat_body("fits-probe", timeout=600)))
        await until(lambda: admission.queued == before + 1, "the fitting request queued")
        assert not fits.done()

        for task in [running, *queued, fits]:
            task.cancel()
        await asyncio.gather(running, *queued, fits, return_exceptions=True)
    assert admission.queued == 0 and admission.in_flight == 0
