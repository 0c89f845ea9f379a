"""Tracing (``eduflow.tracing``): spans for every request, fast paths included, with their
database and Redis calls, and jobs in the trace of the request that caused them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from eduflow import tracing
from eduflow.models.users import Role
from eduflow.services.auth import issue_tokens
from tests.factories import make_course, make_user
from tests.jobs.conftest import work_burst

API = "/api/v1"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on in this process, every finished span kept in memory."""
    from eduflow.db import dispose_engines

    exporter = InMemorySpanExporter()
    dispose_engines()  # engines made from now on are instrumented
    assert tracing.configure("eduflow-test", exporter=exporter)
    yield exporter
    tracing.shutdown()
    dispose_engines()


@pytest.fixture
def traced_client(spans: InMemorySpanExporter) -> Iterator[TestClient]:
    """A client of what ``eduflow serve`` runs (``create_served_app``), tracing on."""
    from eduflow.api.app import create_served_app

    with TestClient(create_served_app(), base_url="http://testserver") as client:
        yield client


def _server_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]


def _in_trace(exporter: InMemorySpanExporter, span: ReadableSpan) -> list[ReadableSpan]:
    trace_id = span.context.trace_id
    return [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]


def _db_spans(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [
        s for s in spans if s.instrumentation_scope and "sqlalchemy" in s.instrumentation_scope.name
    ]


def test_off_unless_the_environment_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not tracing.enabled_by_environment({})
    assert not tracing.enabled_by_environment({"OTEL_TRACES_EXPORTER": "none"})
    assert tracing.enabled_by_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert tracing.enabled_by_environment({"OTEL_TRACES_EXPORTER": "console"})
    assert not tracing.enabled_by_environment(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}
    )
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    from eduflow.api.app import EduFlowAPI, create_served_app

    assert isinstance(create_served_app(), EduFlowAPI)  # nothing wrapped, nothing traced
    assert not tracing.is_enabled() and tracing.current_trace_context() is None


def test_cached_hit_routed_request_and_its_job_share_traces(
    traced_client: TestClient, spans: InMemorySpanExporter, session: Any
) -> None:
    course = make_course(session, capacity=10)
    student = make_user(session, Role.student)
    bearer = {"Authorization": f"Bearer {issue_tokens(session, student).access}"}
    session.commit()
    url = f"{API}/courses/{course.id}/"

    # A cache miss (routed, reads the database), then the same read as a cache hit.
    assert traced_client.get(url).headers["x-cache"] == "miss"
    spans.clear()
    hit = traced_client.get(url)
    assert hit.headers["x-cache"] == "hit"
    (hit_span,) = _server_spans(spans)
    assert hit_span.name == "GET /api/v1/courses/{course_id}/"
    assert hit_span.attributes is not None and hit_span.attributes["http.route"] == (
        "/api/v1/courses/{course_id}/"
    )
    assert _db_spans(_in_trace(spans, hit_span)) == []  # answered from the cache

    # A routed write (an Idempotency-Key takes it past the fast path): its statements and
    # Redis calls are spans of its trace, and so is the job it recorded.
    spans.clear()
    created = traced_client.post(
        f"{API}/enrollments/",
        json={"course": course.id},
        headers={**bearer, "Idempotency-Key": "trace-1"},
    )
    assert created.status_code == 201, created.text
    (post_span,) = [s for s in _server_spans(spans) if s.name.startswith("POST")]
    assert post_span.name == "POST /api/v1/enrollments/"
    request_trace = _in_trace(spans, post_span)
    assert _db_spans(request_trace), "database statements are spans of the request"
    assert any(
        s.instrumentation_scope and "redis" in s.instrumentation_scope.name for s in request_trace
    )

    from sqlmodel import select

    from eduflow.db import session_scope
    from eduflow.models import OutboxJob

    with session_scope() as s:
        (row,) = s.exec(select(OutboxJob)).all()
    assert row.trace_context is not None
    assert row.trace_context.split("-")[1] == format(post_span.context.trace_id, "032x")

    work_burst()
    (job_span,) = [s for s in spans.get_finished_spans() if s.name == "job send_enrollment_email"]
    assert job_span.kind is SpanKind.CONSUMER
    assert job_span.context.trace_id == post_span.context.trace_id
    assert job_span.parent is not None and job_span.parent.span_id == post_span.context.span_id
    job_children = [
        s
        for s in spans.get_finished_spans()
        if s.parent and s.parent.span_id == job_span.context.span_id
    ]
    assert _db_spans(job_children), "the job's own statements are in the trace too"


def test_a_fast_pathed_enrollment_is_traced_with_its_job(
    traced_client: TestClient,
    spans: InMemorySpanExporter,
    session: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fastapi import FastAPI

    routed: list[str] = []
    original = FastAPI.__call__

    async def spy(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            routed.append(f"{scope['method']} {scope['path']}")
        await original(self, scope, receive, send)

    monkeypatch.setattr(FastAPI, "__call__", spy)
    course = make_course(session, capacity=10)
    student = make_user(session, Role.student)
    bearer = {"Authorization": f"Bearer {issue_tokens(session, student).access}"}
    session.commit()
    assert traced_client.get(f"{API}/auth/me/", headers=bearer).status_code == 200  # cached
    spans.clear()
    created = traced_client.post(f"{API}/enrollments/", json={"course": course.id}, headers=bearer)
    assert created.status_code == 201, created.text
    assert "POST /api/v1/enrollments/" not in routed  # answered in front of the framework
    (post_span,) = _server_spans(spans)
    assert post_span.name == "POST /api/v1/enrollments/"
    work_burst()
    (job_span,) = [s for s in spans.get_finished_spans() if s.name.startswith("job ")]
    assert job_span.context.trace_id == post_span.context.trace_id
    # The spy does see what reaches the framework (a keyed POST is routed).
    traced_client.post(
        f"{API}/enrollments/",
        json={"course": course.id},
        headers={**bearer, "Idempotency-Key": "k"},
    )
    assert "POST /api/v1/enrollments/" in routed


def test_an_incoming_traceparent_is_continued(
    traced_client: TestClient, spans: InMemorySpanExporter
) -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert traced_client.get("/healthz", headers={"traceparent": parent}).status_code == 200
    (span,) = _server_spans(spans)
    assert format(span.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
