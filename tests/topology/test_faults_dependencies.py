"""Faults with real processes (issue #25): a private PostgreSQL and Redis that a test kills,
pauses or cuts, gunicorn as shipped, RQ workers and the scheduler. Each wait is bounded."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg2
import redis
import requests

from project.schedule import periodic_jobs
from tests.helpers import wait_for
from tests.topology.harness import PRODUCTION_ENV, Service, Topology

PASSWORD = "Topology!Passw0rd"


@dataclass
class Stack:
    topology: Topology
    pg: Service
    redis: Service
    env: dict[str, str]
    web: Service
    workers: list[Service] = field(default_factory=list)
    token: str = ""
    product_ids: list[int] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web.port}/api/v1"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def sql(self, statement: str, *args) -> list[tuple]:
        conn = psycopg2.connect(host="127.0.0.1", port=self.pg.port, user="postgres", dbname="app")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement, args)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def pending(self) -> int:
        return self.sql("SELECT count(*) FROM orders WHERE status = 'pending'")[0][0]

    def redis_client(self) -> redis.Redis:
        return redis.Redis(port=self.redis.port, socket_timeout=2)

    def worker(self, name: str) -> Service:
        service = self.topology.app_process(name, ["worker.py"], self.env)
        self.workers.append(service)
        return service

    def scheduler(self, name: str = "scheduler") -> Service:
        return self.topology.app_process(name, ["worker.py", "--scheduler"], self.env)

    def restart_redis(self) -> Service:
        self.redis = self.topology.redis(port=self.redis.port, name=f"redis-{time.monotonic_ns()}")
        return self.redis

    def order(self, session: requests.Session, key: str | None = None) -> requests.Response:
        body = {"items": [{"product_id": self.product_ids[0], "quantity": 1}]}
        headers = {**self.headers, **({"Idempotency-Key": key} if key else {})}
        return session.post(f"{self.base}/orders", json=body, headers=headers, timeout=15)


def start_stack(topology: Topology, **extra: str) -> Stack:
    pg = topology.postgres()
    cache = topology.redis()
    env = {
        **PRODUCTION_ENV,
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{pg.port}/app",
        "REDIS_URL": f"redis://127.0.0.1:{cache.port}/0",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "2",
        "RATE_LIMIT_DEFAULT": "1000000/minute",
        **extra,
    }
    topology.migrate(env)
    topology.flask(env, "users", "create-admin", "--email", "admin@example.com", "--password", PASSWORD)
    stack = Stack(topology, pg, cache, env, topology.gunicorn(env))
    login = requests.post(
        f"{stack.base}/auth/login", json={"email": "admin@example.com", "password": PASSWORD}, timeout=15
    )
    assert login.status_code == 200, login.text
    stack.token = login.json()["access_token"]
    for n in range(3):
        created = requests.post(
            f"{stack.base}/products",
            json={"sku": f"F-{n}", "name": f"Fault {n}", "price": 5, "stock": 1_000_000},
            headers=stack.headers,
            timeout=15,
        )
        assert created.status_code == 201, created.text
        stack.product_ids.append(created.json()["id"])
    return stack


def in_shape(response: requests.Response) -> bool:
    """A 2xx, or a 503 in the contract's error shape (never HTML, never a 500)."""
    if response.status_code < 300:
        return True
    if response.status_code != 503 or not response.headers.get("Content-Type", "").startswith(
        "application/json"
    ):
        return False
    body = response.json()
    return body.get("code") == 503 and bool(body.get("message"))


def traffic(stack: Stack, stop: threading.Event, answers: list, threads: int = 4) -> list[threading.Thread]:
    """Mixed traffic (list, detail, order POSTs with keys, order reads) until `stop`."""

    def run(n: int) -> None:
        session = requests.Session()
        i = 0
        while not stop.is_set():
            i += 1
            started = time.monotonic()
            try:
                kind = i % 4
                if kind == 0:
                    answer = session.get(f"{stack.base}/products", timeout=15)
                elif kind == 1:
                    answer = session.get(f"{stack.base}/products/{stack.product_ids[i % 3]}", timeout=15)
                elif kind == 2:
                    answer = stack.order(session, key=f"t{n}-{i}")
                else:
                    answer = session.get(f"{stack.base}/orders", headers=stack.headers, timeout=15)
            except requests.RequestException as exc:
                answers.append((type(exc).__name__, "", time.monotonic() - started))
                continue
            answers.append((answer.status_code, answer, time.monotonic() - started))

    workers = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(threads)]
    for worker in workers:
        worker.start()
    return workers


def settled(stack: Stack) -> bool:
    return stack.pending() == 0


def test_redis_killed_mid_batch_every_order_settles_and_workers_live_on(topology):
    stack = start_stack(topology)
    workers = [stack.worker("worker-1"), stack.worker("worker-2")]
    stack.scheduler()
    with ThreadPoolExecutor(6) as pool:
        session = requests.Session()
        first = list(pool.map(lambda _: stack.order(session).status_code, range(300)))
        stack.redis.kill()  # while the drains of the burst run
        during = list(pool.map(lambda _: stack.order(requests.Session()).status_code, range(60)))
    assert set(first) == {202} and set(during) == {202}  # stored and answered without Redis
    time.sleep(3)  # workers notice (mid-job ones quit RQ's loop)
    stack.restart_redis()  # empty: no persistence, the queues and flags are gone
    restarted = time.monotonic()
    wait_for(lambda: settled(stack), timeout=60, what="every order settled after Redis returned")
    print(f"\nRedis SIGKILLed mid-burst: all settled {time.monotonic() - restarted:.1f} s after its restart")
    assert all(worker.alive() for worker in workers), [w.output()[-2000:] for w in workers]
    # Both work again: a new order is reserved by a live worker.
    answer = stack.order(requests.Session())
    assert answer.status_code == 202
    wait_for(lambda: settled(stack), timeout=30, what="a new order settled")


