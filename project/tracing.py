"""OpenTelemetry tracing: off unless the standard `OTEL_*` variables ask for it.

On when `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, `console`) or an OTLP endpoint is set
(`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); `OTEL_SDK_DISABLED=true`
turns it off again. Then every process (web, worker, scheduler, gRPC, CLI) exports its spans
through the SDK (OTLP over HTTP/protobuf, batched) and the instrumentation packages: Flask,
SQLAlchemy, Redis, requests and the gRPC server. The SDK reads the other variables itself
(`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, headers, timeouts).

An RQ job continues the trace of the code that queued it: `enqueue_meta()` puts the W3C trace
context (`traceparent`) in the job's meta and `job_span()` (the worker, around each job)
starts the job's span under it. Log lines carry the trace id (`current_trace_id()`).

Off, nothing of OpenTelemetry is imported and every hook here is one boolean test.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)

META_KEY = "otel"  # the job meta key holding the W3C trace context
NO_TRACE = "-"


class _State:
    enabled = False
    instrumented = False


state = _State()


def wanted() -> bool:
    """Do the OTEL_* variables ask for traces?"""
    env = os.environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = {
        name.strip().lower() for name in env.get("OTEL_TRACES_EXPORTER", "").split(",") if name.strip()
    }
    if exporters:
        return exporters != {"none"}
    return bool(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def process_role() -> str:
    """web, worker, scheduler, grpc or cli: from how this process was started."""
    command = os.path.basename(sys.argv[0] if sys.argv else "")
    if "worker" in command:
        return "scheduler" if "--scheduler" in sys.argv else "worker"
    if "grpc" in command:
        return "grpc"
    if command == "flask":
        return "cli"
    return "web"


def _exporters() -> list[Any]:
    names = [
        n.strip().lower() for n in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()
    ]
    exporters: list[Any] = []
    for name in names:
        if name == "otlp":
            protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
                "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
            )
            if protocol != "http/protobuf":
                log.warning("OTLP protocol %s is not installed; exporting over http/protobuf", protocol)
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporters.append(ConsoleSpanExporter())
        elif name != "none":
            log.warning("unknown OTEL_TRACES_EXPORTER %r ignored", name)
    return exporters


def configure(span_processor: Any = None) -> bool:
    """Start tracing in this process when the environment asks for it (or a span processor is
    given: tests pass one with the SDK's in-memory exporter). Idempotent; True when on."""
    if span_processor is None and (state.enabled or not wanted()):
        return state.enabled
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        attributes = {"process.role": process_role()}
        if not os.environ.get("OTEL_SERVICE_NAME"):
            attributes[SERVICE_NAME] = f"flask-service-{attributes['process.role']}"
        provider = TracerProvider(resource=Resource.create(attributes))
        if span_processor is None:
            for exporter in _exporters():
                provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
    if span_processor is not None:
        provider.add_span_processor(span_processor)
    _instrument_libraries()
    state.enabled = True
    return True


def _instrument_libraries() -> None:
    """The process-wide instrumentations (Flask and SQLAlchemy are per app: `instrument_app`)."""
    if state.instrumented:
        return
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    RedisInstrumentor().instrument()
    RequestsInstrumentor().instrument()
    state.instrumented = True


def instrument_app(app: Any) -> None:
    """Flask's request spans and this app's SQLAlchemy engines (called by create_app)."""
    if not configure():
        return
    from opentelemetry import metrics, trace
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    from project.extensions import db

    # No SQL commenter: statements stay as written (pg_stat_statements groups them).
    FlaskInstrumentor().instrument_app(app, excluded_urls="/health,/metrics", enable_commenter=False)
    # The package's own instrument() also patches create_engine and SQLAlchemy's asyncio module,
    # which needs greenlet (optional in SQLAlchemy 2.1, not installed here), and declares
    # SQLAlchemy < 2.1: its engine listener is used directly, on this app's engines only (the
    # cursor events it listens to are the same in 2.1; tests/ops/test_tracing.py checks the spans).
    name = "opentelemetry.instrumentation.sqlalchemy"
    usage = metrics.get_meter(name).create_up_down_counter("db.client.connections.usage", unit="connections")
    with app.app_context():
        for engine in db.engines.values():
            EngineTracer(trace.get_tracer(name), engine, usage)
    app.extensions["tracing"] = True


def stop(app: Any = None) -> None:
    """Remove the instrumentation (tests: tracing on for one test, off for the others)."""
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    if app is not None:
        FlaskInstrumentor().uninstrument_app(app)
    EngineTracer.remove_all_event_listeners()
    for instrumentor in (RedisInstrumentor(), RequestsInstrumentor()):
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
    state.enabled = state.instrumented = False


def grpc_server_interceptors() -> list[Any]:
    """The gRPC server's tracing interceptor, when tracing is on."""
    if not configure():
        return []
    from opentelemetry.instrumentation.grpc import server_interceptor

    return [server_interceptor()]


def current_trace_id() -> str:
    """The current span's trace id (32 hex digits), for log lines; "-" outside a trace."""
    if not state.enabled:
        return NO_TRACE
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else NO_TRACE


# Off, the hooks below answer this: no generator to build per call.
_OFF: contextlib.nullcontext[dict] = contextlib.nullcontext({})


def enqueue_span(func_name: str, queue: str) -> contextlib.AbstractContextManager[dict]:
    """Around putting a job on a queue: a producer span, and the job meta that carries it
    (`{}` when tracing is off)."""
    return _enqueue_span(func_name, queue) if state.enabled else _OFF


@contextlib.contextmanager
def _enqueue_span(func_name: str, queue: str) -> Iterator[dict]:
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind

    tracer = trace.get_tracer(__name__)
    attributes = {"messaging.system": "rq", "messaging.destination.name": queue}
    with tracer.start_as_current_span(f"enqueue {func_name}", kind=SpanKind.PRODUCER, attributes=attributes):
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        yield {META_KEY: carrier}


def job_span(func_name: str, job_id: str, queue: str, meta: dict | None) -> contextlib.AbstractContextManager:
    """Around running a job: a consumer span in the trace that queued it (if it was traced)."""
    return _job_span(func_name, job_id, queue, meta) if state.enabled else _OFF


@contextlib.contextmanager
def _job_span(func_name: str, job_id: str, queue: str, meta: dict | None) -> Iterator[None]:
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind

    parent = propagate.extract((meta or {}).get(META_KEY) or {})
    attributes = {
        "messaging.system": "rq",
        "messaging.destination.name": queue,
        "messaging.message.id": job_id,
    }
    tracer = trace.get_tracer(__name__)
    name = f"job {func_name.rpartition('.')[2]}"  # RQ has the dotted path; enqueue_span the name
    with tracer.start_as_current_span(name, context=parent, kind=SpanKind.CONSUMER, attributes=attributes):
        yield
