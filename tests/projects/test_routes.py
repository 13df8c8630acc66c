"""Projects and members: create, list, get, update, delete, add and remove members."""

from __future__ import annotations

from datetime import datetime

import pytest

from project.extensions import db
from project.projects.models import Task, project_members

URL = "/api/v1/projects"


def test_create_returns_the_project_with_the_creator_as_owner(client, user, user_headers):
    response = client.post(URL, json={"name": "  Apollo  "}, headers=user_headers)

    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"id", "name", "description", "owner_id", "member_ids", "created_at"}
    assert body["name"] == "Apollo"
    assert body["description"] == ""
    assert body["owner_id"] == user["id"]
    assert body["member_ids"] == []
    assert datetime.fromisoformat(body["created_at"]).utcoffset() is not None
    assert client.get(f"{URL}/{body['id']}", headers=user_headers).get_json() == body


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": None}, "name"),
        ({"name": 42}, "name"),
        ({"name": "ok", "description": "x" * 10_001}, "description"),
        ({"name": "ok", "owner_id": 1}, "owner_id"),
        ({"name": "ok", "member_ids": [1]}, "member_ids"),
    ],
)
def test_create_validation_is_a_422_naming_the_field(client, user_headers, payload, field):
    response = client.post(URL, json=payload, headers=user_headers)

    assert response.status_code == 422
    assert field in response.get_json()["errors"]["json"]


def test_create_accepts_a_200_character_name(client, user_headers):
    response = client.post(URL, json={"name": "x" * 200, "description": "d"}, headers=user_headers)
    assert response.status_code == 201
    assert response.get_json()["description"] == "d"


def test_malformed_json_is_a_400(client, user_headers):
    response = client.post(
        URL, data="{not json", headers={**user_headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.get_json()["code"] == 400


def test_list_is_paginated_in_creation_order(client, user_headers):
    ids = [client.post(URL, json={"name": f"p{i}"}, headers=user_headers).get_json()["id"] for i in range(5)]

    first = client.get(f"{URL}?per_page=2", headers=user_headers).get_json()
    last = client.get(f"{URL}?per_page=2&page=3", headers=user_headers).get_json()
    beyond = client.get(f"{URL}?per_page=2&page=4", headers=user_headers).get_json()

    assert {k: first[k] for k in ("page", "per_page", "total", "pages")} == {
        "page": 1,
        "per_page": 2,
        "total": 5,
        "pages": 3,
    }
    assert [p["id"] for p in first["items"]] == ids[:2]
    assert [p["id"] for p in last["items"]] == ids[4:]
    assert beyond["items"] == [] and beyond["total"] == 5


def test_empty_list_has_zero_pages(client, user_headers):
    body = client.get(URL, headers=user_headers).get_json()
    assert body == {"items": [], "page": 1, "per_page": 20, "total": 0, "pages": 0}


@pytest.mark.parametrize("query", ["per_page=101", "per_page=0", "page=0", "page=x"])
def test_list_rejects_bad_pagination(client, user_headers, query):
    response = client.get(f"{URL}?{query}", headers=user_headers)
    assert response.status_code == 422
    assert "query" in response.get_json()["errors"]


def test_list_answers_the_same_with_a_trailing_slash(client, team):
    plain = client.get(URL, headers=team.headers["owner"])
    slashed = client.get(f"{URL}/", headers=team.headers["owner"])
    assert slashed.status_code == 200
    assert slashed.get_json() == plain.get_json()


def test_patch_updates_name_and_description(client, team):
    response = client.patch(
        team.url, json={"name": " Artemis ", "description": None}, headers=team.headers["owner"]
    )

    assert response.status_code == 200
    body = response.get_json()
    assert (body["name"], body["description"]) == ("Artemis", "")
    assert client.get(team.url, headers=team.headers["member"]).get_json()["name"] == "Artemis"


def test_patch_with_an_empty_body_changes_nothing(client, team):
    response = client.patch(team.url, json={}, headers=team.headers["owner"])
    assert response.status_code == 200
    assert response.get_json() == team.project


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": " "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"owner_id": 5}, "owner_id"),
        ({"id": 9}, "id"),
    ],
)
def test_patch_validation(client, team, payload, field):
    response = client.patch(team.url, json=payload, headers=team.headers["owner"])
    assert response.status_code == 422
    assert field in response.get_json()["errors"]["json"]
    assert client.get(team.url, headers=team.headers["owner"]).get_json() == team.project


