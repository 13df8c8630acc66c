"""Real processes for the topology tests: each on a private loopback port, stopped by pid.

`Topology` starts what production runs (PostgreSQL from `initdb`, Redis, gunicorn as shipped,
nginx, RQ workers, ...) and stops every process it started when the test ends, whatever
happened. Nothing here touches the machine's shared PostgreSQL (5432) or Redis (6379).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import ROOT, free_port

# Secrets long enough for the production rules (32 bytes and more); test-only values.
PRODUCTION_ENV = {
    "APP_ENV": "production",
    "SECRET_KEY": "topology-secret-key-0123456789abcdef0123",
    "JWT_SECRET_KEY": "topology-jwt-secret-0123456789abcdef0123",
    "MAIL_SERVER": "127.0.0.1",
    "MAIL_PORT": "1",  # nothing listens: mail jobs fail and retry, which these tests ignore
    "LOG_FORMAT": "plain",
    "LOG_LEVEL": "WARNING",
}


def load_nginx_render():
    """deploy/nginx/render.py (a script beside the template, not a package): the one place that
    fills in the proxy template."""
    spec = importlib.util.spec_from_file_location("nginx_render", ROOT / "deploy" / "nginx" / "render.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def ensure_installed(binary: str, package: str) -> str:
    """The path of `binary`, installing Debian's `package` first when it is missing (CI runs
    as root on a machine that reaches Debian's packages)."""
    path = shutil.which(binary) or next(
        (p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}") if os.path.exists(p)), None
    )
    if path:
        return path
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not any(Path("/var/lib/apt/lists").glob("*Packages*")):
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, capture_output=True, timeout=300)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", package],
        check=True,
        env=env,
        capture_output=True,
        timeout=600,
    )
    path = shutil.which(binary) or f"/usr/sbin/{binary}"
    assert os.path.exists(path), f"{package} installed no {binary}"
    return path


