"""The OpenAI-compatible surface: /v1/models, /v1/completions, /v1/chat/completions, and
vLLM's render endpoints for routers (/v1/completions/render, /v1/chat/completions/render)."""

from __future__ import annotations

import time

from fastapi import APIRouter
from sse_starlette import EventSourceResponse

from service.http.deps import CallerDep, EngineDep, SettingsDep, StateDep
from service.http.guard import GuardDep
from service.schemas.chat import ChatCompletionRequest, ChatCompletionResponse
from service.schemas.common import ModelList
from service.schemas.completions import CompletionRequest, CompletionResponse
from service.schemas.render import RenderedPrompt
from service.services import registry
from service.services.openai import chat, completions, render

router = APIRouter(prefix="/v1", tags=["openai"])
_STARTED = int(time.time())


@router.get("/models")
async def list_models(settings: SettingsDep, state: StateDep) -> ModelList:
    cards = registry.model_cards(
        settings,
        state.engine,
        state.embedding_engine,
        serves_embeddings=state.serves_embeddings,
        created=_STARTED,
    )
    return ModelList(data=cards)


@router.post("/completions", response_model=None)
async def create_completion(
    request: CompletionRequest,
    engine: EngineDep,
    settings: SettingsDep,
    guard: GuardDep,
    caller: CallerDep,
) -> CompletionResponse | EventSourceResponse:
    prepared = completions.prepare(request, engine, settings, caller)
    if request.stream:
        return await guard.stream(
            prepared, lambda: completions.stream(prepared, engine), request.timeout
        )
    return await guard.run(
        prepared, lambda: completions.complete(prepared, engine), request.timeout
    )


@router.post("/chat/completions", response_model=None)
async def create_chat_completion(
    request: ChatCompletionRequest,
    engine: EngineDep,
    settings: SettingsDep,
    guard: GuardDep,
    caller: CallerDep,
) -> ChatCompletionResponse | EventSourceResponse:
    prepared = chat.prepare(request, engine, settings, caller)
    if request.stream:
        return await guard.stream(prepared, lambda: chat.stream(prepared, engine), request.timeout)
    return await guard.run(prepared, lambda: chat.complete(prepared, engine), request.timeout)


# Tokenizing only: no engine work, so no admission (a router calls these before forwarding).
@router.post("/completions/render")
async def render_completion(
    request: CompletionRequest, engine: EngineDep, settings: SettingsDep, caller: CallerDep
) -> list[RenderedPrompt]:
    return render.render_completion(request, engine, settings, caller)


@router.post("/chat/completions/render")
async def render_chat_completion(
    request: ChatCompletionRequest, engine: EngineDep, settings: SettingsDep, caller: CallerDep
) -> RenderedPrompt:
    return render.render_chat(request, engine, settings, caller)
