"""Membership changes under concurrency (real PostgreSQL row locks)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from project.extensions import db
from project.projects.models import project_members


@pytest.mark.postgres
def test_concurrent_adds_of_one_member_all_succeed_and_store_one_row(app, team, make_user):
    newcomer = make_user()
    url = f"{team.url}/members/{newcomer['id']}"

    def add(_):
        return app.test_client().post(url, headers=team.headers["owner"])

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(add, range(6)))

    assert [r.status_code for r in responses] == [200] * 6
    assert all(newcomer["id"] in r.get_json()["member_ids"] for r in responses)
    with app.app_context():
        rows = db.session.execute(
            project_members.select().where(
                project_members.c.project_id == team.project["id"],
                project_members.c.user_id == newcomer["id"],
            )
        ).all()
    assert len(rows) == 1
