"""The one home of the tests' plain helpers (fixtures live in the conftest files).

Import from here, never from a conftest.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

STRONG_PASSWORD = "Str0ng!Passw0rd"
ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = str(ROOT / "migrations")


def link_tokens(text: str, page: str = "") -> list[str]:
    """The tokens of the emailed links in `text` (`{FRONTEND_URL}/<page>?token=...`), in order;
    `page` ("verify-email", "reset-password") keeps only that page's links."""
    return re.findall(rf"{re.escape(page)}[?&]token=([A-Za-z0-9_\-]+)", text)


def free_port() -> int:
    """A loopback port free right now (for servers a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_error(response: Any, code: int, error: str | None = None) -> dict:
    """The contract's error shape: JSON {code, status, error, message, errors?} with this HTTP
    code, and this `error` code when given (any of the catalogue's otherwise)."""
    from project.errors import ERROR_CODES

    assert response.status_code == code, response.get_data(as_text=True)[:500]
    assert response.is_json, response.data[:200]
    body = response.get_json()
    assert body["code"] == code
    assert body["error"] in ERROR_CODES, body
    if error is not None:
        assert body["error"] == error, body
    assert isinstance(body["status"], str) and body["status"]
    assert isinstance(body["message"], str) and body["message"]
    return body


def login(client: Any, identifier: str, password: str) -> dict:
    """Log in through the API by email or username; returns the token pair (asserts a 200)."""
    key = "email" if "@" in identifier else "username"
    response = client.post("/api/v1/auth/login", json={key: identifier, "password": password})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def wait_for(condition: Callable[[], object], timeout: float = 60, what: str = "the condition") -> object:
    """Poll `condition` until it returns something truthy (returned); fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.2)


def metric_value(text: str, name: str, default: float | None = None, **labels: str) -> float:
    """The value of the series `name{labels...}` in a Prometheus exposition `text`; `default`
    when it is not there (None: fail)."""
    for line in text.splitlines():
        labelled = line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items())
        if labelled or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    assert default is not None, f"{name}{{{wanted}}} not in /metrics"
    return default


def send_chunked(
    address: tuple[str, int], path: str, chunks: Iterable[bytes], headers: dict[str, str], timeout: float = 30
) -> tuple[int, dict[str, str], bytes]:
    """POST `chunks` with `Transfer-Encoding: chunked` (no Content-Length) over a raw socket
    and return (status, headers with lower-case names, body) of the answer. A server may
    answer and close before the body is all sent: sending then stops, the answer is read."""
    with socket.create_connection(address, timeout=timeout) as sock:
        head = [
            f"POST {path} HTTP/1.1",
            f"Host: {address[0]}",
            "Transfer-Encoding: chunked",
            "Connection: close",
        ]
        head += [f"{name}: {value}" for name, value in headers.items()]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        try:
            for chunk in chunks:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")
            # Done sending (Connection: close); werkzeug's server reads to the end of the input
            # before it closes, which this says has come.
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # answered and closed early (a 413): read what it said
        received = b""
        try:
            while data := sock.recv(65536):
                received += data
        except ConnectionResetError:
            pass  # closed with our unread chunks in its buffer; the answer came before
    head_bytes, _, body = received.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    answer = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), answer, body
