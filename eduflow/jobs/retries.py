"""Retries and scheduled jobs: moved to their queues by a thread of the worker.

RQ keeps a retry with backoff (and any job scheduled for later) in its scheduled-job
registry; a scheduler moves it to the queue when due. RQ runs that scheduler as a child
process that dies when Redis goes away (writing a plain-text traceback), holds its lock for
a minute after its worker is killed, and is restarted only by the worker's maintenance
about a minute later: retries stopped for over a minute around every Redis outage.

Here the same registry work (``RQScheduler.enqueue_scheduled_jobs``) runs in a loop in a
thread of the worker: a Redis error is logged once per outage (JSON, like every line) and the
loop goes on, so it resumes within ``INTERVAL`` seconds of Redis coming back. The lock (one
mover per queue across workers) lives ``LOCK_TTL`` seconds and is refreshed every pass, so a
killed worker's lock passes to another worker within seconds.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from eduflow.logging import get_logger

if TYPE_CHECKING:
    import redis

log = get_logger("eduflow.jobs.retries")
INTERVAL = 1.0  # seconds between passes
LOCK_TTL = 5  # seconds a mover's lock outlives its last pass


class RetryMover:
    """Owns the scheduler locks of some queues and moves their due jobs."""

    def __init__(self, client: redis.Redis, queues: list[str]) -> None:
        from rq.scheduler import RQScheduler

        self.scheduler: Any = RQScheduler(queues, connection=client, name=uuid.uuid4().hex)
        self.queues = queues
        self.client = client

    def run_once(self) -> int:
        """Take or refresh the locks, then move every due job of the owned queues; the
        number of queues owned."""
        from rq.scripts import acquire_or_refresh_lock

        owned = {
            name
            for name in self.queues
            if acquire_or_refresh_lock(
                self.client, self.scheduler.get_locking_key(name), self.scheduler.name, LOCK_TTL
            )
            != "taken"
        }
        if owned != self.scheduler.acquired_locks:
            self.scheduler._acquired_locks = owned
            self.scheduler.prepare_registries(owned)
        if owned:
            self.scheduler.enqueue_scheduled_jobs()
        return len(owned)

    def release(self) -> None:
        """Give the locks up (clean shutdown)."""
        self.scheduler.release_locks()


def run_retry_scheduler(mover: RetryMover, stop: threading.Event) -> None:
    """Move due retries until ``stop`` is set, whatever Redis does meanwhile."""
    import redis as redis_lib

    down_since: float | None = None
    while True:
        try:
            mover.run_once()
        except (redis_lib.RedisError, OSError) as exc:
            if down_since is None:
                down_since = time.monotonic()
                log.warning("retry_scheduler_redis_unavailable", error=str(exc)[:200])
        except Exception:
            log.exception("retry_scheduler_failed")
        else:
            if down_since is not None:
                log.warning(
                    "retry_scheduler_resumed", down_seconds=round(time.monotonic() - down_since, 2)
                )
                down_since = None
        if stop.wait(INTERVAL):
            break
    try:
        mover.release()
    except Exception:
        log.warning("retry_scheduler_release_failed")
