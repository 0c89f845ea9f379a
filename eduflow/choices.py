"""Roles and statuses as light StrEnums: the command line's choices (shown in ``--help``,
completed by the shell) without importing the data layer; the models reuse them."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from eduflow.waitlist_status import WaitlistStatus

__all__ = [
    "CourseOrdering",
    "EnrollmentStatus",
    "JobStatus",
    "PurgeableJobStatus",
    "Role",
    "WaitlistStatus",
]


class Role(StrEnum):
    """The three roles of SPEC section 1."""

    student = "student"
    instructor = "instructor"
    admin = "admin"


class EnrollmentStatus(StrEnum):
    """pending (paid, unconfirmed) -> active; pending -> expired when abandoned."""

    pending = "pending"
    active = "active"
    expired = "expired"


class JobStatus(StrEnum):
    """The RQ registries a job can be listed from."""

    queued = "queued"
    started = "started"
    failed = "failed"
    scheduled = "scheduled"
    finished = "finished"


class PurgeableJobStatus(StrEnum):
    """The registries ``eduflow jobs purge`` may empty."""

    failed = "failed"
    finished = "finished"


CourseOrdering = Literal["created_at", "-created_at", "price", "-price", "title", "-title"]