def postgres_bin(name: str) -> str:
    """A PostgreSQL server program (initdb, postgres, pg_ctl, pg_basebackup) of the newest
    version installed."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    for directory in reversed(versions):
        if (directory / name).exists():
            return str(directory / name)
    found = shutil.which(name)
    assert found, f"no PostgreSQL {name} on this machine"
    return found


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class Service:
    """One started process (its own process group, so its children stop with it)."""

    name: str
    proc: subprocess.Popen
    port: int | None
    log: Path
    stopped: bool = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL, as a crash or a lost host would."""
        self.signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.stopped = True

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM (after SIGCONT, in case it was paused), then SIGKILL after `timeout`."""
        if self.alive():
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.stopped = True

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Topology:
    """The processes of one test; `close()` stops them all (the fixture calls it)."""

    workdir: Path
    services: list[Service] = field(default_factory=list)
    scratch: list[Path] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
        ready: Callable[[], bool] | None = None,
        timeout: float = 60,
        user: str | None = None,
        cwd: Path = ROOT,
    ) -> Service:
        """Start `argv`; wait until `ready()` (default: `port` accepts connections)."""
        log = self.workdir / f"{name}.log"
        handle = open(log, "ab")  # noqa: SIM115 - the child keeps it open
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            user=user,
        )
        handle.close()
        service = Service(name, proc, port, log)
        self.services.append(service)
        check = ready or ((lambda: port_open(port)) if port else None)
        if check is not None:
            deadline = time.monotonic() + timeout
            while not check():
                if not service.alive():
                    raise AssertionError(f"{name} exited ({proc.returncode}):\n{service.output()[-3000:]}")
                if time.monotonic() > deadline:
                    service.stop()
                    raise AssertionError(f"{name} not ready after {timeout} s:\n{service.output()[-3000:]}")
                time.sleep(0.1)
        return service

    def close(self) -> None:
        for service in reversed(self.services):
            service.stop()
        for directory in self.scratch:
            shutil.rmtree(directory, ignore_errors=True)

    # --- the programs production runs ---------------------------------------------------

    def redis(self, *extra: str, port: int | None = None, name: str = "redis") -> Service:
        port = port or free_port()
        argv = [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir), *extra]
        return self.start(name, argv, port=port)

    def postgres_dir(self, name: str = "pg") -> Path:
        """An empty directory the `postgres` user owns (PostgreSQL refuses to run as root),
        outside pytest's root-only temporary tree; removed by `close()`."""
        directory = Path(tempfile.mkdtemp(prefix=f"topology-{name}-"))
        account = pwd.getpwnam("postgres")
        os.chown(directory, account.pw_uid, account.pw_gid)
        self.scratch.append(directory)
        return directory

    def postgres(
        self, *, port: int | None = None, name: str = "postgres", data: Path | None = None, conf: str = ""
    ) -> Service:
        """A PostgreSQL of this test's own (trust auth, user `postgres`, database `app`)."""
        port = port or free_port()
        if data is None:
            data = self.postgres_dir(f"{name}-data")
            initdb = subprocess.run(
                [
                    postgres_bin("initdb"),
                    "-D",
                    str(data / "db"),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "--no-sync",
                ],
                capture_output=True,
                text=True,
                user="postgres",
                timeout=120,
            )
            assert initdb.returncode == 0, initdb.stderr
            data = data / "db"
            with open(data / "postgresql.conf", "a") as handle:
                handle.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
                handle.write("wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n" + conf)
            with open(data / "pg_hba.conf", "a") as handle:
                handle.write("host replication all 127.0.0.1/32 trust\n")
        argv = [
            postgres_bin("postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(data),
            "-h",
            "127.0.0.1",
        ]
        service = self.start(name, argv, port=port, user="postgres")
        deadline = time.monotonic() + 30
        while subprocess.run(
            [postgres_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True
        ).returncode:
            assert time.monotonic() < deadline, service.output()[-2000:]
            time.sleep(0.2)
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c", "CREATE DATABASE app"],
            capture_output=True,
        )
        return service

    def flask(self, env: dict[str, str], *args: str) -> str:
        """`flask --app wsgi ARGS` with `env`, as operators run it; its output (asserts exit 0)."""
        result = subprocess.run(
            [str(Path(sys.executable).parent / "flask"), "--app", "wsgi", *args],
            cwd=ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def migrate(self, env: dict[str, str]) -> None:
        """`flask --app wsgi db upgrade` against the URL in `env`."""
        self.flask(env, "db", "upgrade")

    def gunicorn(self, env: dict[str, str], *, port: int | None = None, name: str = "gunicorn") -> Service:
        """gunicorn with the shipped gunicorn.conf.py, on loopback."""
        port = port or free_port()
        argv = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
        env = {"GUNICORN_BIND": f"127.0.0.1:{port}", **env}
        return self.start(name, argv, port=port, env=env, timeout=90)

    def app_process(self, name: str, argv: Sequence[str], env: dict[str, str], **kwargs) -> Service:
        """One of our own entry points (`worker.py`, `worker.py --scheduler`, `grpc_server.py`)."""
        return self.start(name, [sys.executable, *argv], env=env, **kwargs)

    def nginx(self, config: str, *, port: int, name: str = "nginx") -> Service:
        """nginx in the foreground with `config` (a whole nginx.conf) listening on `port`."""
        binary = ensure_installed("nginx", "nginx")
        directory = self.workdir / name
        (directory / "logs").mkdir(parents=True)
        path = directory / "nginx.conf"
        path.write_text(config)
        argv = [binary, "-p", str(directory), "-c", str(path), "-e", str(directory / "logs" / "error.log")]
        return self.start(name, [*argv, "-g", "daemon off;"], port=port)

    # --- past one host: Sentinel, PgBouncer (tests/topology/test_hosts_*.py) ------------

    def sentinel(
        self, master_port: int, *, service: str = "mymaster", quorum: int = 2, name: str = "sentinel"
    ) -> Service:
        """A Redis Sentinel watching the master on `master_port` (fast failure detection)."""
        binary = ensure_installed("redis-sentinel", "redis-sentinel")
        port = free_port()
        conf = self.workdir / f"{name}.conf"  # sentinels rewrite their config: one file each
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
            f"sentinel monitor {service} 127.0.0.1 {master_port} {quorum}\n"
            f"sentinel down-after-milliseconds {service} 1000\n"
            f"sentinel failover-timeout {service} 5000\n"
        )
        return self.start(name, [binary, str(conf)], port=port)

    def pgbouncer(self, pg_port: int, *, pool_mode: str = "transaction", extra: str = "") -> Service:
        """PgBouncer in front of the PostgreSQL on `pg_port` (database `app`, trust auth, user
        `postgres`, which is also its admin: `psql -p <port> -U postgres pgbouncer`)."""
        binary = ensure_installed("pgbouncer", "pgbouncer")
        directory = self.postgres_dir("pgbouncer")  # it refuses to run as root
        port = free_port()
        (directory / "users.txt").write_text('"postgres" ""\n')
        (directory / "pgbouncer.ini").write_text(
            f"[databases]\napp = host=127.0.0.1 port={pg_port} dbname=app\n"
            f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {directory}/users.txt\nadmin_users = postgres\n"
            f"pool_mode = {pool_mode}\nmax_client_conn = 500\ndefault_pool_size = 20\n"
            f"ignore_startup_parameters = extra_float_digits,options\n{extra}"
        )
        for path in directory.iterdir():
            shutil.chown(path, "postgres", "postgres")
        return self.start("pgbouncer", [binary, str(directory / "pgbouncer.ini")], port=port, user="postgres")

    def proxy(
        self, upstream_port: int, *, port: int | None = None, name: str = "nginx", **knobs: str
    ) -> Service:
        """nginx with the shipped template (deploy/nginx), in front of `upstream_port`; `knobs`
        override the template's variables (NGINX_CLIENT_TIMEOUT="5s", ...)."""
        port = port or free_port()
        directory = self.workdir / name
        render = load_nginx_render()
        variables = {**render.loopback_variables(port, upstream_port), **knobs}
        return self.nginx(render.render(variables, directory), port=port, name=name)


def psql(port: int, sql: str, database: str = "app") -> str:
    """One statement through psql on loopback as `postgres`; its output (asserts success)."""
    result = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", database, "-Atc", sql],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
