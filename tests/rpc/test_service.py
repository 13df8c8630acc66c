"""auth.AuthService through a real server on a free port and a real client."""

import threading
from datetime import timedelta

import grpc
import pytest
import redis
from flask_jwt_extended import create_access_token
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from sqlalchemy.exc import InternalError, ProgrammingError

from grpc_server import OTHER_CALL_THREADS, SERVICE_NAME, serve
from project.auth.sessions import revoke_sessions, start_session
from project.extensions import db
from project.rpc.generated import auth_pb2, auth_pb2_grpc
from project.users.models import User
from tests.helpers import metric_value


@pytest.fixture
def grpc_channel(app):
    running = serve(0, app, host="127.0.0.1", max_workers=4)
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    grpc.channel_ready_future(channel).result(timeout=10)
    yield channel
    channel.close()
    running.stop(grace=None)


@pytest.fixture
def stub(grpc_channel):
    return auth_pb2_grpc.AuthServiceStub(grpc_channel)


@pytest.fixture
def tokens(app, user):
    with app.app_context():
        pair = start_session(db.session.get(User, user["id"]), "grpc-test", "127.0.0.1")
        db.session.commit()
        return pair


def validate(stub, token: str) -> auth_pb2.ValidateTokenResponse:
    return stub.ValidateToken(auth_pb2.ValidateTokenRequest(token=token), timeout=10)


def test_valid_access_token(stub, user, tokens):
    reply = validate(stub, tokens["access_token"])
    assert reply.valid is True
    assert reply.user_id == user["id"]
    assert reply.email == user["email"]
    assert reply.role == "user"
    assert reply.expires_at > 0
    assert reply.error == ""


def test_admin_role_is_read_from_the_database(app, stub, admin, auth_headers):
    token = auth_headers(admin)["Authorization"].split()[1]
    reply = validate(stub, token)
    assert reply.valid and reply.role == "admin"


GARBAGE = ["", "   ", "not-a-jwt", "a.b.c", "x" * 20000, "\u00e9\u2603.\u00ff.\u0000", "Bearer "]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_garbage_is_invalid_not_an_error(stub, garbage):
    reply = validate(stub, garbage)
    assert reply.valid is False
    assert reply.error
    assert reply.user_id == 0


def test_expired_token(app, stub, user, tokens):
    with app.app_context():
        claims = {"sid": "whatever", "role": "user"}
        expired = create_access_token(
            identity=str(user["id"]), additional_claims=claims, expires_delta=timedelta(seconds=-30)
        )
    reply = validate(stub, expired)
    assert reply.valid is False
    assert "expired" in reply.error.lower()


def test_token_signed_with_another_key(app, stub, user):
    import jwt as pyjwt

    forged = pyjwt.encode(
        {"sub": str(user["id"]), "type": "access", "sid": "x", "exp": 4102444800}, "not-our-key" * 4
    )
    reply = validate(stub, forged)
    assert reply.valid is False and reply.error


def test_refresh_token_is_not_an_access_token(stub, tokens):
    reply = validate(stub, tokens["refresh_token"])
    assert reply.valid is False
    assert "access" in reply.error


def test_revoked_session(app, stub, user, tokens):
    assert validate(stub, tokens["access_token"]).valid
    with app.app_context():
        assert revoke_sessions(user_id=user["id"]) == 1
        db.session.commit()
    reply = validate(stub, tokens["access_token"])
    assert reply.valid is False
    assert "revoked" in reply.error


def test_deactivated_user(app, stub, user, tokens):
    with app.app_context():
        db.session.get(User, user["id"]).is_active = False
        db.session.commit()
    reply = validate(stub, tokens["access_token"])
    assert reply.valid is False
    assert "deactivated" in reply.error


def test_deleted_user(app, stub, user, tokens):
    with app.app_context():
        db.session.delete(db.session.get(User, user["id"]))
        db.session.commit()
    assert validate(stub, tokens["access_token"]).valid is False


def test_bearer_prefix_is_accepted(stub, tokens):
    assert validate(stub, f"Bearer {tokens['access_token']}").valid


