"""Look-alike emails (issue #26, finding 12): mixed-script and quoted local parts are a 422;
one-script look-alikes share the confusable skeleton, so they are the one account (409)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from project.extensions import db
from project.users.models import User, email_key
from tests.helpers import STRONG_PASSWORD, assert_error
from tests.users.test_identity_migration import migrate, rows, scratch_database  # noqa: F401

INSERT_KEYED = text(
    "INSERT INTO users (email, username, email_key, username_key, password_hash, role, is_active,"
    " is_verified, created_at, updated_at) VALUES (:email, :username, :email, :username, 'x', 'user',"
    " true, true, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
)

REGISTER = "/api/v1/auth/register"


def register(client, email, username):
    return client.post(REGISTER, json={"email": email, "username": username, "password": STRONG_PASSWORD})


@pytest.mark.parametrize(
    ("email", "code"),
    [
        ("\u0430lice@example.com", 422),  # Cyrillic а among Latin letters
        ('"alice"@example.com', 422),  # a quoted local part
        ("al\u0131ce@example.com", 409),  # Latin dotless ı: one script, the skeleton of alice
        ("\u03b1lice@example.com", 422),  # Greek α among Latin letters
        ("\u0430\u043e@example.com", 201),  # all Cyrillic: a name of its own script, no look-alike
    ],
)
def test_look_alike_emails_are_refused(client, app, email, code):
    assert register(client, "alice@example.com", "alice").status_code == 201
    response = register(client, email, "other")
    assert response.status_code == code, response.get_json()
    if code != 201:
        assert_error(response, code)
        with app.app_context():
            assert db.session.query(User).count() == 1


def test_an_email_change_to_a_look_alike_is_a_409(client, make_user, auth_headers):
    make_user(email="alice@example.com")
    other = make_user()
    response = client.patch(
        "/api/v1/users/me",
        json={"email": "al\u0131ce@example.com", "current_password": other["password"]},
        headers=auth_headers(other),
    )
    assert_error(response, 409)


def test_a_look_alike_login_name_is_the_one_account_and_its_counter(client, make_user):
    user = make_user(email="alice@example.com")
    right = client.post(
        "/api/v1/auth/login", json={"email": "al\u0131ce@example.com", "password": user["password"]}
    )
    assert right.status_code == 200
    for name in ["al\u0131ce@example.com", "alice@example.com"] * 3:
        client.post("/api/v1/auth/login", json={"email": name, "password": "Wr0ng!pass"})
    locked = client.post(
        "/api/v1/auth/login", json={"email": "alice@example.com", "password": user["password"]}
    )
    assert locked.status_code == 429


def test_ascii_addresses_keep_their_own_keys():
    assert email_key("bob0@example.com") != email_key("bobo@example.com")
    assert email_key("rn@example.com") != email_key("m@example.com")
    assert email_key("J\u00fcrgen@example.de") == "j\u00fcrgen@example.de"


def test_the_migration_keys_existing_emails_by_skeleton_or_stops_on_collisions(scratch_database):  # noqa: F811
    migrate(scratch_database, "0005_identity_normal_form")
    engine = create_engine(scratch_database)
    with engine.begin() as conn:  # rows as 0005 keyed them (their normal forms)
        for email, username in (("alice@example.com", "alice"), ("al\u0131ce@example.com", "alice2")):
            conn.execute(INSERT_KEYED, {"email": email, "username": username})
    engine.dispose()
    with pytest.raises(RuntimeError) as stopped:
        migrate(scratch_database, "head")
    assert "users 1 and 2 share the email skeleton 'alice@example.com'" in str(stopped.value)
    assert (
        rows(scratch_database, "SELECT email_key FROM users WHERE id = 2")[0][0] == "al\u0131ce@example.com"
    )
    # Resolved (one row deleted), it runs, and the remaining look-alike is keyed by skeleton.
    engine = create_engine(scratch_database)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE id = 1"))
    engine.dispose()
    migrate(scratch_database, "head")
    assert rows(scratch_database, "SELECT email_key FROM users") == [("alice@example.com",)]
