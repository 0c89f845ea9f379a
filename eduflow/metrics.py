"""Prometheus metrics of the process; every part of EduFlow defines its metrics here.

Labels are bounded: routes are reported by their template (``/api/v1/users/{user_id}/``),
never the raw path, and unmatched paths share one label.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

UNMATCHED_ROUTE = "<unmatched>"

HTTP_REQUESTS = Counter(
    "eduflow_http_requests_total",
    "HTTP requests by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "eduflow_http_request_duration_seconds",
    "HTTP request latency by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
LOGIN_ATTEMPTS = Counter("eduflow_login_attempts_total", "Login attempts by outcome.", ["outcome"])


_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one finished HTTP request and record its latency (hot path: children cached)."""
    label_key = (method, route, status)
    children = _children.get(label_key)
    if children is None:
        children = _children[label_key] = (
            HTTP_REQUESTS.labels(method, route, str(status)),
            HTTP_LATENCY.labels(method, route),
        )
    children[0].inc()
    children[1].observe(seconds)


def render(registry: CollectorRegistry | None = None) -> tuple[bytes, str]:
    """The Prometheus text exposition of ``registry`` and its media type.

    Under ``eduflow serve --workers N`` (``PROMETHEUS_MULTIPROC_DIR`` set), the default
    view adds up the figures of every worker process, whichever one answers.
    """
    if registry is None:
        import os

        registry = REGISTRY
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            # Scrape-time figures are read from Redis/PostgreSQL, not kept per process.
            registry.register(JobsCollector())  # type: ignore[arg-type]
    return generate_latest(registry), CONTENT_TYPE_LATEST


JOBS_ENQUEUED = Counter(
    "eduflow_jobs_enqueued_total", "Jobs handed to the queue (outbox relay), by job.", ["job"]
)


class JobsCollector:
    """Scrape-time gauges: failed jobs (RQ's failed registries) and the outbox backlog.

    Read when scraped, so they are right whichever process failed the job; a backend that
    does not answer simply leaves its gauge out of that scrape.
    """

    def collect(self) -> Any:
        """Yield the gauges that can be read now."""
        from prometheus_client.core import GaugeMetricFamily

        from eduflow.jobs.metrics import failed_jobs_count, outbox_backlog_or_none

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


REGISTRY.register(JobsCollector())  # type: ignore[arg-type]


# Cache (eduflow/cache.py, eduflow/api/response_cache.py): per namespace (bounded:
# courses, course, lessons, auth).
CACHE_HITS = Counter("eduflow_cache_hits_total", "Cache hits by namespace.", ["namespace"])
CACHE_MISSES = Counter("eduflow_cache_misses_total", "Cache misses by namespace.", ["namespace"])
CACHE_REBUILDS = Counter(
    "eduflow_cache_rebuilds_total",
    "Entries rebuilt from the database (one per miss under the rebuild lock).",
    ["namespace"],
)
CACHE_ERRORS = Counter(
    "eduflow_cache_errors_total",
    "Cache calls that failed or were skipped because the cache is down (served from the DB).",
    ["namespace"],
)
CACHE_OUTAGES = Counter(
    "eduflow_cache_outages_total", "Times the cache backend stopped answering (one per outage)."
)
