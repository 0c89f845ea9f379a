"""The audit trail: one function writes a record, in the caller's transaction.

Every security-relevant change (SPEC "Audit") calls :func:`record` next to the change
itself, so the record commits or rolls back with it. The front doors pass their
``Principal``: a user (the record keeps their id and name) or ``OPERATOR`` for the CLI
(actor ``operator``). The request id comes from the log context, so a record can be
matched with the access log line of the request that made it.

There is no update or delete path: records are only ever inserted. Listings show the
actor's *current* username (joined by id), so an erased account appears under its
tombstone and never under its old name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from eduflow.errors import Invalid
from eduflow.logging import current_request_id
from eduflow.models.audit import OPERATOR_ACTOR, AuditPublic, AuditRecord
from eduflow.models.users import Role, User
from eduflow.services.permissions import Principal, require_role


def record(
    session: Session,
    actor: Principal,
    action: str,
    target_type: str,
    target_id: int | str,
    details: dict[str, Any] | None = None,
) -> AuditRecord:
    """Add one audit record for ``action`` on ``target_type``/``target_id`` (flushed)."""
    operator = actor.id == 0
    row = AuditRecord(
        actor_id=None if operator else actor.id,
        actor=OPERATOR_ACTOR if operator else actor.username,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        details=details or {},
        request_id=current_request_id(),
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """Filters of ``GET /audit/`` and ``eduflow admin audit list``."""

    actor: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None


_RELATIVE = re.compile(r"^(\d{1,6})([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``30m``, ``12h``, ``7d``, ``2w`` ago, or an ISO 8601 date/time (UTC when naive)."""
    value = text.strip()
    match = _RELATIVE.match(value.lower())
    if match:
        amount, unit = int(match.group(1)), _UNITS[match.group(2)]
        try:
            return (now or datetime.now(UTC)) - timedelta(**{unit: amount})
        except OverflowError:
            raise Invalid.field("since", f"{text!r} reaches before year 1") from None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid.field(
            "since", f"{text!r} is neither a duration like 12h/7d nor an ISO 8601 date"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _actor_name() -> Any:
    # The current username of a user actor (a tombstone once erased), else the stored name.
    return func.coalesce(col(User.username), col(AuditRecord.actor))


def list_records(
    session: Session,
    actor: Principal,
    filters: AuditFilters,
    *,
    offset: int = 0,
    limit: int | None = 20,
) -> tuple[int, list[AuditPublic]]:
    """``(total, one page)`` of audit records, newest first (admins only)."""
    require_role(actor, Role.admin)
    name = _actor_name().label("actor_name")
    conditions: list[Any] = []
    if filters.actor is not None:
        conditions.append(name == filters.actor.strip())
    if filters.action is not None:
        conditions.append(col(AuditRecord.action) == filters.action.strip())
    if filters.target_type is not None:
        conditions.append(col(AuditRecord.target_type) == filters.target_type.strip())
    if filters.target_id is not None:
        conditions.append(col(AuditRecord.target_id) == filters.target_id.strip())
    if filters.since is not None:
        conditions.append(col(AuditRecord.at) >= filters.since)
    joined = select(AuditRecord, name).outerjoin(User, col(User.id) == col(AuditRecord.actor_id))
    count = session.execute(
        select(func.count())
        .select_from(AuditRecord)
        .outerjoin(User, col(User.id) == col(AuditRecord.actor_id))
        .where(*conditions)
    ).scalar_one()
    query = (
        joined.where(*conditions)
        .order_by(col(AuditRecord.at).desc(), col(AuditRecord.id).desc())
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    results = [
        AuditPublic(
            id=row.id,  # type: ignore[arg-type]
            at=row.at,
            actor=actor_name,
            action=row.action,
            target_type=row.target_type,
            target_id=row.target_id,
            details=row.details,
            request_id=row.request_id,
        )
        for row, actor_name in session.execute(query).all()
    ]
    return int(count), results
