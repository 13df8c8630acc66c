"""The topology suite (`make test-topology`): real nginx, PostgreSQL, Redis, gunicorn,
workers on private ports, started and stopped by each test (tests/topology/harness.py)."""

from __future__ import annotations

import pytest

from tests.topology.harness import Topology


@pytest.fixture
def topology(tmp_path):
    """Start processes with it; every one of them is stopped by pid when the test ends."""
    running = Topology(tmp_path)
    try:
        yield running
    finally:
        running.close()
