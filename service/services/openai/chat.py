"""`/v1/chat/completions`: messages through the model's chat template, then the engine."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Any

from service.caller import Caller
from service.config import Settings
from service.engine.base import (
    Engine,
    EngineRequest,
    FinishReason,
    GenerationChunk,
    ParsedDelta,
    SequenceDelta,
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
    DeltaMessage,
    Message,
    ToolMessage,
)
from service.schemas.chat import (
    FinishReason as ChatFinishReason,
)
from service.schemas.common import Usage
from service.schemas.tools import FunctionCall, ToolCall
from service.services.core import costs
from service.services.core.chunk_json import TextSlot
from service.services.core.generation import (
    Dispatch,
    SequenceResult,
    run_to_completion,
    stream_deltas,
)
from service.services.core.limits import check_count, check_text
from service.services.core.sampling import sampling_options, token_budget
from service.services.openai.chat_pieces import (
    call_id,
    choice_logprobs,
    delta_message,
    event_json,
    tool_deltas,
)
from service.services.registry import select_model
from service.services.tools import (
    NO_TOOLS,
    Outcome,
    OutputReader,
    ToolPlan,
    chat_template,
    check_tool_results,
    plan_tools,
)


@dataclass(frozen=True, slots=True)
class PreparedChat:
    id: str
    created: int
    model: str
    engine_request: EngineRequest
    n: int
    logprobs: bool
    include_usage: bool
    tools: ToolPlan = NO_TOOLS
    reasoning: bool = False  # split reasoning off with the engine's reasoning parser
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
    if plan.constraint is not None:  # the tools' schema replaces any response_format
        options = replace(options, structured=plan.constraint)
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
    plan: ToolPlan,
    *,
    add_generation_prompt: bool = True,
    continue_final_message: bool = False,
) -> str:
    """The prompt text: the template chosen for these messages and tools, applied."""
    tools = plan.template_tools
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


def finish_reason(outcome: Outcome, engine_reason: FinishReason | None) -> ChatFinishReason | None:
    """OpenAI's: `tool_calls` when the model chose to call (auto, required) and stopped; a named
    choice keeps `stop`, as OpenAI's forced function calls do; a cut stays `length`."""
    if outcome.calls and not outcome.named and engine_reason == "stop":
        return "tool_calls"
    return engine_reason


def _message(prepared: PreparedChat, engine: Engine, seq: SequenceResult) -> ChatChoice:
    reader = prepared.tools.reader(engine, reasoning=prepared.reasoning)
    outcome = reader.read_whole(seq.text, seq.token_ids, seq.finish_reason)
    calls = [
        ToolCall(id=call_id(), function=FunctionCall(name=c.name, arguments=c.arguments))
        for c in outcome.calls
    ]
    return ChatChoice(
        index=0,
        message=ChatMessage(
            content=outcome.text,
            reasoning=outcome.reasoning if prepared.include_reasoning else None,
            tool_calls=calls,
        ),
        logprobs=choice_logprobs(seq.logprobs) if prepared.logprobs else None,
        finish_reason=finish_reason(outcome, seq.finish_reason),
        stop_reason=seq.stop_reason,
    )


def _name_the_tools(prepared: PreparedChat, err: InvalidRequestError) -> None:
    """The engine refused the tools' constraint (a schema its grammar compiler cannot take)."""
    if err.param is None and prepared.tools.constraint is not None:
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
    """JSON payloads of the SSE events, without the final [DONE]: the chunks of `chunks`, those
    of the steps that only add text to a one-choice stream written through a `TextSlot`."""
    maker = _ChunkMaker(prepared, engine, text_slot=True)
    for opening in maker.openings():
        yield event_json(opening)
    async with aclosing(_engine_chunks(prepared, engine)) as engine_chunks:
        async for engine_chunk in engine_chunks:
            payload = maker.payload(engine_chunk)
            if payload is not None:
                yield payload
    if prepared.include_usage:
        yield event_json(maker.usage())


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


