"""Hostile input, as an attacker would send it, against every route of the app (url_map).

Each answer is a 4xx in the error shape (never a 500, never a hang), nothing changes, and
the app answers normally afterwards. Runs on SQLite and, in CI, on PostgreSQL.
"""

from __future__ import annotations

import io
import json
import re

import pytest
from sqlalchemy import text

from project.extensions import db
from project.inputs import MAX_JSON_DEPTH
from project.users.models import User

# The posts upstream is a closed local port: its 502 is the upstream's failure, not the input's.
pytestmark = pytest.mark.app_config(POSTS_API_URL="http://127.0.0.1:9")
REGISTER = "/api/v1/auth/register"
PASSWORD = "Sup3r$ecret!"
MIB = 1024 * 1024


def routes(app) -> list[tuple[str, str]]:
    """(method, path) of every rule the app serves, path arguments filled with 1."""
    found = []
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<[^>]+>", "1", rule.rule)
        found += [(method, path) for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})]
    return found


def assert_error(response, code: int) -> dict:
    assert response.status_code == code, (response.status_code, response.get_data(as_text=True)[:300])
    body = response.get_json()
    assert body["code"] == code and isinstance(body["status"], str) and body["message"], body
    # In the shape's own order (the app's JSON provider keeps create_app's sort_keys=False).
    assert list(json.loads(response.get_data()))[:4] == ["code", "status", "error", "message"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    return body


def assert_app_still_answers(client, headers: dict) -> None:
    """Health, an authenticated read and a write all work after the hostile requests."""
    assert client.get("/health").get_json() == {"status": "ok"}
    assert client.get("/api/v1/users/me", headers=headers).status_code == 200
    created = client.post(
        "/api/v1/projects", json={"name": "still fine"}, headers=headers
    )  # a write: no transaction was left broken
    assert created.status_code == 201


# Valid JSON the API refuses (422), malformed bodies (400), and one too large (413).
HOSTILE_BODIES = {
    "nested 400 deep": ("[" * 400 + "]" * 400, 422),
    "nested 100,000 deep": ("[" * 100_000 + "]" * 100_000, 422),
    "objects nested past the limit": ('{"a":' * (MAX_JSON_DEPTH + 1) + "1" + "}" * (MAX_JSON_DEPTH + 1), 422),
    "lone high surrogate": ('{"name": "\\ud800", "password": "\\ud800x"}', 422),
    "lone low surrogate in a key": ('{"\\udfff": 1}', 422),
    "reversed surrogate pair": ('{"title": "\\udc00\\ud800"}', 422),
    "a surrogate encoded raw in UTF-8": (b'{"name": "\xed\xa0\x80"}', 422),  # json.loads: surrogatepass
    "NUL in text": ('{"name": "a\\u0000b"}', 422),
    "5,000-digit integer": ('{"price": ' + "9" * 5000 + "}", 422),
    "negative 5,000-digit integer": ('{"delta": -' + "9" * 5000 + "}", 422),
    "101-digit integer": ('{"stock": ' + "1" * 101 + "}", 422),
    "NaN": ('{"price": NaN}', 422),
    "Infinity": ('{"price": Infinity}', 422),
    "-Infinity": ('{"delta": -Infinity}', 422),
    "float beyond double range": ('{"price": 1e400}', 422),
    "float with 5,000 digits": ('{"price": ' + "9" * 5000 + ".5}", 422),
    "invalid UTF-8": (b'{"name": "\xff\xfe\xc3"}', 400),
    "truncated JSON": ('{"name": ', 400),
    "over MAX_CONTENT_LENGTH": ('{"name": "' + "x" * MIB + '"}', 413),
}


@pytest.mark.parametrize("case", list(HOSTILE_BODIES))
def test_every_route_refuses_hostile_json_with_a_4xx(client, app, admin_headers, case):
    body, code = HOSTILE_BODIES[case]
    failures = []
    for method, path in routes(app):
        response = client.open(
            path, method=method, data=body, content_type="application/json", headers=admin_headers
        )
        try:
            assert_error(response, code)
        except (AssertionError, TypeError, KeyError) as exc:
            failures.append(f"{method} {path}: {exc}")
    assert not failures, "\n".join(failures)
    assert_app_still_answers(client, admin_headers)


HOSTILE_QUERIES = {
    "NUL in a value": {"q": "a\x00b", "name": "x\x00"},
    "NUL in a name": {"x\x00": "1"},
    "5,000-digit page": {"page": "9" * 5000, "per_page": "9" * 5000},
    "NaN page": {"page": "NaN", "min_price": "NaN", "user_id": "NaN"},
    "huge float": {"min_price": "1e400", "max_price": "-1e400", "assignee_id": "1e400"},
}


@pytest.mark.parametrize("case", list(HOSTILE_QUERIES))
def test_every_route_survives_hostile_query_strings(client, app, admin, admin_headers, auth_headers, case):
    """Query strings the schemas refuse or ignore: the routes run (logout too), never a 5xx."""
    failures = []
    for method, path in routes(app):
        response = client.open(path, method=method, query_string=HOSTILE_QUERIES[case], headers=admin_headers)
        if response.status_code >= 500 and response.status_code != 502:
            failures.append(f"{method} {path}: {response.status_code}")
        elif "\x00" in str(HOSTILE_QUERIES[case]):
            try:
                assert_error(response, 422)
            except AssertionError as exc:
                failures.append(f"{method} {path}: {exc}")
    assert not failures, "\n".join(failures)
    assert_app_still_answers(client, auth_headers(admin))  # POST /auth/logout ran: a new session


class CountingStream(io.RawIOBase):
    """A request body of `size` bytes that is never built: it counts what is read of it."""

    def __init__(self, size: int):
        self.size = size
        self.position = 0
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:  # the test client measures the length by seeking
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = self.size + offset if whence == 2 else offset
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.size - self.position)
        buffer[:n] = b"x" * n
        self.position += n
        self.read_bytes += n
        return n


