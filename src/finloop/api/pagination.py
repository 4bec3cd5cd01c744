"""Cursor pagination: ``?limit=&starting_after=`` in, ``{data, has_more, next_cursor}`` out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from finloop.api.types import Line

T = TypeVar("T")
R = TypeVar("R")

Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
Cursor = Annotated[Line | None, Query(max_length=200, description="The next_cursor of the previous page.")]


class Page(BaseModel, Generic[T]):
    data: list[T]
    has_more: bool
    next_cursor: str | None


def page(rows: Sequence[R], limit: int, read: Callable[[R], T], cursor_of: Callable[[R], str]) -> Page[T]:
    """Build a page from ``limit + 1`` fetched rows (the extra row only says that more exist)."""
    has_more = len(rows) > limit
    shown = list(rows[:limit])
    return Page[T](data=[read(row) for row in shown], has_more=has_more,
                   next_cursor=cursor_of(shown[-1]) if has_more and shown else None)
