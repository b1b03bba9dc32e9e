"""Time limits and rate limits on a real broker, in the prefork and threads pools.

Time limits come from the message's ``timelimit`` header, the ``time_limit`` control command
and the worker's ``--time-limit`` default. Rate limits are checked over a window with bounds
(at most about N per second), never exact times.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import tests.peers.sched_tasks  # noqa: F401  # registers sched.*
from amqptool.control.client import ControlClient
from amqptool.settings import BrokerSettings
from tests.harness import wait_until
from tests.worker_support import Collector, connect, in_process_worker, publish_task
from worker import Worker


@pytest.fixture(scope="module")
def prefork(broker_url: str) -> Iterator[Worker]:
    with in_process_worker(broker_url, pool="prefork", concurrency=1, events=True) as w:
        yield w


@pytest.fixture(scope="module")
def threads(broker_url: str) -> Iterator[Worker]:
    with in_process_worker(broker_url, pool="threads", concurrency=4) as w:
        yield w


@pytest.fixture
def replies(broker_url: str) -> Iterator[Collector]:
    with Collector(broker_url) as c:
        yield c


def control(url: str, worker: Worker, method: str, **arguments: Any) -> Any:
    with ControlClient(BrokerSettings.from_url(url, environ={})) as client:
        return client.call(method, arguments, destination=[worker.nodename])[worker.nodename]


def run(url: str, w: Worker, replies: Collector, name: str, *args: Any, **opts: Any) -> Any:
    msg = publish_task(url, w.config.queues[0], name, *args, reply_to=replies.name, **opts)
    return replies.wait_result(msg.id, timeout=15)


# ---------------------------------------------------------------------- time limits


def test_prefork_soft_limit_raises_inside_the_task_which_may_catch_it(
    broker_url: str, prefork: Worker, replies: Collector
) -> None:
    got = run(broker_url, prefork, replies, "sched.soft_caught", 10, soft_time_limit=0.3)
    assert (got["status"], got["result"]) == ("SUCCESS", "cleaned up")


def test_prefork_hard_limit_kills_the_child_the_task_fails_and_the_worker_goes_on(
    broker_url: str, prefork: Worker, replies: Collector
) -> None:
    with Collector(broker_url, bind=("celeryev", "task.#")) as events:
        before = run(broker_url, prefork, replies, "sched.pid")["result"]
        got = run(broker_url, prefork, replies, "sched.block", 30, time_limit=0.5)
        assert got["status"] == "FAILURE"
        assert got["result"] == {
            "exc_type": "TimeLimitExceeded",
            "exc_message": [0.5],
            "exc_module": "celery.exceptions",
        }
        failed = wait_until(lambda: [e for e in events.events() if e["type"] == "task-failed"])
        assert failed[0]["exception"] == "TimeLimitExceeded(0.5)"
    after = run(broker_url, prefork, replies, "sched.pid")["result"]
    assert after != before  # the killed child was replaced


def test_threads_soft_limit_is_raised_in_the_tasks_thread(
    broker_url: str, threads: Worker, replies: Collector
) -> None:
    caught = run(broker_url, threads, replies, "sched.soft_caught", 10, soft_time_limit=0.3)
    assert caught["result"] == "cleaned up"
    uncaught = run(broker_url, threads, replies, "sched.spin", 10, soft_time_limit=0.3)
    assert uncaught["status"] == "FAILURE"
    assert uncaught["result"]["exc_type"] == "SoftTimeLimitExceeded"


def test_threads_hard_limit_fails_a_task_running_python_code(
    broker_url: str, threads: Worker, replies: Collector
) -> None:
    got = run(broker_url, threads, replies, "sched.spin", 10, time_limit=0.4)
    assert got["status"] == "FAILURE"
    assert (got["result"]["exc_type"], got["result"]["exc_message"]) == (
        "TimeLimitExceeded",
        [0.4],
    )


def test_time_limit_control_command_sets_a_task_types_limits_at_run_time(
    broker_url: str, threads: Worker, replies: Collector
) -> None:
    assert control(broker_url, threads, "time_limit", task_name="nope.nope", soft=1) == {
        "error": "unknown task"
    }
    reply = control(broker_url, threads, "time_limit", task_name="sched.soft_caught", soft=0.3)
    assert reply == {"ok": "time limits set successfully"}
    try:
        assert run(broker_url, threads, replies, "sched.soft_caught", 10)["result"] == "cleaned up"
    finally:
        control(broker_url, threads, "time_limit", task_name="sched.soft_caught")
    assert run(broker_url, threads, replies, "sched.soft_caught", 0.2)["result"] == "finished"


def test_the_workers_time_limit_applies_to_every_task(broker_url: str) -> None:
    with (
        in_process_worker(broker_url, pool="threads", concurrency=1, time_limit=0.4) as w,
        Collector(broker_url) as replies,
    ):
        got = run(broker_url, w, replies, "sched.spin", 10)
        assert got["result"]["exc_type"] == "TimeLimitExceeded"
        stats = control(broker_url, w, "stats")
        assert stats["pool"]["timeouts"] == [0, 0.4]


def test_max_tasks_per_child_replaces_a_prefork_child_after_n_tasks(broker_url: str) -> None:
    with (
        in_process_worker(broker_url, pool="prefork", concurrency=1, max_tasks_per_child=2) as w,
        Collector(broker_url) as replies,
    ):
        pids = [run(broker_url, w, replies, "sched.pid")["result"] for _ in range(5)]
        assert max(pids.count(p) for p in pids) <= 2 and len(set(pids)) >= 3
        assert control(broker_url, w, "stats")["pool"]["max-tasks-per-child"] == 2


# ---------------------------------------------------------------------- rate limits


def test_a_rate_limit_of_n_per_second_runs_at_most_about_n_per_second(
    broker_url: str, threads: Worker, replies: Collector
) -> None:
    q = threads.config.queues[0]
    sent = [publish_task(broker_url, q, "sched.limited", reply_to=replies.name) for _ in range(9)]
    starts = sorted(replies.wait_result(m.id, timeout=15)["result"] for m in sent)
    # "8/s", a bucket of one: the first at once, then one every 1/8 s, so 9 take >= 1 s
    assert starts[-1] - starts[0] >= 0.9
    for first in starts:  # any half second holds at most 1 + 8 * 0.5 starts (+1 for jitter)
        assert sum(1 for s in starts if first <= s < first + 0.5) <= 6


def test_rate_limit_control_holds_tasks_without_dropping_them_and_0_removes_it(
    broker_url: str, threads: Worker, replies: Collector
) -> None:
    reply = control(broker_url, threads, "rate_limit", task_name="sched.stamp", rate_limit="1/m")
    assert reply == {"ok": "new rate limit set successfully"}
    try:
        q = threads.config.queues[0]
        sent = [publish_task(broker_url, q, "sched.stamp", reply_to=replies.name) for _ in range(3)]
        replies.wait_result(sent[0].id)
        held = wait_until(
            lambda: len(control(broker_url, threads, "reserved")) == 2, message="2 held"
        )
        assert held
    finally:
        reply = control(broker_url, threads, "rate_limit", task_name="sched.stamp", rate_limit=0)
    assert reply == {"ok": "rate limit disabled successfully"}
    for msg in sent[1:]:
        assert replies.wait_result(msg.id, timeout=5)["status"] == "SUCCESS"


def test_tasks_held_by_a_rate_limit_go_back_to_the_queue_on_warm_shutdown(
    broker_url: str,
) -> None:
    with Collector(broker_url) as replies:
        with in_process_worker(broker_url, pool="threads", concurrency=2) as w:
            q = w.config.queues[0]
            control(broker_url, w, "rate_limit", task_name="sched.stamp", rate_limit="1/h")
            sent = [
                publish_task(broker_url, q, "sched.stamp", reply_to=replies.name) for _ in range(3)
            ]
            replies.wait_result(sent[0].id)
            wait_until(lambda: len(w.consumer.gate.waiting()) == 2, message="2 held")
        with connect(broker_url) as conn:
            assert conn.channel().queue_declare(q, passive=True).message_count == 2
            conn.channel().queue_delete(q)