def test_a_100_mb_body_is_a_413_before_any_of_it_is_read(client, app):
    stream = CountingStream(100 * MIB)
    response = client.post(
        REGISTER,
        input_stream=stream,
        content_type="application/json",
    )
    assert_error(response, 413)
    assert stream.read_bytes == 0
    with app.app_context():
        assert db.session.query(User).count() == 0


@pytest.mark.app_config(MAX_CONTENT_LENGTH=2048)
def test_max_content_length_comes_from_the_config(client):
    small = {"email": "a@example.com", "username": "alice", "password": PASSWORD}
    assert client.post(REGISTER, json=small).status_code == 201
    big = {**small, "email": "b@example.com", "username": "bob", "padding": "x" * 4096}
    assert_error(client.post(REGISTER, json=big), 413)


def test_a_form_body_over_the_limit_is_a_413(client):
    response = client.post("/api/v1/auth/login", data={"username": "x" * (2 * MIB), "password": PASSWORD})
    assert_error(response, 413)


@pytest.mark.parametrize("field", ["email", "username", "password"])
def test_lone_surrogates_in_register_are_a_422(client, app, field):
    values = {"email": '"a@example.com"', "username": '"alice"', "password": f'"{PASSWORD}"'}
    values[field] = '"ab\\ud83dcd"'
    raw = "{" + ", ".join(f'"{k}": {v}' for k, v in values.items()) + "}"
    assert_error(client.post(REGISTER, data=raw, content_type="application/json"), 422)
    with app.app_context():
        assert db.session.query(User).count() == 0


def test_a_valid_surrogate_pair_is_fine(client):
    """Escaped pairs are one astral character (an emoji): valid text, not refused."""
    raw = '{"email": "e@example.com", "username": "emoji", "password": "Sup3r$ecret!\\ud83d\\ude00"}'
    response = client.post(REGISTER, data=raw, content_type="application/json")
    assert response.status_code == 201, response.get_json()
    login = client.post(
        "/api/v1/auth/login", json={"username": "emoji", "password": "Sup3r$ecret!\U0001f600"}
    )
    assert login.status_code == 200