def test_delete_removes_the_project_with_its_tasks_and_memberships(client, team, app):
    project_id = team.project["id"]

    assert client.delete(team.url, headers=team.headers["owner"]).status_code == 204

    assert client.get(team.url, headers=team.headers["owner"]).status_code == 404
    assert client.get(f"{team.url}/tasks/{team.task['id']}", headers=team.headers["owner"]).status_code == 404
    assert client.delete(team.url, headers=team.headers["owner"]).status_code == 404
    with app.app_context():
        assert db.session.query(Task).filter_by(project_id=project_id).count() == 0
        members = db.session.execute(
            project_members.select().where(project_members.c.project_id == project_id)
        ).all()
        assert members == []


# --- members -----------------------------------------------------------------------------


def test_add_member_returns_the_project_and_grants_access(client, team, make_user, auth_headers):
    newcomer = make_user()

    response = client.post(f"{team.url}/members/{newcomer['id']}", headers=team.headers["owner"])

    assert response.status_code == 200
    assert response.get_json()["member_ids"] == sorted([team.member["id"], newcomer["id"]])
    assert team.owner["id"] not in response.get_json()["member_ids"]
    assert client.get(team.url, headers=auth_headers(newcomer)).status_code == 200


def test_adding_an_existing_member_again_is_idempotent(client, team):
    response = client.post(f"{team.url}/members/{team.member['id']}", headers=team.headers["owner"])
    assert response.status_code == 200
    assert response.get_json() == team.project


def test_adding_the_owner_is_a_409(client, team):
    response = client.post(f"{team.url}/members/{team.owner['id']}", headers=team.headers["admin"])
    assert response.status_code == 409
    assert client.get(team.url, headers=team.headers["owner"]).get_json()["member_ids"] == [team.member["id"]]


def test_adding_an_unknown_user_is_a_404(client, team):
    response = client.post(f"{team.url}/members/2147483647", headers=team.headers["owner"])
    assert response.status_code == 404
    assert response.get_json()["message"] == "User not found."


def test_remove_member_returns_the_project_without_them(client, team):
    response = client.delete(f"{team.url}/members/{team.member['id']}", headers=team.headers["admin"])
    assert response.status_code == 200
    assert response.get_json()["member_ids"] == []


def test_removing_a_non_member_is_a_404(client, team):
    response = client.delete(f"{team.url}/members/{team.other['id']}", headers=team.headers["owner"])
    assert response.status_code == 404
    assert client.delete(f"{team.url}/members/2147483647", headers=team.headers["owner"]).status_code == 404


def test_removing_the_owner_is_a_409(client, team):
    response = client.delete(f"{team.url}/members/{team.owner['id']}", headers=team.headers["owner"])
    assert response.status_code == 409
    assert client.get(team.url, headers=team.headers["owner"]).status_code == 200


def test_removing_a_member_unassigns_their_tasks_in_this_project_only(client, team, make_user):
    owner = team.headers["owner"]
    member_id = team.member["id"]
    tasks = f"{team.url}/tasks"
    owners_task = client.post(tasks, json={"title": "Mine", "assignee_id": team.owner["id"]}, headers=owner)
    second = client.post(tasks, json={"title": "Theirs", "assignee_id": member_id}, headers=owner)
    elsewhere = client.post(URL, json={"name": "Gemini"}, headers=owner).get_json()
    client.post(f"{URL}/{elsewhere['id']}/members/{member_id}", headers=owner)
    kept = client.post(
        f"{URL}/{elsewhere['id']}/tasks", json={"title": "Kept", "assignee_id": member_id}, headers=owner
    ).get_json()

    assert client.delete(f"{team.url}/members/{member_id}", headers=owner).status_code == 200

    assignees = {t["id"]: t["assignee_id"] for t in client.get(tasks, headers=owner).get_json()["items"]}
    assert assignees == {
        team.task["id"]: None,
        owners_task.get_json()["id"]: team.owner["id"],
        second.get_json()["id"]: None,
    }
    other_task = client.get(f"{URL}/{elsewhere['id']}/tasks/{kept['id']}", headers=owner).get_json()
    assert other_task["assignee_id"] == member_id
