"""Optional OpenTelemetry tracing, off unless the standard ``OTEL_*`` variables ask for it.

Tracing is on in a process when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``,
``console``) or an OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), and ``OTEL_SDK_DISABLED`` is not ``true``. The
SDK itself reads the rest (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_TRACES_SAMPLER``, exporter headers and timeouts, batch sizes).

What is traced, and where it is hooked:

- every HTTP request, cache hits and fast-pathed writes included: :func:`traced_asgi`
  wraps the outermost ASGI callable (what uvicorn serves), so nothing answers in front of
  the span; the request context names the span after its route (:func:`name_span`);
- database statements (SQLAlchemy instrumentation, per engine: :func:`instrument_engine`)
  and redis-py commands (redis instrumentation);
- jobs: the outbox row keeps the W3C ``traceparent`` of the request that recorded it
  (:func:`current_trace_context`), the job carries it, and the worker runs the job in a
  span of that trace (:func:`job_span`).

Off, each hook is one check of a module global: nothing of the SDK is imported.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer
    from sqlalchemy.engine import Engine
    from starlette.types import ASGIApp

_provider: list[TracerProvider] = []  # the process's provider, once configured
enabled = False  # whether this process traces (read on every request: an attribute, not a call)
_tracer: list[Tracer] = []
_engines: list[Any] = []  # the SQLAlchemy instrumentation of each engine (to undo it)
_OFF_VALUES = frozenset({"", "none"})


def enabled_by_environment(environ: dict[str, str] | None = None) -> bool:
    """Whether the ``OTEL_*`` variables turn tracing on (see the module docstring)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter not in _OFF_VALUES
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


_built_engines: list[Engine] = []  # every engine eduflow.db built in this process


def is_enabled() -> bool:
    """Whether this process traces."""
    return enabled


def configure(service: str, exporter: SpanExporter | None = None) -> bool:
    """Turn tracing on for this process if the environment (or ``exporter``) asks for it.

    ``service`` is the default ``service.name`` (``OTEL_SERVICE_NAME`` wins). An explicit
    ``exporter`` (tests: the SDK's in-memory exporter) gets every span as it ends; otherwise
    spans are batched to the exporters ``OTEL_TRACES_EXPORTER`` names (default OTLP over
    HTTP). Returns whether tracing is on; a second call changes nothing.
    """
    global enabled
    if _provider:
        return True
    if exporter is None and not enabled_by_environment():
        return False
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service}
    provider = TracerProvider(resource=Resource.create(attributes))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        for configured in _exporters_from_environment():
            provider.add_span_processor(BatchSpanProcessor(configured))
    _provider.append(provider)
    _tracer.append(provider.get_tracer("eduflow"))
    enabled = True
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor().instrument(tracer_provider=provider)
    for engine in list(_built_engines):
        instrument_engine(engine)
    return True


def _exporters_from_environment() -> list[SpanExporter]:
    names = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").lower().split(",")
    exporters: list[SpanExporter] = []
    for name in (n.strip() for n in names):
        if name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporters.append(ConsoleSpanExporter())
        elif name in ("otlp", "otlp_proto_http"):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())
    return exporters


def shutdown() -> None:
    """Flush and turn tracing off again (tests; the SDK also flushes at exit)."""
    global enabled
    if not _provider:
        return
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor().uninstrument()
    while _engines:
        _engines.pop().remove_all_event_listeners()
    enabled = False
    _provider.pop().shutdown()
    _tracer.clear()


def instrument_engine(engine: Engine) -> None:
    """Give ``engine``'s statements spans (called for every engine ``eduflow.db`` builds;
    one built before tracing was configured is instrumented by ``configure``)."""
    if engine not in _built_engines:
        _built_engines.append(engine)
    if not _provider:
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import get_meter

    # What SQLAlchemyInstrumentor().instrument(engine=...) builds, once per engine (the
    # instrumentor itself instruments once per process). Metrics stay with Prometheus.
    tracer = _provider[0].get_tracer("opentelemetry.instrumentation.sqlalchemy")
    usage = get_meter("eduflow").create_up_down_counter("db.client.connections.usage")
    _engines.append(EngineTracer(tracer, engine, usage, enable_commenter=False))  # type: ignore[no-untyped-call]


def traced_asgi(app: ASGIApp, service: str = "eduflow-api") -> ASGIApp:
    """``app`` inside a server span per request, when tracing is on; else ``app`` itself.

    The span starts before anything of EduFlow runs (fast paths included) and continues an
    incoming ``traceparent``; its name is the method until the request context names the
    route (:func:`name_span`): raw paths would make span names unbounded.
    """
    if not configure(service):
        return app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    def span_details(scope: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return str(scope.get("method") or "HTTP"), {}

    traced: ASGIApp = OpenTelemetryMiddleware(
        app,
        tracer_provider=_provider[0],
        default_span_details=span_details,
        exclude_spans=["receive", "send"],
    )
    return traced


def name_span(method: str, route: str) -> None:
    """Name the current request's span after its route template (no-op when off)."""
    if not _provider:
        return
    from opentelemetry import trace

    span = trace.get_current_span()
    if span.is_recording():
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)


def current_trace_context() -> str | None:
    """The W3C ``traceparent`` of the current span, for a job to continue; None when off."""
    if not _provider:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def job_span(job_name: str, job_id: str, trace_context: str | None) -> Iterator[None]:
    """Run a job inside a span of the trace that recorded it (a new trace without one)."""
    if not _tracer:
        yield
        return
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parent = (
        TraceContextTextMapPropagator().extract({"traceparent": trace_context})
        if trace_context
        else None
    )
    with _tracer[0].start_as_current_span(
        f"job {job_name}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={"messaging.system": "rq", "messaging.message.id": job_id, "job.name": job_name},
    ):
        yield
