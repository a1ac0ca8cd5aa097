"""`/v1/organization/*`: API keys managed at runtime, shaped as the openai SDK's
`admin.organization.admin_api_keys`, and usage reports, shaped as its
`admin.organization.usage.completions` / `.embeddings` (with the gateway's own fields beside
OpenAI's: a key's limits, priority, weight and budgets; a key's name in admins' reports)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from service.schemas.common import RequestModel

PriorityName = Literal["high", "normal", "low"]
KeySource = Literal["settings", "file", "runtime"]
KeyName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
Limit = Annotated[int, Field(ge=1, le=2**62)]
Weight = Annotated[float, Field(gt=0.0, le=1000.0)]


class AdminApiKeyUpdate(RequestModel):
    """What an admin may change on a runtime key; a field given as null removes that limit."""

    admin: bool | None = None
    priority: PriorityName | None = None
    weight: Weight | None = None
    requests_per_minute: Limit | None = None
    tokens_per_minute: Limit | None = None
    tokens_per_day: Limit | None = None
    tokens_per_month: Limit | None = None


class AdminApiKeyCreate(AdminApiKeyUpdate):
    name: KeyName
    expires_in_seconds: Annotated[int, Field(ge=1, le=100 * 365 * 86_400)] | None = None


class KeyOwner(BaseModel):
    """Who made the key: an admin key (runtime keys), or the operator's configuration."""

    type: Literal["api_key", "configuration"]
    id: str | None = None
    name: str | None = None


class AdminApiKey(BaseModel):
    object: Literal["organization.admin_api_key"] = "organization.admin_api_key"
    id: str  # the key's public id, as the logs and usage reports name it
    name: str | None
    redacted_value: str
    created_at: int
    expires_at: int | None = None
    last_used_at: int | None = None  # not tracked: a write per request
    owner: KeyOwner
    # The gateway's own: where the key comes from (only runtime keys can change) and its terms.
    source: KeySource
    admin: bool
    priority: PriorityName
    weight: float
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    tokens_per_day: int | None = None
    tokens_per_month: int | None = None


class AdminApiKeyCreated(AdminApiKey):
    value: str  # the key itself: shown once, here; only its SHA-256 is kept


class AdminApiKeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[AdminApiKey]
    first_id: str | None
    last_id: str | None
    has_more: bool


class AdminApiKeyDeleted(BaseModel):
    object: Literal["organization.admin_api_key.deleted"] = "organization.admin_api_key.deleted"
    id: str
    deleted: bool = True


class UsageCompletionsResult(BaseModel):
    object: Literal["organization.usage.completions.result"] = (
        "organization.usage.completions.result"
    )
    input_tokens: int
    output_tokens: int
    num_model_requests: int
    input_cached_tokens: int = 0  # not tracked (vLLM's prefix cache is not billed here)
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    project_id: str | None = None
    user_id: str | None = None
    api_key_id: str | None = None  # with group_by api_key_id
    api_key_name: str | None = None  # the gateway's own: admins see every key's name
    model: str | None = None  # with group_by model
    batch: bool | None = None  # with group_by batch


class UsageEmbeddingsResult(BaseModel):
    object: Literal["organization.usage.embeddings.result"] = "organization.usage.embeddings.result"
    input_tokens: int
    num_model_requests: int
    project_id: str | None = None
    user_id: str | None = None
    api_key_id: str | None = None
    api_key_name: str | None = None
    model: str | None = None


class UsageBucket(BaseModel):
    object: Literal["bucket"] = "bucket"
    start_time: int
    end_time: int
    results: list[UsageCompletionsResult] | list[UsageEmbeddingsResult]


class UsagePage(BaseModel):
    object: Literal["page"] = "page"
    data: list[UsageBucket]
    has_more: bool
    next_page: str | None
