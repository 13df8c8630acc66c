"""/metrics, JSON logs with request ids, CORS and the RQ dashboard."""

import base64
import io
import json
import logging
import re

import pytest

from tests.helpers import assert_error, metric_value

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_metrics_count_the_request_just_made(client):
    before = client.get("/metrics").get_data(as_text=True)
    try:
        start = metric_value(before, "http_requests_total", endpoint="/health/db", status="200", method="GET")
    except AssertionError:
        start = 0.0
    client.get("/health/db")
    client.get("/health/db")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)
    count = metric_value(text, "http_requests_total", endpoint="/health/db", status="200", method="GET")
    assert count == start + 2
    assert metric_value(text, "http_request_duration_seconds_count", endpoint="/health/db") >= 2


def test_metrics_label_by_rule_not_raw_path(client):
    client.get("/no/such/path/12345")
    text = client.get("/metrics").get_data(as_text=True)
    assert "/no/such/path/12345" not in text
    assert metric_value(text, "http_requests_total", endpoint="<unmatched>", status="404") >= 1


def test_metrics_cache_counter_and_queue_depth(app, client):
    from project.jobs import enqueue
    from project.metrics import record_cache

    with app.app_context():
        record_cache("products", "hit")
        enqueue("sync", print, "x")
    text = client.get("/metrics").get_data(as_text=True)
    assert metric_value(text, "cache_requests_total", namespace="products", result="hit") >= 1
    assert metric_value(text, "rq_queue_depth", queue="sync") == 1
    assert metric_value(text, "rq_queue_depth", queue="email") == 0


def test_multiprocess_mode_adds_up_worker_files(tmp_path, monkeypatch):
    """With PROMETHEUS_MULTIPROC_DIR (gunicorn), /metrics reads every worker's files."""
    import subprocess
    import sys

    code = "from project.metrics import record_request, render\nrecord_request('GET', '/health', 200, 0.01)\n"
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    for _ in range(2):  # two "workers", each its own process and file
        subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=".", timeout=60)
    reader = "from project.metrics import render\nprint(render()[0].decode())\n"
    out = subprocess.run(
        [sys.executable, "-c", reader], check=True, env=env, capture_output=True, text=True, timeout=60
    ).stdout
    assert metric_value(out, "http_requests_total", endpoint="/health", status="200") == 2


@pytest.fixture
def captured_log(app):
    """The app's own log handler, writing into a buffer."""
    handler = app.extensions["log_handler"]
    buffer = io.StringIO()
    old = handler.setStream(buffer)
    yield buffer
    handler.setStream(old)


