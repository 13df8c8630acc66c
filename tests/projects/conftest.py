"""A project with an owner, a member, an outsider and an admin, built through the API."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

URL = "/api/v1/projects"


@pytest.fixture
def team(client, make_user, auth_headers):
    people = {
        "owner": make_user(),
        "member": make_user(),
        "other": make_user(),
        "admin": make_user("admin"),
    }
    headers = {role: auth_headers(person) for role, person in people.items()}
    headers["anonymous"] = {}
    project = client.post(URL, json={"name": "Apollo", "description": "Moon"}, headers=headers["owner"])
    assert project.status_code == 201, project.get_json()
    project = project.get_json()
    added = client.post(f"{URL}/{project['id']}/members/{people['member']['id']}", headers=headers["owner"])
    assert added.status_code == 200, added.get_json()
    task = client.post(
        f"{URL}/{project['id']}/tasks",
        json={"title": "Launch", "assignee_id": people["member"]["id"], "due_date": "2026-12-01"},
        headers=headers["owner"],
    )
    assert task.status_code == 201, task.get_json()
    return SimpleNamespace(
        **people,
        headers=headers,
        project=added.get_json(),
        task=task.get_json(),
        url=f"{URL}/{project['id']}",
    )
