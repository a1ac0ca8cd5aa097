"""The task API: /v1/generate, /v1/summarize, /v1/classify and /v1/chat (thin handlers)."""

from __future__ import annotations

from fastapi import APIRouter
from sse_starlette import EventSourceResponse

from service.http.deps import CallerDep, EngineDep, SettingsDep
from service.http.guard import GuardDep
from service.schemas.tasks import (
    ChatResponse,
    ClassifyRequest,
    ClassifyResponse,
    GenerateRequest,
    GenerateResponse,
    SummarizeRequest,
    SummarizeResponse,
    TaskChatRequest,
)
from service.services.tasks import chat, classify, generate, summarize
from service.services.tasks.common import new_id

router = APIRouter(prefix="/v1", tags=["tasks"])


@router.post("/generate", response_model=GenerateResponse)
async def generate_text(
    request: GenerateRequest,
    engine: EngineDep,
    settings: SettingsDep,
    guard: GuardDep,
    caller: CallerDep,
) -> GenerateResponse | EventSourceResponse:
    """Free text generation with Hugging Face `generate` semantics; streams with `stream`."""
    prepared = generate.prepare(request, engine, settings, caller)
    if request.stream:
        return await guard.stream(
            prepared, lambda: generate.stream(prepared, engine), request.timeout
        )
    return await guard.run(prepared, lambda: generate.generate(prepared, engine), request.timeout)


@router.post("/summarize", response_model=SummarizeResponse)
async def summarize_text(
    request: SummarizeRequest,
    engine: EngineDep,
    settings: SettingsDep,
    guard: GuardDep,
    caller: CallerDep,
) -> SummarizeResponse:
    """Summaries of any length of text (map-reduce beyond the context)."""
    prepared = summarize.prepare(request, engine, settings, caller)
    return await guard.run(prepared, lambda: summarize.summarize(prepared, engine), request.timeout)


@router.post("/classify", response_model=ClassifyResponse)
async def classify_text(
    request: ClassifyRequest,
    engine: EngineDep,
    settings: SettingsDep,
    guard: GuardDep,
    caller: CallerDep,
) -> ClassifyResponse:
    """One label per text, with a calibrated probability for every label."""
    prepared = classify.prepare(request, engine, settings, caller, request_id=new_id("classify"))
    return await guard.run(prepared, lambda: classify.classify(prepared, engine), request.timeout)


@router.post("/chat", response_model=ChatResponse)
async def chat_turn(
    request: TaskChatRequest,
    engine: EngineDep,
    settings: SettingsDep,
    guard: GuardDep,
    caller: CallerDep,
) -> ChatResponse | EventSourceResponse:
    """A conversation turn with personas; old history is dropped to fit the context."""
    prepared = chat.prepare(request, engine, settings, caller)
    if request.stream:
        return await guard.stream(prepared, lambda: chat.stream(prepared, engine), request.timeout)
    return await guard.run(prepared, lambda: chat.reply(prepared, engine), request.timeout)
