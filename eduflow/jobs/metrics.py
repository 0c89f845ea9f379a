"""Job figures for ``/metrics``, read at scrape time and tolerant of a backend being down."""

from __future__ import annotations

from typing import Any


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


class JobsCollector:
    """Scrape-time gauges: failed jobs (RQ's failed registries) and the outbox backlog.

    Read when scraped, so they are right whichever process failed the job; a backend that
    does not answer simply leaves its gauge out of that scrape.
    """

    def collect(self) -> Any:
        """Yield the gauges that can be read now."""
        from prometheus_client.core import GaugeMetricFamily

        backlog = outbox_backlog_or_none()
        if backlog is not None:
            yield GaugeMetricFamily(
                "eduflow_outbox_backlog", "Outbox rows not yet handed to the queue.", backlog
            )
        failed = failed_jobs_count()
        if failed is not None:
            yield GaugeMetricFamily(
                "eduflow_jobs_failed", "Jobs in RQ's failed registries (replayable).", failed
            )
