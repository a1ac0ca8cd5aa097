"""`/v1/completions`: prompts -> engine requests -> an OpenAI completion or a stream of chunks."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from service.caller import Caller
from service.config import Settings
from service.engine.base import Engine, EngineRequest, SequenceDelta, TokenLogprob
from service.errors import InvalidRequestError
from service.schemas.common import Usage
from service.schemas.completions import (
    CompletionChoice,
    CompletionLogprobs,
    CompletionRequest,
    CompletionResponse,
)
from service.services.core import costs
from service.services.core.chunk_json import TextSlot
from service.services.core.generation import (
    Dispatch,
    PromptResult,
    run_to_completion,
    stream_deltas,
)
from service.services.core.limits import check_count, check_text
from service.services.core.sampling import sampling_options, token_budget
from service.services.registry import select_model


@dataclass(frozen=True, slots=True)
class PreparedCompletion:
    id: str
    created: int
    model: str
    requests: list[EngineRequest]
    prompt_texts: list[str]  # for echo
    echo: bool
    n: int
    include_usage: bool
    priority: int

    @property
    def cost(self) -> int:
        """Engine sequences, for admission control."""
        return costs.of_requests(self.requests)


def prepare(
    request: CompletionRequest, engine: Engine, settings: Settings, caller: Caller
) -> PreparedCompletion:
    model = select_model(request.model, settings, engine)
    dispatch = Dispatch.of(caller, model.adapter)
    prompts = request.prompts()
    check_count(len(prompts), settings.max_batch_size, what="prompts", param="prompt")
    for i, prompt in enumerate(prompts):
        if isinstance(prompt, str):
            single = isinstance(request.prompt, str)
            check_text(prompt, settings, param="prompt" if single else f"prompt.{i}")
    tokenizer = engine.tokenizer
    requests, texts = [], []
    for prompt in prompts:
        if isinstance(prompt, str):
            ids = tokenizer.encode(prompt)
            text = prompt
        else:
            ids, text = list(prompt), tokenizer.decode(prompt) if request.echo else ""
        if not ids:
            raise InvalidRequestError("The prompt is empty after tokenization.", param="prompt")
        max_tokens = token_budget(
            request.max_tokens,
            prompt_tokens=len(ids),
            max_model_len=engine.max_model_len,
            default_cap=settings.default_max_tokens,
            prompt_param="prompt",
        )
        options = sampling_options(
            request,
            max_tokens=max_tokens,
            logprobs=request.logprobs,
            prompt_logprobs=request.logprobs if request.echo else None,
            settings=settings,
        )
        requests.append(dispatch.request(ids, options))
        texts.append(text)
    return PreparedCompletion(
        id=f"cmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=model.name,
        requests=requests,
        prompt_texts=texts,
        echo=request.echo,
        n=request.n,
        include_usage=bool(request.stream_options and request.stream_options.include_usage),
        priority=dispatch.priority,
    )


def _logprobs(
    entries: list[TokenLogprob | None], offset: int, first_token: str = ""
) -> CompletionLogprobs:
    tokens: list[str] = []
    token_logprobs: list[float | None] = []
    top: list[dict[str, float] | None] = []
    offsets: list[int] = []
    for entry in entries:
        if entry is None:  # the first prompt token has no logprob, only its text
            tokens.append(first_token)
            token_logprobs.append(None)
            top.append(None)
        else:
            tokens.append(entry.token)
            token_logprobs.append(entry.logprob)
            alternatives = {text: lp for _, text, lp in entry.top}
            alternatives.setdefault(entry.token, entry.logprob)
            top.append(alternatives)
        offsets.append(offset)
        offset += len(tokens[-1])
    return CompletionLogprobs(
        tokens=tokens, token_logprobs=token_logprobs, top_logprobs=top, text_offset=offsets
    )


def _first_token(prepared: PreparedCompletion, prompt: int, engine: Engine) -> str:
    return engine.tokenizer.token_text(prepared.requests[prompt].prompt_token_ids[0])


def _usage(results: list[PromptResult]) -> Usage:
    prompt = sum(r.num_prompt_tokens for r in results)
    completion = sum(len(s.token_ids) for r in results for s in r.sequences)
    return Usage.of(prompt, completion)


async def complete(prepared: PreparedCompletion, engine: Engine) -> CompletionResponse:
    results = await run_to_completion(engine, prepared.requests, prepared.id)
    choices = []
    for p, result in enumerate(results):
        prefix = prepared.prompt_texts[p] if prepared.echo else ""
        for s, seq in enumerate(result.sequences):
            logprobs = None
            if prepared.requests[p].options.logprobs is not None:
                entries: list[TokenLogprob | None] = list(seq.logprobs)
                first = ""
                if prepared.echo:
                    entries = list(result.prompt_logprobs or []) + entries
                    first = _first_token(prepared, p, engine)
                logprobs = _logprobs(entries, 0, first)
            choices.append(
                CompletionChoice(
                    index=p * prepared.n + s,
                    text=prefix + seq.text,
                    logprobs=logprobs,
                    finish_reason=seq.finish_reason,
                    stop_reason=seq.stop_reason,
                )
            )
    return CompletionResponse(
        id=prepared.id,
        created=prepared.created,
        model=prepared.model,
        choices=choices,
        usage=_usage(results),
    )


async def stream(prepared: PreparedCompletion, engine: Engine) -> AsyncIterator[str]:
    """JSON payloads of the SSE events, without the final [DONE]."""
    events = _StreamEvents(prepared, engine)
    async for p, chunk in stream_deltas(engine, prepared.requests, prepared.id):
        if chunk.prompt_logprobs is not None:  # only the first chunk of a prompt has them
            events.prompt_logprobs[p] = chunk.prompt_logprobs
        for delta in chunk.sequences:
            yield events.payload(p, delta)
    if prepared.include_usage:
        prompt = sum(len(r.prompt_token_ids) for r in prepared.requests)
        usage = Usage.of(prompt, events.completion_tokens)
        yield CompletionResponse(
            id=prepared.id, created=prepared.created, model=prepared.model, choices=[], usage=usage
        ).model_dump_json()


# A step that only adds text: no logprobs, not the last.
_TEXT_STEP = SequenceDelta(0, "", ())


def _completion_choice(
    index: int, text: str, logprobs: CompletionLogprobs | None, delta: SequenceDelta
) -> CompletionChoice:
    return CompletionChoice(
        index=index,
        text=text,
        logprobs=logprobs,
        finish_reason=delta.finish_reason,
        stop_reason=delta.stop_reason,
    )


class _StreamEvents:
    """One stream's events: each choice's echo and logprobs offsets, and its text slot (the
    JSON of a step that only adds text, cut from the chunk `_completion_choice` makes for one)."""

    def __init__(self, prepared: PreparedCompletion, engine: Engine) -> None:
        self.prepared = prepared
        self.engine = engine
        self.completion_tokens = 0
        self.prompt_logprobs: dict[int, list[TokenLogprob | None]] = {}
        self._echoed: set[int] = set()
        # Only logprobs read the offsets, and a prompt with logprobs never takes the text slot.
        self._offsets: dict[int, int] = {}
        self._text_slots: dict[int, TextSlot] = {}

    def payload(self, p: int, delta: SequenceDelta) -> str:
        prepared = self.prepared
        index = p * prepared.n + delta.index
        self.completion_tokens += len(delta.token_ids)
        if (
            prepared.requests[p].options.logprobs is None
            and (index in self._echoed or not prepared.echo)
            and delta.finish_reason is None
            and delta.stop_reason is None
        ):
            return self._text_slot(index)(delta.text)
        return self._json(self._choice(p, index, delta))

    def _text_slot(self, index: int) -> TextSlot:
        slot = self._text_slots.get(index)
        if slot is None:
            slot = TextSlot(
                lambda text: self._json(_completion_choice(index, text, None, _TEXT_STEP))
            )
            self._text_slots[index] = slot
        return slot

    def _choice(self, p: int, index: int, delta: SequenceDelta) -> CompletionChoice:
        prepared = self.prepared
        text = delta.text
        entries: list[TokenLogprob | None] = list(delta.logprobs or [])
        first = ""
        if prepared.echo and index not in self._echoed:
            self._echoed.add(index)
            text = prepared.prompt_texts[p] + text
            entries = list(self.prompt_logprobs.get(p, [])) + entries
            first = _first_token(prepared, p, self.engine)
        logprobs = None
        offset = self._offsets.get(index, 0)
        if prepared.requests[p].options.logprobs is not None:
            logprobs = _logprobs(entries, offset, first)
        self._offsets[index] = offset + len(text)
        return _completion_choice(index, text, logprobs, delta)

    def _json(self, choice: CompletionChoice) -> str:
        prepared = self.prepared
        return CompletionResponse(
            id=prepared.id, created=prepared.created, model=prepared.model, choices=[choice]
        ).model_dump_json(exclude={"usage"})
