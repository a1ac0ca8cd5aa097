"""Tool calling, before generation: the checks, the prompt's template and messages, and the JSON
constraint under which `required` and named choices generate.

`required` and a named function generate under a JSON schema built from the tools' parameter
schemas (vLLM's structured outputs, with no free whitespace), so their arguments always parse and
validate; `auto` lets the model write its own tool-call format, read back by the configured
tool-call parser (`service/services/openai/tool_output.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

import jsonschema
from jsonschema.exceptions import SchemaError

from service.config import Settings
from service.engine.base import StructuredOutput, Tokenizer
from service.errors import InvalidRequestError
from service.schemas.tools import FunctionTool, NamedToolChoice, ToolChoice
from service.services.core.limits import check_count

ToolMode = Literal["none", "auto", "required", "named"]
EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass(frozen=True, slots=True)
class ToolPlan:
    """What a request's tools mean for its generation and its answer."""

    mode: ToolMode
    tools: list[dict[str, Any]]  # as the chat template and the parsers take them
    parameters: dict[str, dict[str, Any]]  # function name -> its parameters schema
    named: str | None = None
    parallel: bool = True

    def constraint(self) -> StructuredOutput | None:
        if self.mode == "named" and self.named is not None:
            return StructuredOutput(json_schema=self.parameters[self.named])
        if self.mode == "required":
            return StructuredOutput(json_schema=self.calls_schema())
        return None

    def calls_schema(self) -> dict[str, Any]:
        """`required`: a JSON array of {"name", "parameters"} objects, name first (the
        streaming reader relies on that order), one item unless parallel calls are allowed."""
        items = [
            {
                "type": "object",
                "properties": {"name": {"type": "string", "enum": [name]}, "parameters": schema},
                "required": ["name", "parameters"],
                "additionalProperties": False,
            }
            for name, schema in self.parameters.items()
        ]
        schema: dict[str, Any] = {"type": "array", "minItems": 1, "items": {"anyOf": items}}
        if not self.parallel:
            schema["maxItems"] = 1
        return schema


def plan_tools(
    tools: list[FunctionTool] | None,
    choice: ToolChoice | None,
    parallel: bool | None,
    settings: Settings,
    *,
    param: str = "tools",
) -> ToolPlan | None:
    """Check the tools and the choice; None when the request has no tools."""
    if not tools:
        return None
    check_count(len(tools), settings.max_tools, what="tools", param=param)
    parameters: dict[str, dict[str, Any]] = {}
    for i, tool in enumerate(tools):
        name = tool.function.name
        if name in parameters:
            raise InvalidRequestError(
                f"Two tools are named '{name}'.", param=f"{param}.{i}.function.name"
            )
        schema = tool.function.parameters or EMPTY_PARAMETERS
        check_schema(schema, param=f"{param}.{i}.function.parameters")
        parameters[name] = schema
    as_dicts = [tool.model_dump(exclude_none=True) for tool in tools]
    allow_parallel = parallel is not False
    if isinstance(choice, NamedToolChoice):
        if choice.function.name not in parameters:
            raise InvalidRequestError(
                f"tool_choice names the function '{choice.function.name}', which is not among "
                "the tools.",
                param="tool_choice",
            )
        return ToolPlan("named", as_dicts, parameters, choice.function.name, allow_parallel)
    return ToolPlan(choice or "auto", as_dicts, parameters, None, allow_parallel)


def check_schema(schema: dict[str, Any], *, param: str) -> None:
    """A JSON schema that is one: the Draft 2020-12 metaschema, and an object at the top."""
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except SchemaError as err:
        where = "/".join(str(p) for p in err.absolute_path)
        raise InvalidRequestError(
            f"Invalid JSON schema{f' at {where}' if where else ''}: {err.message}", param=param
        ) from err
    if schema.get("type", "object") != "object":
        raise InvalidRequestError(
            "A function's parameters must be a JSON schema of type 'object'.", param=param
        )


def check_tool_results(messages: list[dict[str, Any]], *, param: str = "messages") -> None:
    """Every tool result answers a call an earlier assistant message made."""
    seen: set[str] = set()
    for i, message in enumerate(messages):
        for call in message.get("tool_calls") or ():
            seen.add(call["id"])
        if message["role"] == "tool" and message.get("tool_call_id") not in seen:
            raise InvalidRequestError(
                f"This tool message answers tool_call_id '{message.get('tool_call_id')}', which "
                "no earlier assistant message called.",
                param=f"{param}.{i}.tool_call_id",
            )


@cache
def hermes_template() -> str:
    return (
        resources.files("service.services.openai")
        .joinpath("templates/hermes_tools.jinja")
        .read_text(encoding="utf-8")
    )


def chat_template(settings: Settings, tokenizer: Tokenizer, *, with_tools: bool) -> str | None:
    """The template for a request: the `chat_template` setting, else the model's own, except that
    tools (or tool turns in the history) get the shipped Hermes template when the model's own
    ignores tools."""
    if settings.chat_template is not None:
        return settings.chat_template
    own = tokenizer.chat_template
    if with_tools and (own is None or "tools" not in own):
        return hermes_template()
    return None
