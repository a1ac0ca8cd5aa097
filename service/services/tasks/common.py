"""What every task shares: model check, ids, input limits, usage, the response envelope."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Literal, TypeVar

from pydantic import BaseModel

from service.config import Settings
from service.engine.base import Engine, EngineRequest
from service.schemas.common import Usage
from service.schemas.tasks import FinishReason, TaskChunk, TaskDelta, TaskName, TaskResponse
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
    created = int(time.time())
    completion = 0
    async for index, chunk in stream_deltas(engine, requests, id):
        deltas = []
        for seq in chunk.sequences:
            completion += len(seq.token_ids)
            if seq.text or seq.finish_reason is not None:
                finish = finish_reason(seq.finish_reason) if seq.finish_reason else None
                deltas.append(
                    TaskDelta(index=index, sequence=seq.index, delta=seq.text, finish_reason=finish)
                )
        if deltas:
            event = TaskChunk(id=id, object=kind, created=created, model=model, results=deltas)
            yield event.model_dump_json(exclude={"usage"})
    prompt = sum(len(r.prompt_token_ids) for r in requests)
    last = TaskChunk(
        id=id,
        object=kind,
        created=created,
        model=model,
        results=[],
        usage=Usage.of(prompt, completion),
    )
    yield last.model_dump_json()


def finish_reason(reason: str | None) -> FinishReason:
    """The task API reports why a text ended as "stop" or "length" only."""
    return "length" if reason == "length" else "stop"
