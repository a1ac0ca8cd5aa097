"""Function tools and tool calls (OpenAI wire format), shared by chat and the Responses API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.schemas.common import RequestModel

# OpenAI's rule for function names: what a model can write back unambiguously.
FunctionName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")]


class FunctionDefinition(RequestModel):
    name: FunctionName
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionTool(RequestModel):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(RequestModel):
    name: FunctionName


class NamedToolChoice(RequestModel):
    type: Literal["function"]
    function: NamedFunction


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class FunctionCallIn(RequestModel):
    # Arguments are a JSON string on the wire; history is passed through as the client wrote it.
    model_config = ConfigDict(extra="ignore")
    name: str
    arguments: str


class ToolCallIn(RequestModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(..., min_length=1)
    type: Literal["function"] = "function"
    function: FunctionCallIn


class FunctionCall(BaseModel):
    name: str
    arguments: str


class ToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class DeltaFunctionCall(BaseModel):
    name: str | None = Field(None, exclude_if=lambda v: v is None)
    arguments: str


class DeltaToolCall(BaseModel):
    """One streamed piece: the first of a call has id, type and name; later ones arguments."""

    index: int
    id: str | None = Field(None, exclude_if=lambda v: v is None)
    type: Literal["function"] | None = Field(None, exclude_if=lambda v: v is None)
    function: DeltaFunctionCall
