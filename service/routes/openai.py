"""The OpenAI-compatible surface: /v1/models, /v1/completions, /v1/chat/completions, and
vLLM's render endpoints for routers (/v1/completions/render, /v1/chat/completions/render)."""

from __future__ import annotations

import time

from fastapi import APIRouter
from sse_starlette import EventSourceResponse

from service.http.deps import EngineDep, SettingsDep, StateDep
from service.http.guard import GuardDep
from service.schemas.chat import ChatCompletionRequest, ChatCompletionResponse
from service.schemas.common import ModelCard, ModelList
from service.schemas.completions import CompletionRequest, CompletionResponse
from service.schemas.render import RenderedPrompt
from service.services import models
from service.services.openai import chat, completions, render

router = APIRouter(prefix="/v1", tags=["openai"])
_STARTED = int(time.time())


@router.get("/models")
async def list_models(settings: SettingsDep, state: StateDep) -> ModelList:
    cards = models.model_cards(settings, state.engine, _STARTED)
    embedding = settings.embedding_model_name
    if state.serves_embeddings and embedding not in (None, settings.model_name):  # one card a name
        engine = state.embedding_engine
        cards.append(
            ModelCard(
                id=str(embedding),
                created=_STARTED,
                max_model_len=engine.max_model_len if engine is not None else None,
            )
        )
    return ModelList(data=cards)


@router.post("/completions", response_model=None)
async def create_completion(
    request: CompletionRequest, engine: EngineDep, settings: SettingsDep, guard: GuardDep
) -> CompletionResponse | EventSourceResponse:
    prepared = completions.prepare(request, engine, settings)
    if request.stream:
        return await guard.stream(
            prepared.cost, lambda: completions.stream(prepared, engine), request.timeout
        )
    return await guard.run(
        prepared.cost, lambda: completions.complete(prepared, engine), request.timeout
    )


@router.post("/chat/completions", response_model=None)
async def create_chat_completion(
    request: ChatCompletionRequest, engine: EngineDep, settings: SettingsDep, guard: GuardDep
) -> ChatCompletionResponse | EventSourceResponse:
    prepared = chat.prepare(request, engine, settings)
    if request.stream:
        return await guard.stream(
            prepared.cost, lambda: chat.stream(prepared, engine), request.timeout
        )
    return await guard.run(prepared.cost, lambda: chat.complete(prepared, engine), request.timeout)


# Tokenizing only: no engine work, so no admission (a router calls these before forwarding).
@router.post("/completions/render")
async def render_completion(
    request: CompletionRequest, engine: EngineDep, settings: SettingsDep
) -> list[RenderedPrompt]:
    return render.render_completion(request, engine, settings)


@router.post("/chat/completions/render")
async def render_chat_completion(
    request: ChatCompletionRequest, engine: EngineDep, settings: SettingsDep
) -> RenderedPrompt:
    return render.render_chat(request, engine, settings)
