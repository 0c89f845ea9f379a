"""Prometheus metrics of the process; every part of EduFlow defines its metrics here.

Labels are bounded: routes are reported by their template (``/api/v1/users/{user_id}/``),
never the raw path, and unmatched paths share one label.

Every series is on every scrape, whatever is down, so an alert on it never goes silent:

- a new metric is declared in this module (module level), with the label values it can
  take listed in ``_KNOWN_LABELS`` when they are a fixed set (their series then start at 0
  instead of appearing with the first event), and gets a row in the series table of
  ``docs/operations.md`` (tests/ops/test_metrics_always_present.py compares the three);
- figures read at scrape time (``JobsCollector``) are yielded on every scrape: NaN when
  their backend does not answer, next to ``eduflow_redis_up`` / ``eduflow_database_up``;
- in multiprocess mode a declared family nobody has counted into yet is still listed
  (``_AlwaysListed``).
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

            counted = CollectorRegistry()
            multiprocess.MultiProcessCollector(counted)  # type: ignore[no-untyped-call]
            registry = CollectorRegistry()
            registry.register(_AlwaysListed(counted))  # type: ignore[arg-type]
            # Scrape-time figures are read from Redis/PostgreSQL, not kept per process.
            registry.register(JobsCollector())  # type: ignore[arg-type]
            registry.register(CertificatesCollector())  # type: ignore[arg-type]
    return generate_latest(registry), CONTENT_TYPE_LATEST


JOBS_ENQUEUED = Counter(
    "eduflow_jobs_enqueued_total", "Jobs handed to the queue (outbox relay), by job.", ["job"]
)


SCRAPE_TIME_GAUGES = {
    "eduflow_outbox_backlog": "Outbox rows not yet handed to the queue (NaN: database down).",
    "eduflow_jobs_failed": "Jobs in RQ's failed registries, replayable (NaN: Redis unreadable).",
    "eduflow_database_up": "1 when the database answered this scrape, else 0.",
    "eduflow_redis_up": "1 when Redis answered this scrape, else 0 (0 also when not configured).",
}


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

        from eduflow.jobs.metrics import failed_jobs_count, outbox_backlog_or_none

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


REGISTRY.register(JobsCollector())  # type: ignore[arg-type]


CERTIFICATE_GAUGES = {
    "eduflow_certificates_issued": "Certificates ever issued, revoked ones included "
    "(NaN: database down).",
    "eduflow_certificates_revoked": "Certificates revoked (NaN: database down).",
}


class CertificatesCollector:
    """Scrape-time figures of certificates issued and revoked, counted in the database.

    Issuing happens in workers and revoking in any process: counting rows gives every
    scrape the same figures whichever process answers (certificates are never deleted, so
    both only grow). NaN, never missing, when the database does not answer.
    """

    def collect(self) -> Any:
        """Yield both gauges."""
        from prometheus_client.core import GaugeMetricFamily

        issued = revoked = float("nan")
        try:
            from eduflow.db import session_scope
            from eduflow.services.certificates import certificate_counts

            with session_scope(read_only=True) as session:
                counts = certificate_counts(session)
            issued, revoked = float(counts[0]), float(counts[1])
        except Exception:  # the database is down: the figures say so (NaN)
            pass
        values = {"eduflow_certificates_issued": issued, "eduflow_certificates_revoked": revoked}
        for name, doc in CERTIFICATE_GAUGES.items():
            yield GaugeMetricFamily(name, doc, values[name])


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


# Learning progress (services/progress.py): counted after the commit of the batch.
PROGRESS_EVENTS = Counter(
    "eduflow_progress_events_total",
    "Progress events received, by outcome (accepted: new event id; duplicate: already seen).",
    ["outcome"],
)
COURSE_COMPLETIONS = Counter(
    "eduflow_course_completions_total", "Enrollments that completed their course."
)


# Label values known in advance: their series exist (at 0) from the process's start.
_KNOWN_LABELS: dict[Any, list[tuple[str, ...]]] = {
    LOGIN_ATTEMPTS: [("success",), ("failed",), ("throttled",), ("disabled",)],
    CACHE_HITS: [("courses",), ("course",), ("lessons",), ("me",), ("progress",)],
    CACHE_MISSES: [("courses",), ("course",), ("lessons",), ("me",), ("progress",)],
    CACHE_REBUILDS: [("courses",), ("course",), ("lessons",), ("progress",)],
    CACHE_ERRORS: [("courses",), ("course",), ("lessons",), ("me",), ("progress",)],
    PROGRESS_EVENTS: [("accepted",), ("duplicate",)],
}


def _start_known_series() -> None:
    # (The job names of JOBS_ENQUEUED are started where they are defined: jobs/outbox.py.)
    for metric, label_sets in _KNOWN_LABELS.items():
        for labels in label_sets:
            metric.labels(*labels)


def declared_metrics() -> dict[str, tuple[str, str]]:
    """Every metric family EduFlow exports: name -> (type, help), counters without
    ``_total`` (as Prometheus' parser names families)."""
    from prometheus_client.metrics import MetricWrapperBase

    declared: dict[str, tuple[str, str]] = {
        metric._name: (str(metric._type), metric._documentation)
        for metric in globals().values()
        if isinstance(metric, MetricWrapperBase)
    }
    scrape_time = {**SCRAPE_TIME_GAUGES, **CERTIFICATE_GAUGES}
    declared.update({name: ("gauge", doc) for name, doc in scrape_time.items()})
    return declared


class _AlwaysListed:
    """Multiprocess view: what the processes counted, plus an empty family for every
    declared metric none of them has written yet (listed, so queries find the name)."""

    def __init__(self, counted: CollectorRegistry) -> None:
        self.counted = counted

    def collect(self) -> Any:
        """The counted families, then the declared ones they lack."""
        from prometheus_client.metrics_core import Metric

        seen = set()
        for family in self.counted.collect():
            seen.add(family.name)
            yield family
        for name, (kind, doc) in declared_metrics().items():
            scrape_time = name in SCRAPE_TIME_GAUGES or name in CERTIFICATE_GAUGES
            if name not in seen and not scrape_time:
                yield Metric(name, doc, kind)


_start_known_series()
