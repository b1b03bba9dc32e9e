"""The broker's VM killed (``kill -9``) in the middle of 20,000 ``send_task`` calls, then booted
again on the same data: every call that returned has its task in the queue.

Runs on a node of its own (``amqptool-p@localhost``, ports 5701/5702/25701) so that no other
test loses its broker."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from amqptool.client import Client
from amqptool.errors import ConnectionFailedError
from tests.brokers import SecondBroker, file_lock
from tests.load import record_figures
from tests.worker_support import connect

SENDS = 20_000
KILL_AFTER = 5_000  # returned sends before the kill
QUEUE = "kill-drill"


@pytest.fixture(scope="module")
def own_node() -> Iterator[SecondBroker]:
    base = Path("/tmp/amqptool-broker-p")
    base.mkdir(parents=True, exist_ok=True)
    with file_lock(base / "use.lock", timeout=600):
        node = SecondBroker(
            base,
            nodename="amqptool-p@localhost",
            amqp_port=5701,
            amqps_port=5702,
            dist_port=25701,
        )
        node.start()
        try:
            yield node
        finally:
            node.stop()


def queued_task_ids(url: str) -> list[str]:
    ids: list[str] = []
    with connect(url) as conn:
        ch = conn.channel()
        ch.qos(5000)
        for env in ch.iter_messages(QUEUE, no_ack=True, inactivity_timeout=2.0):
            if env is None:
                break
            ids.append(str(env.headers.get("id")))
        ch.cancel_iter()
    return ids


@pytest.mark.timeout(900)
def test_every_returned_send_survives_a_broker_kill(own_node: SecondBroker) -> None:
    url = own_node.url("/")
    with connect(url) as conn:  # a rerun starts from an empty queue
        ch = conn.channel()
        ch.queue_declare(QUEUE, durable=True)
        ch.queue_purge(QUEUE)
    returned: list[str] = []
    failed = 0
    down: list[float] = []
    killer = threading.Thread(target=lambda: down.append(own_node.kill_and_restart()))
    policy = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5}
    with Client(url=url) as client:
        for i in range(SENDS):
            if len(returned) == KILL_AFTER and not killer.is_alive() and not down:
                killer.start()
            try:
                result = client.send_task("peer.add", [i, i], queue=QUEUE, retry_policy=policy)
            except ConnectionFailedError:
                failed += 1
                continue
            returned.append(result.id)
    killer.join(180)
    assert down, "the node was not killed and restarted"
    queued = queued_task_ids(url)
    missing = set(returned) - set(queued)
    record_figures(
        "publish_broker_killed",
        {
            "tasks_pushed": SENDS,
            "broker_restarts": 1,
            "sends_returned": len(returned),
            "sends_refused_while_down": failed,
            "tasks_lost": len(missing),
            "in_queue_after_restart": len(queued),
            "resent_twice": len(queued) - len(set(queued)),
            "broker_down_s": round(down[0], 1),
        },
    )
    assert len(returned) > KILL_AFTER
    assert not missing, f"{len(missing)} of {len(returned)} returned sends are not in the queue"
