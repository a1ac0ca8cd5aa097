"""`/v1/chat/completions`: messages through the model's chat template, then the engine."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Any

from service.caller import Caller
from service.config import Settings
from service.engine.base import (
    Engine,
    EngineRequest,
    GenerationChunk,
    TokenLogprob,
    ToolCallFragment,
)
from service.errors import InvalidRequestError
from service.schemas.chat import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatMessage,
    ChoiceLogprobs,
    DeltaMessage,
    Message,
    TokenLogprobEntry,
    ToolMessage,
    TopLogprob,
)
from service.schemas.common import Usage
from service.schemas.tools import DeltaFunctionCall, DeltaToolCall, FunctionCall, ToolCall
from service.services.core import costs
from service.services.core.generation import (
    Dispatch,
    SequenceResult,
    run_to_completion,
    stream_deltas,
)
from service.services.core.limits import check_count, check_text
from service.services.core.sampling import sampling_options, token_budget
from service.services.openai.tool_output import (
    StreamShaper,
    call_id,
    count_calls,
    finish_reason,
    shape_output,
)
from service.services.openai.tools import (
    ToolPlan,
    chat_template,
    check_tool_results,
    plan_tools,
)
from service.services.registry import select_model


@dataclass(frozen=True, slots=True)
class PreparedChat:
    id: str
    created: int
    model: str
    engine_request: EngineRequest
    n: int
    logprobs: bool
    include_usage: bool
    tools: ToolPlan | None = None
    reasoning: bool = False  # a reasoning parser splits the output
    include_reasoning: bool = True  # vLLM's: False leaves the reasoning out of the answer

    @property
    def cost(self) -> int:
        """Engine sequences, for admission control."""
        return costs.of_requests([self.engine_request])

    @property
    def priority(self) -> int:
        return self.engine_request.priority


def prepare(
    request: ChatCompletionRequest, engine: Engine, settings: Settings, caller: Caller
) -> PreparedChat:
    model = select_model(request.model, settings, engine)
    check_count(len(request.messages), settings.max_messages, what="messages", param="messages")
    for i, message in enumerate(request.messages):
        check_text(message.text(), settings, param=f"messages.{i}.content")
    plan = plan_tools(request.tools, request.tool_choice, request.parallel_tool_calls, settings)
    messages = [template_message(m) for m in request.messages]
    check_tool_results(messages)
    prompt = render_prompt(
        engine,
        settings,
        messages,
        plan,
        add_generation_prompt=request.add_generation_prompt,
        continue_final_message=request.continue_final_message,
    )
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
    constraint = plan.constraint() if plan is not None else None
    if constraint is not None:  # the tools' schema replaces any response_format
        options = replace(options, structured=constraint)
    return PreparedChat(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=model.name,
        engine_request=Dispatch.of(caller, model.adapter).request(ids, options),
        n=request.n,
        logprobs=request.logprobs,
        include_usage=bool(request.stream_options and request.stream_options.include_usage),
        tools=plan,
        reasoning=settings.reasoning_parser is not None,
        include_reasoning=request.include_reasoning,
    )


def template_message(message: Message) -> dict[str, Any]:
    """One message as chat templates take it (developer is system to open models)."""
    out: dict[str, Any] = {
        "role": "system" if message.role == "developer" else message.role,
        "content": message.text(),
    }
    if isinstance(message, AssistantMessage) and message.tool_calls:
        out["tool_calls"] = [call.model_dump() for call in message.tool_calls]
    if isinstance(message, ToolMessage):
        out["tool_call_id"] = message.tool_call_id
    return out


def render_prompt(
    engine: Engine,
    settings: Settings,
    messages: list[dict[str, Any]],
    plan: ToolPlan | None,
    *,
    add_generation_prompt: bool = True,
    continue_final_message: bool = False,
) -> str:
    """The prompt text: the template chosen for these messages and tools, applied."""
    tools = plan.tools if plan is not None and plan.mode != "none" else None
    with_tools = bool(tools) or any(m["role"] == "tool" or "tool_calls" in m for m in messages)
    template = chat_template(settings, engine.tokenizer, with_tools=with_tools)
    try:
        return engine.tokenizer.apply_chat_template(
            messages,
            add_generation_prompt=add_generation_prompt,
            continue_final_message=continue_final_message,
            tools=tools,
            chat_template=template,
        )
    except Exception as err:  # a template may refuse a conversation (e.g. role order)
        raise InvalidRequestError(
            f"The model's chat template rejected the messages: {err}", param="messages"
        ) from err


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


def _message(prepared: PreparedChat, engine: Engine, seq: SequenceResult) -> ChatChoice:
    shaped = shape_output(engine, prepared.tools, seq.text, reasoning=prepared.reasoning)
    count_calls(prepared.tools, shaped.calls)
    calls = [
        ToolCall(id=call_id(), function=FunctionCall(name=c.name, arguments=c.arguments))
        for c in shaped.calls
    ]
    return ChatChoice(
        index=0,
        message=ChatMessage(
            content=shaped.content,
            reasoning=shaped.reasoning if prepared.include_reasoning else None,
            tool_calls=calls,
        ),
        logprobs=_logprobs(seq.logprobs) if prepared.logprobs else None,
        finish_reason=finish_reason(prepared.tools, seq.finish_reason, bool(calls)),
        stop_reason=seq.stop_reason,
    )


def _name_the_tools(prepared: PreparedChat, err: InvalidRequestError) -> None:
    """The engine refused the tools' constraint (a schema its grammar compiler cannot take)."""
    if err.param is None and prepared.tools is not None and prepared.tools.constraint():
        err.param = "tools"


