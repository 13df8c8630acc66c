"""/docs and /redoc in a real browser with no internet: headless Chromium, every host but this
server unresolvable, and its net log read for every request the pages made.

Checking the HTML is not enough: ReDoc's bundle fetched its logo from cdn.redoc.ly at run time.
Chromium comes from apt when missing (CI images may lack it); without apt (or root) the test
skips and says why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from urllib.parse import urlsplit

import pytest

LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]"}
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Chromium's own background services, which no flag of the new headless mode turns off (the
# component updater, the sign-in cookie check): started by the browser ("not an origin"), in
# no page's network partition. They are unresolvable like everything else here.
BROWSER_SERVICE_PARTITIONS = ("null null", "https://google.com https://google.com")
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # root in CI containers
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--no-pings",
    "--disable-client-side-phishing-detection",
    "--disable-features=AutofillServerCommunication,NetworkTimeServiceQuerying,OptimizationHints,"
    "MediaRouter,Translate,DialMediaRouteProvider",
    # Every name resolves to nothing but this machine: a request out cannot succeed, and the
    # net log still records that it was tried.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--virtual-time-budget=15000",  # let the page's scripts fetch and render
)


def find_chromium() -> str:
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip("Chromium is not installed and apt-get (as root) is not available to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    if subprocess.run(install, env=env, capture_output=True, timeout=900).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=900)
        subprocess.run(install, env=env, capture_output=True, timeout=900, check=True)
    path = shutil.which("chromium")
    assert path, "apt-get installed chromium, but it is not on PATH"
    return path


@pytest.fixture(scope="module")
def chromium() -> str:
    return find_chromium()


def load(chromium: str, url: str, tmp_path) -> tuple[str, list[dict]]:
    """The rendered DOM and every URL request Chromium started (with its parameters)."""
    net_log = tmp_path / "net.json"
    command = [chromium, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--log-net-log={net_log}"]
    result = subprocess.run([*command, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    log = json.loads(net_log.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    requests = [
        event["params"]
        for event in log["events"]
        if event["type"] == start_job and "url" in event.get("params", {})
    ]
    return result.stdout, requests


def leaves_the_machine(request: dict) -> bool:
    return urlsplit(request["url"]).hostname not in {host.strip("[]") for host in LOCAL_HOSTS}


def made_for_the_page(request: dict) -> bool:
    """A page, its scripts or its workers asked for it (not one of the browser's own services)."""
    return (
        request.get("initiator") != "not an origin"
        or request.get("network_isolation_key") not in BROWSER_SERVICE_PARTITIONS
    )


@pytest.mark.parametrize("page, rendered", [("/docs", "swagger-ui"), ("/redoc", "redoc-wrap")])
def test_the_docs_pages_render_with_nothing_fetched_from_outside(
    chromium, live_server, tmp_path, page, rendered
):
    dom, requests = load(chromium, f"{live_server}{page}", tmp_path)

    outside = [r["url"] for r in requests if leaves_the_machine(r) and made_for_the_page(r)]
    assert outside == [], f"{page} asked for outside URLs: {outside}"
    local = {urlsplit(r["url"]).path for r in requests if not leaves_the_machine(r)}
    assert "/openapi.json" in local  # the page's scripts ran and read the document
    assert "/favicon.ico" in local
    assert rendered in dom and "Flask Service API" in dom  # and rendered it


def test_the_favicon_answers(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.mimetype == "image/png" and response.data.startswith(b"\x89PNG")