@pytest.mark.app_config(LOG_FORMAT="json")
def test_every_log_line_of_a_request_is_json_with_its_request_id(app, captured_log):
    from flask import Blueprint

    probe = Blueprint("probe", __name__)

    @probe.get("/probe")
    def probe_view():
        logging.getLogger("project.probe").warning("inside the view token=%s", "[not logged]")
        return {"ok": True}

    app.register_blueprint(probe)
    client = app.test_client()
    response = client.get("/probe?access_token=SECRET123", headers={"X-Request-ID": "req-42.a_b"})
    assert response.headers["X-Request-ID"] == "req-42.a_b"
    lines = [line for line in captured_log.getvalue().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is JSON
    assert len(records) >= 2
    assert {r["request_id"] for r in records} == {"req-42.a_b"}
    assert any(r["message"] == "inside the view token=[not logged]" for r in records)
    access = [r for r in records if r["logger"] == "access"]
    assert len(access) == 1
    assert access[0]["status"] == 200 and access[0]["path"] == "/probe" and access[0]["method"] == "GET"
    assert "duration_ms" in access[0] and access[0]["level"] == "INFO"
    assert all(ISO_UTC.match(r["time"]) for r in records), records  # ISO 8601, UTC
    assert "SECRET123" not in captured_log.getvalue()


@pytest.mark.app_config(LOG_FORMAT="json")
def test_request_id_is_generated_when_missing_or_invalid(client, captured_log):
    generated = client.get("/health").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    bad = client.get("/health", headers={"X-Request-ID": "bad id\u00e9<script>" + "x" * 300})
    assert bad.headers["X-Request-ID"] != "bad id"
    assert re.fullmatch(r"[0-9a-f]{32}", bad.headers["X-Request-ID"])
    ids = [json.loads(line)["request_id"] for line in captured_log.getvalue().splitlines()]
    assert ids == [generated, bad.headers["X-Request-ID"]]


def test_error_responses_carry_the_request_id(client):
    response = client.get("/nope", headers={"X-Request-ID": "abc"})
    assert response.status_code == 404
    assert response.headers["X-Request-ID"] == "abc"


@pytest.mark.app_config(LOG_FORMAT="plain")
def test_plain_format(client, captured_log):
    client.get("/health", headers={"X-Request-ID": "plain-1"})
    line = captured_log.getvalue().strip()
    assert "[plain-1] access: GET /health 200" in line
    assert ISO_UTC.match(line.split(" ", 1)[0]), line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


@pytest.mark.app_config(CORS_ORIGINS=["https://shop.example.com"])
def test_cors_allows_configured_origin(client):
    preflight = client.options(
        "/health",
        headers={"Origin": "https://shop.example.com", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    response = client.get("/health", headers={"Origin": "https://shop.example.com"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "X-Request-ID" in response.headers["Access-Control-Expose-Headers"]
    other = client.get("/health", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_no_cors_headers_when_unconfigured(client):
    response = client.get("/health", headers={"Origin": "https://shop.example.com"})
    assert "Access-Control-Allow-Origin" not in response.headers


def basic(username: str, password: str) -> dict:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def dashboard(app, monkeypatch):
    """With fakeredis, rq-dashboard cannot open `fakeredis://` itself: hand it the app's client."""
    import rq_dashboard.web

    if app.config["REDIS_URL"].startswith("fakeredis://"):
        monkeypatch.setattr(rq_dashboard.web, "from_url", lambda *a, **k: (None, app.extensions["redis"]))
    return app.test_client()


@pytest.mark.app_config(RQ_DASHBOARD_USERNAME="ops", RQ_DASHBOARD_PASSWORD="s3cret-pass")
def test_rq_dashboard_needs_basic_auth(dashboard):
    missing = dashboard.get("/rq/")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Basic")
    assert dashboard.get("/rq/", headers=basic("ops", "wrong")).status_code == 401
    assert dashboard.get("/rq/", headers=basic("other", "s3cret-pass")).status_code == 401
    assert dashboard.get("/rq/0/data/queues.json", headers=basic("ops", "wrong")).status_code == 401

    page = dashboard.get("/rq/", headers=basic("ops", "s3cret-pass"))
    assert page.status_code == 200
    assert b"RQ" in page.data
    queues = dashboard.get("/rq/0/data/queues.json", headers=basic("ops", "s3cret-pass"))
    assert queues.status_code == 200
    assert "queues" in queues.get_json()


def test_rq_dashboard_off_when_unconfigured(client):
    assert client.get("/rq/").status_code == 404
    assert client.get("/rq/", headers=basic("ops", "x")).status_code == 404


@pytest.mark.app_config(RQ_DASHBOARD_USERNAME="ops", RQ_DASHBOARD_PASSWORD=None)
def test_rq_dashboard_off_with_only_a_username(client):
    assert client.get("/rq/").status_code == 404


@pytest.mark.app_config(RQ_DASHBOARD_USERNAME="ops", RQ_DASHBOARD_PASSWORD="s3cret-pass")
def test_rq_dashboard_refuses_cross_site_changes(app, dashboard):
    """A page elsewhere must not drive the dashboard with the operator's cached basic auth."""
    from project.jobs import get_queue

    with app.app_context():
        queue = get_queue("email")
        queue.enqueue("project.auth.emails.send_verification_email", 1)
    auth = basic("ops", "s3cret-pass")
    empty = "/rq/queue/email/queued/empty"

    def queued() -> int:
        with app.app_context():
            return get_queue("email").count

    refused = [
        dashboard.post(empty, headers={**auth, "Origin": "https://evil.example"}),
        dashboard.post(empty, headers={**auth, "Sec-Fetch-Site": "cross-site"}),
        dashboard.post(empty, headers={**auth, "Sec-Fetch-Site": "same-site"}),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403]
    assert all(r.get_json()["code"] == 403 for r in refused)
    assert queued() == 1
    # rq-dashboard requeues on GET too: a link or an <img> could do it. Not here.
    get_requeue = dashboard.get("/rq/requeue/email", headers=auth)
    assert get_requeue.status_code == 405 and get_requeue.headers["Allow"] == "POST"

    # The dashboard's own page (same origin) and curl (no Origin) still work; so do reads.
    # (Emptying runs a Lua script, which fakeredis lacks: compact stands in for the action.)
    same_origin = dashboard.post(
        "/rq/queue/email/compact",
        headers={**auth, "Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
    )
    assert same_origin.status_code == 200, same_origin.get_data(as_text=True)
    assert dashboard.post("/rq/requeue/email", headers=auth).status_code == 200
    read = dashboard.get("/rq/0/data/queues.json", headers={**auth, "Sec-Fetch-Site": "cross-site"})
    assert read.status_code == 200


def test_job_runs_failures_and_durations_by_function(app, client, run_jobs):
    from project.jobs import enqueue

    def runs(text: str, status: str) -> float:
        try:
            return metric_value(text, "rq_job_runs_total", job="builtins.len", queue="cleanup", status=status)
        except AssertionError:
            return 0.0

    before = client.get("/metrics").get_data(as_text=True)
    with app.app_context():
        enqueue("cleanup", len, "abc", retries=0)
        enqueue("cleanup", len, "de", retries=0)
        enqueue("cleanup", len, 42, retries=0)  # TypeError: a failed run
    run_jobs(("cleanup",))
    text = client.get("/metrics").get_data(as_text=True)
    assert runs(text, "finished") == runs(before, "finished") + 2
    assert runs(text, "failed") == runs(before, "failed") + 1
    assert metric_value(text, "rq_job_duration_seconds_count", job="builtins.len") >= 3


def test_process_metrics_are_exposed(client):
    text = client.get("/metrics").get_data(as_text=True)
    assert metric_value(text, "python_info", implementation="CPython") == 1
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds"):
        assert any(
            line.startswith(f"{name} ") and float(line.split()[1]) > 0 for line in text.splitlines()
        ), name


def test_multiprocess_mode_sums_process_metrics_over_the_server(tmp_path):
    """Under gunicorn (PROMETHEUS_MULTIPROC_DIR), process_* are the master's and live workers' sum."""
    import subprocess
    import sys

    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    reader = "from project.metrics import render\nprint(render()[0].decode())\n"
    out = subprocess.run(
        [sys.executable, "-c", reader], check=True, env=env, capture_output=True, text=True, timeout=60
    ).stdout
    assert metric_value(out, "python_info", implementation="CPython") == 1
    rss = [line for line in out.splitlines() if line.startswith("process_resident_memory_bytes ")]
    assert len(rss) == 1 and float(rss[0].split()[1]) > 0


@pytest.mark.app_config(RQ_DASHBOARD_USERNAME="ops", RQ_DASHBOARD_PASSWORD="s3cret-pass")
def test_rq_dashboard_is_never_framed_and_says_missing_things_with_a_404(app, dashboard):
    """Issue #26, finding 10: clickjacking, and 500s for a job or queue that does not exist."""
    auth = basic("ops", "s3cret-pass")
    for response in (dashboard.get("/rq/", headers=auth), dashboard.get("/rq/")):
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    missing = [
        dashboard.get("/rq/0/data/job/nonexistent.json", headers=auth),
        dashboard.get("/rq/0/view/job/nonexistent", headers=auth),
        dashboard.post("/rq/job/nonexist/requeue", headers=auth),
        dashboard.post("/rq/queue/nosuchqueue/compact", headers=auth),
        dashboard.get("/rq/0/data/jobs/nosuchqueue/queued/8/asc/1.json", headers=auth),
        dashboard.get("/rq/0/data/jobs/email/nosuchregistry/8/asc/1.json", headers=auth),
        dashboard.get("/rq/7/view/queues", headers=auth),
    ]
    for response in missing:
        assert_error(response, 404)
        assert response.headers["X-Frame-Options"] == "DENY"
    assert dashboard.get("/rq/0/data/jobs/email/queued/8/asc/1.json", headers=auth).status_code == 200


@pytest.mark.app_config(RQ_DASHBOARD_USERNAME="ops", RQ_DASHBOARD_PASSWORD="s3cret-pass")
def test_rq_dashboard_401_is_in_the_error_shape(dashboard):
    response = dashboard.get("/rq/0/data/queues.json", headers=basic("ops", "wrong"))
    assert assert_error(response, 401)["message"] == "Authentication required."
    assert response.headers["WWW-Authenticate"].startswith("Basic")