@pytest.mark.parametrize(
    "path, method, raw",
    [
        (
            REGISTER,
            "post",
            '{"email": "a@example.com", "username": "alice", "password": 1' + "0" * 5000 + "}",
        ),
        ("/api/v1/auth/password/forgot", "post", '{"email": ' + "1" * 5000 + "}"),
        ("/api/v1/products", "post", '{"sku": "S1", "name": "n", "price": ' + "1" * 5000 + "}"),
        ("/api/v1/products/1/stock", "patch", '{"delta": ' + "1" * 5000 + "}"),
    ],
)
def test_5000_digit_integers_are_a_422(client, admin_headers, path, method, raw):
    response = getattr(client, method)(path, data=raw, content_type="application/json", headers=admin_headers)
    body = assert_error(response, 422)
    assert "digits" in body["message"]


def test_lone_surrogates_in_every_text_field_named_in_the_issue(client, user, user_headers, admin_headers):
    bad = "\\udead"
    project = client.post("/api/v1/projects", json={"name": "p"}, headers=user_headers).get_json()
    cases = [
        ("/api/v1/auth/login", "post", f'{{"email": "{user["email"]}", "password": "{bad}"}}', {}),
        ("/api/v1/users/me", "patch", f'{{"username": "a{bad}"}}', user_headers),
        ("/api/v1/projects", "post", f'{{"name": "{bad}"}}', user_headers),
        (f"/api/v1/projects/{project['id']}/tasks", "post", f'{{"title": "{bad}"}}', user_headers),
        ("/api/v1/products", "post", f'{{"sku": "S", "name": "{bad}", "price": 1}}', admin_headers),
    ]
    for path, method, raw, headers in cases:
        response = getattr(client, method)(path, data=raw, content_type="application/json", headers=headers)
        assert_error(response, 422)
    assert client.get("/api/v1/products").get_json()["total"] == 0


# --- one normal form for emails and usernames --------------------------------------------


@pytest.mark.parametrize(
    "email, username",
    [
        ("ADMIN@example.com", "other1"),
        ("ａdmin@example.com", "other2"),  # fullwidth a
        ("admin@example.com\n", "other3"),
        ("  admin@EXAMPLE.com ", "other4"),
        ("new1@example.com", "admin\n"),
        ("new2@example.com", "ａdmin"),
        ("new3@example.com", "ADMIN"),
        ("new4@example.com", " Admin\t"),
    ],
)
def test_look_alike_accounts_collide_with_409(client, app, email, username):
    first = client.post(
        REGISTER, json={"email": "admin@example.com", "username": "admin", "password": PASSWORD}
    )
    assert first.status_code == 201
    response = client.post(REGISTER, json={"email": email, "username": username, "password": PASSWORD})
    assert_error(response, 409)
    with app.app_context():
        assert db.session.query(User).count() == 1


def test_a_look_alike_login_name_finds_the_one_account(client):
    client.post(REGISTER, json={"email": "ann@example.com", "username": "ann", "password": PASSWORD})
    for name in ("ANN@example.com", "ａｎｎ@example.com", "ann\n", "ＡＮＮ"):
        key = "email" if "@" in name else "username"
        assert client.post("/api/v1/auth/login", json={key: name, "password": PASSWORD}).status_code == 200


@pytest.mark.parametrize(
    "email, username",
    [
        ("İ" * 60 + "@" + "d" * 120 + ".com", "dotted"),  # 60 × İ: 120 characters once lower-cased
        ("a" * 60 + "@example.com", "ad\u200bmin"),  # zero-width space inside
        ('"\x01admin"@example.com', "ctrl"),  # control character in a quoted local part
        ("ad\u200dmin@example.com", "zwj"),
        ("a@example.com", "ad min"),
    ],
)
def test_identities_too_long_or_with_control_characters_are_a_422(client, app, email, username):
    response = client.post(REGISTER, json={"email": email, "username": username, "password": PASSWORD})
    assert_error(response, 422)
    with app.app_context():
        assert db.session.query(User).count() == 0


