"""The prefork pool keeps several jobs in each child's pipe (fewer round trips per task), but
a long task holds none of them back: jobs behind it are taken back and run elsewhere, and a
revoke reaches a job still waiting in a pipe."""

from __future__ import annotations

from typing import Any

import pytest

from amqptool.control.client import ControlClient
from amqptool.settings import BrokerSettings
from tests.harness import unique, wait_until
from tests.worker_support import Collector, connect, in_process_worker, publish_task
from worker import Worker

pytestmark = pytest.mark.slow


def control(url: str, worker: Worker, method: str, **arguments: Any) -> Any:
    with ControlClient(BrokerSettings.from_url(url, environ={})) as client:
        return client.call(method, arguments, destination=[worker.nodename])[worker.nodename]


def test_short_tasks_do_not_wait_behind_a_long_one(broker_url: str) -> None:
    q = unique("wq")
    with connect(broker_url) as conn:
        conn.channel().queue_declare(q, durable=True)  # as the worker declares it
    with Collector(broker_url) as replies:
        # all waiting before the worker starts: they are dispatched in one go, one child
        # getting the long task and short ones queued behind it
        long = publish_task(broker_url, q, "peer.sleep", 20, reply_to=replies.name)
        short = [
            publish_task(broker_url, q, "peer.add", i, i, reply_to=replies.name) for i in range(12)
        ]
        with in_process_worker(
            broker_url, pool="prefork", concurrency=2, prefetch_multiplier=8, queues=[q]
        ) as w:
            for i, msg in enumerate(short):  # all of them while the long task still runs
                assert replies.wait_result(msg.id, timeout=15)["result"] == 2 * i
            assert replies.results(long.id) == []
            control(broker_url, w, "revoke", task_id=long.id, terminate=True)
    with connect(broker_url) as conn:
        conn.channel().queue_delete(q)


def test_a_revoke_reaches_a_job_waiting_in_a_child_pipe(broker_url: str) -> None:
    with (
        in_process_worker(broker_url, pool="prefork", concurrency=1, prefetch_multiplier=8) as w,
        Collector(broker_url) as replies,
    ):
        q = w.config.queues[0]
        first = publish_task(broker_url, q, "peer.sleep", 1.5, reply_to=replies.name)
        behind = [
            publish_task(broker_url, q, "peer.add", i, 1, reply_to=replies.name) for i in range(3)
        ]
        wait_until(lambda: w.consumer.executing >= 1, 15, message="the first task started")
        control(broker_url, w, "revoke", task_id=behind[0].id)  # next in line, in the pipe
        assert replies.wait_result(first.id, timeout=15)["status"] == "SUCCESS"
        assert replies.wait_result(behind[0].id)["status"] == "REVOKED"
        assert replies.wait_result(behind[1].id)["result"] == 2
        assert replies.wait_result(behind[2].id)["result"] == 3
