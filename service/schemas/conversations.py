"""`/v1/conversations` request and response models (OpenAI's Conversations API wire format).

Items are the Responses API's input items on the way in (`InputItem`); on the way out they are
the stored items, in the shape OpenAI answers them (a message with typed content parts, a
function call, its output, reasoning), which the official SDK reads as `ConversationItem`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from service.schemas.common import RequestModel, screen_json
from service.schemas.responses import InputItem, ResponseItemList

MAX_ITEMS_AT_ONCE = 20  # OpenAI's: items added in one call
MAX_METADATA_PAIRS = 16

Metadata = Annotated[
    dict[
        Annotated[str, StringConstraints(max_length=64)],
        Annotated[str, StringConstraints(max_length=512)],
    ],
    Field(max_length=MAX_METADATA_PAIRS),
]


class _Screened(RequestModel):
    @model_validator(mode="before")
    @classmethod
    def _screen(cls, data: Any) -> Any:
        screen_json(data)
        return data


class ConversationCreateRequest(_Screened):
    items: list[InputItem] | None = Field(None, max_length=MAX_ITEMS_AT_ONCE)
    metadata: Metadata | None = None


class ConversationUpdateRequest(_Screened):
    metadata: Metadata | None


class ItemsCreateRequest(_Screened):
    items: list[InputItem] = Field(..., min_length=1, max_length=MAX_ITEMS_AT_ONCE)


class Conversation(BaseModel):
    id: str
    object: Literal["conversation"] = "conversation"
    created_at: int
    metadata: dict[str, str]


class ConversationDeleted(BaseModel):
    id: str
    object: Literal["conversation.deleted"] = "conversation.deleted"
    deleted: bool = True


class ConversationItemList(ResponseItemList):
    """A page of a conversation's items."""
