"""Prometheus metrics of the process; every part of EduFlow defines its metrics here.

Labels are bounded: routes are reported by their template (``/api/v1/users/{user_id}/``),
never the raw path, and unmatched paths share one label.
"""

from __future__ import annotations

from bisect import bisect_left
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
# Requests finished while others were in flight, not yet added to the metrics:
# label key -> [count, sum of seconds, count per latency bucket...].
_tally: dict[tuple[str, str, int], list[float]] = {}
_BOUNDS = HTTP_LATENCY._upper_bounds  # the buckets above, +Inf last


def _children_of(label_key: tuple[str, str, int]) -> tuple[Any, Any]:
    children = _children.get(label_key)
    if children is None:
        method, route, status = label_key
        children = _children[label_key] = (
            HTTP_REQUESTS.labels(method, route, str(status)),
            HTTP_LATENCY.labels(method, route),
        )
    return children


def observe_request(
    method: str, route: str, status: int, seconds: float, batch: bool = False
) -> None:
    """Count one finished HTTP request and record its latency.

    ``batch``: only tally it here; :func:`publish_tallies` adds the tallies to the
    metrics in one go per label set (the next unbatched request does, and so does every
    scrape). Under ``--workers N`` each addition is a write to a shared file: this keeps
    that cost off each cache hit.
    """
    label_key = (method, route, status)
    if batch:
        tally = _tally.get(label_key)
        if tally is None:
            tally = _tally[label_key] = [0.0] * (2 + len(_BOUNDS))
        tally[0] += 1
        tally[1] += seconds
        tally[2 + bisect_left(_BOUNDS, seconds)] += 1
        return
    publish_tallies()
    requests, latency = _children_of(label_key)
    requests.inc()
    latency.observe(seconds)


def publish_tallies() -> None:
    """Add the tallied requests and cache events to the metrics (also done before every
    scrape)."""
    from eduflow.cache.health import stats

    stats.publish()
    while _tally:
        label_key, tally = _tally.popitem()
        requests, latency = _children_of(label_key)
        requests.inc(tally[0])
        latency._sum.inc(tally[1])
        for i, n in enumerate(tally[2:]):
            if n:
                latency._buckets[i].inc(n)


def render(registry: CollectorRegistry | None = None) -> tuple[bytes, str]:
    """The Prometheus text exposition of ``registry`` and its media type.

    Under ``eduflow serve --workers N`` (``PROMETHEUS_MULTIPROC_DIR`` set), the default
    view adds up the figures of every worker process, whichever one answers.
    """
    publish_tallies()
    if registry is None:
        import os

        registry = REGISTRY
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            # Scrape-time figures are read from Redis/PostgreSQL, not kept per process.
            registry.register(JobsCollector())  # type: ignore[arg-type]
            registry.register(CertificatesCollector())  # type: ignore[arg-type]
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


class CertificatesCollector:
    """Scrape-time counters of certificates issued and revoked, read from the database.

    Issuing happens in workers and revoking in any process: counting rows gives every
    scrape the same figures whichever process answers (certificates are never deleted, so
    both only grow). A database that does not answer leaves them out of that scrape.
    """

    def collect(self) -> Any:
        """Yield the two counters when the database answers."""
        from prometheus_client.core import CounterMetricFamily

        try:
            from eduflow.db import session_scope
            from eduflow.services.certificates import certificate_counts

            with session_scope(read_only=True) as session:
                issued, revoked = certificate_counts(session)
        except Exception:
            return
        yield CounterMetricFamily(
            "eduflow_certificates_issued", "Certificates issued (revoked ones included).", issued
        )
        yield CounterMetricFamily("eduflow_certificates_revoked", "Certificates revoked.", revoked)


REGISTRY.register(CertificatesCollector())  # type: ignore[arg-type]


# Cache (eduflow/cache/, eduflow/api/response_cache.py): per namespace (bounded:
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
