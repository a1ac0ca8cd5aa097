"""A Messages request -> one engine request: the conversation through the model's chat template
(with the tools' template when there are tools), the tool plan's constraint or
`output_config.format`, Anthropic's sampling fields, and `max_tokens` as a ceiling.

`max_tokens` is clamped to the room the prompt leaves in the context, as `vllm serve` does
(agent clients send 32,000 and more against any model); an answer cut there ends in
`model_context_window_exceeded`. A prompt that leaves no room at all is a 400. `max_tokens: 0`
runs the prompt (vLLM's prefix cache keeps it) and answers without content.

`count_tokens` renders the same prompt and counts it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from service.caller import Caller
from service.config import Settings
from service.engine.base import Engine, EngineRequest, SamplingOptions, StructuredOutput
from service.errors import ContextLengthError, InvalidRequestError
from service.schemas.anthropic import (
    ConversationRequest,
    MessagesRequest,
    ThinkingDisabled,
)
from service.schemas.anthropic_response import TokenCount
from service.services.anthropic.conversation import conversation
from service.services.anthropic.tools import tool_plan
from service.services.core import costs
from service.services.core.generation import Dispatch
from service.services.registry import select_model
from service.services.tools import ToolPlan, chat_template

# How thinking blocks show: with their text, empty (`display: omitted`), or not at all
# (`thinking: disabled`: the reasoning is still split off the text, and not returned).
ThinkingDisplay = Literal["full", "omitted", "none"]


@dataclass(frozen=True, slots=True)
class PreparedMessages:
    id: str
    model: str
    engine_request: EngineRequest
    tools: ToolPlan
    reasoning: bool  # split reasoning off with the engine's reasoning parser
    thinking: ThinkingDisplay
    clamped: bool  # max_tokens was cut down to the room left in the context
    prefill_only: bool  # max_tokens 0: the prompt runs, nothing is answered
    json_format: bool  # output_config.format constrains the text

    @property
    def cost(self) -> int:
        """Engine sequences, for admission control."""
        return costs.of_requests([self.engine_request])

    @property
    def priority(self) -> int:
        return self.engine_request.priority

    @property
    def input_tokens(self) -> int:
        return len(self.engine_request.prompt_token_ids)


@dataclass(frozen=True, slots=True)
class Rendered:
    token_ids: list[int]
    tools: ToolPlan


def render(request: ConversationRequest, engine: Engine, settings: Settings) -> Rendered:
    """The prompt's token ids, and the tool plan it was rendered with."""
    plan = tool_plan(request, settings)
    talk = conversation(request, settings)
    tools = plan.template_tools
    messages = talk.messages
    with_tools = bool(tools) or any(m["role"] == "tool" or "tool_calls" in m for m in messages)
    template = chat_template(settings, engine.tokenizer, with_tools=with_tools)
    try:
        prompt = engine.tokenizer.apply_chat_template(
            messages,
            add_generation_prompt=not talk.prefill,
            continue_final_message=talk.prefill,
            tools=tools,
            chat_template=template,
        )
    except Exception as err:  # a template may refuse a conversation (e.g. role order)
        raise InvalidRequestError(
            f"The model's chat template rejected the messages: {err}", param="messages"
        ) from err
    # The template already holds the special tokens (BOS etc.); do not add them twice.
    return Rendered(engine.tokenizer.encode(prompt, add_special_tokens=False), plan)


def _budget(requested: int, prompt_tokens: int, max_model_len: int) -> tuple[int, bool]:
    """(max_tokens, whether it was clamped): the request's ceiling within the context."""
    room = max_model_len - prompt_tokens
    if room < 1:
        raise ContextLengthError(
            f"This model's maximum context length is {max_model_len} tokens; the prompt has "
            f"{prompt_tokens} tokens, which leaves no room for an answer.",
            param="messages",
        )
    return min(requested, room), requested > room


def _structured(request: MessagesRequest, plan: ToolPlan) -> StructuredOutput | None:
    """The tools' constraint (`any`, `tool`), else `output_config.format`'s JSON schema."""
    if plan.constraint is not None:
        return plan.constraint
    output = request.output_config
    if output is not None and output.format is not None:
        return StructuredOutput(json_schema=output.format.schema_)
    return None


def _thinking(request: MessagesRequest) -> ThinkingDisplay:
    thinking = request.thinking
    if isinstance(thinking, ThinkingDisabled):
        return "none"
    if getattr(thinking, "display", None) == "omitted":
        return "omitted"
    return "full"


def prepare(
    request: MessagesRequest, engine: Engine, settings: Settings, caller: Caller
) -> PreparedMessages:
    model = select_model(request.model, settings, engine)
    rendered = render(request, engine, settings)
    max_tokens, clamped = _budget(request.max_tokens, len(rendered.token_ids), engine.max_model_len)
    structured = _structured(request, rendered.tools)
    options = SamplingOptions(
        max_tokens=max(max_tokens, 1),  # 0: one token, never sent, so that the prompt runs
        temperature=1.0 if request.temperature is None else request.temperature,
        top_p=1.0 if request.top_p is None else request.top_p,
        top_k=request.top_k or 0,
        stop=tuple(request.stop_sequences or ()),
        structured=structured,
    )
    return PreparedMessages(
        id=f"msg_{uuid.uuid4().hex}",
        model=model.name,
        engine_request=Dispatch.of(caller, model.adapter).request(rendered.token_ids, options),
        tools=rendered.tools,
        reasoning=settings.reasoning_parser is not None,
        thinking=_thinking(request),
        clamped=clamped,
        prefill_only=max_tokens == 0,
        json_format=structured is not None and rendered.tools.constraint is None,
    )


def count_tokens(request: ConversationRequest, engine: Engine, settings: Settings) -> TokenCount:
    """The input tokens `/v1/messages` would run for the same conversation, tools and system."""
    select_model(request.model, settings, engine)
    return TokenCount(input_tokens=len(render(request, engine, settings).token_ids))
