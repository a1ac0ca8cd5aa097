"""OpenAI's Conversations API: /v1/conversations, its metadata and its items."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from service.http.deps import CallerDep, StoreDep
from service.schemas.conversations import (
    Conversation,
    ConversationCreateRequest,
    ConversationDeleted,
    ConversationItemList,
    ConversationUpdateRequest,
    ItemsCreateRequest,
)
from service.services.openai import conversations
from service.store import Order

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])


@router.post("")
async def create_conversation(
    request: ConversationCreateRequest, store: StoreDep, caller: CallerDep
) -> Conversation:
    return await conversations.create(store, caller.owner, request)


@router.get("/{conversation_id}")
async def get_conversation(
    conversation_id: str, store: StoreDep, caller: CallerDep
) -> Conversation:
    return await conversations.retrieve(store, caller.owner, conversation_id)


@router.post("/{conversation_id}")
async def update_conversation(
    conversation_id: str, request: ConversationUpdateRequest, store: StoreDep, caller: CallerDep
) -> Conversation:
    return await conversations.update(store, caller.owner, conversation_id, request)


@router.delete("/{conversation_id}")
async def delete_conversation(
    conversation_id: str, store: StoreDep, caller: CallerDep
) -> ConversationDeleted:
    return await conversations.delete(store, caller.owner, conversation_id)


@router.get("/{conversation_id}/items")
async def list_items(
    conversation_id: str,
    store: StoreDep,
    caller: CallerDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = conversations.DEFAULT_LIMIT,
    order: Order = "desc",
) -> ConversationItemList:
    return await conversations.list_items(
        store, caller.owner, conversation_id, after=after, limit=limit, order=order
    )


@router.post("/{conversation_id}/items")
async def add_items(
    conversation_id: str, request: ItemsCreateRequest, store: StoreDep, caller: CallerDep
) -> ConversationItemList:
    return await conversations.add_items(store, caller.owner, conversation_id, request)


@router.get("/{conversation_id}/items/{item_id}")
async def get_item(
    conversation_id: str, item_id: str, store: StoreDep, caller: CallerDep
) -> dict[str, Any]:
    return await conversations.retrieve_item(store, caller.owner, conversation_id, item_id)


@router.delete("/{conversation_id}/items/{item_id}")
async def delete_item(
    conversation_id: str, item_id: str, store: StoreDep, caller: CallerDep
) -> Conversation:
    return await conversations.delete_item(store, caller.owner, conversation_id, item_id)
