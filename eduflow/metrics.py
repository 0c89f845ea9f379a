"""Prometheus metrics of the process; every part of EduFlow defines its metrics here.

The bottom of the house: it imports nothing of EduFlow, so the cache, the outbox and the
services may count into it. The exposition (``/metrics``, the scrape-time gauges of
``eduflow.jobs.metrics``) is ``eduflow.api.exposition``.

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

from prometheus_client import Counter, Histogram

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
    """Add the tallied requests to the metrics (also done before every scrape)."""
    while _tally:
        label_key, tally = _tally.popitem()
        requests, latency = _children_of(label_key)
        requests.inc(tally[0])
        latency._sum.inc(tally[1])
        for i, n in enumerate(tally[2:]):
            if n:
                latency._buckets[i].inc(n)


JOBS_ENQUEUED = Counter(
    "eduflow_jobs_enqueued_total", "Jobs handed to the queue (outbox relay), by job.", ["job"]
)


SCRAPE_TIME_GAUGES = {
    "eduflow_outbox_backlog": "Outbox rows not yet handed to the queue (NaN: database down).",
    "eduflow_jobs_failed": "Jobs in RQ's failed registries, replayable (NaN: Redis unreadable).",
    "eduflow_database_up": "1 when the database answered this scrape, else 0.",
    "eduflow_redis_up": "1 when Redis answered this scrape, else 0 (0 also when not configured).",
}


CERTIFICATE_GAUGES = {
    "eduflow_certificates_issued": "Certificates ever issued, revoked ones included "
    "(NaN: database down).",
    "eduflow_certificates_revoked": "Certificates revoked (NaN: database down).",
}


# Cache (eduflow/cache/, eduflow/cache/responses.py): per namespace (bounded:
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


# Read replica (eduflow/db_routing.py): where the catalogue's lag-tolerant reads went.
REPLICA_READS = Counter(
    "eduflow_replica_reads_total",
    "Catalogue reads with a replica configured, by outcome (replica: served by it; behind: "
    "by the primary, the replica had not replayed a write the read must see; down: by the "
    "primary, the replica failed).",
    ["outcome"],
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
PROGRESS_GROUP_BATCHES = Histogram(
    "eduflow_progress_group_batches",
    "Progress batches recorded per transaction (batches in flight share one).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)


# Label values known in advance: their series exist (at 0) from the process's start.
_KNOWN_LABELS: dict[Any, list[tuple[str, ...]]] = {
    LOGIN_ATTEMPTS: [("success",), ("failed",), ("throttled",), ("disabled",)],
    CACHE_HITS: [("courses",), ("course",), ("lessons",), ("me",), ("progress",)],
    CACHE_MISSES: [("courses",), ("course",), ("lessons",), ("me",), ("progress",)],
    CACHE_REBUILDS: [("courses",), ("course",), ("lessons",), ("progress",)],
    CACHE_ERRORS: [("courses",), ("course",), ("lessons",), ("me",), ("progress",)],
    PROGRESS_EVENTS: [("accepted",), ("duplicate",)],
    REPLICA_READS: [("replica",), ("behind",), ("down",)],
}


def _start_known_series() -> None:
    for metric, label_sets in _KNOWN_LABELS.items():
        for labels in label_sets:
            metric.labels(*labels)  # the outbox starts JOBS_ENQUEUED's, one per task


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


_start_known_series()
