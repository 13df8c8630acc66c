"""A client generated from /openapi.json by openapi-python-client (pinned in
requirements-client.txt) imports and runs the account, catalogue, order and project flow,
unchanged, against a live HTTP server.

The generator lives in its own venv (`.venv-client`, or OPENAPI_CLIENT_VENV), installed by
`make test` and `make client-check`; the flow runs there too (tests/generated_client_flow.py).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLIENT_VENV = Path(os.environ.get("OPENAPI_CLIENT_VENV") or ROOT / ".venv-client").resolve()
GENERATOR = CLIENT_VENV / "bin" / "openapi-python-client"

pytestmark = pytest.mark.skipif(
    not GENERATOR.exists(),
    reason="openapi-python-client is not installed: `make client-check` (or `make test`) installs it",
)


def test_a_generated_client_runs_the_whole_flow_unchanged(client, admin, live_server, tmp_path):
    spec = tmp_path / "openapi.json"
    spec.write_bytes(client.get("/openapi.json").data)
    # The generator formats its output with the ruff of its own venv.
    env = {**os.environ, "PATH": f"{CLIENT_VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    generate = [
        GENERATOR,
        "generate",
        "--path",
        spec,
        "--meta",
        "none",
        "--output-path",
        tmp_path / "api_client",
    ]
    generated = subprocess.run(generate, capture_output=True, text=True, env=env, timeout=300)
    output = generated.stdout + generated.stderr
    assert generated.returncode == 0, output
    assert "Warning" not in output, f"the generator skipped parts of the document:\n{output}"

    flow = subprocess.run(
        [
            CLIENT_VENV / "bin" / "python",
            ROOT / "tests" / "generated_client_flow.py",
            tmp_path,
            live_server,
            admin["email"],
            admin["password"],
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert flow.returncode == 0 and flow.stdout.rstrip().endswith("FLOW OK"), flow.stdout + flow.stderr
    assert sum(line.startswith("ok ") for line in flow.stdout.splitlines()) >= 35, flow.stdout
