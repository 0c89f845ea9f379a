"""Record a job in the caller's transaction (the outbox row), to be relayed after commit."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlmodel import Session

from eduflow.models.outbox import OutboxJob
from eduflow.outbox.relay import JobRow, relay_after_commit

_PENDING_IDS = "eduflow_outbox_pending"


def record_job(session: Session, job_name: str, queue: str = "default", **args: Any) -> OutboxJob:
    """Record ``job_name(**args)`` in the same transaction as the change that causes it."""
    from eduflow.logging import current_request_id

    job = OutboxJob(job_name=job_name, args=args, queue=queue, request_id=current_request_id())
    return record_row(session, job)


def record_row(session: Session, job: OutboxJob, *, relay: bool = True) -> OutboxJob:
    """``record_job`` for a row built by the caller (e.g. dated like the change it follows);
    ``relay=False`` when the caller hands it to ``relay_on_commit`` itself."""
    # One Core INSERT on the session's connection (same transaction): the unit-of-work
    # flush of an ORM add costs several times more CPU on a hot write path. The returned
    # row is not attached to the session.
    job.id = (
        session.connection()
        .execute(
            _insert_job(),
            {
                "job_name": job.job_name,
                "args": job.args,
                "queue": job.queue,
                "request_id": job.request_id,
                "trace_context": job.trace_context,
                "created_at": job.created_at,
                "attempts": job.attempts,
            },
        )
        .scalar_one()
    )
    if relay:
        relay_on_commit(session, job)
    return job


def relay_on_commit(session: Session, job: JobRow) -> None:
    """Hand ``job`` (a row this transaction inserted, id set) to the queue after the commit."""
    pending: list[JobRow] | None = session.info.get(_PENDING_IDS)
    if pending is None:
        pending = session.info[_PENDING_IDS] = []
        from eduflow.db import on_commit

        on_commit(session, lambda: relay_after_commit(session.info.pop(_PENDING_IDS, [])))
    pending.append(job)


@cache
def _insert_job() -> Any:
    from sqlalchemy import insert

    table: Any = OutboxJob.__table__  # type: ignore[attr-defined]
    return insert(table).returning(table.c.id)
