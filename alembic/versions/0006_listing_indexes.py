"""listing indexes: one per filter and ordering, trigram search on PostgreSQL

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 22:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BTREE = (
    ("courses", "ix_courses_published_created_id", ["is_published", "created_at", "id"]),
    ("courses", "ix_courses_published_price_id", ["is_published", "price", "id"]),
    ("courses", "ix_courses_published_title_id", ["is_published", "title", "id"]),
    ("courses", "ix_courses_created_id", ["created_at", "id"]),
    ("enrollments", "ix_enrollments_created_id", ["created_at", "id"]),
    ("enrollments", "ix_enrollments_status_created_id", ["status", "created_at", "id"]),
    ("enrollments", "ix_enrollments_course_created_id", ["course_id", "created_at", "id"]),
    ("enrollments", "ix_enrollments_student_created_id", ["student_id", "created_at", "id"]),
    ("users", "ix_users_role_id", ["role", "id"]),
)
_REPLACED = (
    ("courses", "ix_courses_published_created", ["is_published", "created_at"]),
    ("enrollments", "ix_enrollments_status_created", ["status", "created_at"]),
    ("enrollments", "ix_enrollments_course_id", ["course_id"]),
    ("enrollments", "ix_enrollments_student_id", ["student_id"]),
    ("users", "ix_users_role", ["role"]),
)
_TRIGRAM = (
    ("courses", "ix_courses_title_trgm", "title"),
    ("courses", "ix_courses_description_trgm", "description"),
    ("users", "ix_users_username_trgm", "username"),
    ("users", "ix_users_email_trgm", "email"),
)


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    """Apply this revision."""
    for table, name, columns in _BTREE:
        op.create_index(name, table, columns)
    for table, name, _columns in _REPLACED:
        op.drop_index(name, table_name=table)
    if _postgres():
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for table, name, column in _TRIGRAM:
            op.create_index(
                name,
                table,
                [column],
                postgresql_using="gin",
                postgresql_ops={column: "gin_trgm_ops"},
            )


def downgrade() -> None:
    """Revert this revision."""
    if _postgres():
        for table, name, _column in _TRIGRAM:
            op.drop_index(name, table_name=table)
    for table, name, columns in _REPLACED:
        op.create_index(name, table, columns)
    for table, name, _columns in _BTREE:
        op.drop_index(name, table_name=table)
