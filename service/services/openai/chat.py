"""`/v1/chat/completions`: messages through the model's chat template, then the engine."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from service.config import Settings
from service.engine.base import Engine, TokenLogprob
from service.errors import InvalidRequestError
from service.schemas.chat import (
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatMessage,
    ChoiceLogprobs,
    DeltaMessage,
    TokenLogprobEntry,
    TopLogprob,
)
from service.schemas.common import Usage
from service.services import costs
from service.services.generation import EngineJob, run_to_completion, stream_deltas
from service.services.limits import check_count, check_text
from service.services.models import select_model
from service.services.sampling import sampling_options, token_budget


@dataclass(frozen=True, slots=True)
class PreparedChat:
    id: str
    created: int
    model: str
    job: EngineJob
    n: int
    logprobs: bool
    include_usage: bool

    @property
    def cost(self) -> int:
        """Engine sequences, for admission control."""
        return costs.of_jobs([self.job])


def prepare(request: ChatCompletionRequest, engine: Engine, settings: Settings) -> PreparedChat:
    model = select_model(request.model, settings, engine)
    check_count(len(request.messages), settings.max_messages, what="messages", param="messages")
    for i, message in enumerate(request.messages):
        check_text(message.text(), settings, param=f"messages.{i}.content")
    messages = [
        {"role": "system" if m.role == "developer" else m.role, "content": m.text()}
        for m in request.messages
    ]
    try:
        prompt = engine.tokenizer.apply_chat_template(
            messages,
            add_generation_prompt=request.add_generation_prompt,
            continue_final_message=request.continue_final_message,
        )
    except Exception as err:  # a template may refuse a conversation (e.g. role order)
        raise InvalidRequestError(
            f"The model's chat template rejected the messages: {err}", param="messages"
        ) from err
    # The template already holds the special tokens (BOS etc.); do not add them twice.
    ids = engine.tokenizer.encode(prompt, add_special_tokens=False)
    max_tokens = token_budget(
        request.token_limit,
        prompt_tokens=len(ids),
        max_model_len=engine.max_model_len,
        default_cap=settings.default_max_tokens,
        prompt_param="messages",
        requested_param=(
            "max_completion_tokens" if request.max_completion_tokens is not None else "max_tokens"
        ),
    )
    top = request.top_logprobs or 0
    options = sampling_options(
        request,
        max_tokens=max_tokens,
        logprobs=top if request.logprobs else None,
        settings=settings,
        logprobs_param="top_logprobs",
    )
    return PreparedChat(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=model,
        job=EngineJob(ids, options),
        n=request.n,
        logprobs=request.logprobs,
        include_usage=bool(request.stream_options and request.stream_options.include_usage),
    )


def _logprobs(entries: list[TokenLogprob]) -> ChoiceLogprobs:
    return ChoiceLogprobs(
        content=[
            TokenLogprobEntry(
                token=e.token,
                logprob=e.logprob,
                bytes=list(e.token.encode()),
                top_logprobs=[
                    TopLogprob(token=text, logprob=lp, bytes=list(text.encode()))
                    for _, text, lp in e.top
                ],
            )
            for e in entries
        ]
    )


async def complete(prepared: PreparedChat, engine: Engine) -> ChatCompletionResponse:
    (result,) = await run_to_completion(engine, [prepared.job], prepared.id)
    choices = [
        ChatChoice(
            index=i,
            message=ChatMessage(content=seq.text),
            logprobs=_logprobs(seq.logprobs) if prepared.logprobs else None,
            finish_reason=seq.finish_reason,
            stop_reason=seq.stop_reason,
        )
        for i, seq in enumerate(result.sequences)
    ]
    completion = sum(len(s.token_ids) for s in result.sequences)
    usage = Usage.of(result.num_prompt_tokens, completion)
    return ChatCompletionResponse(
        id=prepared.id, created=prepared.created, model=prepared.model, choices=choices, usage=usage
    )


def _chunk(prepared: PreparedChat, choices: list[ChatChunkChoice]) -> str:
    return ChatCompletionChunk(
        id=prepared.id, created=prepared.created, model=prepared.model, choices=choices
    ).model_dump_json(exclude={"usage"})


async def stream(prepared: PreparedChat, engine: Engine) -> AsyncIterator[str]:
    """JSON payloads of the SSE events, without the final [DONE]."""
    # OpenAI opens every choice with the role before any content.
    yield _chunk(
        prepared,
        [
            ChatChunkChoice(index=i, delta=DeltaMessage(role="assistant", content=""))
            for i in range(prepared.n)
        ],
    )
    completion_tokens = 0
    async for _, chunk in stream_deltas(engine, [prepared.job], prepared.id):
        choices = []
        for delta in chunk.sequences:
            completion_tokens += len(delta.token_ids)
            if not delta.text and delta.finish_reason is None:
                continue
            choices.append(
                ChatChunkChoice(
                    index=delta.index,
                    delta=DeltaMessage(content=delta.text),
                    logprobs=_logprobs(delta.logprobs or []) if prepared.logprobs else None,
                    finish_reason=delta.finish_reason,
                    stop_reason=delta.stop_reason,
                )
            )
        if choices:
            yield _chunk(prepared, choices)
    if prepared.include_usage:
        prompt = len(prepared.job.prompt_token_ids)
        yield ChatCompletionChunk(
            id=prepared.id,
            created=prepared.created,
            model=prepared.model,
            choices=[],
            usage=Usage.of(prompt, completion_tokens),
        ).model_dump_json()
