"""ETA and countdown in the running worker: held in memory near term, parked on the broker
beyond ``--eta-park-threshold``, never run early, and not lost when the worker dies."""

from __future__ import annotations

import signal
from datetime import timedelta

import tests.peers.sched_tasks  # noqa: F401  # registers sched.*
from amqptool.codec.times import utcnow
from amqptool.transport.delayed import delay_queue_name
from tests.harness import rabbitmqctl, unique, wait_until
from tests.worker_support import Collector, WorkerProcess, connect, in_process_worker, publish_task


def _count(url: str, queue: str) -> int:
    with connect(url) as conn:
        return conn.channel().queue_declare(queue, passive=True).message_count


def _unacked(url: str, queue: str) -> int:
    vhost = url.rsplit("/", 1)[1]
    for line in rabbitmqctl(
        "list_queues", "-p", vhost, "name", "messages_unacknowledged"
    ).splitlines():
        name, _, count = line.partition("\t")
        if name == queue:
            return int(count)
    raise AssertionError(f"no queue {queue}")


def test_near_etas_are_held_with_prefetch_raised_far_ones_parked_and_none_run_early(
    broker_url: str,
) -> None:
    with (
        in_process_worker(broker_url, concurrency=2, eta_park_threshold=2) as w,
        Collector(broker_url) as replies,
    ):
        q = w.config.queues[0]
        base = w.consumer.link.prefetch
        near_eta = utcnow() + timedelta(seconds=1.5)
        far_eta = utcnow() + timedelta(seconds=4.5)
        near = publish_task(broker_url, q, "sched.stamp", reply_to=replies.name, eta=near_eta)
        far = publish_task(broker_url, q, "sched.stamp", reply_to=replies.name, eta=far_eta)

        wait_until(lambda: len(w.consumer.scheduled_infos()) == 2, message="2 scheduled")
        by_id = {item["request"]["id"]: item for item in w.consumer.scheduled_infos()}
        assert by_id[near.id]["request"]["acknowledged"] is False  # held, unacked
        assert by_id[far.id]["request"]["acknowledged"] is True  # parked: acked after confirm
        assert w.consumer.link.prefetch == base + 1  # one held in memory
        assert _count(broker_url, delay_queue_name(q, 4)) == 1  # 4.5 s: the 4 s bucket

        assert replies.wait_result(near.id)["result"] >= near_eta.timestamp()
        assert replies.wait_result(far.id)["result"] >= far_eta.timestamp()
        assert w.consumer.link.prefetch == base
        assert w.consumer.scheduled_infos() == []


def test_a_parked_long_eta_survives_a_worker_restart_and_runs_once_not_early(
    broker_url: str,
) -> None:
    queue = unique("parkq")
    args = ("-A", "tests.peers.sched_tasks", "-P", "threads", "-l", "INFO")
    with Collector(broker_url) as replies:
        with WorkerProcess(broker_url, *args, "--eta-park-threshold", "2", queue=queue) as first:
            eta = utcnow() + timedelta(seconds=6)
            msg = publish_task(broker_url, queue, "sched.stamp", reply_to=replies.name, eta=eta)
            wait_until(lambda: "parked on the broker" in first.output(), message="parked")
            wait_until(lambda: _unacked(broker_url, queue) == 0, message="the original acked")
            first.signal(signal.SIGKILL)
            first.wait()
        assert _count(broker_url, queue) == 0  # acked: only the parked copy is left
        with WorkerProcess(broker_url, *args, "--eta-park-threshold", "2", queue=queue):
            got = replies.wait_result(msg.id, timeout=15)
            assert got["status"] == "SUCCESS" and got["result"] >= eta.timestamp()
            assert _count(broker_url, queue) == 0
            assert _count(broker_url, delay_queue_name(queue, 4)) == 0
            assert len(replies.results(msg.id)) == 1
        with connect(broker_url) as conn:
            conn.channel().queue_delete(queue)
