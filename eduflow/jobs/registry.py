"""list / show / replay / purge / stats over RQ's queues and registries, tolerant per job.

An expired or missing job never aborts a batch: it is reported and skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from eduflow.choices import JobStatus
from eduflow.errors import Invalid, NotFound

if TYPE_CHECKING:
    import redis

STATUSES = tuple(s.value for s in JobStatus)
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``30m``, ``2h``, ``7d``… -> timedelta (one clear error otherwise)."""
    match = _DURATION.match(text)
    if not match:
        raise Invalid.field("since", f"{text!r} is not a duration like 30m, 2h or 7d")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2).lower()])


def queue_names(client: redis.Redis, queue: str | None = None) -> list[str]:
    """The queue asked for, or every known queue (``default`` always included)."""
    from rq import Queue

    if queue:
        return [queue]
    names = {q.name for q in Queue.all(connection=client)} | {"default"}
    return sorted(names)


def _registry(client: redis.Redis, queue: str, status: str) -> Any:
    from rq.registry import (
        FailedJobRegistry,
        FinishedJobRegistry,
        ScheduledJobRegistry,
        StartedJobRegistry,
    )

    cls = {
        "started": StartedJobRegistry,
        "failed": FailedJobRegistry,
        "scheduled": ScheduledJobRegistry,
        "finished": FinishedJobRegistry,
    }[status]
    return cls(queue, connection=client)


def _job_ids(client: redis.Redis, queue: str, status: str) -> list[str]:
    from rq import Queue

    if status == "queued":
        return list(Queue(queue, connection=client).get_job_ids())
    return list(_registry(client, queue, status).get_job_ids())


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _exception(job: Any) -> str | None:
    from rq.results import Result

    result = job.latest_result()
    if result is not None and result.type == Result.Type.FAILED:
        return str(result.exc_string or "") or None
    return str(job._exc_info) if getattr(job, "_exc_info", None) else None


def _last_line(text: str | None) -> str | None:
    if not text:
        return None
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else None


def job_to_dict(job: Any, full: bool = False) -> dict[str, Any]:
    """The operator's view of one job (``full``: args, traceback, every timestamp)."""
    meta = job.meta or {}
    raw_status = job.get_status(refresh=False)
    status = str(getattr(raw_status, "value", raw_status) or "unknown")
    max_retries = int(meta.get("max_retries") or 0)
    done = max(0, max_retries - int(job.retries_left or 0)) if max_retries else 0
    tries = done + (1 if status in ("failed", "finished", "started") else 0)
    exc = _exception(job) if status in ("failed", "scheduled", "queued") or full else None
    data: dict[str, Any] = {
        "id": job.id,
        "function": meta.get("job_name") or (job.func_name or "").rsplit(".", 1)[-1],
        "status": status,
        "queue": job.origin,
        "tries": tries,
        "enqueued_at": _iso(job.enqueued_at),
        "ended_at": _iso(job.ended_at),
        "error": _last_line(exc),
    }
    if full:
        data.update(
            {
                "args": dict(job.kwargs or {}) or list(job.args or []),
                "max_retries": max_retries,
                "retries_left": job.retries_left,
                "replays": int(meta.get("replays") or 0),
                "request_id": meta.get("request_id"),
                "created_at": _iso(job.created_at),
                "started_at": _iso(job.started_at),
                "description": job.description,
                "exception": exc,
            }
        )
    return data


def list_jobs(
    client: redis.Redis,
    status: str | None = None,
    queue: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Jobs by status (all statuses when None), newest registries first, up to ``limit``."""
    from rq.job import Job

    if status is not None and status not in STATUSES:
        raise Invalid.field("status", f"must be one of {', '.join(STATUSES)}")
    rows: list[dict[str, Any]] = []
    for name in queue_names(client, queue):
        for st in [status] if status else STATUSES:
            ids = _job_ids(client, name, st)[: max(0, limit - len(rows))]
            for job in Job.fetch_many(ids, connection=client):
                if job is not None:
                    rows.append(job_to_dict(job))
            if len(rows) >= limit:
                return rows
    return rows


def fetch_job(client: redis.Redis, job_id: str) -> Any:
    """One job, or NotFound with a clear message."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    if not job_id or len(job_id) > 200:
        raise NotFound(f"no job {job_id!r}")
    try:
        return Job.fetch(job_id, connection=client)
    except NoSuchJobError:
        raise NotFound(f"no job {job_id!r} (unknown, or expired from Redis)") from None


@dataclass
class ReplayOutcome:
    """What happened to one job of a replay batch."""

    job_id: str
    outcome: str  # requeued | would-requeue | missing | not-failed
    detail: str = ""


def replay_candidates(
    client: redis.Redis,
    *,
    queue: str | None = None,
    match: str | None = None,
    function: str | None = None,
    since: str | None = None,
) -> list[str]:
    """Ids in the failed registries that pass every filter (exception text, function, age)."""
    from rq.job import Job

    cutoff = datetime.now(UTC) - parse_duration(since) if since else None
    needle = match.lower() if match else None
    chosen: list[str] = []
    for name in queue_names(client, queue):
        ids = _job_ids(client, name, "failed")
        for job_id, job in zip(ids, Job.fetch_many(ids, connection=client), strict=True):
            if job is None:
                if not (needle or function or cutoff):
                    chosen.append(job_id)  # reported as missing by replay_one
                continue
            if needle and needle not in (_exception(job) or "").lower():
                continue
            if function and job_to_dict(job)["function"] != function:
                continue
            ended = job.ended_at
            if cutoff and (ended is None or ended.replace(tzinfo=ended.tzinfo or UTC) < cutoff):
                continue
            chosen.append(job_id)
    return chosen


def replay_one(client: redis.Redis, job_id: str, dry_run: bool = False) -> ReplayOutcome:
    """Requeue one failed job with a fresh set of retries; never raises for a bad id."""
    from rq.exceptions import InvalidJobOperation, NoSuchJobError
    from rq.job import Job
    from rq.registry import FailedJobRegistry

    try:
        job = Job.fetch(job_id, connection=client)
    except NoSuchJobError:
        for name in queue_names(client):  # drop the dangling entry so it stops showing up
            FailedJobRegistry(name, connection=client).remove(job_id)
        return ReplayOutcome(job_id, "missing", "unknown, or expired from Redis")
    registry = FailedJobRegistry(job.origin, connection=client)
    if job_id not in registry:
        status = job.get_status()
        return ReplayOutcome(job_id, "not-failed", f"status is {getattr(status, 'value', status)}")
    if dry_run:
        return ReplayOutcome(job_id, "would-requeue")
    meta = job.meta or {}
    max_retries = int(meta.get("max_retries") or 0)
    if max_retries:
        job.retries_left = max_retries
    meta["replays"] = int(meta.get("replays") or 0) + 1
    job.meta = meta
    try:
        registry.requeue(job)
    except InvalidJobOperation:
        return ReplayOutcome(job_id, "not-failed", "requeued by someone else meanwhile")
    return ReplayOutcome(job_id, "requeued")


def replay(
    client: redis.Redis, job_ids: Iterable[str], dry_run: bool = False
) -> Iterator[ReplayOutcome]:
    """Replay each id in turn (a generator, so callers can show progress)."""
    for job_id in job_ids:
        yield replay_one(client, job_id, dry_run=dry_run)


def purge(client: redis.Redis, status: str = "failed", queue: str | None = None) -> int:
    """Delete every job of a registry (failed or finished); returns how many."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    if status not in ("failed", "finished"):
        raise Invalid.field("status", "purge accepts failed or finished")
    count = 0
    for name in queue_names(client, queue):
        registry = _registry(client, name, status)
        for job_id in registry.get_job_ids():
            try:
                Job.fetch(job_id, connection=client).delete()
            except NoSuchJobError:
                registry.remove(job_id)
            count += 1
    return count


def stats(client: redis.Redis) -> list[dict[str, Any]]:
    """Per queue: queued, started, scheduled, failed, finished, workers."""
    from rq import Queue, Worker

    rows = []
    for name in queue_names(client):
        queue = Queue(name, connection=client)
        rows.append(
            {
                "queue": name,
                "queued": queue.count,
                "started": _registry(client, name, "started").count,
                "scheduled": _registry(client, name, "scheduled").count,
                "failed": _registry(client, name, "failed").count,
                "finished": _registry(client, name, "finished").count,
                "workers": Worker.count(connection=client, queue=queue),
            }
        )
    return rows
