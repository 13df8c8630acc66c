"""Production refuses to start half configured (API.md, Environment): every process (web,
worker, scheduler, gRPC, CLI) says which variable in one line on stderr, with no traceback,
and exits non-zero. Each case is a real process started as operators start it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import (
    CONFIG_EXIT_STATUS,
    DEV_JWT_SECRET_KEY,
    DEV_SECRET_KEY,
    ConfigError,
    check_production_config,
)
from tests.helpers import ROOT

BIN = Path(sys.executable).parent
GOOD = {
    "APP_ENV": "production",
    "DATABASE_URL": "postgresql://app@127.0.0.1:1/app",  # never reached: the check comes first
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "MAIL_SERVER": "127.0.0.1",
    "SECRET_KEY": "s" * 32,
    "JWT_SECRET_KEY": "j" * 32,
}
PROCESSES = {
    "web": [str(BIN / "gunicorn"), "wsgi:app"],  # reads ./gunicorn.conf.py, as shipped
    "web-other-config": [str(BIN / "gunicorn"), "-c", "/dev/null", "wsgi:app"],  # its workers refuse
    "worker": [sys.executable, "worker.py"],
    "scheduler": [sys.executable, "worker.py", "--scheduler"],
    "grpc": [sys.executable, "grpc_server.py"],
    "grpc-supervised": [sys.executable, "grpc_server.py"],
    "cli": [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
}


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in GOOD and not k.startswith(("GUNICORN_", "GRPC_"))}
    return subprocess.run(
        argv,
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def assert_refused(result: subprocess.CompletedProcess, variable: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == CONFIG_EXIT_STATUS, result.stderr[-2000:]
    assert "Traceback" not in result.stderr + result.stdout
    refusals = [line for line in lines if line.startswith("configuration error: ")]
    assert len(refusals) == 1 and variable in refusals[0], lines


def without(name: str) -> dict[str, str]:
    return {k: v for k, v in GOOD.items() if k != name}


CASES = [
    ("DATABASE_URL", without("DATABASE_URL")),
    ("REDIS_URL", without("REDIS_URL")),
    ("MAIL_SERVER", without("MAIL_SERVER")),
    ("SECRET_KEY", without("SECRET_KEY")),
    ("JWT_SECRET_KEY", without("JWT_SECRET_KEY")),
    ("SECRET_KEY", {**GOOD, "SECRET_KEY": DEV_SECRET_KEY}),
    ("JWT_SECRET_KEY", {**GOOD, "JWT_SECRET_KEY": DEV_JWT_SECRET_KEY}),
    ("SECRET_KEY", {**GOOD, "SECRET_KEY": "short"}),
    ("JWT_SECRET_KEY", {**GOOD, "JWT_SECRET_KEY": "j" * 31}),
    ("SECRET_KEY", {**GOOD, "SECRET_KEY": ""}),  # set but empty is unset
]


@pytest.mark.parametrize("variable, env", CASES)
def test_the_cli_names_each_missing_or_unsafe_variable(variable, env):
    assert_refused(run(PROCESSES["cli"], env), variable)


@pytest.mark.parametrize(
    "process, variable",
    [
        ("web", "DATABASE_URL"),
        ("web", "SECRET_KEY"),
        ("web-other-config", "REDIS_URL"),
        ("worker", "REDIS_URL"),
        ("scheduler", "MAIL_SERVER"),
        ("grpc", "JWT_SECRET_KEY"),
        ("grpc-supervised", "DATABASE_URL"),
    ],
)
def test_every_process_refuses_in_one_line(process, variable):
    env = without(variable)
    if process.startswith("grpc"):
        env["GRPC_WORKERS"] = "2" if process == "grpc-supervised" else "1"
    result = run(PROCESSES[process], env)
    if process == "web-other-config":
        # Without the shipped config the check runs in each worker as it loads the app; the
        # exit status makes gunicorn's master stop ("App failed to load") instead of retrying.
        assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert f"configuration error: {variable} must be set" in result.stderr
        return
    assert_refused(result, variable)


def test_a_secret_of_32_bytes_is_enough_and_31_is_not():
    good = {k: v for k, v in GOOD.items() if k != "APP_ENV"}
    good["SQLALCHEMY_DATABASE_URI"] = good.pop("DATABASE_URL")
    check_production_config(good)
    check_production_config({**good, "SECRET_KEY": "é" * 16})  # bytes, not characters
    with pytest.raises(ConfigError, match="SECRET_KEY must be at least 32 bytes"):
        check_production_config({**good, "SECRET_KEY": "é" * 15 + "x"})


def test_development_needs_none_of_them():
    result = run(
        [sys.executable, "-c", "import wsgi; print(wsgi.app.config['APP_ENV'])"], {"APP_ENV": "development"}
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("development")
