"""user search key: one generated lower-cased text, its trigram index and (id) INCLUDE (it)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 21:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in eduflow.models.users (a migration keeps its own copy: the model may change later).
_KEY_SQL = "lower(username || ' ' || email)"
_OLD_TRIGRAM = [("ix_users_username_trgm", "username"), ("ix_users_email_trgm", "email")]


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    """Apply this revision."""
    # PostgreSQL stores the key (written with the row, one table rewrite here); SQLite
    # cannot add a stored column to a table and computes it when read.
    postgres = _postgres()
    op.add_column(
        "users",
        sa.Column("search_key", sa.Text(), sa.Computed(_KEY_SQL, persisted=postgres)),
    )
    if postgres:
        op.create_index(
            "ix_users_search_key_trgm",
            "users",
            ["search_key"],
            postgresql_using="gin",
            postgresql_ops={"search_key": "gin_trgm_ops"},
        )
        # A searched page in id order walks this index alone (no table rows).
        op.create_index(
            "ix_users_id_search_key", "users", ["id"], postgresql_include=["search_key"]
        )
        for name, _column in _OLD_TRIGRAM:
            op.drop_index(name, table_name="users")


def downgrade() -> None:
    """Revert this revision."""
    if _postgres():
        for name, column in _OLD_TRIGRAM:
            op.create_index(
                name,
                "users",
                [column],
                postgresql_using="gin",
                postgresql_ops={column: "gin_trgm_ops"},
            )
        op.drop_index("ix_users_id_search_key", table_name="users")
        op.drop_index("ix_users_search_key_trgm", table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("search_key")
