"""A real Celery 5.7 client sends the message; our worker decides when and whether it runs.

Countdown (never early, listed by ``scheduled``), expiry (on receipt and right before it
starts), retries (twice then success; past max_retries; autoretry with backoff), revoke before
start (also of an ETA task, announced when its ETA comes) and terminate in the prefork pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

import tests.peers.sched_tasks  # noqa: F401  # registers sched.*
from amqptool.codec.times import utcnow
from tests.harness import wait_until
from tests.worker_support import Collector, celery_client_for, in_process_worker, stub
from worker import Worker

pytestmark = pytest.mark.celery


@pytest.fixture(scope="module")
def worker(broker_url: str) -> Iterator[Worker]:
    with in_process_worker(broker_url, pool="threads", concurrency=2, events=True) as w:
        yield w


@pytest.fixture(scope="module")
def app(broker_url: str, worker: Worker) -> Iterator[Any]:
    with celery_client_for(broker_url, worker.config.queues[0], "sched-client") as client:
        yield client


@pytest.fixture(scope="module")
def tasks(app: Any) -> Any:
    class Tasks:
        stamp = app.task(name="sched.stamp")(stub)
        spin = app.task(name="sched.spin")(stub)
        block = app.task(name="sched.block")(stub)
        flaky = app.task(name="sched.flaky")(stub)
        no_more = app.task(name="sched.no_more")(stub)
        autoretry = app.task(name="sched.autoretry")(stub)
        pid = app.task(name="sched.pid")(stub)

    return Tasks


@pytest.fixture
def events(broker_url: str) -> Iterator[Collector]:
    with Collector(broker_url, bind=("celeryev", "task.#")) as c:
        yield c


def _of(events: list[dict[str, Any]], task_id: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("uuid") == task_id and e.get("type") == kind]


def test_a_countdown_task_is_listed_as_scheduled_and_never_runs_before_its_eta(
    app: Any, tasks: Any, worker: Worker
) -> None:
    before = utcnow()
    result = tasks.stamp.apply_async(countdown=1.5)
    inspect = app.control.inspect(destination=[worker.nodename], timeout=1)
    listed: Any = wait_until(lambda: (inspect.scheduled() or {}).get(worker.nodename))
    assert [s["request"]["id"] for s in listed] == [result.id] and listed[0]["priority"] == 6
    eta = datetime.fromisoformat(listed[0]["eta"])  # the eta the message carries, as listed
    assert eta >= before + timedelta(seconds=1.5)
    started = result.get(timeout=10)
    assert started >= eta.timestamp()  # the task's own clock: never before its eta
    assert inspect.scheduled()[worker.nodename] == []


def test_an_expired_task_gets_revoked_expired_and_an_event_saying_so(
    tasks: Any, events: Collector
) -> None:
    from celery.exceptions import TaskRevokedError

    result = tasks.stamp.apply_async(expires=utcnow() - timedelta(seconds=1))
    with pytest.raises(TaskRevokedError, match="expired"):
        result.get(timeout=10)
    revoked = wait_until(lambda: _of(events.events(), result.id, "task-revoked"))
    assert revoked[0]["expired"] is True and revoked[0]["terminated"] is False


def test_a_task_that_expires_while_it_waits_for_a_slot_is_not_run(
    tasks: Any, worker: Worker
) -> None:
    from celery.exceptions import TaskRevokedError

    busy = [tasks.spin.delay(1.2) for _ in range(worker.config.concurrency)]
    late = tasks.stamp.apply_async(expires=0.5)  # received in time, expired by its turn
    with pytest.raises(TaskRevokedError, match="expired"):
        late.get(timeout=10)
    assert [b.get(timeout=10) for b in busy] == ["finished"] * len(busy)


def test_a_task_that_retries_twice_then_succeeds(tasks: Any, events: Collector) -> None:
    result = tasks.flaky.delay(2)
    assert result.get(timeout=15) == 2
    retried = wait_until(lambda: len(_of(events.events(), result.id, "task-retried")) == 2)
    assert retried
    received = _of(events.events(), result.id, "task-received")
    assert [e["retries"] for e in received] == [0, 1, 2]
    for event in _of(events.events(), result.id, "task-retried"):
        assert event["exception"] == "RuntimeError('flaky')"


def test_retry_past_max_retries_without_an_exception_is_max_retries_exceeded(
    tasks: Any,
) -> None:
    from celery.exceptions import MaxRetriesExceededError

    with pytest.raises(MaxRetriesExceededError, match=r"Can't retry sched\.no_more\["):
        tasks.no_more.delay().get(timeout=10)


def test_autoretry_backs_off_then_fails_with_the_tasks_own_exception(
    tasks: Any, events: Collector
) -> None:
    result = tasks.autoretry.delay()
    with pytest.raises(ValueError, match="always"):
        result.get(timeout=15)
    got = wait_until(lambda: [e for e in events.events() if e.get("uuid") == result.id])
    assert len(_of(got, result.id, "task-retried")) == 1
    first, second = _of(got, result.id, "task-started")
    # retry_backoff=True, no jitter: the first retry waits 1 * 2**0 = 1 s
    assert second["timestamp"] - first["timestamp"] >= 0.95
    assert _of(got, result.id, "task-received")[1]["retries"] == 1


def test_a_revoked_task_is_never_started(app: Any, tasks: Any, worker: Worker) -> None:
    from celery.exceptions import TaskRevokedError

    busy = [tasks.spin.delay(1.0) for _ in range(worker.config.concurrency)]
    waiting = tasks.stamp.delay("never")
    app.control.revoke(waiting.id)
    with pytest.raises(TaskRevokedError, match="revoked"):
        waiting.get(timeout=10)
    assert [b.get(timeout=10) for b in busy] == ["finished"] * len(busy)


def test_a_revoked_eta_task_is_announced_revoked_when_its_eta_comes(
    app: Any, tasks: Any, events: Collector
) -> None:
    from celery.exceptions import TaskRevokedError

    result = tasks.stamp.apply_async(countdown=1.5)
    eta = utcnow() + timedelta(seconds=1.5)
    app.control.revoke(result.id)
    with pytest.raises(TaskRevokedError):
        result.get(timeout=10)
    revoked = wait_until(lambda: _of(events.events(), result.id, "task-revoked"))
    assert revoked[0]["timestamp"] >= (eta - timedelta(seconds=0.1)).timestamp()
    assert not _of(events.events(), result.id, "task-started")


def test_terminate_kills_the_prefork_child_running_it_and_the_worker_goes_on(
    broker_url: str, app: Any, tasks: Any, events: Collector
) -> None:
    from celery.exceptions import TaskRevokedError

    with in_process_worker(broker_url, pool="prefork", concurrency=1, events=True) as w:
        queue = w.config.queues[0]
        before = tasks.pid.apply_async(queue=queue).get(timeout=10)
        running = tasks.block.apply_async((30,), queue=queue)
        wait_until(lambda: _of(events.events(), running.id, "task-started"))
        reply = app.control.revoke(
            running.id, terminate=True, destination=[w.nodename], reply=True, timeout=2
        )
        assert reply == [{w.nodename: {"ok": f"terminate: {running.id}"}}]
        with pytest.raises(TaskRevokedError, match="terminated"):
            running.get(timeout=10)
        revoked = wait_until(lambda: _of(events.events(), running.id, "task-revoked"))
        assert revoked[0]["terminated"] is True and revoked[0]["signum"] == 15
        after = tasks.pid.apply_async(queue=queue).get(timeout=20)
        assert after != before  # a new child was forked
