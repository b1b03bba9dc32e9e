"""The three-node test cluster forms, replicates a quorum queue, and serves it from any node."""

from __future__ import annotations

import pytest

from amqptool.codec.envelope import Envelope
from amqptool.settings import BrokerSettings
from amqptool.transport import Connection
from tests.cluster import Cluster
from tests.harness import unique, wait_until

pytestmark = [pytest.mark.faults]


def connect(url: str) -> Connection:
    return Connection(BrokerSettings.from_url(url, environ={}), name="cluster-probe")


def test_three_nodes_form_one_cluster_and_replicate_a_quorum_queue(
    cluster: Cluster, cluster_vhost: str
) -> None:
    names = [n.nodename for n in cluster.nodes]
    for node in cluster.nodes:  # every node sees the same three members running
        assert cluster.running_nodes(via=node) == sorted(names)
    queue = unique("formed")
    with connect(cluster.nodes[0].url(cluster_vhost)) as conn:
        ch = conn.channel()
        ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
        ch.publish(Envelope(body=b"hello", exchange="", routing_key=queue))
        ch.queue_declare(queue, passive=True)
    leader, members = cluster.queue_members(cluster_vhost, queue)
    assert sorted(members) == sorted(names)
    assert leader in names
    got: list[bytes] = []
    with connect(cluster.nodes[2].url(cluster_vhost)) as conn:  # read it on another node
        ch = conn.channel()
        ch.consume(queue, lambda env: got.append(env.body), no_ack=True)

        def arrived() -> bool:
            conn.process_events(0.1)
            return bool(got)

        wait_until(arrived, 20, message="the message on c3")
    assert got == [b"hello"]


def test_a_killed_node_leaves_the_running_set_and_rejoins_with_its_data(
    cluster: Cluster, cluster_vhost: str
) -> None:
    queue = unique("rejoin")
    with connect(cluster.nodes[0].url(cluster_vhost)) as conn:
        conn.channel().queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    victim = cluster.nodes[cluster.leader_index(cluster_vhost, queue)]
    victim.kill()
    others = sorted(n.nodename for n in cluster.nodes if n is not victim)
    wait_until(lambda: cluster.running_nodes() == others, 30, message="two nodes running")
    new_leader = cluster.nodes[cluster.leader_index(cluster_vhost, queue)]
    assert new_leader is not victim  # the survivors elected a new leader
    victim.boot(fresh=False)
    cluster.wait_formed()
    assert sorted(cluster.queue_members(cluster_vhost, queue)[1]) == sorted(
        n.nodename for n in cluster.nodes
    )
