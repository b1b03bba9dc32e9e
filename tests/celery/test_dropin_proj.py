"""One Celery project, two workers: ``amqptool worker -A proj`` and ``celery -A proj worker``.

The same Celery-client calls run against each (a fresh vhost per worker; ours with the solo
and the prefork pool, Celery's with prefork, one process each); all must give the same
results, states, routing, signals and events.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import ROOT, unique, wait_until
from tests.worker_support import Collector, close_celery

pytestmark = pytest.mark.celery

PROJECT = ROOT / "tests" / "projects"
WAIT = 30
ROUTING = ("task_queues", "task_routes", "task_default_queue", "task_default_exchange")


class Running:
    def __init__(self, kind: str, url: str) -> None:
        self.kind = kind
        self.url = url
        self.node = f"{unique(kind)}@localhost"
        self.log = Path(f"/tmp/dropin-{self.node.split('@')[0]}.log")
        env = dict(os.environ)
        env["PROJ_BROKER_URL"] = url
        env["PYTHONPATH"] = os.pathsep.join([str(PROJECT), str(ROOT)])
        for name in ("AMQP_URL", "CELERY_BROKER_URL"):
            env.pop(name, None)
        if kind.startswith("amqptool"):
            pool = ["-P", "solo"]
            if kind.endswith("prefork"):
                pool = ["-P", "prefork", "-c", "1"]
            elif kind.endswith("threads"):
                pool = ["-P", "threads", "-c", "2"]
            cmd = [sys.executable, "-m", "amqptool", "worker", "-A", "proj", *pool]
            cmd += ["-n", self.node, "-l", "INFO"]
        else:
            cmd = [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "proj",
                "worker",
                "-P",
                "prefork",
                "-c",
                "1",
            ]
            cmd += ["-n", self.node, "-l", "INFO", "--without-mingle", "--without-gossip"]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=PROJECT
            )
        wait_until(
            lambda: "ready." in self.output() or self.proc.poll() is not None,
            60,
            message=f"{kind} worker to start",
        )
        if self.proc.poll() is not None:
            raise RuntimeError(f"{kind} worker died:\n{self.output()[-3000:]}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture(scope="module", params=["amqptool", "amqptool-prefork", "celery"])
def worker(request: pytest.FixtureRequest) -> Iterator[Running]:
    from tests import harness

    harness.ensure_broker()
    vhost = harness.create_vhost("amqptool-proj")
    running = Running(request.param, harness.url_for(vhost))
    try:
        yield running
    finally:
        running.stop()
        harness.delete_vhost(vhost)


def client_app(url: str) -> Any:
    """A Celery client with the project's routing and rpc:// results."""
    from celery import Celery

    sys.path.insert(0, str(PROJECT))
    try:
        from proj.celery import app as proj_app  # type: ignore[import-not-found]  # on sys.path now
    finally:
        sys.path.remove(str(PROJECT))
    app = Celery("client", broker=url, backend="rpc://")
    app.conf.update({name: proj_app.conf[name] for name in ROUTING})
    return app


@pytest.fixture(scope="module")
def client(worker: Running) -> Iterator[Any]:
    app = client_app(worker.url)
    try:
        yield app
    finally:
        close_celery(app)


def test_app_tasks_shared_tasks_and_class_based_tasks(client: Any) -> None:
    assert client.send_task("proj.tasks.add", (2, 2)).get(timeout=WAIT) == 4
    assert client.send_task("proj.tasks.mul", (2, 3)).get(timeout=WAIT) == 6
    assert client.send_task("proj.tasks.Greet", ("you",)).get(timeout=WAIT) == "hello you"


def test_bound_task_sees_its_request(client: Any) -> None:
    result = client.send_task("proj.tasks.whoami")
    assert result.get(timeout=WAIT) == {
        "id": result.id,
        "retries": 0,
        "routing_key": "proj.default",
        "is_eager": False,
        "task": "proj.tasks.whoami",
    }


