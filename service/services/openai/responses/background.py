"""Background responses (`background: true`): runs the app owns, not the request.

`submit` records the response as `queued` and starts its run as a task of this object (one per
app), so the request answers at once and neither its end nor its client leaving cancels the run.
The run is admitted like a request (`admit`: the request's cost, its caller's priority, its
deadline; a refusal, the deadline or an engine error marks it `failed`), marks itself
`in_progress`, runs, and records its end. With `stream`, its events go to an `EventLog`: kept in
the store, followed live by any number of clients, on any replica (`follow`).

Replicas share the store, so each keeps its runs honest there: every `background_heartbeat_seconds`
it records that its runs still run (`heartbeat_at`) and stops those that are no longer active in
the store (cancelled or deleted through another replica, or declared dead); and it marks `failed`
any run whose replica has not recorded it for `background_stale_seconds` (a crash, a kill), so
nothing stays `in_progress` forever. A cancel that reaches the run's own replica stops it at once.
Stopping the app (a restart) marks its unfinished runs `failed`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from service.config import Settings
from service.engine.base import Engine
from service.errors import GatewayError, InvalidRequestError, NotFoundError
from service.schemas.responses import Response, ResponseError
from service.services.openai.responses.event_log import EventLog, follow_stored
from service.services.openai.responses.events import ResponseEvent, ResponseEvents
from service.services.openai.responses.items import known_id
from service.services.openai.responses.output import add_to_conversation, conversation_after
from service.services.openai.responses.request import PreparedResponse
from service.services.openai.responses.run import answer, output_events
from service.store import Store
from service.store.responses import StoredResponse
from service.telemetry import context

logger = logging.getLogger(__name__)

# admit(work): admit the response like its request would be, then run work() before its deadline.
Admit = Callable[[Callable[[], Awaitable[None]]], Awaitable[None]]

PRUNE_SECONDS = 60.0  # how often a replica deletes what outlived the store's bounds
STOPPED = "The gateway stopped (a restart or a shutdown) before the response finished."
DIED = (
    "The gateway replica running this response stopped responding (it crashed or was "
    "killed) before the response finished."
)


class _Superseded(Exception):
    """The run's response is no longer its to finish (cancelled, deleted, declared dead)."""


@dataclass(eq=False, slots=True)
class _Run:
    prepared: PreparedResponse
    events: ResponseEvents
    log: EventLog | None  # with `stream`
    task: asyncio.Task[None] | None = None
    ending: bool = False  # recording its end: a heartbeat no longer stops it

    @property
    def id(self) -> str:
        return self.prepared.shell.id

    def stop(self) -> None:
        if self.task is not None and not self.ending:
            self.task.cancel()


def unknown_response(response_id: str) -> NotFoundError:
    return NotFoundError(
        f"No response with id '{response_id}' is stored here.", param="response_id"
    )


