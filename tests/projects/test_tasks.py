"""Tasks: create, list with filters, get, update, delete, and their validation."""

from __future__ import annotations

from datetime import datetime

import pytest

URL = "/api/v1/projects"


def test_create_task_is_todo_with_the_given_fields(client, team):
    response = client.post(
        f"{team.url}/tasks",
        json={
            "title": " Fuel ",
            "description": "LOX",
            "assignee_id": team.owner["id"],
            "due_date": "2026-12-01",
        },
        headers=team.headers["member"],
    )

    assert response.status_code == 201
    task = response.get_json()
    assert set(task) == {
        "id",
        "project_id",
        "title",
        "description",
        "status",
        "assignee_id",
        "due_date",
        "created_at",
    }
    assert task["project_id"] == team.project["id"]
    assert (task["title"], task["description"], task["status"]) == ("Fuel", "LOX", "todo")
    assert (task["assignee_id"], task["due_date"]) == (team.owner["id"], "2026-12-01")
    assert datetime.fromisoformat(task["created_at"]).utcoffset() is not None
    assert client.get(f"{team.url}/tasks/{task['id']}", headers=team.headers["owner"]).get_json() == task


def test_create_task_with_only_a_title(client, team):
    task = client.post(f"{team.url}/tasks", json={"title": "Bare"}, headers=team.headers["owner"]).get_json()
    assert (task["description"], task["assignee_id"], task["due_date"], task["status"]) == (
        "",
        None,
        None,
        "todo",
    )


@pytest.mark.parametrize("status", ["todo", "in_progress", "done"])
def test_create_task_with_a_status(client, team, status):
    response = client.post(
        f"{team.url}/tasks", json={"title": "Ship", "status": status}, headers=team.headers["member"]
    )
    assert response.status_code == 201
    task = response.get_json()
    assert task["status"] == status
    assert client.get(f"{team.url}/tasks/{task['id']}", headers=team.headers["owner"]).get_json() == task
    listed = client.get(f"{team.url}/tasks", query_string={"status": status}, headers=team.headers["owner"])
    assert task["id"] in [item["id"] for item in listed.get_json()["items"]]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "title"),
        ({"title": "  "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "t", "status": "blocked"}, "status"),
        ({"title": "t", "status": "DONE"}, "status"),
        ({"title": "t", "status": None}, "status"),
        ({"title": "t", "project_id": 1}, "project_id"),
        ({"title": "t", "due_date": "2026-13-01"}, "due_date"),
        ({"title": "t", "due_date": "tomorrow"}, "due_date"),
        ({"title": "t", "due_date": "2026-12-01T10:00:00"}, "due_date"),
        ({"title": "t", "due_date": 20261201}, "due_date"),
        ({"title": "t", "assignee_id": "abc"}, "assignee_id"),
        ({"title": "t", "assignee_id": 2**63}, "assignee_id"),
        ({"title": "t", "assignee_id": 0}, "assignee_id"),
        ({"title": "t", "assignee_id": True}, "assignee_id"),
    ],
)
def test_create_task_validation(client, team, payload, field):
    response = client.post(f"{team.url}/tasks", json=payload, headers=team.headers["owner"])
    assert response.status_code == 422
    assert field in response.get_json()["errors"]["json"]


@pytest.mark.parametrize("assignee", ["other", "admin", "unknown"])
def test_the_assignee_must_be_the_owner_or_a_member(client, team, assignee):
    assignee_id = 2147483647 if assignee == "unknown" else getattr(team, assignee)["id"]
    tasks = f"{team.url}/tasks"

    created = client.post(
        tasks, json={"title": "t", "assignee_id": assignee_id}, headers=team.headers["owner"]
    )
    patched = client.patch(
        f"{tasks}/{team.task['id']}", json={"assignee_id": assignee_id}, headers=team.headers["member"]
    )

    for response in (created, patched):
        assert response.status_code == 422
        assert "assignee_id" in response.get_json()["errors"]["json"]
    assert client.get(tasks, headers=team.headers["owner"]).get_json()["total"] == 1
    assert client.get(f"{tasks}/{team.task['id']}", headers=team.headers["owner"]).get_json() == team.task


def test_status_moves_freely_among_the_three_values(client, team):
    task_url = f"{team.url}/tasks/{team.task['id']}"
    for status in ("done", "in_progress", "todo", "done"):
        response = client.patch(task_url, json={"status": status}, headers=team.headers["member"])
        assert response.status_code == 200
        assert response.get_json()["status"] == status


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"status": "blocked"}, "status"),
        ({"status": None}, "status"),
        ({"title": ""}, "title"),
        ({"title": None}, "title"),
        ({"due_date": "2026-02-30"}, "due_date"),
        ({"project_id": 2}, "project_id"),
    ],
)
def test_patch_task_validation(client, team, payload, field):
    task_url = f"{team.url}/tasks/{team.task['id']}"
    response = client.patch(task_url, json=payload, headers=team.headers["owner"])
    assert response.status_code == 422
    assert field in response.get_json()["errors"]["json"]
    assert client.get(task_url, headers=team.headers["owner"]).get_json() == team.task


