"""report indexes: a day's new accounts by date_joined; active enrollments index-only

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 02:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUS = ["status", "created_at", "id"]


def upgrade() -> None:
    """Apply this revision."""
    op.create_index("ix_users_date_joined", "users", ["date_joined"])
    # The daily report counts active enrollments by created_at and confirmed_at: with
    # confirmed_at in the index (PostgreSQL) that count never visits the table.
    op.drop_index("ix_enrollments_status_created_id", table_name="enrollments")
    op.create_index(
        "ix_enrollments_status_created_id",
        "enrollments",
        _STATUS,
        postgresql_include=["confirmed_at"],
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_enrollments_status_created_id", table_name="enrollments")
    op.create_index("ix_enrollments_status_created_id", "enrollments", _STATUS)
    op.drop_index("ix_users_date_joined", table_name="users")
