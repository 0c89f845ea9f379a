"""Loading row streams fast: ``COPY`` on PostgreSQL, multi-row inserts on SQLite.

Both keep memory bounded (rows are consumed as they are generated, ``BATCH_ROWS`` at a
time) and take explicit ids reserved up front, so no row has to be read back. On
PostgreSQL the tables' secondary indexes are dropped for the load and rebuilt from the
models' definitions afterwards, inside the same transaction (a sorted index build is
several times faster than millions of single-row index updates, and a foreign key
checked once by a join faster than one trigger per row).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import Any

from sqlalchemy import Table, func, insert, select, text
from sqlmodel import Session

BATCH_ROWS = 5000
ProgressFn = Callable[[str, int], None]


def is_postgres(session: Session) -> bool:
    """True on PostgreSQL (COPY, sequences, index rebuilds)."""
    return session.get_bind().dialect.name == "postgresql"


def reserve_ids(session: Session, table: Table, count: int) -> int:
    """The first of ``count`` consecutive ids nobody else will get; the caller writes them.

    PostgreSQL: the table is locked against other writers for the rest of the
    transaction, then its id sequence is moved past the block. SQLite: one writer at a
    time already; new rows simply follow the largest id.
    """
    if is_postgres(session):
        session.execute(text(f"LOCK TABLE {table.name} IN SHARE ROW EXCLUSIVE MODE"))
        sequence = session.execute(
            text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table.name}
        ).scalar_one()
        largest = session.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
        start = (
            max(
                int(largest),
                int(session.execute(text(f"SELECT last_value FROM {sequence}")).scalar_one()),
            )
            + 1
        )
        if count:
            session.execute(text("SELECT setval(:s, :v)"), {"s": sequence, "v": start + count - 1})
        return start
    largest = session.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
    return int(largest) + 1


def _batches(rows: Iterable[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    it = iter(rows)
    while batch := list(islice(it, BATCH_ROWS)):
        yield batch


def load(
    session: Session,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
    report: ProgressFn,
    stage: str,
) -> int:
    """Write ``rows`` (tuples in ``columns`` order) into ``table``; how many were written.

    Columns left out get their model default, the same for every row (e.g. a counter's
    0), so a column added to a model later needs no change here."""
    defaults = _defaults(table, columns)
    names = [*columns, *defaults]
    extra = tuple(defaults.values())
    written = 0
    if is_postgres(session):
        cursor = _raw_cursor(session)
        oids = dict(
            session.execute(
                text(
                    "SELECT attname, atttypid::int FROM pg_attribute "
                    "WHERE attrelid = CAST(:t AS regclass) AND attnum > 0"
                ),
                {"t": table.name},
            ).all()
        )
        sql = f"COPY {table.name} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)"
        with cursor.copy(sql) as copy:  # binary: no text formatting of every timestamp
            copy.set_types([oids[name] for name in names])
            for batch in _batches(rows):
                for row in batch:
                    copy.write_row(row + extra)
                written += len(batch)
                report(stage, len(batch))
        return written
    for batch in _batches(rows):
        session.execute(
            insert(table), [dict(zip(names, row + extra, strict=True)) for row in batch]
        )
        written += len(batch)
        report(stage, len(batch))
    return written


def load_copy_data(
    session: Session,
    table: Table,
    columns: Sequence[str],
    chunks: Iterable[tuple[bytes, int]],
    report: ProgressFn,
    stage: str,
) -> int:
    """PostgreSQL: ``COPY`` ready-made binary ``COPY`` data into ``table``: ``chunks`` of
    it (header and trailer included), each with about how many rows it holds; those
    rows written. ``columns`` are every column of the table, in the data's order (no
    default can be added to data that is already encoded)."""
    left_out = [c.name for c in table.columns if c.name not in columns]
    if left_out:
        raise ValueError(f"{table.name}: the data has no {', '.join(left_out)}")
    written = 0
    sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    with _raw_cursor(session).copy(sql) as copy:
        for data, rows in chunks:
            copy.write(data)
            if rows:
                written += rows
                report(stage, rows)
    return written


def _raw_cursor(session: Session) -> Any:
    raw = session.connection().connection.dbapi_connection
    assert raw is not None
    return raw.cursor()


def _defaults(table: Table, columns: Sequence[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for column in table.columns:
        if column.name in columns or column.default is None:
            continue
        default: Any = column.default
        if default.is_scalar:
            values[column.name] = default.arg
        elif default.is_callable:
            values[column.name] = default.arg({})
    return values


@contextmanager
def indexes_rebuilt_after(
    session: Session, tables: Sequence[Table], report: ProgressFn
) -> Iterator[None]:
    """On PostgreSQL: drop the secondary indexes, unique and foreign-key constraints of
    ``tables`` for the block and create them again, exactly as the database defined them,
    afterwards (primary keys stay). Adding a constraint checks every row at once -- a sort
    or a join -- instead of one index probe or trigger per row; a row that breaks it still
    fails the load."""
    if not is_postgres(session):
        yield
        return
    session.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
    names = [t.name for t in tables]
    constraints = session.execute(
        text(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype "
            "FROM pg_constraint WHERE conrelid::regclass::text = ANY(:t) "
            "AND contype IN ('f', 'u') ORDER BY contype, conname"
        ),
        {"t": names},
    ).all()
    indexes = session.execute(
        text(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i "
            "WHERE i.schemaname = current_schema() AND i.tablename = ANY(:t) AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conindid = "
            "CAST(quote_ident(i.indexname) AS regclass)) ORDER BY i.indexname"
        ),
        {"t": names},
    ).all()
    for table, name, _definition, _kind in constraints:  # foreign keys ('f') first
        session.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
    for name, _definition in indexes:
        session.execute(text(f'DROP INDEX "{name}"'))
    yield
    report("indexes", 0)
    for _name, definition in indexes:
        session.execute(text(definition))
    for table, name, definition, _kind in reversed(constraints):  # unique ones first
        session.execute(text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))
    for name in names:
        session.execute(text(f"ANALYZE {name}"))
