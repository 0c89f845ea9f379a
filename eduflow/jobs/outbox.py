"""The outbox: record a job in the caller's transaction; relay rows to the queue after commit."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from eduflow.models.outbox import OutboxJob


def record_job(session: Session, job_name: str, queue: str = "default", **args: Any) -> OutboxJob:
    """Record ``job_name(**args)`` in the same transaction as the change that causes it."""
    from eduflow.logging import current_request_id

    job = OutboxJob(job_name=job_name, args=args, queue=queue, request_id=current_request_id())
    session.add(job)
    session.flush()
    return job
