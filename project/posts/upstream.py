"""Client of the JSONPlaceholder-shaped posts API (POSTS_API_URL).

Each call has one deadline (UPSTREAM_TIMEOUT_SECONDS, retries and the body included). A
path that failed is not called again for UPSTREAM_CIRCUIT_SECONDS (its circuit is open):
the request gets the stale copy or a 502 at once, instead of every request holding a
thread for the whole timeout while the upstream is down.
"""

from __future__ import annotations

from typing import Any

import requests
from flask import current_app

from project.errors import NotFound, UpstreamError
from project.http import Circuits, get_within, shared_session


def _circuits() -> Circuits:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    circuits = app.extensions.get("posts_circuits")
    if circuits is None:
        # setdefault: two threads meeting here keep one set of circuits, so no trip is lost.
        fresh = Circuits(app.config["UPSTREAM_CIRCUIT_SECONDS"])
        circuits = app.extensions.setdefault("posts_circuits", fresh)
    return circuits


def _get(path: str) -> Any:
    circuits = _circuits()
    if circuits.is_open(path):
        raise UpstreamError("The posts service is failing; not asked again for a few seconds.")
    try:
        value = _call(path)
    except UpstreamError:
        circuits.trip(path)
        raise
    circuits.close(path)
    return value


def _call(path: str) -> Any:
    url = current_app.config["POSTS_API_URL"].rstrip("/") + path
    try:
        response = get_within(
            shared_session("posts", retries=0), url, current_app.config["UPSTREAM_TIMEOUT_SECONDS"]
        )
    except requests.RequestException as exc:
        raise UpstreamError(f"The posts service is unreachable ({exc.__class__.__name__}).") from exc
    if response.status_code == 404:
        raise NotFound("Post not found.")
    if response.status_code != 200:
        raise UpstreamError(f"The posts service answered {response.status_code}.")
    try:
        return response.json()
    except ValueError as exc:
        raise UpstreamError("The posts service sent invalid JSON.") from exc


def _post(row: Any) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise UpstreamError("The posts service sent an unexpected post.")
    try:
        return {
            "id": int(row["id"]),
            "user_id": int(row["userId"]),
            "title": str(row.get("title") or ""),
            "body": str(row.get("body") or ""),
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise UpstreamError("The posts service sent an unexpected post.") from exc


def fetch_posts() -> list[dict[str, Any]]:
    rows = _get("/posts")
    if not isinstance(rows, list):
        raise UpstreamError("The posts service sent an unexpected list.")
    return [_post(row) for row in rows]


def fetch_post(post_id: int) -> dict[str, Any]:
    return _post(_get(f"/posts/{post_id}"))
