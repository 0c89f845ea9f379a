"""Pages of a listing whose cost does not grow with the table: bounded counts, bounded
offsets, keyset cursors.

Every list (courses, enrollments, users) pages the same way:

- ``count`` is exact while the listing holds at most ``COUNT_EXACT_LIMIT`` items (the
  count stops reading there, so it costs at most that many index entries), or at most
  ``SEARCH_COUNT_EXACT_LIMIT`` for a text search (each counted match is a row read and
  its text checked). Beyond it, PostgreSQL answers with the planner's estimate and
  ``count_exact`` is false; SQLite (the embedded, single-machine mode) always counts
  exactly.
- ``?page=`` reaches the first ``MAX_OFFSET`` items; a deeper page is a 400 that points
  at the cursor. A page past the end of an exactly counted listing runs no row query.
- ``?cursor=`` (keyset pagination) continues after the last item of the previous page
  with an index range scan, at the same cost on the first page and the millionth.
  ``next`` switches from ``?page=`` links to ``?cursor=`` links where the offset limit
  would be reached; cursor pages have no ``previous``.
- The row query picks the page's ids first (an index-only scan when the index covers
  the filter and ordering) and only then reads those rows, so skipped rows cost an index
  entry each, never a table row.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    Numeric,
    and_,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session

from eduflow.errors import BadRequest, Invalid

COUNT_EXACT_LIMIT = 10_000
# A text search checks every match it counts against the text (a trigram index only
# proposes candidates), so its exact count stops sooner.
SEARCH_COUNT_EXACT_LIMIT = 1_000
MAX_OFFSET = 100_000
T = TypeVar("T")
R = TypeVar("R")


class PageTooDeep(BadRequest):
    """An offset page beyond ``MAX_OFFSET`` (400): deep pages are read with a cursor."""

    status = 400
    slug = "page-too-deep"
    title = "Page too deep"


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Which page: an offset (``?page=``) or a cursor (``?cursor=``), and its size."""

    offset: int = 0
    limit: int | None = 20
    cursor: str | None = None


@dataclass(slots=True)
class Page(Generic[T]):
    """One page of a listing and what it knows about the rest."""

    count: int
    count_exact: bool
    results: list[T] = field(default_factory=list)
    next_cursor: str | None = None  # set when more items follow


