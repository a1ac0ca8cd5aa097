"""`/v1/completions` request and response models (OpenAI wire format)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, cast

from pydantic import BaseModel, Discriminator, Field, Tag, model_validator
from pydantic_core import PydanticCustomError

from service.schemas.common import OpenAIRequest, TokenId, Usage

TokenIds = list[TokenId]


def _prompt_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "text"
    if not isinstance(value, list):
        return None
    if value and isinstance(value[0], list):
        return "token_id_lists"
    if value and isinstance(value[0], int) and not isinstance(value[0], bool):
        return "token_ids"
    return "texts"


# The four shapes OpenAI takes, told apart by the first element so that an error names the
# offending item (`prompt.1`) instead of every shape the prompt failed to be.
Prompt = Annotated[
    Annotated[str, Tag("text")]
    | Annotated[list[str], Tag("texts")]
    | Annotated[TokenIds, Tag("token_ids")]
    | Annotated[list[TokenIds], Tag("token_id_lists")],
    Discriminator(
        _prompt_kind,
        custom_error_type="prompt_type",
        custom_error_message="Input should be a string, a list of strings, a list of token "
        "ids or a list of token-id lists",
    ),
]


class CompletionRequest(OpenAIRequest):
    _unsupported: ClassVar[frozenset[str]] = frozenset({"suffix"})

    prompt: Prompt
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=20)
    best_of: int | None = Field(None, ge=1, le=128)

    @model_validator(mode="after")
    def _check(self) -> CompletionRequest:
        if isinstance(self.prompt, list) and not self.prompt:
            raise PydanticCustomError(
                "value_error", "prompt must not be empty.", {"param": "prompt"}
            )
        if self.best_of is not None and self.best_of != self.n:
            # vLLM's v1 engine has no best_of; only the no-op value is accepted.
            raise PydanticCustomError(
                "unsupported_parameter",
                "'{param}' different from n is not supported by this server.",
                {"param": "best_of"},
            )
        return self

    def prompts(self) -> list[str] | list[list[int]]:
        """The prompt as a list: of strings, or of token-id lists."""
        p = self.prompt
        if isinstance(p, str):
            return [p]
        if all(isinstance(x, int) for x in p):
            return [cast(list[int], p)]
        return cast(list[str] | list[list[int]], p)


class CompletionLogprobs(BaseModel):
    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None]
    text_offset: list[int]


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: Literal["stop", "length", "abort"] | None = None
    stop_reason: int | str | None = None


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