def test_retry_and_autoretry(client: Any) -> None:
    assert client.send_task("proj.tasks.flaky", (2,)).get(timeout=WAIT) == 2
    failed = client.send_task("proj.tasks.divide", (1, 0))
    with pytest.raises(ZeroDivisionError):
        failed.get(timeout=WAIT)
    assert failed.state == "FAILURE"


def test_progress_states_and_failure(client: Any) -> None:
    states: list[Any] = []
    result = client.send_task("proj.tasks.progress", (3,))
    assert result.get(timeout=WAIT, on_message=lambda m: states.append(m["status"])) == 3
    assert states == ["STARTED", "PROGRESS", "PROGRESS", "PROGRESS", "SUCCESS"]
    boom = client.send_task("proj.tasks.boom", ("bad",))
    with pytest.raises(ValueError, match="bad"):
        boom.get(timeout=WAIT)
    assert boom.state == "FAILURE" and "ValueError" in (boom.traceback or "")


def test_routes_queues_and_a_task_from_a_task(client: Any) -> None:
    assert client.send_task("proj.tasks.where_am_i").get(timeout=WAIT) == "proj.quorum"
    urgent = client.send_task("proj.tasks.urgent", ("now",), priority=9)
    assert urgent.get(timeout=WAIT) == ["now", "proj.priority"]
    child_id = client.send_task("proj.tasks.spawn").get(timeout=WAIT)
    assert client.AsyncResult(child_id).get(timeout=WAIT) == "proj.quorum"


def test_a_soft_time_limit_is_celerys_exception(client: Any) -> None:
    assert client.send_task("proj.tasks.soft_limited").get(timeout=WAIT) == "cleaned up"


def test_worker_init_is_sent_before_the_pool_starts(client: Any) -> None:
    seen = client.send_task("proj.tasks.worker_signals_seen").get(timeout=WAIT)
    assert "worker_init" in seen  # in the process (or forked child) running the task


def test_task_signals(client: Any) -> None:
    ok = client.send_task("proj.tasks.add", (1, 1))
    ok.get(timeout=WAIT)
    bad = client.send_task("proj.tasks.boom", ("x",))
    with pytest.raises(ValueError):
        bad.get(timeout=WAIT)
    retried = client.send_task("proj.tasks.flaky", (1,))
    retried.get(timeout=WAIT)
    seen = {
        name: client.send_task("proj.tasks.signals_seen", (r.id,)).get(timeout=WAIT)
        for name, r in (("ok", ok), ("bad", bad), ("retried", retried))
    }
    assert [e[0] for e in seen["ok"]] == ["prerun", "success", "postrun"]
    assert seen["ok"][-1][-1] == "SUCCESS"
    assert [e[0] for e in seen["bad"]] == ["prerun", "failure", "postrun"]
    assert seen["bad"][1][-1] == "ValueError"
    kinds = [e[0] for e in seen["retried"]]
    assert kinds == ["prerun", "retry", "postrun", "prerun", "success", "postrun"]


def test_events(client: Any, worker: Running) -> None:
    with Collector(worker.url, bind=("celeryev", "task.#")) as events:
        ok = client.send_task("proj.tasks.add", (5, 5))
        ok.get(timeout=WAIT)
        bad = client.send_task("proj.tasks.boom", ("e",))
        with pytest.raises(ValueError):
            bad.get(timeout=WAIT)

        def types(task_id: str, last: str) -> list[str]:
            got = [e["type"] for e in events.events() if e.get("uuid") == task_id]
            return got if last in got else []

        assert wait_until(lambda: types(ok.id, "task-succeeded"), WAIT) == [
            "task-received",
            "task-started",
            "task-succeeded",
        ]
        assert wait_until(lambda: types(bad.id, "task-failed"), WAIT) == [
            "task-received",
            "task-started",
            "task-failed",
        ]


