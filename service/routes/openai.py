"""The OpenAI-compatible surface: /v1/models, /v1/completions, /v1/chat/completions."""

from __future__ import annotations

import time

from fastapi import APIRouter
from sse_starlette import EventSourceResponse

from service.deps import EngineDep, SettingsDep, StateDep
from service.routes.sse import event_stream
from service.schemas.chat import ChatCompletionRequest, ChatCompletionResponse
from service.schemas.common import ModelCard, ModelList
from service.schemas.completions import CompletionRequest, CompletionResponse
from service.services import chat, completions

router = APIRouter(prefix="/v1", tags=["openai"])
_STARTED = int(time.time())


@router.get("/models")
async def list_models(settings: SettingsDep, state: StateDep) -> ModelList:
    max_len = state.engine.max_model_len if state.engine is not None else settings.max_model_len
    card = ModelCard(id=settings.model_name, created=_STARTED, max_model_len=max_len)
    return ModelList(data=[card])


@router.post("/completions", response_model=None)
async def create_completion(
    request: CompletionRequest, engine: EngineDep, settings: SettingsDep
) -> CompletionResponse | EventSourceResponse:
    prepared = completions.prepare(request, engine, settings)
    if request.stream:
        return event_stream(completions.stream(prepared, engine), settings)
    return await completions.complete(prepared, engine)


@router.post("/chat/completions", response_model=None)
async def create_chat_completion(
    request: ChatCompletionRequest, engine: EngineDep, settings: SettingsDep
) -> ChatCompletionResponse | EventSourceResponse:
    prepared = chat.prepare(request, engine, settings)
    if request.stream:
        return event_stream(chat.stream(prepared, engine), settings)
    return await chat.complete(prepared, engine)
