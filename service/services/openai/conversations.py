"""`/v1/conversations`: OpenAI's Conversations API on the store.

A conversation is an ordered list of items kept for its API key; `responses.create(
conversation=...)` starts from its items and adds its input and output items at the end
(`responses/request.py`, `responses/output.py`). Another key's conversation, or an unknown id, is
a 404 naming the id, as are its items.
"""

from __future__ import annotations

from typing import Any

from service.errors import NotFoundError
from service.schemas.conversations import (
    Conversation,
    ConversationCreateRequest,
    ConversationDeleted,
    ConversationItemList,
    ConversationUpdateRequest,
    ItemsCreateRequest,
)
from service.services.openai.responses.items import conversation_items, known_id, new_id
from service.store import Order, Store
from service.store.conversations import ConversationRecord

DEFAULT_LIMIT = 20  # OpenAI's default page of items


def _unknown(conversation_id: str) -> NotFoundError:
    return NotFoundError(f"No conversation with id '{conversation_id}'.", param="conversation_id")


def _shown(record: ConversationRecord) -> Conversation:
    return Conversation(id=record.id, created_at=record.created_at, metadata=record.metadata)


async def _record(store: Store, owner: str, conversation_id: str) -> ConversationRecord:
    found = (
        await store.conversations.get(owner, conversation_id) if known_id(conversation_id) else None
    )
    if found is None:
        raise _unknown(conversation_id)
    return found


async def create(store: Store, owner: str, request: ConversationCreateRequest) -> Conversation:
    record = await store.conversations.create(
        owner,
        new_id("conv"),
        metadata=request.metadata or {},
        items=conversation_items(request.items or []),
    )
    return _shown(record)


async def retrieve(store: Store, owner: str, conversation_id: str) -> Conversation:
    return _shown(await _record(store, owner, conversation_id))


async def update(
    store: Store, owner: str, conversation_id: str, request: ConversationUpdateRequest
) -> Conversation:
    found = None
    if known_id(conversation_id):
        found = await store.conversations.update(owner, conversation_id, request.metadata or {})
    if found is None:
        raise _unknown(conversation_id)
    return _shown(found)


async def delete(store: Store, owner: str, conversation_id: str) -> ConversationDeleted:
    if not (known_id(conversation_id) and await store.conversations.delete(owner, conversation_id)):
        raise _unknown(conversation_id)
    return ConversationDeleted(id=conversation_id)


async def list_items(
    store: Store,
    owner: str,
    conversation_id: str,
    *,
    after: str | None,
    limit: int,
    order: Order,
) -> ConversationItemList:
    await _record(store, owner, conversation_id)
    if after is not None and not known_id(after):
        return ConversationItemList.page([], has_more=False)  # an unknown cursor: an empty page
    found = await store.conversations.items(
        owner, conversation_id, after=after, limit=limit, order=order
    )
    return ConversationItemList.page(found.items, has_more=found.has_more)


async def add_items(
    store: Store, owner: str, conversation_id: str, request: ItemsCreateRequest
) -> ConversationItemList:
    await _record(store, owner, conversation_id)
    items = conversation_items(request.items)
    if not await store.conversations.append(owner, conversation_id, items):
        raise _unknown(conversation_id)  # deleted meanwhile
    return ConversationItemList.page(items, has_more=False)


def _unknown_item(item_id: str) -> NotFoundError:
    return NotFoundError(f"No item with id '{item_id}' in this conversation.", param="item_id")


async def retrieve_item(
    store: Store, owner: str, conversation_id: str, item_id: str
) -> dict[str, Any]:
    await _record(store, owner, conversation_id)
    found = (
        await store.conversations.item(owner, conversation_id, item_id)
        if known_id(item_id)
        else None
    )
    if found is None:
        raise _unknown_item(item_id)
    return found


async def delete_item(store: Store, owner: str, conversation_id: str, item_id: str) -> Conversation:
    """Delete one item; the conversation, as OpenAI answers."""
    record = await _record(store, owner, conversation_id)
    if not (
        known_id(item_id) and await store.conversations.delete_item(owner, conversation_id, item_id)
    ):
        raise _unknown_item(item_id)
    return _shown(record)