async def complete(prepared: PreparedChat, engine: Engine) -> ChatCompletionResponse:
    try:
        (result,) = await run_to_completion(engine, [prepared.engine_request], prepared.id)
    except InvalidRequestError as err:
        _name_the_tools(prepared, err)
        raise
    choices = []
    for i, seq in enumerate(result.sequences):
        choice = _message(prepared, engine, seq)
        choice.index = i
        choices.append(choice)
    completion = sum(len(s.token_ids) for s in result.sequences)
    usage = Usage.of(result.num_prompt_tokens, completion)
    return ChatCompletionResponse(
        id=prepared.id, created=prepared.created, model=prepared.model, choices=choices, usage=usage
    )


async def stream(prepared: PreparedChat, engine: Engine) -> AsyncIterator[str]:
    """JSON payloads of the SSE events, without the final [DONE]."""
    async with aclosing(chunks(prepared, engine)) as stream_chunks:
        async for chunk in stream_chunks:
            if chunk.usage is None:
                yield chunk.model_dump_json(exclude={"usage"})
            else:
                yield chunk.model_dump_json()


def _tool_deltas(shaper: StreamShaper, pieces: tuple[ToolCallFragment, ...]) -> list[DeltaToolCall]:
    """OpenAI's pieces: a call's first carries id, type and name; the rest only arguments."""
    out = []
    for piece in pieces:
        first = piece.name is not None
        out.append(
            DeltaToolCall(
                index=piece.index,
                id=shaper.ids[piece.index] if first else None,
                type="function" if first else None,
                function=DeltaFunctionCall(name=piece.name, arguments=piece.arguments),
            )
        )
    return out


async def _engine_chunks(
    prepared: PreparedChat, engine: Engine
) -> AsyncGenerator[GenerationChunk, None]:
    deltas = stream_deltas(engine, [prepared.engine_request], prepared.id)
    try:
        async for _, engine_chunk in deltas:
            yield engine_chunk
    except InvalidRequestError as err:
        _name_the_tools(prepared, err)
        raise
    finally:
        close = getattr(deltas, "aclose", None)
        if close is not None:
            await close()  # now, not when collected: closing aborts the engine request


async def chunks(
    prepared: PreparedChat, engine: Engine
) -> AsyncGenerator[ChatCompletionChunk, None]:
    """The stream's chunks, the usage chunk last when asked for."""

    def chunk(choices: list[ChatChunkChoice]) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=prepared.id, created=prepared.created, model=prepared.model, choices=choices
        )

    # OpenAI opens every choice with the role before any content.
    yield chunk(
        [
            ChatChunkChoice(index=i, delta=DeltaMessage(role="assistant", content=""))
            for i in range(prepared.n)
        ]
    )
    shaped = prepared.tools is not None or prepared.reasoning
    shapers: dict[int, StreamShaper] = {}
    if shaped:
        for i in range(prepared.n):
            shapers[i] = StreamShaper(engine, prepared.tools, reasoning=prepared.reasoning)
            opening = shapers[i].opening()
            if opening:
                tool_calls = _tool_deltas(shapers[i], tuple(opening))
                yield chunk([ChatChunkChoice(index=i, delta=DeltaMessage(tool_calls=tool_calls))])
    completion_tokens = 0
    engine_chunks = _engine_chunks(prepared, engine)
    async with aclosing(engine_chunks):  # leaving early closes (aborts) the engine request now
        async for engine_chunk in engine_chunks:
            choices = []
            for delta in engine_chunk.sequences:
                completion_tokens += len(delta.token_ids)
                if not delta.text and delta.finish_reason is None:
                    continue
                finish: str | None = delta.finish_reason
                if shaped:
                    shaper = shapers[delta.index]
                    parsed = shaper.step(
                        delta.text, delta.token_ids, last=delta.finish_reason is not None
                    )
                    message = DeltaMessage(
                        content=parsed.content,
                        reasoning=parsed.reasoning if prepared.include_reasoning else None,
                        tool_calls=_tool_deltas(shaper, parsed.tool_calls) or None,
                    )
                    if finish is not None:
                        finish = finish_reason(prepared.tools, finish, shaper.called)
                        count_calls(prepared.tools, shaper.calls())
                    elif not (message.content or message.reasoning or message.tool_calls):
                        continue
                else:
                    message = DeltaMessage(content=delta.text)
                choices.append(
                    ChatChunkChoice(
                        index=delta.index,
                        delta=message,
                        logprobs=_logprobs(delta.logprobs or []) if prepared.logprobs else None,
                        finish_reason=finish,
                        stop_reason=delta.stop_reason,
                    )
                )
            if choices:
                yield chunk(choices)
    if prepared.include_usage:
        prompt = len(prepared.engine_request.prompt_token_ids)
        yield ChatCompletionChunk(
            id=prepared.id,
            created=prepared.created,
            model=prepared.model,
            choices=[],
            usage=Usage.of(prompt, completion_tokens),
        )
