"""Path ids outside the INTEGER range are a 404, never a database overflow (the <dbint:> converter)."""

from __future__ import annotations

import pytest

URL = "/api/v1/projects"
BAD_IDS = ["0", "-1", "2147483648", str(2**63), "9" * 40, "abc", "1.5"]


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize(
    ("method", "template"),
    [
        ("get", "{p}"),
        ("patch", "{p}"),
        ("delete", "{p}"),
        ("get", "{p}/tasks"),
        ("post", "{p}/tasks"),
        ("get", "{p}/tasks/{t}"),
        ("patch", "{p}/tasks/{t}"),
        ("delete", "{p}/tasks/{t}"),
        ("post", "{p}/members/{u}"),
        ("delete", "{p}/members/{u}"),
    ],
)
def test_out_of_range_ids_are_404(client, team, method, template, bad):
    ids = {"p": team.project["id"], "t": team.task["id"], "u": team.member["id"]}
    # Put the bad id in each slot of the path in turn.
    for slot in {"p", "t", "u"} & set(template.replace("{", " ").replace("}", " ").split()):
        url = f"{URL}/" + template.format(**{**ids, slot: bad})
        response = getattr(client, method)(url, json={"title": "x"}, headers=team.headers["admin"])
        assert response.status_code == 404, (url, response.get_json())
        assert response.get_json()["code"] == 404


def test_the_largest_id_is_accepted_and_simply_not_found(client, team):
    response = client.get(f"{URL}/2147483647", headers=team.headers["admin"])
    assert response.status_code == 404
    assert response.get_json()["message"] == "Project not found."
    assert client.get(f"{team.url}/tasks/2147483647", headers=team.headers["admin"]).status_code == 404


def test_openapi_documents_the_id_range(client):
    spec = client.get("/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/projects/{project_id}/tasks/{task_id}"]["get"]
    params = {
        p["name"]: p["schema"]
        for p in spec["paths"]["/api/v1/projects/{project_id}/tasks/{task_id}"].get("parameters", [])
    }
    assert params["task_id"] == {"type": "integer", "minimum": 1, "maximum": 2147483647}
    assert operation["security"] == [{"bearerAuth": []}, {"OAuth2": []}]
    assert {"200", "401", "404"} <= set(operation["responses"])
    assert {"get", "post"} <= set(spec["paths"]["/api/v1/projects"])
