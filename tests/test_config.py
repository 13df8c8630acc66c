"""`.env` in development (config.load_dotenv_file), and the development-only rule."""

import os

import pytest

from config import load_dotenv_file


@pytest.fixture
def dotenv(tmp_path, monkeypatch):
    """A `.env` file, and an environment that tests may change (restored afterwards)."""
    path = tmp_path / ".env"
    path.write_text(
        "# a comment\n"
        "DATABASE_URL=postgresql://app@db.example:5432/app\n"
        "LOG_LEVEL=DEBUG\n"
        "APP_ENV=production\n"
        'MAIL_DEFAULT_SENDER="Shop <shop@example.com>"\n'
    )
    for name in ("DATABASE_URL", "LOG_LEVEL", "MAIL_DEFAULT_SENDER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "environ", os.environ.copy())
    return path


def test_development_reads_dotenv_but_the_environment_wins(dotenv):
    os.environ.pop("APP_ENV", None)
    os.environ["LOG_LEVEL"] = "WARNING"
    loaded = load_dotenv_file(dotenv)
    assert sorted(loaded) == ["DATABASE_URL", "MAIL_DEFAULT_SENDER"]
    assert os.environ["DATABASE_URL"] == "postgresql://app@db.example:5432/app"
    assert os.environ["MAIL_DEFAULT_SENDER"] == "Shop <shop@example.com>"
    assert os.environ["LOG_LEVEL"] == "WARNING"  # the real environment wins
    assert "APP_ENV" not in os.environ  # .env cannot switch a process to production


@pytest.mark.parametrize("app_env", ["production", "testing", "PRODUCTION"])
def test_production_and_testing_never_read_dotenv(dotenv, app_env):
    os.environ["APP_ENV"] = app_env
    assert load_dotenv_file(dotenv) == []
    assert "DATABASE_URL" not in os.environ and "LOG_LEVEL" not in os.environ


def test_no_file_is_fine(tmp_path, monkeypatch):
    monkeypatch.delenv("APP_ENV", raising=False)
    assert load_dotenv_file(tmp_path / "missing.env") == []


def test_env_files_stay_out_of_git_and_the_image():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    assert ".env" in (root / ".gitignore").read_text().split()
    dockerignore = (root / ".dockerignore").read_text().split()
    assert dockerignore[dockerignore.index("*") :].count("!.env") == 0  # all excluded, .env never let back in
    example = (root / ".env.example").read_text()
    for name in CONTRACT_VARIABLES:
        assert f"# {name}=" in example, name


# API.md, "Environment".
CONTRACT_VARIABLES = [
    "APP_ENV",
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "JWT_SECRET_KEY",
    "ACCESS_TOKEN_EXPIRE_MINUTES",
    "REFRESH_TOKEN_EXPIRE_DAYS",
    "POSTS_API_URL",
    "POSTS_CACHE_TTL",
    "PRODUCTS_SYNC_URL",
    "PRODUCTS_SYNC_INTERVAL_MINUTES",
    "PRODUCTS_CACHE_TTL",
    "RESERVATION_TTL_MINUTES",
    "UNVERIFIED_USER_TTL_HOURS",
    "MAIL_SERVER",
    "MAIL_PORT",
    "MAIL_USE_TLS",
    "MAIL_USERNAME",
    "MAIL_PASSWORD",
    "MAIL_DEFAULT_SENDER",
    "MAX_CONTENT_LENGTH",
    "RATELIMIT_ENABLED",
    "RATE_LIMIT_DEFAULT",
    "RATE_LIMIT_AUTH",
    "CORS_ORIGINS",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "GRPC_PORT",
    "RQ_DASHBOARD_USERNAME",
    "RQ_DASHBOARD_PASSWORD",
    "FRONTEND_URL",
]
