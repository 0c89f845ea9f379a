"""Liveness of the job processes, read from RQ's heartbeats (``eduflow worker --check``,
``eduflow scheduler --check``: the healthchecks of their containers).

A worker or scheduler that hangs (a dead connection, a stuck loop) stops refreshing its
heartbeat in Redis; a process that exits takes its container down anyway. The check looks
for a heartbeat of this host (the container) that is recent enough.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

# An idle worker beats once per dequeue timeout (at most 60 s, see EduFlowWorker); a busy one
# before and after each job, whose timeout is EDUFLOW_JOB_TIMEOUT.
WORKER_STALE_AFTER = 150.0
SCHEDULER_STALE_AFTER = 60.0  # the scheduler beats at least every 10 s


def _age(beat: datetime | None) -> float:
    if beat is None:
        return float("inf")
    if beat.tzinfo is None:
        beat = beat.replace(tzinfo=UTC)
    return (datetime.now(UTC) - beat).total_seconds()


def live_workers(client: redis.Redis, hostname: str | None = None) -> list[str]:
    """Names of this host's RQ workers whose heartbeat is recent."""
    from rq import Worker

    from eduflow.config import get_settings

    host = hostname or socket.gethostname()
    stale_after = max(WORKER_STALE_AFTER, get_settings().job_timeout + 30.0)
    return [
        w.name
        for w in Worker.all(connection=client)
        if w.hostname == host and _age(w.last_heartbeat) < stale_after
    ]


def live_schedulers(client: redis.Redis, hostname: str | None = None) -> list[str]:
    """Names of this host's cron schedulers whose heartbeat is recent."""
    from rq.cron import CronScheduler

    host = hostname or socket.gethostname()
    return [
        s.name
        for s in CronScheduler.all(client)
        if s.hostname == host and _age(s.last_heartbeat) < SCHEDULER_STALE_AFTER
    ]
