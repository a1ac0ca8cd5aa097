"""A Messages request's tools as the shared tool plan (`service/services/tools/`): `auto` is
`auto`, `any` is `required` (a JSON array of calls generated under the tools' schemas), `tool`
the named mode (its input generated under its schema), `none` is `none` (the tools left out of
the prompt), and `disable_parallel_tool_use` allows one call. The plan's errors name the
request's own fields (`tools.0.input_schema`, not `tools.0.function.parameters`)."""

from __future__ import annotations

import json
import re

from service.config import Settings
from service.errors import GatewayError
from service.schemas.anthropic import (
    ConversationRequest,
    Tool,
    ToolChoiceAny,
    ToolChoiceNone,
    ToolChoiceTool,
)
from service.schemas.tools import (
    FunctionDefinition,
    FunctionTool,
    NamedFunction,
    NamedToolChoice,
    ToolChoice,
)
from service.services.tools import NO_TOOLS, ToolPlan, plan_tools

_PARAMS = [
    (re.compile(r"^tools\.(\d+)\.function\.parameters"), r"tools.\1.input_schema"),
    (re.compile(r"^tools\.(\d+)\.function\.name"), r"tools.\1.name"),
]


def _param(param: str | None) -> str | None:
    if param is None:
        return None
    for pattern, replacement in _PARAMS:
        param = pattern.sub(replacement, param)
    return param


def _description(tool: Tool) -> str | None:
    """The description, with the tool's input examples after it (how the model sees them)."""
    if not tool.input_examples:
        return tool.description
    examples = "\n".join(json.dumps(example, ensure_ascii=False) for example in tool.input_examples)
    return f"{tool.description or ''}\n\nInput examples:\n{examples}".lstrip()


def _function(tool: Tool) -> FunctionTool:
    # Built without validation: the request's own models have checked these fields already,
    # under Anthropic's rules (a tool name may be longer than OpenAI's 64 characters).
    definition = FunctionDefinition.model_construct(
        name=tool.name, description=_description(tool), parameters=tool.input_schema
    )
    return FunctionTool.model_construct(type="function", function=definition)


def _choice(request: ConversationRequest) -> tuple[ToolChoice, bool]:
    """The OpenAI-style choice, and whether several calls are allowed."""
    choice = request.tool_choice
    if choice is None:
        return "auto", True
    if isinstance(choice, ToolChoiceNone):
        return "none", True
    parallel = not choice.disable_parallel_tool_use
    if isinstance(choice, ToolChoiceTool):
        named = NamedFunction.model_construct(name=choice.name)
        return NamedToolChoice.model_construct(type="function", function=named), parallel
    if isinstance(choice, ToolChoiceAny):
        return "required", parallel
    return "auto", parallel


def tool_plan(request: ConversationRequest, settings: Settings) -> ToolPlan:
    """The request's tool plan (`NO_TOOLS` without tools)."""
    if not request.tools:
        return NO_TOOLS
    choice, parallel = _choice(request)
    try:
        return plan_tools(
            [_function(tool) for tool in request.tools], choice, parallel, settings, param="tools"
        )
    except GatewayError as err:
        err.param = _param(err.param)
        raise
