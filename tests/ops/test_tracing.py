"""OpenTelemetry: one trace from `POST /orders` through its INSERT and the enqueue to the
reservation job a worker runs, recorded by the SDK's in-memory exporter; the job's log lines
carry the trace id. Off (no OTEL_* variables), nothing is traced."""

from __future__ import annotations

import io
import json
import logging

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from project import tracing
from project.ops.logs import build_handler

ORDERS = "/api/v1/orders"


@pytest.fixture
def memory_exporter():
    exporter = InMemorySpanExporter()
    tracing.configure(SimpleSpanProcessor(exporter))
    yield exporter
    tracing.stop()
    exporter.clear()


@pytest.fixture
def app(memory_exporter, app):
    """The conftest app, created with tracing on (so Flask and SQLAlchemy are instrumented)."""
    yield app
    tracing.stop(app)


@pytest.fixture
def json_log():
    """Our JSON log lines (the production handler, trace ids included) as they are written."""
    stream = io.StringIO()
    handler = build_handler("json", stream=stream)
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


def test_one_trace_from_post_orders_to_the_reservation_job(
    app, client, memory_exporter, json_log, make_user, auth_headers, make_product, run_jobs
):
    if not app.extensions.get("redis"):
        pytest.skip("needs a queue (fakeredis or Redis) for a worker to take the job from")
    headers = auth_headers(make_user())
    product = make_product(stock=3)
    memory_exporter.clear()

    response = client.post(
        ORDERS, json={"items": [{"product_id": product["id"], "quantity": 1}]}, headers=headers
    )
    assert response.status_code == 202 and response.get_json()["status"] == "pending"
    run_jobs(("stock",))
    assert (
        client.get(f"{ORDERS}/{response.get_json()['id']}", headers=headers).get_json()["status"]
        == "reserved"
    )

    spans = memory_exporter.get_finished_spans()
    post = next(s for s in spans if s.kind == SpanKind.SERVER and s.name == f"POST {ORDERS}")
    trace_id = post.context.trace_id
    in_trace = [s for s in spans if s.context.trace_id == trace_id]
    by_id = {s.context.span_id: s for s in in_trace}

    def ancestors(span) -> list:
        chain = []
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            chain.append(span)
        return chain

    insert = [s for s in in_trace if "INSERT" in str(s.attributes.get("db.statement", "")).upper()]
    assert insert and all(post in ancestors(s) for s in insert), (
        "the order's INSERT is in the request's trace"
    )
    enqueue = next(s for s in in_trace if s.name == "enqueue drain_orders")
    assert enqueue.kind == SpanKind.PRODUCER and post in ancestors(enqueue)
    job = next(s for s in in_trace if s.name == "job drain_orders")
    assert job.kind == SpanKind.CONSUMER and enqueue in ancestors(job)
    job_sql = [s for s in in_trace if job in ancestors(s) and s.attributes.get("db.statement")]
    assert job_sql, "the reservation's SQL is traced under the job"

    hex_id = format(trace_id, "032x")
    job_lines = [
        line for line in json_log() if line.get("trace_id") == hex_id and line["logger"].startswith("rq")
    ]
    assert job_lines, "the worker's lines about the job carry the request's trace id"


def test_off_by_default_nothing_is_traced(monkeypatch):
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert not tracing.wanted() and not tracing.state.enabled
    assert tracing.current_trace_id() == "-"
    with tracing.enqueue_span("f", "q") as meta:
        assert meta == {}


@pytest.mark.parametrize(
    "env, wanted",
    [
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_SERVICE_NAME": "api"}, False),
    ],
)
def test_the_standard_variables_turn_it_on(monkeypatch, env, wanted):
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert tracing.wanted() is wanted


def test_the_grpc_server_traces_its_calls(app, memory_exporter):
    import grpc

    import grpc_server
    from project.rpc.generated import auth_pb2, auth_pb2_grpc

    running = grpc_server.serve(0, app, host="127.0.0.1")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            reply = stub.ValidateToken(auth_pb2.ValidateTokenRequest(token="not.a.token"), timeout=10)
    finally:
        running.stop(1)
    assert not reply.valid
    calls = [s for s in memory_exporter.get_finished_spans() if s.name == "/auth.AuthService/ValidateToken"]
    assert len(calls) == 1 and calls[0].kind == SpanKind.SERVER