def test_terminated_database_connections_are_503s_in_shape_never_500_or_html(topology):
    stack = start_stack(topology)
    stack.worker("worker-1")
    stop, answers = threading.Event(), []
    threads = traffic(stack, stop, answers, threads=6)
    kills = 0
    for _ in range(10):
        time.sleep(1)
        kills += len(
            stack.sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = 'app' AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
        )
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    codes = Counter(code for code, _, _ in answers)
    bad = [(code, answer.text[:200]) for code, answer, _ in answers if answer == "" or not in_shape(answer)]
    assert kills > 10 and len(answers) > 100, (kills, codes)
    assert not bad, (codes, bad[:5])
    print(f"\npg_terminate_backend x{kills} over 10 s: {dict(codes)}")


def test_redis_paused_requests_stay_bounded_and_orders_settle_soon_after(topology):
    stack = start_stack(topology)
    stack.worker("worker-1")
    stack.worker("worker-2")
    stack.scheduler()
    stop, answers = threading.Event(), []
    threads = traffic(stack, stop, answers, threads=4)
    time.sleep(2)
    stack.redis.pause()
    paused_at = len(answers)
    time.sleep(15)
    during = answers[paused_at:]
    stack.redis.resume()
    resumed = time.monotonic()
    time.sleep(2)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert during, "no request completed during the pause: they were held"
    assert all(code != "ReadTimeout" for code, _, _ in answers)
    assert all(in_shape(answer) for code, answer, _ in answers if answer != ""), Counter(
        c for c, _, _ in answers
    )
    wait_for(lambda: settled(stack), timeout=20, what="pending orders settled after SIGCONT")
    settle_s = time.monotonic() - resumed
    flag = stack.redis_client().get("orders:drain:queued")
    queued = stack.redis_client().llen("rq:queue:stock")
    assert flag is None or queued, "the drain flag is set with nothing queued"
    slow = sorted(seconds for _, _, seconds in during)
    print(
        f"\nSIGSTOP 15 s: {len(during)} answers during the pause "
        f"(median {slow[len(slow) // 2]:.3f} s, max {slow[-1]:.3f} s); settled {settle_s:.1f} s after SIGCONT"
    )


def test_a_sigkilled_workers_batch_settles_within_30_s(topology):
    stack = start_stack(topology)
    victim = stack.worker("worker-victim")
    stack.scheduler()
    # Hold a product row so the victim's batch waits mid-transaction on it.
    holder = psycopg2.connect(host="127.0.0.1", port=stack.pg.port, user="postgres", dbname="app")
    with holder.cursor() as cur:
        cur.execute("SELECT id FROM products WHERE id = %s FOR NO KEY UPDATE", (stack.product_ids[0],))
    session = requests.Session()
    for _ in range(20):
        assert stack.order(session).status_code == 202
    wait_for(
        lambda: stack.sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")[0][0],
        timeout=30,
        what="the victim's batch waiting on the row",
    )
    victim.kill()
    killed = time.monotonic()
    holder.rollback()
    holder.close()
    stack.worker("worker-live")
    wait_for(lambda: settled(stack), timeout=30, what="the killed worker's batch settled")
    print(f"\nSIGKILLed worker's batch settled {time.monotonic() - killed:.1f} s after the kill")


def periodic_enqueued_at(stack: Stack) -> dict[str, bytes | None]:
    client = stack.redis_client()
    ids = [job.decode() for job in client.zrange("rq:scheduler:scheduled_jobs", 0, -1)]
    return {
        job_id: client.hget(f"rq:job:{job_id}", "enqueued_at")
        for job_id in ids
        if job_id.startswith("periodic-")
    }


def test_scheduler_restarts_run_no_periodic_job_early(topology):
    stack = start_stack(topology)
    first = stack.scheduler("scheduler-1")
    declared = {job.id for job in periodic_jobs()}
    first_runs: dict[str, bytes | None] = {}

    def every_job_ran_once() -> bool:
        # One read for both the check and the snapshot: the scheduler registers the jobs one
        # by one, so a later read can hold a job registered but not yet run.
        first_runs.clear()
        first_runs.update(periodic_enqueued_at(stack))
        return set(first_runs) == declared and all(first_runs.values())

    wait_for(every_job_ran_once, timeout=30, what="every periodic job's first run")
    hourly = {k: v for k, v in first_runs.items() if "cleanup" in k or "prune" in k or "sync" in k}
    assert len(hourly) == 3
    for n in (2, 3):
        first.kill()
        first = stack.scheduler(f"scheduler-{n}")
        time.sleep(5)  # several passes
    after = periodic_enqueued_at(stack)
    assert {k: after[k] for k in hourly} == hourly  # the hourly and 30-minute jobs did not run again


def test_a_due_retry_runs_within_15_s_of_the_active_schedulers_death(topology):
    from datetime import timedelta

    from rq import Queue

    stack = start_stack(topology)
    active = stack.scheduler("scheduler-active")
    client = stack.redis_client()
    wait_for(lambda: client.exists("rq:scheduler-lock:cleanup"), timeout=30, what="the retry locks")
    stack.scheduler("scheduler-survivor")
    active.kill()
    killed = time.monotonic()
    job = Queue("cleanup", connection=client).enqueue_in(
        timedelta(seconds=1), "project.users.jobs.cleanup_unverified_users"
    )
    wait_for(
        lambda: job.get_status(refresh=True) != "scheduled", timeout=15, what="the survivor moving the retry"
    )
    print(f"\ndue job queued {time.monotonic() - killed:.1f} s after the active scheduler's SIGKILL")