EXPECTED_REGISTERED = sorted(
    [
        "proj.tasks.Greet",
        "proj.tasks.add",
        "proj.tasks.boom",
        "proj.tasks.divide",
        "proj.tasks.flaky",
        "proj.tasks.limited [rate_limit=100/m]",
        "proj.tasks.mul",
        "proj.tasks.progress",
        "proj.tasks.signals_seen",
        "proj.tasks.soft_limited",
        "proj.tasks.spawn",
        "proj.tasks.urgent",
        "proj.tasks.where_am_i",
        "proj.tasks.whoami",
        "proj.tasks.worker_signals_seen",
    ]
)
POOL_KEYS = {
    "implementation",
    "max-concurrency",
    "processes",
    "max-tasks-per-child",
    "put-guarded-by-semaphore",
    "timeouts",
    "writes",
}


def test_inspect_registered_stats_and_conf(client: Any, worker: Running) -> None:
    assert client.send_task("proj.tasks.add", (1, 2)).get(timeout=WAIT) == 3
    inspect = client.control.inspect(destination=[worker.node], timeout=5)
    assert sorted(inspect.registered()[worker.node]) == EXPECTED_REGISTERED
    replies = client.control.time_limit(
        "proj.tasks.add", soft=5, hard=10, destination=[worker.node], reply=True, timeout=5
    )
    assert replies == [{worker.node: {"ok": "time limits set successfully"}}]
    limits = inspect.registered("time_limit", "soft_time_limit")[worker.node]
    assert "proj.tasks.add [time_limit=10 soft_time_limit=5]" in limits
    assert "proj.tasks.limited [time_limit=30 soft_time_limit=20]" in limits
    pool = inspect.stats()[worker.node]["pool"]
    if worker.kind != "amqptool":  # prefork pools (ours and Celery's) report the same fields
        assert set(pool) == POOL_KEYS
        assert set(pool["writes"]) == {"total", "avg", "all", "raw", "strategy", "inqueues"}
        assert pool["writes"]["total"] >= 1 and pool["writes"]["strategy"] == "fair"
    conf = inspect.conf()[worker.node]
    assert conf["task_default_queue"] == "proj.default"
    assert conf["result_backend"] == "rpc://"
    assert sorted(conf["include"]) == ["celery.app.builtins", "proj.tasks"]  # a set in Celery
    assert "proj.tasks.where_*" in conf["task_routes"]
    assert "proj" not in conf["broker_url"] or "****" in conf["broker_url"]


def amqp_sockets(pid: int) -> int:
    """TCP connections to the broker's port held by ``pid`` and its child processes."""
    pids, inodes = [pid], set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(c) for c in (task / "children").read_text().split()]
    for each in pids:
        for fd in Path(f"/proc/{each}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue  # closed meanwhile
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            cols = row.split()
            if cols[9] in inodes and cols[2].endswith(":1628"):  # remote port 5672
                count += 1
    return count


@pytest.mark.parametrize("kind", ["amqptool", "amqptool-threads", "amqptool-prefork", "celery"])
def test_rpc_results_leave_through_the_workers_own_connection(kind: str) -> None:
    """Celery's rpc:// backend publishes with kombu on a connection of its own (in a prefork
    child, the child's); ours hands Celery's result messages to the worker's connection. A
    fresh worker: a task sending a task opens kombu's connection in both (tested above)."""
    from tests import harness

    harness.ensure_broker()
    vhost = harness.create_vhost("amqptool-proj")
    running = Running(kind, harness.url_for(vhost))
    try:
        app = client_app(running.url)
        try:
            states: list[str] = []
            result = app.send_task("proj.tasks.progress", (2,))
            assert result.get(timeout=WAIT, on_message=lambda m: states.append(m["status"])) == 2
            assert states == ["STARTED", "PROGRESS", "PROGRESS", "SUCCESS"]
            sums = [app.send_task("proj.tasks.add", (i, i)) for i in range(8)]  # every thread
            assert [r.get(timeout=WAIT) for r in sums] == [2 * i for i in range(8)]
            held = amqp_sockets(running.proc.pid)
        finally:
            close_celery(app)
    finally:
        running.stop()
        harness.delete_vhost(vhost)
    if kind == "celery":
        assert held >= 2  # the consumer's, and the child's producer for results
    else:
        assert held == 1