def test_patch_task_updates_and_clears_fields(client, team):
    task_url = f"{team.url}/tasks/{team.task['id']}"
    response = client.patch(
        task_url,
        json={
            "title": "Land",
            "description": "Softly",
            "assignee_id": team.owner["id"],
            "due_date": "2027-01-31",
        },
        headers=team.headers["member"],
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["title"], body["description"], body["assignee_id"], body["due_date"]) == (
        "Land",
        "Softly",
        team.owner["id"],
        "2027-01-31",
    )

    cleared = client.patch(
        task_url,
        json={"assignee_id": None, "due_date": None, "description": None},
        headers=team.headers["owner"],
    ).get_json()
    assert (cleared["assignee_id"], cleared["due_date"], cleared["description"]) == (None, None, "")
    assert cleared["title"] == "Land" and cleared["status"] == "todo"


def test_patch_task_with_an_empty_body_changes_nothing(client, team):
    response = client.patch(f"{team.url}/tasks/{team.task['id']}", json={}, headers=team.headers["owner"])
    assert response.status_code == 200
    assert response.get_json() == team.task


def test_delete_task(client, team):
    task_url = f"{team.url}/tasks/{team.task['id']}"
    assert client.delete(task_url, headers=team.headers["member"]).status_code == 204
    assert client.get(task_url, headers=team.headers["owner"]).status_code == 404
    assert client.delete(task_url, headers=team.headers["owner"]).status_code == 404
    assert client.get(f"{team.url}/tasks", headers=team.headers["owner"]).get_json()["total"] == 0


def test_a_task_of_another_project_is_404_under_this_projects_path(client, team):
    owner = team.headers["owner"]
    elsewhere = client.post(URL, json={"name": "Gemini"}, headers=owner).get_json()
    foreign = client.post(
        f"{URL}/{elsewhere['id']}/tasks", json={"title": "Theirs"}, headers=owner
    ).get_json()
    wrong_path = f"{team.url}/tasks/{foreign['id']}"

    assert client.get(wrong_path, headers=owner).status_code == 404
    assert client.patch(wrong_path, json={"title": "Hijack"}, headers=owner).status_code == 404
    assert client.delete(wrong_path, headers=owner).status_code == 404
    assert client.get(f"{URL}/{elsewhere['id']}/tasks/{foreign['id']}", headers=owner).get_json() == foreign


# --- list, filters, pagination -------------------------------------------------------------


@pytest.fixture
def board(client, team):
    """Five more tasks: statuses and assignees to filter on; returns {title: task}."""
    owner, member = team.owner["id"], team.member["id"]
    specs = [
        ("a", "todo", owner),
        ("b", "in_progress", member),
        ("c", "done", member),
        ("d", "done", None),
        ("e", "in_progress", owner),
    ]
    tasks = {"Launch": team.task}
    for title, status, assignee in specs:
        created = client.post(
            f"{team.url}/tasks", json={"title": title, "assignee_id": assignee}, headers=team.headers["owner"]
        ).get_json()
        tasks[title] = client.patch(
            f"{team.url}/tasks/{created['id']}", json={"status": status}, headers=team.headers["owner"]
        ).get_json()
    return tasks


def _titles(client, team, query=""):
    response = client.get(f"{team.url}/tasks?{query}", headers=team.headers["member"])
    assert response.status_code == 200, response.get_json()
    return [t["title"] for t in response.get_json()["items"]]


def test_list_tasks_in_creation_order(client, team, board):
    assert _titles(client, team) == ["Launch", "a", "b", "c", "d", "e"]


def test_filter_by_status(client, team, board):
    assert _titles(client, team, "status=done") == ["c", "d"]
    assert _titles(client, team, "status=todo") == ["Launch", "a"]


def test_filter_by_assignee_and_both(client, team, board):
    member = team.member["id"]
    assert _titles(client, team, f"assignee_id={member}") == ["Launch", "b", "c"]
    assert _titles(client, team, f"assignee_id={member}&status=in_progress") == ["b"]
    assert _titles(client, team, f"assignee_id={team.other['id']}") == []


def test_tasks_are_paginated(client, team, board):
    body = client.get(f"{team.url}/tasks?per_page=4&page=2", headers=team.headers["owner"]).get_json()
    assert [t["title"] for t in body["items"]] == ["d", "e"]
    assert (body["page"], body["per_page"], body["total"], body["pages"]) == (2, 4, 6, 2)


@pytest.mark.parametrize(
    "query", ["status=blocked", "assignee_id=abc", "assignee_id=0", f"assignee_id={2**63}", "per_page=101"]
)
def test_bad_task_filters_are_422(client, team, query):
    response = client.get(f"{team.url}/tasks?{query}", headers=team.headers["owner"])
    assert response.status_code == 422
    assert "query" in response.get_json()["errors"]


def test_unknown_query_parameters_are_ignored(client, team):
    assert _titles(client, team, "colour=red") == ["Launch"]


def test_an_admin_who_is_not_a_member_manages_tasks_but_cannot_be_assigned(client, team):
    admin = team.headers["admin"]
    created = client.post(f"{team.url}/tasks", json={"title": "Audit"}, headers=admin)
    assert created.status_code == 201
    assert (
        client.patch(
            f"{team.url}/tasks/{created.get_json()['id']}",
            json={"assignee_id": team.admin["id"]},
            headers=admin,
        ).status_code
        == 422
    )
