"""What every task shares: model check, ids, input limits, usage, the response envelope."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Literal, TypeVar

from pydantic import BaseModel

from service.config import Settings
from service.engine.base import Engine, EngineRequest, SequenceDelta
from service.schemas.common import Usage
from service.schemas.tasks import FinishReason, TaskChunk, TaskDelta, TaskName, TaskResponse
from service.services.core.chunk_json import TextSlot
from service.services.core.generation import stream_deltas
from service.services.core.limits import check_text, check_texts
from service.services.registry import ModelChoice, select_model

R = TypeVar("R", bound=BaseModel)


def served_model(requested: str | None, settings: Settings, engine: Engine) -> ModelChoice:
    """The task API's `model` is optional; when given it must be the served model or one of
    its adapters (which the request then runs on)."""
    return select_model(requested or settings.model_name, settings, engine)


def new_id(task: TaskName) -> str:
    return f"{task}-{uuid.uuid4().hex}"


def inputs(
    single: str | None, batch: Sequence[str] | None, *, param: str, settings: Settings
) -> list[str]:
    """The request's texts as a list, within the configured batch and length limits (413)."""
    if single is not None:
        check_text(single, settings, param=param)
        return [single]
    texts = list(batch or [])
    check_texts(texts, settings, param=param)
    return texts


def envelope(
    task: TaskName, *, id: str, model: str, results: list[R], usage: Usage
) -> TaskResponse[R]:
    return TaskResponse[R](
        id=id, object=task, created=int(time.time()), model=model, results=results, usage=usage
    )


async def stream_task(
    kind: Literal["generate.chunk", "chat.chunk"],
    id: str,
    model: str,
    requests: list[EngineRequest],
    engine: Engine,
) -> AsyncIterator[str]:
    """A streaming task's SSE payloads: deltas by input `index` and `sequence`, then usage."""
    events = _TaskEvents(kind, id, model)
    completion = 0
    async for index, chunk in stream_deltas(engine, requests, id):
        for seq in chunk.sequences:
            completion += len(seq.token_ids)
        payload = events.payload(index, chunk.sequences)
        if payload is not None:
            yield payload
    prompt = sum(len(r.prompt_token_ids) for r in requests)
    yield events.json([], Usage.of(prompt, completion))


def _delta(index: int, sequence: int, text: str, reason: str | None) -> TaskDelta:
    finish = finish_reason(reason) if reason else None
    return TaskDelta(index=index, sequence=sequence, delta=text, finish_reason=finish)


class _TaskEvents:
    """A streaming task's events; a step that only adds text to one sequence is written through
    that sequence's text slot (cut from the chunk `_delta` makes for such a step)."""

    def __init__(self, kind: Literal["generate.chunk", "chat.chunk"], id: str, model: str) -> None:
        self.kind = kind
        self.id = id
        self.model = model
        self.created = int(time.time())
        self._slots: dict[tuple[int, int], TextSlot] = {}

    def json(self, results: list[TaskDelta], usage: Usage | None = None) -> str:
        event = TaskChunk(
            id=self.id,
            object=self.kind,
            created=self.created,
            model=self.model,
            results=results,
            usage=usage,
        )
        return (
            event.model_dump_json()
            if usage is not None
            else event.model_dump_json(exclude={"usage"})
        )

    def payload(self, index: int, sequences: Sequence[SequenceDelta]) -> str | None:
        if len(sequences) == 1 and sequences[0].text and sequences[0].finish_reason is None:
            return self._slot(index, sequences[0].index)(sequences[0].text)
        deltas = [
            _delta(index, seq.index, seq.text, seq.finish_reason)
            for seq in sequences
            if seq.text or seq.finish_reason is not None
        ]
        return self.json(deltas) if deltas else None

    def _slot(self, index: int, sequence: int) -> TextSlot:
        slot = self._slots.get((index, sequence))
        if slot is None:
            slot = TextSlot(lambda text: self.json([_delta(index, sequence, text, None)]))
            self._slots[index, sequence] = slot
        return slot


def finish_reason(reason: str | None) -> FinishReason:
    """The task API reports why a text ended as "stop" or "length" only."""
    return "length" if reason == "length" else "stop"