def test_the_database_refuses_two_rows_with_one_normal_form(app, make_user):
    """Uniqueness holds below the API too (a race past the service's check, a script)."""
    from sqlalchemy.exc import IntegrityError

    make_user(email="twin@example.com", username="twin")
    with app.app_context():
        db.session.add(User(email="ＴＷＩＮ@example.com", username="twin2", password_hash="x", role="user"))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()
        db.session.add(User(email="twin3@example.com", username="Twin\n", password_hash="x", role="user"))
        with pytest.raises(IntegrityError):
            db.session.commit()


# --- headers ---------------------------------------------------------------------------


def test_every_401_says_bearer_and_every_answer_says_nosniff(client, app):
    failures = []
    for method, path in routes(app):
        response = client.open(path, method=method, headers={"Authorization": "Bearer not-a-token"})
        if response.headers.get("X-Content-Type-Options") != "nosniff":
            failures.append(f"{method} {path}: no nosniff")
        if response.status_code == 401 and response.headers.get("WWW-Authenticate") != "Bearer":
            failures.append(f"{method} {path}: 401 without WWW-Authenticate: Bearer")
    assert not failures, "\n".join(failures)
    bad_login = client.post("/api/v1/auth/login", json={"username": "nobody", "password": "x"})
    assert bad_login.status_code == 401 and bad_login.headers["WWW-Authenticate"] == "Bearer"


def test_responses_carrying_tokens_are_no_store(client, user):
    login = client.post("/api/v1/auth/login", json={"email": user["email"], "password": user["password"]})
    assert login.status_code == 200 and login.headers["Cache-Control"] == "no-store"
    refresh = client.post("/api/v1/auth/refresh", json={"refresh_token": login.get_json()["refresh_token"]})
    assert refresh.status_code == 200 and refresh.headers["Cache-Control"] == "no-store"
    form = client.post("/api/v1/auth/login", data={"username": user["email"], "password": user["password"]})
    assert form.status_code == 200 and form.headers["Cache-Control"] == "no-store"


@pytest.mark.app_config(RATELIMIT_ENABLED=True, RATE_LIMIT_AUTH="2/minute")
def test_retry_after_only_on_429(client):
    ok = client.get("/health")
    assert ok.status_code == 200 and "Retry-After" not in ok.headers
    answers = [client.post("/api/v1/auth/login", json={"username": "x", "password": "y"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [401, 401, 429]
    assert all("Retry-After" not in a.headers for a in answers[:2])
    assert int(answers[2].headers["Retry-After"]) > 0
    assert answers[2].get_json()["code"] == 429


# --- tokens and logs --------------------------------------------------------------------


def forged_token(app, user_id: int, **claims) -> str:
    """A token signed with the app's real key (as a leaked key or a past bug would give)."""
    import jwt as pyjwt

    from project.auth.sessions import start_session

    with app.app_context():
        pair = start_session(db.session.get(User, user_id), "pytest", "127.0.0.1")
        db.session.commit()
        real = pyjwt.decode(pair["access_token"], options={"verify_signature": False})
        payload = {key: value for key, value in {**real, **claims}.items() if value is not None}
        return pyjwt.encode(payload, app.config["JWT_SECRET_KEY"], algorithm="HS256")


def test_a_signed_token_without_exp_is_refused(client, app, user):
    good = forged_token(app, user["id"])
    assert client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    no_exp = forged_token(app, user["id"], exp=None)
    response = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {no_exp}"})
    assert_error(response, 401)


def test_sql_parameters_never_reach_a_log_line_or_an_error(app, caplog):
    caplog.set_level("DEBUG")
    secret = "$argon2id$v=19$m=65536,t=3,p=4$c2VjcmV0LXNhbHQ$c2VjcmV0LWhhc2g"
    with app.app_context(), pytest.raises(Exception) as raised:
        db.session.execute(text("INSERT INTO no_such_table (x) VALUES (:secret)"), {"secret": secret})
    assert secret not in str(raised.value)
    assert "hidden" in str(raised.value)
    assert secret not in caplog.text
