"""Every kind of queue: quorum and priority queues made beforehand are consumed as they are."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from amqptool.client import Client
from amqptool.transport.existing import inspect_queue
from tests.harness import rabbitmqctl, unique, wait_until
from tests.worker_support import Collector, connect, in_process_worker, publish_task

WAIT = 20


@pytest.fixture
def vhost_url(fresh_vhost_url: str) -> Iterator[str]:
    yield fresh_vhost_url


def _vhost(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _declare(url: str, name: str, arguments: dict[str, object]) -> None:
    with connect(url) as conn:
        conn.channel().queue_declare(name, durable=True, arguments=arguments)


def _channels(vhost: str, node: str) -> list[dict[str, str]]:
    """The worker's channels (its connection is named after its node) with their prefetch."""
    fields = ["connection", "number", "prefetch_count", "global_prefetch_count", "consumer_count"]
    rows = rabbitmqctl("list_channels", "-p", vhost, *fields).splitlines()
    conns = rabbitmqctl("list_connections", "-p", vhost, "pid", "client_properties")
    ours = {line.split("\t", 1)[0] for line in conns.splitlines() if node in line}
    out = []
    for row in rows:
        cells = row.split("\t")
        if len(cells) == len(fields) and cells[0] in ours:
            out.append(dict(zip(fields, cells, strict=True)))
    return out


def test_inspect_learns_an_existing_queues_arguments(vhost_url: str) -> None:
    args = {"x-queue-type": "quorum", "x-delivery-limit": 3, "x-max-length": 100}
    _declare(vhost_url, "qq", args)
    _declare(vhost_url, "pq", {"x-max-priority": 10, "x-message-ttl": 60000})
    with connect(vhost_url) as conn:
        assert inspect_queue(conn, "missing") is None
        quorum = inspect_queue(conn, "qq")
        prio = inspect_queue(conn, "pq")
        ch = conn.channel()  # the probes left the other channels alone
        assert ch.queue_declare("qq", passive=True).name == "qq"
    assert quorum is not None and quorum.queue_type == "quorum" and quorum.arguments == args
    assert prio is not None and prio.queue_type == "classic"
    assert prio.arguments == {"x-max-priority": 10, "x-message-ttl": 60000}


def test_a_quorum_queue_made_beforehand_is_consumed_without_global_qos(vhost_url: str) -> None:
    queue = unique("quorum")
    _declare(vhost_url, queue, {"x-queue-type": "quorum", "x-delivery-limit": 5})
    with (
        in_process_worker(vhost_url, queues=[queue], concurrency=2) as worker,
        Client(url=vhost_url) as client,
    ):
        results = [client.send_task("peer.add", (i, i), queue=queue) for i in range(6)]
        assert [r.get(timeout=WAIT) for r in results] == [2 * i for i in range(6)]
        node = worker.config.nodename
        rows = wait_until(
            lambda: [r for r in _channels(_vhost(vhost_url), node) if r["consumer_count"] != "0"],
            WAIT,
            message="the worker's task channel",
        )
    task_channels = [r for r in rows if int(r["prefetch_count"])]
    assert task_channels, rows
    assert all(r["global_prefetch_count"] == "0" for r in rows), rows
    assert task_channels[0]["prefetch_count"] == str(worker.config.prefetch)
    # the client published to it as it is: still a quorum queue with its delivery limit
    with connect(vhost_url) as conn:
        shape = inspect_queue(conn, queue)
    assert shape is not None and shape.arguments["x-delivery-limit"] == 5


def test_a_classic_queue_keeps_celerys_global_qos(vhost_url: str) -> None:
    queue = unique("classic")
    with in_process_worker(vhost_url, queues=[queue]) as worker:
        node = worker.config.nodename
        rows = wait_until(
            lambda: [r for r in _channels(_vhost(vhost_url), node) if r["consumer_count"] != "0"],
            WAIT,
            message="the worker's task channel",
        )
    assert any(r["global_prefetch_count"] == str(worker.config.prefetch) for r in rows), rows


