"""Who may do what, for every route: owner, member, outsider, admin, anonymous."""

from __future__ import annotations

import pytest

ROLES = ("owner", "member", "other", "admin", "anonymous")

# (method, path under the project, body, expected status per role in ROLES order)
MATRIX = [
    ("get", "", None, (200, 200, 404, 200, 401)),
    ("patch", "", {"name": "Renamed"}, (200, 403, 404, 200, 401)),
    ("delete", "", None, (204, 403, 404, 204, 401)),
    ("post", "/members/{newcomer}", None, (200, 403, 404, 200, 401)),
    ("delete", "/members/{member}", None, (200, 403, 404, 200, 401)),
    ("get", "/tasks", None, (200, 200, 404, 200, 401)),
    ("post", "/tasks", {"title": "New task"}, (201, 201, 404, 201, 401)),
    ("get", "/tasks/{task}", None, (200, 200, 404, 200, 401)),
    ("patch", "/tasks/{task}", {"status": "done"}, (200, 200, 404, 200, 401)),
    ("delete", "/tasks/{task}", None, (204, 204, 404, 204, 401)),
]

CASES = [
    pytest.param(method, path, body, role, codes[i], id=f"{method} {path or '/'} as {role}")
    for method, path, body, codes in MATRIX
    for i, role in enumerate(ROLES)
]


@pytest.mark.parametrize(("method", "path", "body", "role", "expected"), CASES)
def test_role_matrix(client, team, make_user, method, path, body, role, expected):
    newcomer = make_user()
    url = team.url + path.format(newcomer=newcomer["id"], member=team.member["id"], task=team.task["id"])
    kwargs = {"headers": team.headers[role]}
    if body is not None:
        kwargs["json"] = body

    response = getattr(client, method)(url, **kwargs)

    assert response.status_code == expected, response.get_json()
    if expected >= 400:
        error = response.get_json()
        assert error["code"] == expected and error["message"]
        # A refused request changes nothing.
        owner = team.headers["owner"]
        assert client.get(team.url, headers=owner).get_json() == team.project
        assert client.get(f"{team.url}/tasks/{team.task['id']}", headers=owner).get_json() == team.task


def test_list_shows_owned_and_member_projects_and_admin_sees_all(client, team, make_user, auth_headers):
    theirs = client.post(
        "/api/v1/projects", json={"name": "Other's"}, headers=team.headers["other"]
    ).get_json()

    def ids(role):
        response = client.get("/api/v1/projects", headers=team.headers[role])
        assert response.status_code == 200
        return [p["id"] for p in response.get_json()["items"]]

    assert ids("owner") == [team.project["id"]]
    assert ids("member") == [team.project["id"]]
    assert ids("other") == [theirs["id"]]
    assert ids("admin") == [team.project["id"], theirs["id"]]
    stranger = auth_headers(make_user())
    assert client.get("/api/v1/projects", headers=stranger).get_json()["items"] == []
    assert client.get("/api/v1/projects").status_code == 401


def test_anyone_authenticated_may_create_a_project_and_anonymous_may_not(client, team):
    assert client.post("/api/v1/projects", json={"name": "x"}).status_code == 401
    for role in ("member", "other", "admin"):
        created = client.post("/api/v1/projects", json={"name": role}, headers=team.headers[role])
        assert created.status_code == 201
        assert created.get_json()["owner_id"] == getattr(team, role)["id"]


def test_bad_token_is_401(client, team):
    response = client.get(team.url, headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401


def test_a_removed_member_loses_access_at_once(client, team):
    member = team.headers["member"]
    assert client.get(team.url, headers=member).status_code == 200
    assert (
        client.delete(f"{team.url}/members/{team.member['id']}", headers=team.headers["owner"]).status_code
        == 200
    )
    assert client.get(team.url, headers=member).status_code == 404
    assert client.get(f"{team.url}/tasks/{team.task['id']}", headers=member).status_code == 404
    assert client.get("/api/v1/projects", headers=member).get_json()["total"] == 0
