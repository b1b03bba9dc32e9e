"""A publisher with confirms loses nothing when the node holding its connection and the quorum
queue's leader is killed mid-stream: what was not confirmed is sent again on another node.

While the queue elects a new leader the broker may nack a publish: the client raises
:class:`PublishError` for that batch (the broker did not take it, and the caller knows), and
this publisher sends the batch again, as an application would. So every task the client
reported sent is in the queue; the queue may also hold parts of a nacked batch.
"""

from __future__ import annotations

import logging
import threading

import pytest

from amqptool.client import Client
from amqptool.codec.envelope import Envelope
from amqptool.errors import PublishError
from amqptool.settings import BrokerSettings
from amqptool.transport import Connection
from tests.cluster import Cluster
from tests.faults.test_cluster_drill import declare_quorum_queue
from tests.harness import unique, wait_until
from tests.load import record_figures

pytestmark = [pytest.mark.faults, pytest.mark.slow]

BATCH = 200


def task_ids_in(url: str, queue: str) -> list[str]:
    """The task id of every message in ``queue`` (drained)."""
    ids: list[str] = []
    with Connection(BrokerSettings.from_url(url, environ={}), name="drain") as conn:
        ch = conn.channel()
        expected = ch.queue_declare(queue, passive=True).message_count

        def take(env: Envelope) -> None:
            ids.append(str(env.properties.headers.get("id")))

        ch.consume(queue, take, no_ack=True)

        def drained() -> bool:
            conn.process_events(0.1)
            return len(ids) >= expected

        wait_until(drained, 60, message=f"{expected} messages read back")
    return ids


@pytest.mark.timeout(300)
def test_confirmed_publishes_survive_the_kill_of_their_node_and_queue_leader(
    cluster: Cluster, cluster_vhost: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="amqptool")
    queue = unique("cluster-publish")
    declare_quorum_queue(cluster.nodes[0].url(cluster_vhost), queue)
    leader = cluster.nodes[cluster.leader_index(cluster_vhost, queue)]
    confirmed: list[str] = []
    batches = [0]
    nacked = [0]
    errors: list[BaseException] = []
    stop = threading.Event()
    client = Client(url=cluster.urls(cluster_vhost, prefer=cluster.index_of(leader.nodename)))

    def publish() -> None:
        try:
            while not stop.is_set():
                calls = [("relia.mark", (i,)) for i in range(BATCH)]
                try:
                    sent = client.send_many(calls, queue=queue)
                except PublishError:
                    nacked[0] += 1  # not taken (no leader yet): send the batch again
                    continue
                confirmed.extend(r.id for r in sent)
                batches[0] += 1
        except BaseException as exc:  # surfaced on the test's thread
            errors.append(exc)

    publisher = threading.Thread(target=publish, name="publisher", daemon=True)
    publisher.start()
    try:
        wait_until(lambda: batches[0] >= 5 or errors, 60, message="five batches confirmed")
        at_kill = batches[0]
        leader.kill()
        wait_until(
            lambda: batches[0] >= at_kill + 5 or errors, 120, message="batches after the kill"
        )
    finally:
        stop.set()
        publisher.join(60)
        client.close()
    assert not errors, errors
    retries = sum(1 for r in caplog.records if "retrying in" in r.getMessage())
    assert retries >= 1  # the kill did land mid-stream: the client had to send again
    survivor = cluster.live().url(cluster_vhost)
    in_queue = task_ids_in(survivor, queue)
    lost = set(confirmed) - set(in_queue)
    record_figures(
        "cluster_publish_confirms",
        {
            "tasks_pushed": len(confirmed),
            "node_kills": 1,
            "failovers": 1,
            "tasks_lost": len(lost),
            "duplicate_messages": len(in_queue) - len(set(in_queue)),
            "nacked_batches_sent_again": nacked[0],
            "publish_retries": retries,
        },
    )
    assert not lost, f"{len(lost)} confirmed message(s) missing, e.g. {sorted(lost)[:3]}"
    # Beyond the confirmed ones, only parts of nacked batches.
    assert len(set(in_queue) - set(confirmed)) < BATCH * nacked[0] or set(in_queue) == set(
        confirmed
    )