@dataclass(frozen=True, slots=True)
class SortKey:
    """An ordering: its name (part of every cursor), its columns and their direction."""

    name: str
    columns: tuple[Any, ...]  # the last one is the unique id that breaks ties
    descending: bool

    def order_by(self) -> list[Any]:
        """ORDER BY clauses."""
        return [c.desc() if self.descending else c.asc() for c in self.columns]

    def after(self, values: Sequence[Any]) -> ColumnElement[bool]:
        """Rows strictly after ``values`` in this ordering: one row-value comparison,
        which both databases answer as a range of the ordering's index."""
        bound = [literal(v, c.type) for c, v in zip(self.columns, values, strict=True)]
        if len(self.columns) == 1:
            column: ColumnElement[Any] = self.columns[0]
            return column < bound[0] if self.descending else column > bound[0]
        row, position = tuple_(*self.columns), tuple_(*bound)
        return row < position if self.descending else row > position

    def values_of(self, row: Any) -> list[Any]:
        """A row's values of the key's columns (the ORM object of the listed table)."""
        return [getattr(row, c.key) for c in self.columns]

    def encode(self, values: Sequence[Any]) -> str:
        """An opaque cursor naming the position after ``values``."""
        plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
        raw = json.dumps([self.name, [str(v) if isinstance(v, Decimal) else v for v in plain]])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def decode(self, cursor: str) -> list[Any]:
        """The position a cursor names; 422 when it is malformed or of another ordering."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            name, values = json.loads(raw)
        except (ValueError, TypeError, binascii.Error) as exc:
            raise Invalid.field("cursor", "not a cursor of this listing") from exc
        if name != self.name or not isinstance(values, list):
            raise Invalid.field("cursor", "belongs to another ordering; start from page 1")
        if len(values) != len(self.columns):
            raise Invalid.field("cursor", "not a cursor of this listing")
        return [_typed(c, v) for c, v in zip(self.columns, values, strict=True)]


def _typed(column: Any, value: Any) -> Any:
    python_type = _python_type(column)
    try:
        if python_type is datetime and isinstance(value, str):
            return datetime.fromisoformat(value)
        if python_type is Decimal and isinstance(value, str):
            return Decimal(value)
        if python_type in (int, str) and isinstance(value, python_type):
            return value
    except (ValueError, InvalidOperation) as exc:
        raise Invalid.field("cursor", "not a cursor of this listing") from exc
    raise Invalid.field("cursor", "not a cursor of this listing")


def _python_type(column: Any) -> type:
    kind = column.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl
    if isinstance(kind, DateTime):
        return datetime
    if isinstance(kind, Numeric):
        return Decimal
    if isinstance(kind, Integer):
        return int
    return str


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` literally anywhere (escape character: backslash)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def contains_text(text: str, *columns: Any) -> ColumnElement[bool]:
    """``?search=``: ``text`` (trimmed) anywhere in one of ``columns``, ignoring case.

    The same ILIKE on both databases, so both find the same rows; on PostgreSQL the
    trigram (``pg_trgm``) GIN indexes of those columns answer it without a scan whenever
    the text has three characters or more."""
    pattern = like_pattern(text.strip())
    return or_(*(c.ilike(pattern, escape="\\") for c in columns))


def key_contains_text(text: str, key: Any, separator: str, *columns: Any) -> ColumnElement[bool]:
    """``contains_text(text, *columns)`` asked of ``key``: a lower-cased text generated
    from ``columns`` joined by ``separator``, with a trigram index of its own.

    The same rows, at a fraction of the cost: one trigram index to read instead of one per
    column, and a byte-wise ``LIKE`` per row where ``ILIKE`` lower-cases every column of
    every row it checks (PostgreSQL's ``ILIKE`` is ``lower(text) LIKE lower(pattern)``,
    SQLite's is too, as SQLAlchemy writes it). A text without the separator cannot
    straddle two columns in the key; a text with it could, so its matches in the key
    (still found through the key's index) are asked of the columns themselves."""
    text = text.strip()
    in_key: ColumnElement[bool] = key.like(func.lower(like_pattern(text)), escape="\\")
    if separator in text:
        return and_(in_key, contains_text(text, *columns))
    return in_key


def bounded_count(session: Session, ids: Any, *, search: str | None = None) -> tuple[int, bool]:
    """``(count, exact)`` of the rows ``ids`` (a SELECT of one column) selects, reading at
    most ``COUNT_EXACT_LIMIT + 1`` of them; beyond that, PostgreSQL's estimate.

    ``search`` (the text of a search): at most ``SEARCH_COUNT_EXACT_LIMIT + 1``, read
    through the search's trigram indexes when the text has a word of three letters or
    digits (what a trigram index can look up). PostgreSQL's estimate of how many rows an
    ``ILIKE`` matches is a guess from the histogram, and with a ``LIMIT`` it would rather
    scan the table hoping to meet the matches early -- which reads every row when they
    are few or far. A shorter text keeps the planner's choice: no index helps it."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        total = session.execute(select(func.count()).select_from(ids.subquery())).scalar_one()
        return int(total), True
    limit = SEARCH_COUNT_EXACT_LIMIT if search else COUNT_EXACT_LIMIT
    capped = ids.limit(limit + 1).subquery()
    indexed = search is not None and _TRIGRAM_WORD.search(search) is not None
    before = _scans(session, ("off", "off")) if indexed else None
    counted = int(session.execute(select(func.count()).select_from(capped)).scalar_one())
    if before is not None:  # (a failed count rolls back, and the settings with it)
        _scans(session, before)
    if counted <= limit:
        return counted, True
    compiled = ids.compile(dialect=bind.dialect)
    plan = (
        session.connection()
        .exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params)
        .scalar_one()
    )
    plan = json.loads(plan) if isinstance(plan, str) else plan
    estimate = int(plan[0]["Plan"]["Plan Rows"])
    return max(estimate, limit + 1), False


_SCANS = ("enable_seqscan", "enable_indexscan")
_TRIGRAM_WORD = re.compile(r"[^\W_]{3}")  # pg_trgm's words: letters and digits


def _scans(session: Session, settings: tuple[str, str]) -> tuple[str, str]:
    """Set sequential and plain index scans for the rest of the transaction (``off``
    leaves a text search the bitmap scan of its trigram indexes -- or, for a text too
    short for trigrams, the sequential scan all the same); the settings they had."""
    row = session.execute(
        select(
            *(func.current_setting(name) for name in _SCANS),
            *(
                func.set_config(name, value, True)
                for name, value in zip(_SCANS, settings, strict=True)
            ),
        )
    ).one()
    return str(row[0]), str(row[1])


@dataclass(frozen=True, slots=True)
class PagePlan:
    """A counted listing and the ids of the requested page (``ids`` is None when the page
    is known to be empty without reading it)."""

    count: int
    count_exact: bool
    ids: Any
    limit: int | None


def plan_page(
    session: Session, ids: Any, key: SortKey, request: PageRequest, *, search: str | None = None
) -> PagePlan:
    """Count the listing and build the page's id query: ``WHERE id IN (plan.ids)`` with
    ``ORDER BY key`` then reads the page (one row more than asked, to know whether more
    follow). ``ids`` selects the listing's id column under every filter (joins included).

    ``search`` (the text of a search, if any): when the count found at most
    ``SEARCH_COUNT_EXACT_LIMIT`` matches, the page is sorted out of those matches (found
    through the search's own index) instead of walking the ordering's index past rows
    that do not match -- which costs the whole table when the matches sit at its far end.
    """
    if request.cursor is None and request.offset > MAX_OFFSET:
        raise PageTooDeep(
            f"?page= reaches the first {MAX_OFFSET:,} items; "
            "follow the `next` links (?cursor=) to read further"
        )
    position = key.decode(request.cursor) if request.cursor is not None else None
    search = search.strip() if search else None
    count, exact = bounded_count(session, ids, search=search or None)
    if request.limit == 0 or (exact and position is None and request.offset >= count):
        return PagePlan(count, exact, None, request.limit)
    if position is not None:
        ids = ids.where(key.after(position))
    if search and exact:
        # OFFSET 0 keeps the database from pushing the ordering into the search.
        matches = ids.with_only_columns(*key.columns).offset(0).subquery()
        by = [matches.c[c.key] for c in key.columns]
        stmt = select(matches.c[key.columns[-1].key]).order_by(
            *[c.desc() if key.descending else c.asc() for c in by]
        )
    else:
        stmt = ids.order_by(*key.order_by())
    if position is None and request.offset:
        stmt = stmt.offset(request.offset)
    if request.limit is not None:
        stmt = stmt.limit(request.limit + 1)
    return PagePlan(count, exact, stmt, request.limit)


def finish_page(
    plan: PagePlan, key: SortKey, rows: Sequence[R], entity: Callable[[R], Any]
) -> tuple[list[R], str | None]:
    """The page's rows (at most ``limit``) and the cursor after them when more follow;
    ``entity`` gives a row's object of the listed table (which holds the key's values)."""
    if plan.limit is None or len(rows) <= plan.limit:
        return list(rows), None
    kept = list(rows[: plan.limit])
    return kept, key.encode(key.values_of(entity(kept[-1])))
