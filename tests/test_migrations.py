"""Models and migrations agree, and the migration chain runs both ways."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import eduflow.models  # noqa: F401
from eduflow import schema
from eduflow.db import get_engine


def _diff(url: str | None = None) -> list[Any]:
    with get_engine(url).connect() as conn:
        include = schema.include_object_for(conn.dialect.name)
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": include}
        )
        return list(compare_metadata(ctx, SQLModel.metadata))


def test_postgres_schema_matches_models() -> None:
    assert schema.is_up_to_date()
    assert _diff() == []


def test_upgrade_downgrade_upgrade_on_postgres() -> None:
    schema.downgrade("base")
    tables = set(inspect(get_engine()).get_table_names())
    assert tables <= {"alembic_version"}
    schema.upgrade("head")
    assert schema.is_up_to_date()
    assert "enrollments" in inspect(get_engine()).get_table_names()
    assert _diff() == []


def test_sqlite_schema_matches_models(sqlite_url: str) -> None:
    schema.upgrade("head")
    assert schema.current_revision() == schema.head_revision()
    assert _diff() == []
    schema.downgrade("base")
    assert set(inspect(get_engine()).get_table_names()) <= {"alembic_version"}