def test_health_serving(grpc_channel):
    health = health_pb2_grpc.HealthStub(grpc_channel)
    for service in ("", SERVICE_NAME):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as exc:
        health.Check(health_pb2.HealthCheckRequest(service="nope.Nope"), timeout=10)
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_service(grpc_channel):
    reflection = reflection_pb2_grpc.ServerReflectionStub(grpc_channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (reply,) = list(reflection.ServerReflectionInfo(iter([request]), timeout=10))
    names = {service.name for service in reply.list_services_response.service}
    assert "auth.AuthService" in names
    assert "grpc.health.v1.Health" in names


def test_open_reflection_streams_do_not_hold_the_checks(grpc_channel, stub, tokens):
    """A reflection stream holds a thread of the server's pool while its client keeps it open.
    The token and health checks run on a pool of their own, so streams filling the server's
    pool (a slow or hostile client) leave both answering."""
    reflection = reflection_pb2_grpc.ServerReflectionStub(grpc_channel)
    done = threading.Event()

    def held_open():
        yield reflection_pb2.ServerReflectionRequest(list_services="")
        done.wait(30)

    streams = [reflection.ServerReflectionInfo(held_open(), timeout=30) for _ in range(OTHER_CALL_THREADS)]
    try:
        for stream in streams:
            assert next(stream).list_services_response.service  # each one is being served
        with pytest.raises(grpc.RpcError) as exc:  # the server's pool is indeed full
            next(reflection.ServerReflectionInfo(held_open(), timeout=1))
        assert exc.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert validate(stub, tokens["access_token"]).valid
        health = health_pb2_grpc.HealthStub(grpc_channel)
        reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        done.set()
        for stream in streams:
            stream.cancel()


def test_graceful_stop_turns_health_not_serving(app):
    running = serve(0, app, host="127.0.0.1", max_workers=2)
    running.stop(grace=1)
    assert running.health._server_status[""] == health_pb2.HealthCheckResponse.NOT_SERVING


def test_database_down_is_unavailable_not_invalid():
    """Not the token's fault: the caller should retry, not log the user out."""
    from project import create_app

    down = create_app(
        app_env="testing", overrides={"SQLALCHEMY_DATABASE_URI": "postgresql://nobody@127.0.0.1:1/none"}
    )
    with down.app_context():
        token = create_access_token(identity="1", additional_claims={"sid": "s", "role": "user"})
    running = serve(0, down, host="127.0.0.1", max_workers=2)
    unavailable = {"grpc_method": "/auth.AuthService/ValidateToken", "grpc_code": "UNAVAILABLE"}
    before = metric_value(
        down.test_client().get("/metrics").get_data(as_text=True),
        "grpc_server_handled_total",
        0.0,
        **unavailable,
    )
    try:
        with (
            grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel,
            pytest.raises(grpc.RpcError) as exc,
        ):
            validate(auth_pb2_grpc.AuthServiceStub(channel), token)
        assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
        # The request id comes back with the status, errors included.
        assert any(key == "x-request-id" and value for key, value in exc.value.trailing_metadata())
    finally:
        running.stop(grace=None)
    # Counted under the code the client saw.
    after = metric_value(
        down.test_client().get("/metrics").get_data(as_text=True),
        "grpc_server_handled_total",
        0.0,
        **unavailable,
    )
    assert after == before + 1


@pytest.mark.app_config(LOG_FORMAT="json")
def test_calls_are_logged_with_a_request_id_and_counted(app, client, stub, tokens):
    import io
    import json

    method = "/auth.AuthService/ValidateToken"
    before = client.get("/metrics").get_data(as_text=True)
    handler = app.extensions["log_handler"]
    buffer = io.StringIO()
    old = handler.setStream(buffer)
    try:
        reply, call = stub.ValidateToken.with_call(
            auth_pb2.ValidateTokenRequest(token=tokens["access_token"]),
            metadata=(("x-request-id", "grpc-req-7"),),
            timeout=10,
        )
        stub.ValidateToken(auth_pb2.ValidateTokenRequest(token="not-a-jwt"), timeout=10)  # generated id
    finally:
        handler.setStream(old)
    assert reply.valid
    assert ("x-request-id", "grpc-req-7") in tuple(call.trailing_metadata())

    records = [json.loads(line) for line in buffer.getvalue().splitlines()]
    calls = [r for r in records if r["logger"] == "access" and r.get("rpc") == method]
    assert [r["request_id"] for r in calls][0] == "grpc-req-7"
    assert len(calls) == 2 and calls[1]["request_id"] not in ("grpc-req-7", "-")
    assert all(r["code"] == "OK" and r["duration_ms"] >= 0 for r in calls)
    assert tokens["access_token"] not in buffer.getvalue()

    after = client.get("/metrics").get_data(as_text=True)
    labels = {"grpc_method": method, "grpc_code": "OK"}
    assert (
        metric_value(after, "grpc_server_handled_total", 0.0, **labels)
        == metric_value(before, "grpc_server_handled_total", 0.0, **labels) + 2
    )
    count = "grpc_server_handling_seconds_count"
    assert (
        metric_value(after, count, 0.0, grpc_method=method)
        == metric_value(before, count, 0.0, grpc_method=method) + 2
    )


def test_a_signed_token_without_exp_is_invalid(app, stub, tokens):
    """Signed with the real key, live session, but no `exp`: it would never expire, so no."""
    import jwt as pyjwt

    claims = pyjwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert validate(stub, pyjwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256")).valid
    del claims["exp"]
    reply = validate(stub, pyjwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256"))
    assert reply.valid is False and reply.error == "Invalid token."


@pytest.mark.parametrize(
    "failure",
    [
        # What PgBouncer's shuffling or a failover raised before: not OperationalError.
        ProgrammingError("EXECUTE session_and_user", {}, Exception("prepared statement exists")),
        InternalError("SELECT", {}, Exception("server closed the connection")),
        redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
    ],
    ids=["programming", "internal", "readonly"],
)
def test_any_dependency_error_is_unavailable_never_invalid(stub, tokens, monkeypatch, failure):
    """valid=false only for a token that is not valid (API.md): a database or Redis error of
    any kind is UNAVAILABLE, and a bug of ours INTERNAL."""
    import project.rpc.service

    def failing(*_args, **_kwargs):
        raise failure

    monkeypatch.setattr(project.rpc.service, "check_token", failing)
    with pytest.raises(grpc.RpcError) as exc:
        validate(stub, tokens["access_token"])
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE

    monkeypatch.setattr(project.rpc.service, "check_token", lambda *a, **k: 1 / 0)
    with pytest.raises(grpc.RpcError) as exc:
        validate(stub, tokens["access_token"])
    assert exc.value.code() == grpc.StatusCode.INTERNAL


# --- claims out of range and undecodable requests (issue #26, finding 9) -----------------


def _resigned(app, token: str, **changes) -> str:
    import jwt as pyjwt

    claims = pyjwt.decode(token, options={"verify_signature": False})
    claims.update(changes)
    return pyjwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256")


@pytest.mark.parametrize(
    "changes",
    [{"sub": "1" * 40}, {"sub": "2147483648"}, {"sub": "0"}, {"sub": "١"}, {"sub": 1}, {"exp": 10**30}],
    ids=["40-digit sub", "sub past INTEGER", "sub 0", "non-ASCII sub", "numeric sub", "exp 10**30"],
)
def test_claims_out_of_range_are_invalid_on_rest_and_grpc_alike(app, client, stub, tokens, changes):
    token = _resigned(app, tokens["access_token"], **changes)
    rest = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert rest.status_code == 401 and rest.get_json()["code"] == 401
    reply = validate(stub, token)
    assert reply.valid is False and reply.error == "Invalid token."


def test_an_exp_within_the_lifetime_is_still_valid(app, client, stub, tokens):
    import time

    lifetime = app.config["ACCESS_TOKEN_EXPIRE_MINUTES"] * 60
    token = _resigned(app, tokens["access_token"], exp=int(time.time()) + lifetime - 5)
    assert validate(stub, token).valid is True


def test_a_request_of_invalid_utf8_is_invalid_argument_not_internal(grpc_channel, stub, tokens):
    raw = grpc_channel.unary_unary("/auth.AuthService/ValidateToken")
    with pytest.raises(grpc.RpcError) as caught:
        raw(b"\x0a\x02\xff\xfe", timeout=10)  # field 1 (token), 2 bytes that are not UTF-8
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # The server is fine afterwards.
    assert validate(stub, tokens["access_token"]).valid is True