class _ChunkMaker:
    """One stream's chunks: a reader per choice, and the tokens generated so far."""

    def __init__(self, prepared: PreparedChat, engine: Engine, *, text_slot: bool = False) -> None:
        self.prepared = prepared
        self.readers: list[OutputReader] = [
            prepared.tools.reader(engine, reasoning=prepared.reasoning) for _ in range(prepared.n)
        ]
        self.completion_tokens = 0
        # A one-choice stream without logprobs: a step that only adds text is this chunk's
        # JSON around it, cut from the chunk `_choice` makes for such a step.
        self.text_slot: TextSlot | None = None
        if text_slot and prepared.n == 1 and not prepared.logprobs:
            self.text_slot = TextSlot(
                lambda text: event_json(
                    self.chunk([self._choice(SequenceDelta(0, text, ()), ParsedDelta(text))])
                )
            )

    def chunk(
        self, choices: list[ChatChunkChoice], usage: Usage | None = None
    ) -> ChatCompletionChunk:
        prepared = self.prepared
        return ChatCompletionChunk(
            id=prepared.id,
            created=prepared.created,
            model=prepared.model,
            choices=choices,
            usage=usage,
        )

    def openings(self) -> Iterator[ChatCompletionChunk]:
        """OpenAI opens every choice with the role before any content; a named choice's call
        (its name) follows at once."""
        yield self.chunk(
            [
                ChatChunkChoice(index=i, delta=DeltaMessage(role="assistant", content=""))
                for i in range(self.prepared.n)
            ]
        )
        for i, reader in enumerate(self.readers):
            opening = tool_deltas(reader.opening().tool_calls)
            if opening:
                yield self.chunk([ChatChunkChoice(index=i, delta=DeltaMessage(tool_calls=opening))])

    def of(self, engine_chunk: GenerationChunk) -> ChatCompletionChunk | None:
        """The chunk one engine step gives (None: nothing to send)."""
        choices = []
        for delta in engine_chunk.sequences:
            parsed = self._read(delta)
            if parsed is not None:
                choices.append(self._choice(delta, parsed))
        return self.chunk(choices) if choices else None

    def payload(self, engine_chunk: GenerationChunk) -> str | None:
        """The JSON of `of(engine_chunk)`; through the text slot when the step only adds text."""
        slot = self.text_slot
        if slot is None or len(engine_chunk.sequences) != 1:
            chunk = self.of(engine_chunk)
            return None if chunk is None else event_json(chunk)
        delta = engine_chunk.sequences[0]
        parsed = self._read(delta)
        if parsed is None:
            return None
        if (
            parsed.content is None
            or parsed.reasoning is not None
            or parsed.tool_calls
            or delta.finish_reason is not None
            or delta.stop_reason is not None
        ):
            return event_json(self.chunk([self._choice(delta, parsed)]))
        return slot(parsed.content)

    def _read(self, delta: SequenceDelta) -> ParsedDelta | None:
        """What the step adds to its choice (None: nothing to send)."""
        self.completion_tokens += len(delta.token_ids)
        ended = delta.finish_reason is not None
        if not delta.text and not ended:
            return None
        reader = self.readers[delta.index]
        if reader.plain:  # nothing to read: the text as it is (plain chat's hot path)
            return ParsedDelta(delta.text)
        parsed = self._shown(reader.feed(delta.text, delta.token_ids, last=ended))
        if not ended and not (parsed.content or parsed.reasoning or parsed.tool_calls):
            return None  # the reader holds this step back
        return parsed

    def _choice(self, delta: SequenceDelta, parsed: ParsedDelta) -> ChatChunkChoice:
        finish = None
        if delta.finish_reason is not None:  # the reader's outcome: the calls are counted
            outcome = self.readers[delta.index].finish(delta.finish_reason)
            finish = finish_reason(outcome, delta.finish_reason)
        return ChatChunkChoice(
            index=delta.index,
            delta=delta_message(parsed),
            logprobs=choice_logprobs(delta.logprobs or []) if self.prepared.logprobs else None,
            finish_reason=finish,
            stop_reason=delta.stop_reason,
        )

    def _shown(self, parsed: ParsedDelta) -> ParsedDelta:
        """What of a step is sent: its reasoning only when the request includes it."""
        if parsed.reasoning is None or self.prepared.include_reasoning:
            return parsed
        return replace(parsed, reasoning=None)

    def usage(self) -> ChatCompletionChunk:
        prompt = len(self.prepared.engine_request.prompt_token_ids)
        return self.chunk([], Usage.of(prompt, self.completion_tokens))


async def chunks(
    prepared: PreparedChat, engine: Engine
) -> AsyncGenerator[ChatCompletionChunk, None]:
    """The stream's chunks, the usage chunk last when asked for."""
    maker = _ChunkMaker(prepared, engine)
    for opening in maker.openings():
        yield opening
    engine_chunks = _engine_chunks(prepared, engine)
    async with aclosing(engine_chunks):  # leaving early closes (aborts) the engine request now
        async for engine_chunk in engine_chunks:
            chunk = maker.of(engine_chunk)
            if chunk is not None:
                yield chunk
    if prepared.include_usage:
        yield maker.usage()
