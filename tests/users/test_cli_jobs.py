"""`flask users create-admin`, `flask users cleanup-unverified` and the cleanup job."""

from datetime import timedelta

from project.auth.models import AuthSession
from project.database import utcnow
from project.extensions import db
from project.users.models import User


def test_create_admin_then_log_in_as_admin(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["users", "create-admin", "--email", "Root@Example.com", "--password", "R00t!Passw0rd"]
    )
    assert result.exit_code == 0, result.output
    assert "Created admin root@example.com" in result.output
    login = client.post("/api/v1/auth/login", json={"username": "Root", "password": "R00t!Passw0rd"})
    assert login.status_code == 200
    me = client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {login.get_json()['access_token']}"}
    )
    assert me.get_json()["role"] == "admin" and me.get_json()["is_verified"] is True

    again = runner.invoke(
        args=["users", "create-admin", "--email", "root@example.com", "--password", "R00t!Passw0rd"]
    )
    assert again.exit_code == 0 and "already exists" in again.output
    with app.app_context():
        assert db.session.query(User).count() == 1


def test_create_admin_refuses_weak_passwords_and_taken_names(app, user):
    runner = app.test_cli_runner()
    weak = runner.invoke(args=["users", "create-admin", "--email", "a@example.com", "--password", "weak"])
    assert weak.exit_code != 0 and "at least 8 characters" in weak.output
    taken = runner.invoke(
        args=["users", "create-admin", "--email", user["email"], "--password", "R00t!Passw0rd"]
    )
    assert taken.exit_code != 0 and "already taken" in taken.output
    named = runner.invoke(
        args=[
            "users",
            "create-admin",
            "--email",
            "b@example.com",
            "--password",
            "R00t!Passw0rd",
            "--username",
            user["username"],
        ]
    )
    assert named.exit_code != 0 and "already taken" in named.output
    bad_email = runner.invoke(
        args=["users", "create-admin", "--email", "not-an-email", "--password", "R00t!Passw0rd"]
    )
    assert bad_email.exit_code != 0
    with app.app_context():
        assert db.session.query(User).filter_by(role="admin").count() == 0


def _age(app, user_id: int, hours: int) -> None:
    with app.app_context():
        db.session.get(User, user_id).created_at = utcnow() - timedelta(hours=hours)
        db.session.commit()


def test_cleanup_unverified_deletes_stale_accounts_with_their_sessions(app, client, make_user, auth_headers):
    stale = make_user(is_verified=False)
    recent = make_user(is_verified=False)
    verified = make_user()
    stale_admin = make_user("admin", is_verified=False)
    headers = auth_headers(stale)
    for old in (stale, verified, stale_admin):
        _age(app, old["id"], 49)
    result = app.test_cli_runner().invoke(args=["users", "cleanup-unverified"])
    assert result.exit_code == 0, result.output
    assert "Deleted 1 unverified" in result.output
    with app.app_context():
        remaining = set(db.session.scalars(db.select(User.id)))
        assert remaining == {recent["id"], verified["id"], stale_admin["id"]}
        assert db.session.query(AuthSession).filter_by(user_id=stale["id"]).count() == 0
    assert client.get("/api/v1/users/me", headers=headers).status_code == 401


def test_cleanup_job_follows_the_configured_ttl(app, make_user):
    from project.users.jobs import cleanup_unverified_users

    user = make_user(is_verified=False)
    _age(app, user["id"], 5)
    with app.app_context():
        assert cleanup_unverified_users() == 0
        app.config["UNVERIFIED_USER_TTL_HOURS"] = 4
        assert cleanup_unverified_users() == 1
        assert db.session.get(User, user["id"]) is None


def test_cleanup_job_runs_on_a_real_worker(app, make_user, run_jobs):
    from project.jobs import enqueue
    from project.users.jobs import cleanup_unverified_users

    user = make_user(is_verified=False)
    _age(app, user["id"], 100)
    with app.app_context():
        assert enqueue("cleanup", cleanup_unverified_users) is not None
    run_jobs(("cleanup",))
    with app.app_context():
        assert db.session.get(User, user["id"]) is None


def test_create_admin_asks_for_the_password_hidden_and_twice(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["users", "create-admin", "--email", "ops@example.com"], input="R00t!Passw0rd\nR00t!Passw0rd\n"
    )
    assert result.exit_code == 0, result.output
    assert "Password: " in result.output and "Repeat for confirmation: " in result.output
    assert "R00t!Passw0rd" not in result.output  # hidden: never echoed
    assert "Created admin ops@example.com" in result.output
    login = client.post(
        "/api/v1/auth/login", json={"username": "ops@example.com", "password": "R00t!Passw0rd"}
    )
    assert login.status_code == 200


def test_create_admin_prompt_refuses_two_different_entries(app):
    result = app.test_cli_runner().invoke(
        args=["users", "create-admin", "--email", "ops@example.com"], input="R00t!Passw0rd\nOther!Passw0rd\n"
    )
    assert result.exit_code != 0
    assert "The two entered values do not match." in result.output
    with app.app_context():
        assert db.session.query(User).count() == 0


def test_create_admin_errors_are_one_clear_line(app):
    runner = app.test_cli_runner()
    bad = runner.invoke(
        args=["users", "create-admin", "--email", "not-an-email", "--password", "R00t!Passw0rd"]
    )
    assert bad.exit_code == 1
    assert bad.output == "Error: email: Not a valid email address.\n"
    short = runner.invoke(args=["users", "create-admin", "--email", "x@example.com", "--username", "a!"])
    assert short.exit_code == 1 and short.output.startswith("Error: username: ")
    assert short.output.count("\n") == 1 and "{" not in short.output and "Password" not in short.output