def test_a_priority_queue_delivers_higher_priorities_first(vhost_url: str) -> None:
    queue = unique("prio")
    _declare(vhost_url, queue, {"x-max-priority": 10})
    with Collector(vhost_url) as replies:
        sent = [(f"p{p}-{i}", p) for i in range(3) for p in (1, 5, 9)]
        for tag, priority in sent:  # all queued before any worker consumes
            publish_task(
                vhost_url, queue, "peer.echo", tag, reply_to=replies.name, priority=priority
            )
        with in_process_worker(vhost_url, queues=[queue], concurrency=1, prefetch_multiplier=1):

            def finished() -> list[str]:
                tags = [
                    b["result"]["args"][0] for b in replies.bodies() if b["status"] == "SUCCESS"
                ]
                return tags if len(tags) >= len(sent) else []

            done = wait_until(finished, WAIT, message="all nine results")
    priorities = [int(tag.split("-")[0][1:]) for tag in done]
    assert priorities == sorted(priorities, reverse=True), done
    assert sorted(done) == sorted(tag for tag, _ in sent)


def test_the_client_never_redeclares_a_priority_queue(vhost_url: str) -> None:
    queue = unique("prio")
    _declare(vhost_url, queue, {"x-max-priority": 10})
    with in_process_worker(vhost_url, queues=[queue]), Client(url=vhost_url) as client:
        assert client.send_task("peer.add", (1, 2), queue=queue, priority=7).get(timeout=WAIT) == 3
    with connect(vhost_url) as conn:
        shape = inspect_queue(conn, queue)
    assert shape is not None and shape.arguments == {"x-max-priority": 10}


def test_far_eta_on_a_quorum_queue_is_parked_and_runs(vhost_url: str) -> None:
    queue = unique("quorum")
    _declare(vhost_url, queue, {"x-queue-type": "quorum"})
    with (
        in_process_worker(vhost_url, queues=[queue], eta_park_threshold=1.0) as worker,
        Client(url=vhost_url) as client,
    ):
        later = client.send_task("peer.add", (20, 22), queue=queue, countdown=3)
        soon = client.send_task("peer.add", (1, 1), queue=queue)
        assert soon.get(timeout=WAIT) == 2
        assert later.get(timeout=WAIT) == 42
        assert worker.config.eta_park_threshold == 1.0
    with connect(vhost_url) as conn:
        shape = inspect_queue(conn, queue)
    assert shape is not None and shape.queue_type == "quorum"
    parked = rabbitmqctl("list_queues", "-p", _vhost(vhost_url), "name")
    assert f"amqptool.delay.{queue}." in parked  # it went through a parking queue


def test_near_eta_and_rate_limits_keep_working_on_a_quorum_queue(vhost_url: str) -> None:
    """A per-consumer prefetch of 1 that RabbitMQ will not raise: a held ETA task and
    rate-limited tasks wait in that one slot, and everything still runs."""
    import tests.peers.sched_tasks  # noqa: F401  # registers sched.limited (8/s)

    queue = unique("quorum")
    _declare(vhost_url, queue, {"x-queue-type": "quorum"})
    with (
        in_process_worker(vhost_url, queues=[queue], concurrency=1, prefetch_multiplier=1),
        Client(url=vhost_url) as client,
    ):
        later = client.send_task("peer.add", (1, 1), queue=queue, countdown=1)
        limited = [client.send_task("sched.limited", queue=queue) for _ in range(12)]
        now = client.send_task("peer.add", (2, 2), queue=queue)
        assert later.get(timeout=WAIT) == 2 and now.get(timeout=WAIT) == 4
        stamps = [r.get(timeout=WAIT) for r in limited]
    assert len(stamps) == 12 and stamps == sorted(stamps)


def test_x_delivery_limit_is_respected(vhost_url: str) -> None:
    """A task whose pool process always dies is requeued (reject_on_worker_lost) until the
    quorum queue's x-delivery-limit dead-letters it, instead of looping for ever."""
    import tests.projects.ourtasks  # noqa: F401  # registers ourtasks.always_dies

    queue, dead = unique("quorum"), unique("dead")
    with connect(vhost_url) as conn:
        ch = conn.channel()
        ch.queue_declare(dead, durable=True)
        args = {"x-queue-type": "quorum", "x-delivery-limit": 1}
        args |= {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead}
        ch.queue_declare(queue, durable=True, arguments=args)
    with (
        in_process_worker(vhost_url, queues=[queue], pool="prefork", concurrency=1) as worker,
        Client(url=vhost_url) as client,
    ):
        doomed = client.send_task("ourtasks.always_dies", queue=queue, ignore_result=True)
        with connect(vhost_url) as conn:
            ch = conn.channel()
            got = wait_until(lambda: ch.get(dead, no_ack=True), WAIT, message="a dead letter")
        assert got is not None and got.headers["id"] == doomed.id
        assert client.send_task("peer.add", (1, 2), queue=queue).get(timeout=WAIT) == 3
        assert worker.error is None
