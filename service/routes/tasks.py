"""The task API: /v1/generate, /v1/summarize, /v1/classify and /v1/chat (thin handlers)."""

from __future__ import annotations

from fastapi import APIRouter
from sse_starlette import EventSourceResponse

from service.deps import EngineDep, SettingsDep
from service.routes.sse import event_stream
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
    request: GenerateRequest, engine: EngineDep, settings: SettingsDep
) -> GenerateResponse | EventSourceResponse:
    """Free text generation with Hugging Face `generate` semantics; streams with `stream`."""
    prepared = generate.prepare(request, engine, settings)
    if request.stream:
        return event_stream(generate.stream(prepared, engine), settings)
    return await generate.generate(prepared, engine)


@router.post("/summarize", response_model=SummarizeResponse)
async def summarize_text(
    request: SummarizeRequest, engine: EngineDep, settings: SettingsDep
) -> SummarizeResponse:
    """Summaries of any length of text (map-reduce beyond the context)."""
    return await summarize.summarize(request, engine, settings)


@router.post("/classify", response_model=ClassifyResponse)
async def classify_text(
    request: ClassifyRequest, engine: EngineDep, settings: SettingsDep
) -> ClassifyResponse:
    """One label per text, with a calibrated probability for every label."""
    return await classify.classify(request, engine, settings, request_id=new_id("classify"))


@router.post("/chat", response_model=ChatResponse)
async def chat_turn(
    request: TaskChatRequest, engine: EngineDep, settings: SettingsDep
) -> ChatResponse | EventSourceResponse:
    """A conversation turn with personas; old history is dropped to fit the context."""
    prepared = chat.prepare(request, engine, settings)
    if request.stream:
        return event_stream(chat.stream(prepared, engine), settings)
    return await chat.reply(prepared, engine)
