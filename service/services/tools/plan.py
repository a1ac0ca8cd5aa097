"""A request's tools, checked once, as a plan: the tool mode its `tool_choice` picks (`modes.py`),
the tools as chat templates and parsers take them, their parameter schemas, and whether several
calls are allowed. Also the check of a conversation's tool turns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError

from service.config import Settings
from service.engine.base import Engine, StructuredOutput
from service.errors import InvalidRequestError
from service.schemas.tools import FunctionTool, NamedToolChoice, ToolChoice
from service.services.core.limits import check_count
from service.services.tools.modes import AutoCalls, NamedCall, NoCalls, RequiredCalls, ToolMode
from service.services.tools.reader import OutputReader

EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass(frozen=True, slots=True)
class ToolPlan:
    """What a request's tools mean for its prompt, its generation and the reading of its output."""

    mode: ToolMode
    tools: list[dict[str, Any]]  # as the chat template and the parsers take them
    parameters: dict[str, dict[str, Any]]  # function name -> its parameters schema
    parallel: bool = True

    @property
    def constraint(self) -> StructuredOutput | None:
        return self.mode.constraint

    @property
    def template_tools(self) -> list[dict[str, Any]] | None:
        """The tools for the chat template (None: the prompt shows none)."""
        return self.tools if self.mode.offers_tools and self.tools else None

    def reader(self, engine: Engine, *, reasoning: bool) -> OutputReader:
        """A fresh reader of one output sequence (`reasoning`: split reasoning off first, with
        the engine's reasoning parser)."""
        return OutputReader(
            self.mode.calls_reader(engine),
            engine.reasoning_parser() if reasoning else None,
            parallel=self.parallel,
            named=self.mode.named,
            parameters=self.parameters,
        )


NO_TOOLS = ToolPlan(NoCalls(), [], {})


def plan_tools(
    tools: list[FunctionTool] | None,
    choice: ToolChoice | None,
    parallel: bool | None,
    settings: Settings,
    *,
    param: str = "tools",
) -> ToolPlan:
    """Check the tools and the choice; `NO_TOOLS` when the request has none."""
    if not tools:
        return NO_TOOLS
    check_count(len(tools), settings.max_tools, what="tools", param=param)
    parameters = _parameters(tools, param=param)
    as_dicts = [tool.model_dump(exclude_none=True) for tool in tools]
    allow_parallel = parallel is not False
    mode = _mode(choice or "auto", as_dicts, parameters, parallel=allow_parallel)
    return ToolPlan(mode, as_dicts, parameters, allow_parallel)


def _mode(
    choice: ToolChoice,
    tools: list[dict[str, Any]],
    parameters: dict[str, dict[str, Any]],
    *,
    parallel: bool,
) -> ToolMode:
    """The one place that asks which `tool_choice` a request made."""
    if isinstance(choice, NamedToolChoice):
        name = choice.function.name
        if name not in parameters:
            raise InvalidRequestError(
                f"tool_choice names the function '{name}', which is not among the tools.",
                param="tool_choice",
            )
        return NamedCall(name, parameters[name])
    if choice == "none":
        return NoCalls()
    if choice == "required":
        return RequiredCalls(parameters, parallel)
    return AutoCalls(tools)


def _parameters(tools: list[FunctionTool], *, param: str) -> dict[str, dict[str, Any]]:
    """Each function's parameters schema, by name: names unique, schemas valid."""
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
    return parameters


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
