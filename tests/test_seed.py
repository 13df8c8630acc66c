"""`flask seed` (project/seed.py): demo data once; in production only when asked, never with
a well-known password."""

from __future__ import annotations

import pytest

from project.extensions import db

API = "/api/v1/products"


def test_seed_adds_demo_data_once(app, client):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed"])
    assert first.exit_code == 0, first.output
    assert "Seeded 4 users and 20 products." in first.output
    assert client.get(API).get_json()["total"] == 20
    second = runner.invoke(args=["seed"])
    assert "Seeded 0 users and 0 products." in second.output
    assert client.get(API).get_json()["total"] == 20
    with app.app_context():
        from project.passwords import verify_password
        from project.users.models import User

        admin = db.session.query(User).filter_by(email="admin@example.com").one()
        assert admin.role == "admin" and verify_password(admin.password_hash, "Demo!Passw0rd")
        assert db.session.query(User).count() == 4


@pytest.mark.app_config(
    APP_ENV="production", SECRET_KEY="s" * 40, JWT_SECRET_KEY="j" * 40, MAIL_SERVER="127.0.0.1"
)
def test_seed_in_production_needs_yes_creates_no_admin_unless_asked_and_no_known_password(app):
    from project.passwords import verify_password
    from project.products.models import Product
    from project.users.models import User

    runner = app.test_cli_runner()
    refused = runner.invoke(args=["seed"])
    assert refused.exit_code == 1
    assert refused.output == "Error: APP_ENV is production: demo data goes in only with --yes.\n"
    with app.app_context():
        assert db.session.query(User).count() == 0 and db.session.query(Product).count() == 0

    result = runner.invoke(args=["seed", "--yes"])
    assert result.exit_code == 0, result.output
    assert "Seeded 3 users and 20 products." in result.output
    with app.app_context():
        assert db.session.query(User).filter_by(role="admin").count() == 0
        alice = db.session.query(User).filter_by(email="alice@example.com").one()
        assert not verify_password(alice.password_hash, "Demo!Passw0rd")

    with_admin = runner.invoke(args=["seed", "--yes", "--admin"])
    assert with_admin.exit_code == 0 and "Seeded 1 users and 0 products." in with_admin.output
    with app.app_context():
        admin = db.session.query(User).filter_by(email="admin@example.com").one()
        assert admin.role == "admin" and not verify_password(admin.password_hash, "Demo!Passw0rd")
        printed = with_admin.output.rsplit("use password ", 1)[1].strip().strip("'.")
        assert verify_password(admin.password_hash, printed)


def test_seed_errors_are_one_line(app):
    result = app.test_cli_runner().invoke(args=["seed", "--password", "weak"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output and "{" not in result.output
