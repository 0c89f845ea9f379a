"""Job figures for ``/metrics``, read at scrape time and tolerant of a backend being down."""

from __future__ import annotations

from typing import Any

from eduflow.metrics import SCRAPE_TIME_GAUGES


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
    """Scrape-time gauges: failed jobs (RQ's failed registries), the outbox backlog, and
    whether the database and Redis answered.

    Read when scraped, so they are right whichever process failed the job. A backend that
    does not answer gives NaN, never a missing series: ``eduflow_jobs_failed > 0`` must not
    go quiet exactly while Redis is down (``eduflow_redis_up == 0`` says so instead).
    """

    def describe(self) -> Any:
        """The gauges' names, for registering without reading them (no I/O at import)."""
        from prometheus_client.core import GaugeMetricFamily

        for name, doc in SCRAPE_TIME_GAUGES.items():
            yield GaugeMetricFamily(name, doc)

    def collect(self) -> Any:
        """Yield every scrape-time gauge, NaN where its backend does not answer."""
        from prometheus_client.core import GaugeMetricFamily

        backlog = outbox_backlog_or_none()
        failed = failed_jobs_count()
        values = {
            "eduflow_outbox_backlog": _nan_if_none(backlog),
            "eduflow_jobs_failed": _nan_if_none(failed),
            "eduflow_database_up": float(backlog is not None),
            "eduflow_redis_up": float(failed is not None),
        }
        for name, doc in SCRAPE_TIME_GAUGES.items():
            yield GaugeMetricFamily(name, doc, values[name])


def _nan_if_none(value: int | None) -> float:
    return float("nan") if value is None else float(value)


_registered: list[bool] = []


def register_scrape_time_gauges() -> None:
    """Put ``JobsCollector`` on the default registry, once per process (the API's
    ``/metrics`` and a worker's or scheduler's metrics port both read it)."""
    if not _registered:
        from prometheus_client import REGISTRY

        REGISTRY.register(JobsCollector())  # type: ignore[arg-type]
        _registered.append(True)
