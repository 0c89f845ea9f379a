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


def render(registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The Prometheus text exposition of ``registry`` and its media type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST
