"""The Prometheus exposition of ``/metrics``: the process's metrics (``eduflow.metrics``),
the cache figures and the scrape-time job gauges (``eduflow.jobs.metrics``)."""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from eduflow.cache.health import stats
from eduflow.jobs.metrics import JobsCollector, register_scrape_time_gauges
from eduflow.metrics import (
    CERTIFICATE_GAUGES,
    SCRAPE_TIME_GAUGES,
    declared_metrics,
    publish_tallies,
)


def publish() -> None:
    """Add what this process tallied (requests, cache events) to the metrics now."""
    stats.publish()
    publish_tallies()


def render(registry: CollectorRegistry | None = None) -> tuple[bytes, str]:
    """The Prometheus text exposition of ``registry`` and its media type.

    Under ``eduflow serve --workers N`` (``PROMETHEUS_MULTIPROC_DIR`` set), the default
    view adds up the figures of every worker process, whichever one answers.
    """
    publish()
    if registry is None:
        register_scrape_time_gauges()
        if not _certificates_registered:
            REGISTRY.register(CertificatesCollector())  # type: ignore[arg-type]
            _certificates_registered.append(True)
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


_certificates_registered: list[bool] = []


class CertificatesCollector:
    """Scrape-time figures of certificates issued and revoked, counted in the database.

    Issuing happens in workers and revoking in any process: counting rows gives every
    scrape the same figures whichever process answers (certificates are never deleted, so
    both only grow). NaN, never missing, when the database does not answer.
    """

    def describe(self) -> Any:
        """The gauges' names, for registering without reading them."""
        from prometheus_client.core import GaugeMetricFamily

        for name, doc in CERTIFICATE_GAUGES.items():
            yield GaugeMetricFamily(name, doc)

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
