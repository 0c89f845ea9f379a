"""Job figures for ``/metrics``, read at scrape time and tolerant of a backend being down."""

from __future__ import annotations


def outbox_backlog_or_none() -> int | None:
    """Outbox rows not yet relayed, or None when the database does not answer."""
    from eduflow.outbox import outbox_backlog

    try:
        return outbox_backlog()
    except Exception:
        return None


def failed_jobs_count() -> int | None:
    """Jobs in every failed registry, or None without Redis (or when it does not answer)."""
    from eduflow.cache.stores import get_redis

    client = get_redis()
    if client is None:
        return None
    try:
        from rq.registry import FailedJobRegistry

        from eduflow.jobs.registry import queue_names

        return sum(
            int(client.zcard(FailedJobRegistry(name, connection=client).key))
            for name in queue_names(client)
        )
    except Exception:
        return None
