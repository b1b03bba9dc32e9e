"""``amqptool worker`` as a real process: shutdown, lost connections, lost pool children."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import ROOT, unique, wait_until
from tests.worker_support import (
    Collector,
    WorkerProcess,
    close_connection_named,
    connect,
    in_process_worker,
    publish_task,
)

pytestmark = pytest.mark.slow


def started_ids(ev: Collector) -> set[str]:
    return {e["uuid"] for e in ev.events() if e["type"] == "task-started"}


def test_warm_shutdown_finishes_running_tasks_and_gives_back_the_rest(broker_url: str) -> None:
    with (
        Collector(broker_url) as replies,
        Collector(broker_url, bind=("celeryev", "#")) as ev,
        WorkerProcess(broker_url, "-P", "prefork", "-c", "2", "-E") as wp,
    ):
        sent = [
            publish_task(broker_url, wp.queue, "peer.sleep", 1, reply_to=replies.name)
            for _ in range(6)
        ]
        wait_until(lambda: len(started_ids(ev)) >= 2, 15, message="two tasks running")
        wp.signal(signal.SIGTERM)
        assert wp.wait(30) == 0
        running = started_ids(ev)
        assert any(e["type"] == "worker-offline" for e in ev.events())
        for msg in sent:
            if msg.id in running:
                assert replies.wait_result(msg.id)["status"] == "SUCCESS"
        with connect(broker_url) as conn:
            left = conn.channel().queue_declare(wp.queue, passive=True).message_count
        assert left == len(sent) - len(running)
        # ... and none is lost: the next worker runs the rest.
        with WorkerProcess(broker_url, "-P", "threads", queue=wp.queue):
            for msg in sent:
                assert replies.wait_result(msg.id, timeout=15)["status"] == "SUCCESS"


def test_a_second_signal_is_a_cold_shutdown_that_requeues_acks_late_tasks(
    broker_url: str,
) -> None:
    with (
        Collector(broker_url, bind=("celeryev", "task.#")) as ev,
        WorkerProcess(broker_url, "-P", "prefork", "-c", "1", "-E", "-l", "INFO") as wp,
    ):
        msg = publish_task(broker_url, wp.queue, "extra.slow_late", 30)
        wait_until(lambda: msg.id in started_ids(ev), 15, message="the task to start")
        wp.signal(signal.SIGTERM)
        wait_until(lambda: "Warm shutdown" in wp.output(), 10, message="warm shutdown")
        wp.signal(signal.SIGTERM)
        assert wp.wait(15) == 1
        with connect(broker_url) as conn:
            back = conn.channel().queue_declare(wp.queue, passive=True).message_count
        assert back == 1


def test_a_cut_connection_is_reestablished_and_unacked_tasks_are_redelivered(
    broker_url: str,
) -> None:
    with in_process_worker(broker_url, pool="solo") as w, Collector(broker_url) as replies:
        q = w.config.queues[0]
        # Long enough that the cut (two rabbitmqctl calls, seconds each on a loaded machine)
        # lands while it runs and the second task still waits, unacked, in the pool's lookahead.
        busy = publish_task(broker_url, q, "peer.sleep", 10.0, reply_to=replies.name)
        queued = publish_task(broker_url, q, "extra.whoami", reply_to=replies.name)
        wait_until(lambda: w.consumer.active.get(1) and w.consumer.active[1].started)
        # and the second was delivered (on a loaded machine it can come after the cut otherwise)
        wait_until(lambda: 2 in w.consumer.active, message="the second task to be delivered")
        close_connection_named(w.connection_name)
        assert replies.wait_result(busy.id, timeout=30)["status"] == "SUCCESS"
        again = replies.wait_result(queued.id, timeout=30)
        assert again["status"] == "SUCCESS"
        assert again["result"]["delivery_info"]["redelivered"] is True
        assert w.consumer.link.generation == 2


def test_a_dead_pool_child_fails_its_task_or_requeues_it(broker_url: str, tmp_path: Path) -> None:
    with (
        Collector(broker_url) as replies,
        WorkerProcess(broker_url, "-P", "prefork", "-c", "2") as wp,
    ):
        lost = publish_task(broker_url, wp.queue, "extra.die", 3, reply_to=replies.name)
        failure = replies.wait_result(lost.id, timeout=20)
        assert failure["status"] == "FAILURE"
        assert failure["result"]["exc_type"] == "WorkerLostError"
        assert "exitcode 3" in failure["result"]["exc_message"][0]
        marker = str(tmp_path / "died-once")
        again = publish_task(
            broker_url, wp.queue, "extra.die_requeue", marker, reply_to=replies.name
        )
        assert replies.wait_result(again.id, timeout=20)["result"] == "survived"
        ok = publish_task(broker_url, wp.queue, "peer.add", 1, 2, reply_to=replies.name)
        assert replies.wait_result(ok.id, timeout=20)["result"] == 3
        # A child's state updates and retries reach the broker through the parent too.
        progress = publish_task(broker_url, wp.queue, "extra.progress", 2, reply_to=replies.name)
        replies.wait_result(progress.id, "SUCCESS", timeout=20)
        states = [r["status"] for r in replies.results(progress.id)]
        assert states == ["STARTED", "PROGRESS", "PROGRESS", "SUCCESS"]
        flaky = publish_task(broker_url, wp.queue, "peer.flaky", 1, reply_to=replies.name)
        assert replies.wait_result(flaky.id, "SUCCESS", timeout=20)["result"] == 1


def test_amqp_heartbeats_keep_flowing_during_a_long_task(broker_url: str) -> None:
    url = broker_url + "?heartbeat=1"
    with Collector(broker_url) as replies, WorkerProcess(url, "-P", "solo", "-l", "INFO") as wp:
        msg = publish_task(broker_url, wp.queue, "peer.sleep", 4, reply_to=replies.name)
        assert replies.wait_result(msg.id, timeout=20)["status"] == "SUCCESS"
        assert "Connection to broker lost" not in wp.output()


def test_an_unimportable_task_module_is_a_usage_error(cli_env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "worker", "-A", unique("no_such_module")],
        capture_output=True,
        text=True,
        env=cli_env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.startswith("error: cannot import task module")
        and "Traceback" not in proc.stderr
    )


def test_a_deleted_queue_is_declared_again_and_consumed(broker_url: str) -> None:
    with in_process_worker(broker_url) as w, Collector(broker_url) as replies:
        q = w.config.queues[0]
        with connect(broker_url) as conn:
            conn.channel().queue_delete(q)
        wait_until(lambda: w.consumer.link.generation == 2 and w.consumer.consuming)
        msg = publish_task(broker_url, q, "peer.add", 2, 3, reply_to=replies.name)
        assert replies.wait_result(msg.id)["result"] == 5


def test_a_follow_up_to_a_missing_exchange_costs_no_reconnect(broker_url: str) -> None:
    with in_process_worker(broker_url, concurrency=1) as w, Collector(broker_url) as replies:
        q = w.config.queues[0]
        lost = {"task": "peer.add", "args": [1], "options": {"exchange": unique("nope")}}
        lost["options"]["routing_key"] = "x"
        first = publish_task(broker_url, q, "peer.add", 1, 1, reply_to=replies.name)
        first_cb = publish_task(
            broker_url, q, "peer.add", 2, 2, reply_to=replies.name, callbacks=[lost]
        )
        replies.wait_result(first.id)
        replies.wait_result(first_cb.id)
        after = publish_task(broker_url, q, "peer.add", 3, 3, reply_to=replies.name)
        assert replies.wait_result(after.id)["result"] == 6
        assert w.consumer.link.generation == 1
