"""The tables of agent sessions on the Responses API: stored responses, the events of background
streams, conversations and their items (the rule of `tables.py` holds: every row a client reaches
by its id has an owner).

A background response is run by one replica (`replica`), which refreshes `heartbeat_at` while it
runs; a response whose heartbeat is too old is marked `failed` by any replica. Its `status` and
`error` columns are the truth: they overlay the stored body, so a cancel or a failure is one
conditional UPDATE, whoever makes it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.store.tables import ID_LENGTH, Base, owner_column, public_id_column, seq_column

# queued and in_progress: a run that has not ended; the others are final.
ACTIVE_STATUSES = ("queued", "in_progress")


class ResponseRow(Base):
    """A stored response (`store: true`): its body as answered, the conversation a continuation
    (`previous_response_id`) starts from, and for a background run its replica and heartbeat."""

    __tablename__ = "responses"

    seq: Mapped[int] = seq_column()
    id: Mapped[str] = public_id_column()
    owner: Mapped[str] = owner_column()
    # queued, in_progress, completed, incomplete, failed, cancelled
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)  # the Response object
    # The whole conversation as chat messages, this response's output included once it ends.
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    # Its own input as items with ids (GET /v1/responses/{id}/input_items), oldest first.
    input_items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)
    background: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    stream: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)  # events kept
    conversation_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    replica: Mapped[str | None] = mapped_column(String(64), nullable=True)
    heartbeat_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # Unix seconds
    created_at: Mapped[float] = mapped_column(Float, nullable=False)  # Unix seconds

    __table_args__ = (
        Index("ix_responses_status", "status"),
        Index("ix_responses_created_at", "created_at"),
    )


class ResponseEventRow(Base):
    """One event of a background stream, by its `sequence_number`: replayed to a client that
    reconnects (`starting_after`), on any replica."""

    __tablename__ = "response_events"

    response_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("responses.id", ondelete="CASCADE"), primary_key=True
    )
    sequence_number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    data: Mapped[str] = mapped_column(Text, nullable=False)  # the event's JSON, as sent


class ConversationRow(Base):
    """A conversation (OpenAI's Conversations API): its items are `ConversationItemRow`s."""

    __tablename__ = "conversations"

    seq: Mapped[int] = seq_column()
    id: Mapped[str] = public_id_column()
    owner: Mapped[str] = owner_column()
    conversation_metadata: Mapped[dict[str, str]] = mapped_column("metadata", JSON, nullable=False)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)  # Unix seconds
    used_at: Mapped[float] = mapped_column(Float, nullable=False)  # last change, for the TTL

    __table_args__ = (
        Index("ix_conversations_owner_seq", "owner", "seq"),
        Index("ix_conversations_used_at", "used_at"),
    )


class ConversationItemRow(Base):
    """One item of a conversation (a message, a function call or its output, reasoning), in the
    shape the API answers it; listed in `seq` order."""

    __tablename__ = "conversation_items"

    seq: Mapped[int] = seq_column()
    id: Mapped[str] = public_id_column()
    owner: Mapped[str] = owner_column()
    conversation_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    )
    item: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)

    __table_args__ = (Index("ix_conversation_items_conversation_id_seq", "conversation_id", "seq"),)
