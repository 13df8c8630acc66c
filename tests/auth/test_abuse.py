"""Accounts under abuse (issue #26): emailed links across an email change, the lockout
(parallel tries, names as sent, current_password), MAIL_RATE_LIMIT, forgot-password's work."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import event

from project.auth.models import LoginFailure, MailSend
from project.extensions import db
from tests.helpers import assert_error

API = "/api/v1/auth"
ME = "/api/v1/users/me"
PASSWORD = "Sup3r$ecret!"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def register_and_log_in(client, email="a@attacker.test", username="attacker") -> dict:
    response = client.post(
        f"{API}/register", json={"email": email, "username": username, "password": PASSWORD}
    )
    assert response.status_code == 201
    tokens = client.post(f"{API}/login", json={"email": email, "password": PASSWORD}).get_json()
    return bearer(tokens["access_token"])


# --- 1. an email change retires every link sent before it ------------------------------


def test_a_reset_link_sent_before_an_email_change_cannot_verify_the_new_address(
    client, smtp_server, run_jobs
):
    headers = register_and_log_in(client)
    client.post(f"{API}/password/forgot", json={"email": "a@attacker.test"})
    run_jobs(("email",))
    reset = smtp_server.token_for("a@attacker.test", "reset")
    verify = smtp_server.token_for("a@attacker.test", "confirm")

    changed = client.patch(
        ME, json={"email": "ceo@victim.test", "current_password": PASSWORD}, headers=headers
    )
    assert changed.status_code == 200 and changed.get_json()["is_verified"] is False

    assert (
        client.post(
            f"{API}/password/reset", json={"token": reset, "new_password": "N3w!Password"}
        ).status_code
        == 400
    )
    # The old address's verification link (a backlogged queue delivers it late) proves nothing either.
    assert client.post(f"{API}/verify", json={"token": verify}).status_code == 400
    me = client.get(ME, headers=headers).get_json()
    assert me["email"] == "ceo@victim.test" and me["is_verified"] is False


def test_a_link_verifies_only_the_address_it_was_mailed_to(client, app, make_user):
    """A mail job that read the old address just before the change commits its link late:
    that link names the old address and cannot verify the new one."""
    from project.auth.tokens import VERIFY, issue_token

    user = make_user(is_verified=False, email="old@example.com")
    with app.app_context():
        db.session.execute(
            db.text("UPDATE users SET email = 'new@example.com', email_key = 'new@example.com'")
        )
        token = issue_token(user["id"], VERIFY, timedelta(hours=1), "old@example.com")
        fresh = issue_token(user["id"], "reset", timedelta(hours=1), "new@example.com")
        db.session.commit()
    assert client.post(f"{API}/verify", json={"token": token}).status_code == 400
    reset = client.post(f"{API}/password/reset", json={"token": fresh, "new_password": "N3w!Password"})
    assert reset.status_code == 204


# --- 2. a wrong current_password is a failed login --------------------------------------


def test_wrong_current_password_counts_toward_the_lockout(client, user, auth_headers):
    headers = auth_headers(user)
    answers = [
        client.patch(ME, json={"email": "x@victim.test", "current_password": f"Wr0ng!{n}"}, headers=headers)
        for n in range(12)
    ]
    assert [a.status_code for a in answers] == [403] * 5 + [429] * 7
    assert_error(answers[-1], 429)
    assert 800 < int(answers[-1].headers["Retry-After"]) <= 900
    # Locked for the account's email and its username, right password or not.
    right = {"password": user["password"]}
    assert client.post(f"{API}/login", json={"email": user["email"], **right}).status_code == 429
    assert client.post(f"{API}/login", json={"username": user["username"], **right}).status_code == 429
    change = client.patch(
        ME, json={"password": "N3w!Password", "current_password": user["password"]}, headers=headers
    )
    assert change.status_code == 429
    # A username change needs no password and is not locked.
    assert client.patch(ME, json={"username": "renamed"}, headers=headers).status_code == 200


# --- 4. the lockout holds when the tries arrive at once ---------------------------------


@pytest.mark.postgres
def test_ten_parallel_wrong_logins_check_at_most_five_passwords(app, user, monkeypatch):
    import project.auth.service as service

    checked = []
    real_verify = service.verify_password

    def slow_verify(stored, password):
        checked.append(password)
        time.sleep(0.05)  # widens the window the old check-then-count code raced in
        return real_verify(stored, password)

    monkeypatch.setattr(service, "verify_password", slow_verify)
    barrier, statuses = threading.Barrier(10), []

    def attempt():
        client = app.test_client()
        barrier.wait()
        response = client.post(
            f"{API}/login",
            json={"email": user["email"], "password": "Wr0ng!pass"},
            environ_base={"REMOTE_ADDR": "10.9.9.9"},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=attempt) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(checked) == 5
    assert sorted(statuses) == [401] * 5 + [429] * 5


# --- 5. the lockout is per name as sent -------------------------------------------------


def test_the_lockout_does_not_tell_which_username_goes_with_an_email(client, user, make_user):
    def wrong(name, key):
        body = {key: name, "password": "Wr0ng!pass"}
        return client.post(f"{API}/login", json=body, environ_base={"REMOTE_ADDR": "10.0.0.7"})

    for _ in range(5):
        assert wrong(user["email"], "email").status_code == 401
        assert wrong("ghost@example.com", "email").status_code == 401
    # A real pair and an unknown pair answer alike: the username is not locked by the email.
    assert wrong(user["username"], "username").status_code == 401
    assert wrong("ghost", "username").status_code == 401
    assert wrong(user["email"], "email").status_code == wrong("ghost@example.com", "email").status_code == 429
    # Names count in their normal form: a case or width variant is the same counter.
    assert wrong(user["email"].upper(), "email").status_code == 429


# --- 3. MAIL_RATE_LIMIT -----------------------------------------------------------------


def test_one_account_causes_at_most_five_mails_an_hour(client, smtp_server, run_jobs):
    headers = register_and_log_in(client)  # the verification mail: 1
    changes = [
        client.patch(ME, json={"email": f"ceo{n}@victim.test", "current_password": PASSWORD}, headers=headers)
        for n in range(20)
    ]
    resends = [client.post(f"{API}/verify/resend", headers=headers) for _ in range(10)]
    run_jobs(("email",))
    # Two changes fit (a verification mail to the new address, a notice to the old): 1 + 2 * 2.
    assert [c.status_code for c in changes] == [200, 200] + [429] * 18
    assert {r.status_code for r in resends} == {429}
    assert_error(resends[0], 429)
    assert 0 < int(resends[0].headers["Retry-After"]) <= 3600
    assert len(smtp_server.messages) == 5
    assert client.get(ME, headers=headers).get_json()["email"] == "ceo1@victim.test"


def test_forgot_past_the_limit_is_its_usual_202_and_sends_nothing(client, user, smtp_server, run_jobs):
    answers = [client.post(f"{API}/password/forgot", json={"email": user["email"]}) for _ in range(8)]
    run_jobs(("email",))
    assert {a.status_code for a in answers} == {202}
    assert len({str(a.get_json()) for a in answers}) == 1
    assert len(smtp_server.to(user["email"])) == 5


@pytest.mark.app_config(MAIL_RATE_LIMIT="2/hour")
def test_the_limit_counts_per_target_address_too(client, app, user, smtp_server, run_jobs):
    with app.app_context():  # another account already had two mails sent to this address
        db.session.add_all(MailSend(key=f"to:{user['email']}") for _ in range(2))
        db.session.commit()
    client.post(f"{API}/password/forgot", json={"email": user["email"]})
    run_jobs(("email",))
    assert smtp_server.to(user["email"]) == []


# --- 6. forgot-password does the same work for known and unknown emails -----------------


def test_forgot_password_does_the_same_work_whether_or_not_the_account_exists(app, client, user, monkeypatch):
    import project.auth.service as service
    from project.jobs import job_name

    def work_of(email: str) -> tuple[list[str], list[str]]:
        statements: list[str] = []
        queued: list[str] = []

        def count(conn, cursor, statement, *args):
            statements.append(statement)

        monkeypatch.setattr(
            service, "enqueue", lambda queue, func, *args, **kw: queued.append(job_name(func))
        )
        with app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            assert client.post(f"{API}/password/forgot", json={"email": email}).status_code == 202
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return statements, queued

    known, unknown = work_of(user["email"]), work_of("ghost@example.com")
    assert known == unknown
    assert known[1] == ["send_password_reset_job"]  # the lookup itself runs in the background


def test_failures_are_counted_per_name_in_the_table(client, app, user):
    client.post(f"{API}/login", json={"email": user["email"].upper(), "password": "Wr0ng!pass"})
    with app.app_context():
        assert [f.identifier for f in db.session.query(LoginFailure)] == [f"login:{user['email']}"]
