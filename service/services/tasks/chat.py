"""/v1/chat: a conversation turn for apps, with personas and history that always fits.

When the conversation exceeds the context, the oldest history turns are dropped (never the
system prompt, never the last user turn) and the response says how many. With `language`, the
system prompt asks for that language and the reply is decoded under a constraint that allows
only its script (script_grammar.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from service.caller import Caller
from service.config import Settings
from service.engine.base import Engine, EngineRequest, SamplingOptions
from service.errors import ContextLengthError, InvalidRequestError
from service.schemas.common import Usage, stop_sequences
from service.schemas.tasks import (
    ChatResponse,
    ChatResult,
    ChatTurn,
    TaskChatRequest,
)
from service.services.core import costs
from service.services.core.generation import Dispatch, run_to_completion
from service.services.core.limits import check_count, check_text
from service.services.tasks.common import (
    envelope,
    finish_reason,
    new_id,
    served_model,
    stream_task,
)
from service.services.tasks.languages import Language, requested_language
from service.services.tasks.prompts import CHAT_PRESETS
from service.services.tasks.script_grammar import script_constraint


@dataclass(frozen=True, slots=True)
class PreparedChat:
    id: str
    model: str
    engine_request: EngineRequest
    truncated_turns: int

    @property
    def cost(self) -> int:
        """Engine sequences, for admission control."""
        return costs.of_requests([self.engine_request])

    @property
    def priority(self) -> int:
        return self.engine_request.priority


def _conversation(
    req: TaskChatRequest, language: Language | None
) -> tuple[str | None, list[ChatTurn]]:
    """(system prompt, turns), from `messages` or from `history` + `message`; the system
    prompt ends asking for `language` when one is given."""
    turns = list(req.messages) if req.messages is not None else [*(req.history or [])]
    if req.message is not None:
        turns.append(ChatTurn(role="user", content=req.message))
    systems = [t for t in turns if t.role == "system"]
    turns = [t for t in turns if t.role != "system"]
    if req.system is not None and req.preset is not None:
        raise InvalidRequestError("Give system or preset, not both.", param="system")
    given = (
        req.system
        if req.system is not None
        else (CHAT_PRESETS[req.preset] if req.preset is not None else None)
    )
    if given is not None and systems:
        raise InvalidRequestError(
            "The conversation already has a system message; drop system/preset.", param="system"
        )
    system = given if given is not None else ("\n\n".join(t.content for t in systems) or None)
    if language is not None:
        ask = f"Answer in {language.name}."
        system = f"{system} {ask}" if system else ask
    if not turns or turns[-1].role != "user":
        param = "message" if req.message is not None else "messages"
        raise InvalidRequestError("The conversation must end with a user turn.", param=param)
    return system, turns


def _check_limits(req: TaskChatRequest, settings: Settings) -> None:
    """Turns within `max_messages`, each text within `max_text_chars` (413, no tokenizing yet)."""
    field = "messages" if req.messages is not None else "history"
    given = req.messages if req.messages is not None else (req.history or [])
    count = len(given) + (1 if req.message is not None else 0)
    check_count(count, settings.max_messages, what="messages", param=field)
    for i, turn in enumerate(given):
        check_text(turn.content, settings, param=f"{field}.{i}.content")
    if req.message is not None:
        check_text(req.message, settings, param="message")
    if req.system is not None:
        check_text(req.system, settings, param="system")


def prepare(
    req: TaskChatRequest, engine: Engine, settings: Settings, caller: Caller
) -> PreparedChat:
    model = served_model(req.model, settings, engine)
    _check_limits(req, settings)
    language = requested_language(req.language)
    system, turns = _conversation(req, language)
    context = engine.max_model_len
    reserve = req.max_tokens or min(settings.default_max_tokens, context // 4)
    tok = engine.tokenizer

    def encode(kept: list[ChatTurn]) -> list[int]:
        messages = [{"role": "system", "content": system}] if system is not None else []
        messages += [{"role": t.role, "content": t.content} for t in kept]
        return tok.encode(tok.apply_chat_template(messages), add_special_tokens=False)

    dropped = 0
    ids = encode(turns)
    while len(ids) + reserve > context and dropped < len(turns) - 1:
        dropped += 1  # the oldest turn goes first; the last user turn always stays
        ids = encode(turns[dropped:])
    if len(ids) + reserve > context:
        raise ContextLengthError(
            f"This model's maximum context length is {context} tokens; the system prompt and "
            f"the last user turn take {len(ids)} and {reserve} are reserved for the reply.",
            param="max_tokens"
            if req.max_tokens
            else ("message" if req.message is not None else "messages"),
        )
    max_tokens = req.max_tokens or min(settings.default_max_tokens, context - len(ids))
    stop = stop_sequences(req.stop)
    options = SamplingOptions(
        max_tokens=max_tokens,
        temperature=req.temperature,
        top_p=req.top_p,
        top_k=req.top_k,
        repetition_penalty=req.repetition_penalty,
        stop=stop,
        seed=req.seed,
        # A stream cannot be taken back, so no check-and-retry as in summarize: the reply is
        # constrained from its first token.
        structured=script_constraint(None if language is None else language.script, complete=False),
    )
    engine_request = Dispatch.of(caller, model.adapter).request(ids, options)
    return PreparedChat(new_id("chat"), model.name, engine_request, dropped)


async def reply(prepared: PreparedChat, engine: Engine) -> ChatResponse:
    (result,) = await run_to_completion(engine, [prepared.engine_request], prepared.id)
    seq = result.sequences[0]
    answer = ChatResult(
        reply=seq.text,
        finish_reason=finish_reason(seq.finish_reason),
        truncated_turns=prepared.truncated_turns,
    )
    return envelope(
        "chat",
        id=prepared.id,
        model=prepared.model,
        results=[answer],
        usage=Usage.of(result.num_prompt_tokens, len(seq.token_ids)),
    )


def stream(prepared: PreparedChat, engine: Engine) -> AsyncIterator[str]:
    """JSON payloads of the SSE events (TaskChunk), without the final [DONE]."""
    return stream_task("chat.chunk", prepared.id, prepared.model, [prepared.engine_request], engine)
