"""`python worker.py` outlives Redis: a worker that lost Redis (idle or mid-job) is replaced by
a new one once Redis answers; a stop request still stops it."""

from __future__ import annotations

import redis

import worker


def test_a_worker_that_lost_redis_is_replaced_once_redis_answers(app, monkeypatch):
    names: list[str] = []

    def work(self, burst=False, logging_level=None):
        names.append(self.name)
        if len(names) == 1:  # mid-job: RQ's clean-up raises from register_death
            raise redis.exceptions.ConnectionError("Connection refused.")
        if len(names) == 2:  # RQ quit its loop on a timeout and returned
            return True
        self._stop_requested = True  # SIGTERM: a real stop
        return True

    pings = iter([redis.exceptions.ConnectionError("down"), True, True])

    def ping(self):
        answer = next(pings)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(worker.AppWorker, "work", work)
    monkeypatch.setattr(redis.Redis, "ping", ping)
    monkeypatch.setattr(worker.time, "sleep", lambda seconds: None)
    assert worker.run_worker(app, ["stock"]) is True
    assert len(names) == 3 and len(set(names)) == 3  # a new name each time: no clash with the lost one


def test_a_burst_worker_is_not_restarted(app, monkeypatch):
    calls = []
    monkeypatch.setattr(worker.AppWorker, "work", lambda self, **kwargs: calls.append(1) or False)
    assert worker.run_worker(app, ["stock"], burst=True) is False
    assert calls == [1]


def test_a_jobs_lease_is_the_configured_one(app):
    class Job:
        timeout = 600

    assert worker.AppWorker.get_heartbeat_ttl(worker.AppWorker.__new__(worker.AppWorker), Job()) == 10
