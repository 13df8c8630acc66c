"""TLS to both dependencies with a CA made here (openssl): Redis over `rediss://` (no
plaintext port at all) and PostgreSQL with `sslmode=verify-full`, the whole stack (web,
worker, scheduler, gRPC) serving reads, writes and orders through them (issue #24)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.helpers import free_port
from tests.topology.harness import psql
from tests.topology.hosts_traffic import Stack, Traffic


def openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def make_certificates(directory: Path) -> dict[str, str]:
    """A CA, and a server certificate it signed for localhost and 127.0.0.1."""
    ca_key, ca, key, csr, cert = (
        str(directory / name) for name in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")
    )
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        ca_key,
        "-out",
        ca,
        "-days",
        "2",
        "-subj",
        "/CN=topology-ca",
    )
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    extensions = directory / "san.cnf"
    extensions.write_text("subjectAltName = DNS:localhost, IP:127.0.0.1\n")
    openssl(
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        ca,
        "-CAkey",
        ca_key,
        "-CAcreateserial",
        "-out",
        cert,
        "-days",
        "2",
        "-extfile",
        str(extensions),
    )
    return {"ca": ca, "key": key, "cert": cert}


def test_rediss_and_postgres_verify_full(topology):
    tls = topology.postgres_dir("tls")  # owned by postgres: it reads the key, mode 0600
    files = make_certificates(tls)
    for path in tls.iterdir():
        shutil.chown(path, "postgres", "postgres")
    Path(files["key"]).chmod(0o600)
    pg = topology.postgres(
        conf=f"ssl = on\nssl_cert_file = '{files['cert']}'\nssl_key_file = '{files['key']}'\n"
    )
    redis_port = free_port()
    tls_options = [
        "--tls-cert-file",
        files["cert"],
        "--tls-key-file",
        files["key"],
        "--tls-ca-cert-file",
        files["ca"],
    ]
    topology.redis(
        "--port",
        "0",
        "--tls-port",
        str(redis_port),
        *tls_options,
        "--tls-auth-clients",
        "no",
        port=redis_port,
    )
    database_url = (
        f"postgresql://postgres@localhost:{pg.port}/app?sslmode=verify-full&sslrootcert={files['ca']}"
    )
    redis_url = f"rediss://localhost:{redis_port}/0?ssl_cert_reqs=required&ssl_ca_certs={files['ca']}"
    stack = Stack.start(topology, database_url, redis_url)

    traffic = Traffic(stack).run(300)
    print(f"tls: HTTP {dict(traffic.statuses)}, gRPC {dict(traffic.grpc_answers)}")
    assert set(traffic.statuses) <= {200, 202}, (traffic.statuses, traffic.failures)
    assert set(traffic.grpc_answers) == {"valid"}, traffic.grpc_answers
    assert not traffic.stale_reads, traffic.stale_reads
    assert stack.wait_orders_settled(traffic.orders) == {"reserved": len(traffic.orders)}
    health = stack.health()
    assert health["status"] == "ok" and health["components"]["workers"]["count"] >= 1, health
    # The app's sessions are encrypted (psql's own, over the socket-less loopback, need not be).
    encrypted = psql(
        pg.port,
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)"
        " WHERE a.datname = 'app' AND s.ssl",
    )
    assert int(encrypted) >= 2, encrypted
