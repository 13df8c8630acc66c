"""`flask seed` (project/seed.py): demo data once, never a well-known password in production."""

from __future__ import annotations

import pytest

from project.extensions import db
from project.passwords import verify_password
from project.users.models import User

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
        admin = db.session.query(User).filter_by(email="admin@example.com").one()
        assert admin.role == "admin" and verify_password(admin.password_hash, "Demo!Passw0rd")
        assert db.session.query(User).count() == 4


@pytest.mark.app_config(APP_ENV="production", SECRET_KEY="s" * 40, JWT_SECRET_KEY="j" * 40)
def test_seed_in_production_never_uses_the_well_known_password(app):
    result = app.test_cli_runner().invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        admin = db.session.query(User).filter_by(email="admin@example.com").one()
        assert not verify_password(admin.password_hash, "Demo!Passw0rd")
        printed = result.output.rsplit("use password ", 1)[1].strip().strip("'.")
        assert verify_password(admin.password_hash, printed)
