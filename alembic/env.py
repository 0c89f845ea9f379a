"""Alembic environment: the URL comes from EduFlow's settings (or the caller's config)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import eduflow.models  # noqa: F401  (registers every table)
from eduflow.db import get_engine, long_work
from eduflow.schema import include_object_for

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    """Emit SQL without a connection."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against the configured database, in batch mode so SQLite can alter tables."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = get_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _run(conn)
        conn.commit()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        include_object=include_object_for(connection.dialect.name),
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        compare_server_default=False,
    )
    # A migration rewrites tables and builds indexes: on a large database that takes
    # longer than any request may (EDUFLOW_DB_STATEMENT_TIMEOUT_MS).
    with context.begin_transaction(), long_work(connection):
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
