"""Revokes in the running worker: kept across a restart with ``--statedb``, learnt from the
running workers at startup (``hello``), and by stamped header."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import tests.peers.sched_tasks  # noqa: F401  # registers sched.*
from amqptool.control.client import ControlClient
from amqptool.settings import BrokerSettings
from tests.harness import wait_until
from tests.worker_support import Collector, in_process_worker, publish_task
from worker import Worker


def control(url: str, worker: Worker, method: str, **arguments: Any) -> Any:
    with ControlClient(BrokerSettings.from_url(url, environ={})) as client:
        return client.call(method, arguments, destination=[worker.nodename])[worker.nodename]


def test_statedb_keeps_the_revoked_ids_across_a_restart(broker_url: str, tmp_path: Path) -> None:
    statedb = str(tmp_path / "worker.state")
    task_id = str(uuid.uuid4())
    with in_process_worker(broker_url, statedb=statedb, mingle=False) as first:
        queue = first.config.queues[0]
        reply = control(broker_url, first, "revoke", task_id=[task_id])
        assert reply == {"ok": f"tasks {{'{task_id}'}} flagged as revoked"}
    saved = json.loads(Path(statedb).read_text())
    assert [rec[0] for rec in saved["revoked"]] == [task_id]
    with (
        in_process_worker(broker_url, statedb=statedb, mingle=False, queues=[queue]) as second,
        Collector(broker_url) as replies,
    ):
        assert control(broker_url, second, "revoked") == [task_id]
        publish_task(broker_url, queue, "sched.stamp", id=task_id, reply_to=replies.name)
        got = replies.wait_result(task_id)
        assert (got["status"], got["result"]["exc_message"]) == ("REVOKED", ["revoked"])


def test_a_worker_starting_next_to_running_ones_learns_their_revokes(broker_url: str) -> None:
    task_id = str(uuid.uuid4())
    with in_process_worker(broker_url) as running:
        control(broker_url, running, "revoke", task_id=task_id)
        with in_process_worker(broker_url) as newcomer, Collector(broker_url) as replies:
            assert task_id in newcomer.consumer.state.revoked  # learnt before consuming
            q = newcomer.config.queues[0]
            publish_task(broker_url, q, "sched.stamp", id=task_id, reply_to=replies.name)
            assert replies.wait_result(task_id)["status"] == "REVOKED"
        hello = control(broker_url, running, "hello", from_node="x@y", revoked=["z1"])
        assert hello["revoked"][-1] == "z1" and task_id in hello["revoked"]
        assert isinstance(hello["clock"], int)
        assert control(broker_url, running, "hello", from_node=running.nodename) is None


def test_revoke_by_stamped_headers_revokes_the_tasks_stamped_so(broker_url: str) -> None:
    with in_process_worker(broker_url) as w, Collector(broker_url) as replies:
        reply = control(broker_url, w, "revoke_by_stamped_headers", headers=["mtask_id=batch-1"])
        assert reply == {
            "ok": "headers {'mtask_id': 'batch-1'} flagged as revoked, but not terminated"
        }
        q = w.config.queues[0]
        stamped = {"stamped_headers": ["mtask_id"], "reply_to": replies.name}
        hit = publish_task(broker_url, q, "sched.stamp", stamps={"mtask_id": "batch-1"}, **stamped)
        miss = publish_task(broker_url, q, "sched.stamp", stamps={"mtask_id": "batch-2"}, **stamped)
        assert replies.wait_result(hit.id)["status"] == "REVOKED"
        assert replies.wait_result(miss.id)["status"] == "SUCCESS"


def test_revoke_by_stamped_headers_with_terminate_stops_a_running_prefork_task(
    broker_url: str,
) -> None:
    with (
        in_process_worker(broker_url, pool="prefork", concurrency=1) as w,
        Collector(broker_url) as replies,
    ):
        msg = publish_task(
            broker_url,
            w.config.queues[0],
            "sched.block",
            30,
            stamped_headers=["mtask_id"],
            stamps={"mtask_id": "b9"},
            reply_to=replies.name,
        )
        wait_until(lambda: w.consumer.executing == 1, message="the task to start")
        reply = control(
            broker_url, w, "revoke_by_stamped_headers", headers={"mtask_id": "b9"}, terminate=True
        )
        assert reply == {"ok": "headers defaultdict(<class 'set'>, {'mtask_id': {'b9'}}) revoked"}
        got = replies.wait_result(msg.id)
        assert (got["status"], got["result"]["exc_message"]) == ("REVOKED", ["terminated"])
