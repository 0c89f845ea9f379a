"""Periodic jobs on RQ's cron scheduler, with one enqueue per schedule slot.

RQ's ``CronScheduler`` has no leader election and enqueues interval jobs at every start.
Each due slot is therefore guarded by a Redis ``SET NX`` key (``eduflow:cron:<name>:<slot>``)
and becomes the RQ job ``cron-<name>-<slot>``: several schedulers, or a restarted one,
enqueue each slot once. At start the latest past slot of every cron job is caught up (a
day's report is idempotent per date, so a repeat is harmless).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from eduflow.cache.stores import key
from eduflow.config import get_settings
from eduflow.jobs.outbox import TASKS
from eduflow.logging import get_logger

if TYPE_CHECKING:
    import redis
    from rq.cron import CronJob

log = get_logger("eduflow.jobs.scheduler")
CRON_GUARD_TTL = int(timedelta(days=8).total_seconds())
RETRY_EVERY = 1.0  # seconds between ticks while Redis fails


@dataclass(frozen=True, slots=True)
class Periodic:
    """One periodic job: an interval in seconds or a cron string."""

    name: str
    interval: int | None = None
    cron: str | None = None


def periodic_jobs() -> list[Periodic]:
    """The periodic jobs of SPEC section 4, timed by settings."""
    settings = get_settings()
    return [
        Periodic("expire_abandoned_enrollments", interval=settings.expiry_interval),
        Periodic("daily_report", cron=settings.report_cron),
    ]


def slot_kwargs(name: str, slot_time: datetime) -> dict[str, Any]:
    """The task arguments of one slot (the daily report reports the day before its slot)."""
    if name == "daily_report":
        return {"day": (slot_time.astimezone(UTC) - timedelta(days=1)).date().isoformat()}
    return {}


def enqueue_slot(
    client: redis.Redis, name: str, slot: str, kwargs: dict[str, Any], guard_ttl: int
) -> bool:
    """Enqueue ``name`` for ``slot`` unless that slot was already enqueued (by anyone)."""
    from rq import Queue, Retry
    from rq.exceptions import DuplicateJobError

    settings = get_settings()
    if not client.set(key("cron", name, slot), b"1", nx=True, ex=guard_ttl):
        return False
    intervals = settings.job_retry_intervals
    try:
        Queue("default", connection=client).enqueue_call(
            TASKS[name],
            kwargs=kwargs,
            job_id=f"cron-{name}-{slot}",
            unique=True,
            timeout=settings.job_timeout,
            retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
            meta={
                "request_id": None,
                "slot": slot,
                "job_name": name,
                "max_retries": len(intervals),
            },
            description=f"{name}(slot {slot})",
        )
    except DuplicateJobError:
        return False
    log.info("periodic_job_enqueued", job_name=name, slot=slot)
    return True


def _latest_cron_slot(cron: str, at: datetime) -> datetime:
    from croniter import croniter

    slot: datetime = croniter(cron, at.astimezone(UTC)).get_prev(datetime)
    return slot.astimezone(UTC)


def next_cron_slot(cron: str, after: datetime) -> datetime:
    """The first time after ``after`` that ``cron`` matches, its fields read in UTC.

    RQ's own ``CronJob`` reads them in the host's local time zone; EduFlow's schedules are
    UTC whatever the host (or container) is set to, as the settings document.
    """
    from croniter import croniter

    slot: datetime = croniter(cron, after.astimezone(UTC)).get_next(datetime)
    return slot.astimezone(UTC)


def _slot_id(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def build_scheduler(client: redis.Redis) -> Any:
    """A CronScheduler whose every enqueue goes through the slot guard."""
    from rq.cron import CronScheduler
    from rq.utils import now

    from eduflow.jobs.tasks import daily_report, expire_abandoned_enrollments

    functions: dict[str, Callable[..., Any]] = {
        "expire_abandoned_enrollments": expire_abandoned_enrollments,
        "daily_report": daily_report,
    }

    from rq.cron import CronJob

    class UtcCronJob(CronJob):  # type: ignore[misc]
        def get_next_enqueue_time(self) -> datetime:
            if self.cron:
                return next_cron_slot(self.cron, self.latest_enqueue_time or now())
            return super().get_next_enqueue_time()  # type: ignore[no-any-return]

    class GuardedCronScheduler(CronScheduler):  # type: ignore[misc]
        def register(self, *args: Any, **kwargs: Any) -> CronJob:
            job = super().register(*args, **kwargs)
            # RQ builds a plain CronJob; the subclass adds no state, only UTC schedules.
            job.__class__ = UtcCronJob
            job.next_enqueue_time = job.get_next_enqueue_time()
            return job

        def enqueue_jobs(self) -> list[CronJob]:
            at = now()
            enqueued = []
            for job in self._cron_jobs:
                if not job.should_run():
                    continue
                if job.cron:
                    slot_time = job.next_enqueue_time or at
                    guard = CRON_GUARD_TTL
                else:
                    period = int(job.interval or 1)
                    slot_time = datetime.fromtimestamp(at.timestamp() // period * period, UTC)
                    guard = max(2 * period, 60)
                if enqueue_slot(
                    self.connection,
                    job.name,
                    _slot_id(slot_time),
                    slot_kwargs(job.name, slot_time),
                    guard,
                ):
                    enqueued.append(job)
                job.set_enqueue_time(at)
            return enqueued

        def catch_up(self) -> int:
            """Enqueue the latest past slot of each cron job if nobody did."""
            count = 0
            for job in self._cron_jobs:
                if job.cron:
                    slot_time = _latest_cron_slot(job.cron, now())
                    count += enqueue_slot(
                        self.connection,
                        job.name,
                        _slot_id(slot_time),
                        slot_kwargs(job.name, slot_time),
                        CRON_GUARD_TTL,
                    )
            return count

    scheduler = GuardedCronScheduler(connection=client, name="")
    for periodic in periodic_jobs():
        scheduler.register(
            functions[periodic.name],
            "default",
            interval=periodic.interval,
            cron=periodic.cron,
            name=periodic.name,
        )
    return scheduler


def run_scheduler(client: redis.Redis, stop: threading.Event) -> None:
    """Run the guarded cron loop until ``stop`` is set (thread-safe: no signal handlers)."""
    scheduler = build_scheduler(client)
    caught_up = False
    scheduler.register_birth()
    log.info("scheduler_started", name=scheduler.name, jobs=[p.name for p in periodic_jobs()])
    down_since: float | None = None
    try:
        while not stop.is_set():
            try:
                if not caught_up:
                    scheduler.catch_up()
                    caught_up = True
                if scheduler.enqueue_jobs():
                    scheduler.save()
                scheduler.heartbeat()
            except Exception as exc:  # Redis blips must not kill the schedule
                if down_since is None:
                    down_since = time.monotonic()
                    log.warning("scheduler_tick_failed", error=f"{type(exc).__name__}: {exc}"[:200])
                stop.wait(RETRY_EVERY)  # back within a second of Redis
                continue
            if down_since is not None:
                log.warning(
                    "scheduler_resumed", down_seconds=round(time.monotonic() - down_since, 2)
                )
                down_since = None
            stop.wait(max(0.5, min(scheduler.calculate_sleep_interval(), 10.0)))
    finally:
        try:
            scheduler.register_death()
        except Exception:
            log.warning("scheduler_unregister_failed")
        log.info("scheduler_stopped", name=scheduler.name)
