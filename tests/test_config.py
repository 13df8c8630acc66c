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


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            "postgresql://app:pw@db1:5432,db2:5433/app?target_session_attrs=read-write&sslmode=verify-full",
            "postgresql+psycopg2://app:pw@/app?host=db1:5432&host=db2:5433&target_session_attrs=read-write&sslmode=verify-full",
        ),
        ("postgres://app@db1,db2/app", "postgresql+psycopg2://app@/app?host=db1&host=db2"),
        (
            "postgresql://app@db:5432/app?sslmode=require",
            "postgresql+psycopg2://app@db:5432/app?sslmode=require",
        ),
    ],
)
def test_a_libpq_multi_host_url_reaches_sqlalchemy_as_hosts_it_reads(given, expected):
    """API.md: DATABASE_URL may name several hosts, libpq style; SQLAlchemy's URL parser
    refuses `db1:5432,db2:5433` as a port, so the hosts go to the query, where it reads them."""
    from sqlalchemy import make_url

    from config import database_url

    assert database_url(given) == expected
    args = make_url(expected).get_dialect()().create_connect_args(make_url(expected))[1]
    assert args["host"].count(",") == given.count(",")  # libpq gets every host