class BackgroundResponses:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        replica: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._settings = settings
        self.replica = replica or f"replica-{secrets.token_hex(8)}"
        self._clock = clock
        self._runs: dict[str, _Run] = {}
        self._beat: asyncio.Task[None] | None = None
        self._stopping = False
        self._swept = -math.inf  # when this replica last looked for dead replicas' runs
        self._pruned = -math.inf

    # --- the app's lifespan

    def begin(self) -> None:
        self._beat = asyncio.create_task(self._heartbeats(), name="background heartbeats")

    async def stop(self) -> None:
        """Stop the heartbeats, and every run (each marked `failed`)."""
        self._stopping = True
        if self._beat is not None:
            # Done before the runs are stopped, so that no heartbeat starts while they are
            # marked failed (a write it had begun runs to its end: store/operations.py).
            self._beat.cancel()
            await asyncio.gather(self._beat, return_exceptions=True)
        tasks = [run.task for run in self._runs.values() if run.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def running(self) -> list[str]:
        """The ids of the responses this replica is running."""
        return list(self._runs)

    # --- what requests ask

    async def submit(self, prepared: PreparedResponse, engine: Engine, admit: Admit) -> Response:
        """Record the response as queued and start its run; the response as it is now."""
        shell = prepared.shell
        await self._store.responses.start(
            prepared.owner,
            shell.model_dump(mode="json"),
            prepared.messages,
            input_items=prepared.input_items,
            replica=self.replica,
            stream=prepared.stream,
            conversation_id=prepared.conversation_id,
        )
        events = ResponseEvents(prepared)
        log = EventLog(shell.id, self._store.responses) if prepared.stream else None
        if log is not None:
            log.append(events.lifecycle("response.created", shell))
            log.append(events.lifecycle("response.queued", shell))
        run = _Run(prepared, events, log)
        ctx = context.current()
        if ctx is not None:  # the request's token charge waits for the run's tokens
            ctx.work_started()
        run.task = asyncio.create_task(self._run(run, engine, admit), name=f"response {shell.id}")
        self._runs[shell.id] = run
        run.task.add_done_callback(lambda _: self._runs.pop(shell.id, None))
        return shell

    async def stored(self, owner: str, response_id: str) -> StoredResponse:
        """The owner's stored response; 404 for an unknown id or another key's."""
        found = (
            await self._store.responses.get(owner, response_id) if known_id(response_id) else None
        )
        if found is None:
            raise unknown_response(response_id)
        return found

    async def cancel(self, owner: str, response_id: str) -> Response:
        """Cancel a background response that has not ended (a cancelled one is answered as it
        is); its run stops at once here, or at its replica's next heartbeat."""
        stored = await self.stored(owner, response_id)
        if not stored.background:
            raise InvalidRequestError(
                f"Response '{response_id}' was not created with background=true: only "
                "background responses can be cancelled.",
                param="response_id",
            )
        if stored.active and await self._store.responses.cancel(owner, response_id):
            run = self._runs.get(response_id)
            if run is not None:
                run.stop()
            stored = await self.stored(owner, response_id)
        elif stored.active:  # it ended meanwhile
            stored = await self.stored(owner, response_id)
        if stored.status != "cancelled":
            raise InvalidRequestError(
                f"Response '{response_id}' is already {stored.status}: it cannot be cancelled.",
                param="response_id",
            )
        return Response.model_validate(stored.body)

    def follow_run(self, response_id: str) -> AsyncIterator[ResponseEvent]:
        """The events of a streamed run `submit` has just started, from the first."""
        log = self._runs[response_id].log
        if log is None:
            raise ValueError(f"{response_id} does not stream")
        return log.follow(-1)

    def follow(self, response: StoredResponse, after: int) -> AsyncIterator[ResponseEvent]:
        """The events of a background stream after sequence number `after`, then live: from its
        run's log on the replica running it, else from the store."""
        run = self._runs.get(response.id)
        if run is not None and run.log is not None:
            return run.log.follow(after)
        return follow_stored(
            self._store.responses,
            response,
            after,
            poll=self._settings.response_stream_poll_seconds,
            settle=self._settings.database_timeout_seconds,
        )

    # --- a run

    async def _run(self, run: _Run, engine: Engine, admit: Admit) -> None:
        try:
            await admit(partial(self._work, run, engine))
        except _Superseded:
            pass
        except asyncio.CancelledError:
            if self._stopping:
                await self._fail(run, "server_error", STOPPED)
            raise
        except GatewayError as err:  # refused at admission, past its deadline, engine failure
            await self._fail(run, err.code or err.error_type, err.message)
        except Exception:
            logger.exception("background response %s failed", run.id)
            await self._fail(run, "server_error", "The server had an error generating it.")
        finally:
            if run.log is not None:
                await run.log.close()
            ctx = context.current()  # the request's, copied into this task
            if ctx is not None:
                await ctx.work_ended()

    async def _work(self, run: _Run, engine: Engine) -> None:
        prepared = run.prepared
        if not await self._store.responses.mark_in_progress(run.id, self.replica):
            raise _Superseded
        started = prepared.shell.model_copy(update={"status": "in_progress"})
        if run.log is None:
            await self._finish(run, await answer(prepared, engine))
            return
        run.log.append(run.events.lifecycle("response.in_progress", started))
        async for event in output_events(run.events, engine, partial(self._finish, run)):
            run.log.append(event)

    async def _finish(self, run: _Run, response: Response) -> None:
        """Record the run's end, then add its items to its conversation."""
        run.ending = True
        recorded = await self._store.responses.finish(
            run.id,
            self.replica,
            body=response.model_dump(mode="json"),
            messages=conversation_after(run.prepared, response),
        )
        if not recorded:
            raise _Superseded
        await add_to_conversation(run.prepared, response, self._store)

    async def _fail(self, run: _Run, code: str, message: str) -> None:
        run.ending = True
        failed = run.prepared.shell.model_copy(
            update={"status": "failed", "error": ResponseError(code=code, message=message)}
        )
        try:
            recorded = await self._store.responses.finish(
                run.id, self.replica, body=failed.model_dump(mode="json")
            )
        except Exception:  # the store is down: the sweep marks it failed later
            logger.warning("could not record the failure of %s", run.id, exc_info=True)
            return
        if recorded and run.log is not None:
            run.log.append(run.events.lifecycle("response.failed", failed))

    # --- heartbeats

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self._settings.background_heartbeat_seconds)
            try:
                await self.tick()
            except Exception:  # a store that is down now may be back at the next beat
                logger.warning("background heartbeat failed", exc_info=True)

    async def tick(self) -> None:
        """One heartbeat: record this replica's runs and stop the ones no longer active; now
        and then, mark failed the runs of replicas that stopped beating, and prune. An idle
        replica makes one small read every `background_stale_seconds / 3`, and one prune a
        minute."""
        now = self._clock()
        running = [run_id for run_id, run in self._runs.items() if not run.ending]
        if running:
            active = await self._store.responses.heartbeat(self.replica, running, now=now)
            for run_id in running:
                run = self._runs.get(run_id)
                if run is not None and run_id not in active:
                    run.stop()
        stale = self._settings.background_stale_seconds
        if now - self._swept >= stale / 3:  # a dead replica's runs fail within 4/3 x stale
            self._swept = now
            failed = await self._store.responses.fail_stale(
                now - stale, ResponseError(code="server_error", message=DIED).model_dump()
            )
            if failed:
                logger.warning("background responses of a dead replica marked failed: %s", failed)
        if now - self._pruned >= PRUNE_SECONDS:
            self._pruned = now
            await self._store.responses.prune()
            await self._store.conversations.prune()
