"""Keyset pagination for lists with `after`, `limit` and `order` (OpenAI's list endpoints):
rows in `seq` order, starting after the row whose public id is the cursor."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

Order = Literal["asc", "desc"]
T = TypeVar("T")
Statement = TypeVar("Statement", bound=Select[Any])


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    has_more: bool  # more rows follow the last one in this order


def keyset(
    statement: Statement,
    seq: InstrumentedAttribute[int],
    *,
    after_seq: Select[Any] | None,
    order: Order,
    limit: int,
) -> Statement:
    """`statement` ordered by `seq`, after the cursor row (`after_seq` selects its seq: a
    cursor that is not found, such as another owner's row, gives an empty page), one row more
    than `limit` so that `page` can tell whether more follow."""
    if after_seq is not None:
        cursor = after_seq.scalar_subquery()
        statement = statement.where(seq > cursor if order == "asc" else seq < cursor)
    return statement.order_by(seq.asc() if order == "asc" else seq.desc()).limit(limit + 1)


def page(rows: Sequence[T], limit: int) -> Page[T]:
    return Page(list(rows[:limit]), has_more=len(rows) > limit)
