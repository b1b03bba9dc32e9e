"""ControlClient against the real broker: the wire it writes, when it stops waiting, threads.

Multi-node behaviour uses small pidbox responders written here over our transport (each with
its own connection and thread, on a vhost of their own); interop uses the real Celery peer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from amqptool.codec.control import (
    CONTROL_EXCHANGE,
    QUEUE_ARGUMENTS,
    REPLY_EXCHANGE,
    ControlRequest,
    decode_request,
    encode_reply,
    node_queue_name,
)
from amqptool.codec.envelope import Envelope
from amqptool.codec.serialization import json_loads
from amqptool.control import ControlClient
from amqptool.settings import BrokerSettings
from amqptool.transport import Connection
from tests import harness

# Calls that should end early get a timeout far beyond any load here: that they return in less
# than half of it proves they did not wait for it (how fast they return is in bench/bench_control).
LONG = 60.0


class FakeNode(threading.Thread):
    """A minimal pidbox responder: answers every request meant for it after ``delay`` s."""

    def __init__(self, url: str, nodename: str, *, delay: float = 0.0, reply: Any = None) -> None:
        super().__init__(daemon=True, name=f"fake-{nodename}")
        self.url = url
        self.nodename = nodename
        self.delay = delay
        self.reply = {"ok": "pong"} if reply is None else reply
        self.requests: list[ControlRequest] = []
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with Connection(BrokerSettings.from_url(self.url)) as conn:
                ch = conn.channel()
                ch.exchange_declare(CONTROL_EXCHANGE, "fanout")
                ch.exchange_declare(REPLY_EXCHANGE, "direct")
                queue = node_queue_name(self.nodename)
                ch.queue_declare(queue, exclusive=True, auto_delete=True, arguments=QUEUE_ARGUMENTS)
                ch.queue_bind(queue, CONTROL_EXCHANGE)

                def on_request(env: Envelope) -> None:
                    req = decode_request(env)
                    if not req.matches(self.nodename):
                        return
                    self.requests.append(req)
                    if req.wants_reply and req.reply_to and req.ticket:
                        out = encode_reply(
                            self.nodename,
                            self.reply,
                            ticket=req.ticket,
                            clock=1,
                            reply_to=req.reply_to,
                        )
                        conn.call_later(self.delay, lambda: ch.publish(out))

                ch.consume(queue, on_request, no_ack=True)
                self.ready.set()
                while not self.stopping.is_set():
                    conn.process_events(0.05)
        except BaseException as exc:  # reported by the fixture, never swallowed
            self.error = exc
            self.ready.set()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)
        assert self.error is None, self.error


@pytest.fixture(scope="module")
def own_vhost_url() -> Iterator[str]:
    """A vhost for this module's fake nodes (no Celery peer answering broadcasts there)."""
    harness.ensure_broker()
    vhost = harness.create_vhost("amqptool-ctl")
    yield harness.url_for(vhost)
    harness.delete_vhost(vhost)


@pytest.fixture
def nodes(own_vhost_url: str) -> Iterator[list[FakeNode]]:
    """The fake nodes a test started (with ``start_node``); stopped and checked afterwards."""
    started: list[FakeNode] = []
    yield started
    for node in started:
        node.stop()


def start_node(nodes: list[FakeNode], url: str, name: str, **kw: Any) -> FakeNode:
    node = FakeNode(url, f"{name}-{harness.unique('n')}@test", **kw)
    node.start()
    assert node.ready.wait(10) and node.error is None, node.error
    nodes.append(node)
    return node


@pytest.fixture
def client(own_vhost_url: str) -> Iterator[ControlClient]:
    with ControlClient(BrokerSettings.from_url(own_vhost_url)) as c:
        yield c


# ---------------------------------------------------------------- the wire


def test_a_call_publishes_celerys_request_with_int_headers_and_its_reply_address(
    client: ControlClient, own_vhost_url: str
) -> None:
    with Connection(BrokerSettings.from_url(own_vhost_url)) as spy:
        ch = spy.channel()
        ch.exchange_declare(CONTROL_EXCHANGE, "fanout")
        q = ch.queue_declare("", exclusive=True).name
        ch.queue_bind(q, CONTROL_EXCHANGE)
        before = time.time()
        assert client.call("ping", destination=["nobody@nowhere"], timeout=0.2) == {}
        env = harness.wait_until(lambda: ch.get(q, no_ack=True), timeout=5, message="request")
    assert env.exchange == CONTROL_EXCHANGE and env.routing_key == ""
    props = env.properties
    assert (props.content_type, props.content_encoding) == ("application/json", "utf-8")
    assert props.delivery_mode == 2
    assert isinstance(props.headers["clock"], int)
    assert isinstance(props.headers["expires"], int) and props.headers["expires"] >= before
    body = json_loads(env.body)
    assert set(body) == {
        "method",
        "arguments",
        "destination",
        "pattern",
        "matcher",
        "ticket",
        "reply_to",
    }
    assert body["method"] == "ping" and body["arguments"] == {}
    assert body["destination"] == ["nobody@nowhere"]
    assert body["reply_to"] == {"exchange": REPLY_EXCHANGE, "routing_key": client.oid}


def test_the_reply_queue_is_declared_like_celerys(client: ControlClient) -> None:
    client.call("ping", destination=["nobody@nowhere"], timeout=0.1)
    assert client.reply_queue == f"{client.oid}.reply.celery.pidbox"
    conn = client._conn
    assert conn is not None
    probe = conn.channel()
    # a passive declare succeeds only if the queue exists; an active one with the same flags
    # and arguments succeeds only if they match exactly (406 otherwise)
    probe.queue_declare(client.reply_queue, passive=True)
    probe.queue_declare(
        client.reply_queue, exclusive=True, auto_delete=True, arguments=QUEUE_ARGUMENTS
    )
    probe.exchange_declare(REPLY_EXCHANGE, "direct")
    probe.close()


def test_a_cast_sends_no_ticket_and_no_reply_to(
    client: ControlClient, nodes: list[FakeNode], own_vhost_url: str
) -> None:
    node = start_node(nodes, own_vhost_url, "cast")
    client.cast("heartbeat", destination=[node.nodename])
    client.cast("rate_limit", {"task_name": "t", "rate_limit": "1/s"}, pattern="cast-*")
    harness.wait_until(lambda: len(node.requests) == 2, timeout=5, message="two casts")
    first, second = node.requests
    assert first.method == "heartbeat" and not first.wants_reply
    assert first.ticket is None and first.reply_to is None
    assert second.arguments == {"task_name": "t", "rate_limit": "1/s"}
    assert second.pattern == "cast-*"


# ---------------------------------------------------------------- when the call returns


def test_a_destination_call_returns_as_soon_as_the_named_nodes_replied(
    client: ControlClient, nodes: list[FakeNode], own_vhost_url: str
) -> None:
    a = start_node(nodes, own_vhost_url, "a")
    b = start_node(nodes, own_vhost_url, "b")
    # that the call ends once both replied, not at its timeout, is the collector's rule, shown
    # on a fake clock (test_control_commands.py): no wall-clock bound here
    replies = client.call("ping", destination=[a.nodename, b.nodename], timeout=LONG)
    assert replies == {a.nodename: {"ok": "pong"}, b.nodename: {"ok": "pong"}}


def test_a_broadcast_collects_every_node_then_stops_after_a_short_silence(
    client: ControlClient, nodes: list[FakeNode], own_vhost_url: str
) -> None:
    names = {start_node(nodes, own_vhost_url, f"bc{i}").nodename for i in range(3)}
    replies = client.call("ping", timeout=LONG)  # the idle-gap rule: test_control_commands.py
    assert set(replies) == names


def test_limit_ends_a_broadcast_at_the_first_n_replies(
    client: ControlClient, nodes: list[FakeNode], own_vhost_url: str
) -> None:
    start_node(nodes, own_vhost_url, "l1")
    start_node(nodes, own_vhost_url, "l2", delay=0.5)
    replies = client.call("ping", timeout=LONG, limit=1)
    assert len(replies) == 1  # without the limit, l2's later reply would be collected too


def test_a_slow_node_is_awaited_for_the_whole_timeout_when_named(
    client: ControlClient, nodes: list[FakeNode], own_vhost_url: str
) -> None:
    slow = start_node(nodes, own_vhost_url, "slow", delay=0.6)
    replies = client.call("ping", destination=[slow.nodename], timeout=3.0)
    assert replies == {slow.nodename: {"ok": "pong"}}


def test_idle_sets_how_long_a_broadcast_waits_after_a_reply(
    client: ControlClient, nodes: list[FakeNode], own_vhost_url: str
) -> None:
    fast = start_node(nodes, own_vhost_url, "fast")
    late = start_node(nodes, own_vhost_url, "late", delay=0.5)
    short = client.call("ping", timeout=1.5, idle=0.1)
    assert set(short) == {fast.nodename}
    patient = client.call("ping", timeout=1.5, idle=1.0)
    assert set(patient) == {fast.nodename, late.nodename}


def test_nobody_replying_gives_an_empty_dict_after_the_timeout(client: ControlClient) -> None:
    # waiting the whole timeout first is the collector's rule, on a fake clock
    # (test_control_commands.py): no wall-clock assertion here
    assert client.call("ping", destination=["nobody@nowhere"], timeout=0.3) == {}


def test_a_late_reply_to_an_earlier_call_does_not_leak_into_the_next(
    client: ControlClient, nodes: list[FakeNode], own_vhost_url: str
) -> None:
    late = start_node(nodes, own_vhost_url, "late", delay=0.4, reply={"ok": "first"})
    assert client.call("ping", destination=[late.nodename], timeout=0.1) == {}
    late.reply = {"ok": "second"}
    replies = client.call("ping", destination=[late.nodename], timeout=3.0)
    assert replies == {late.nodename: {"ok": "second"}}


def test_on_reply_sees_each_reply_as_it_arrives(
    client: ControlClient, nodes: list[FakeNode], own_vhost_url: str
) -> None:
    node = start_node(nodes, own_vhost_url, "cb")
    seen: list[tuple[str, Any]] = []
    client.call("ping", destination=[node.nodename], on_reply=lambda n, r: seen.append((n, r)))
    assert seen == [(node.nodename, {"ok": "pong"})]


# ---------------------------------------------------------------- connections and threads


def test_a_given_connection_is_used_and_left_open(
    own_vhost_url: str, nodes: list[FakeNode]
) -> None:
    node = start_node(nodes, own_vhost_url, "shared")
    with Connection(BrokerSettings.from_url(own_vhost_url)) as conn:
        c = ControlClient(conn.settings, connection=conn)
        assert c.call("ping", destination=[node.nodename]) == {node.nodename: {"ok": "pong"}}
        c.close()
        assert conn.is_open


def test_a_client_reconnects_when_its_own_connection_was_lost(
    client: ControlClient, nodes: list[FakeNode], own_vhost_url: str
) -> None:
    node = start_node(nodes, own_vhost_url, "re")
    assert client.call("ping", destination=[node.nodename])
    assert client._conn is not None
    client._conn.close()  # as if the broker had dropped it while idle
    assert client.call("ping", destination=[node.nodename]) == {node.nodename: {"ok": "pong"}}


def test_clients_work_from_worker_threads_each_with_its_own_connection(
    own_vhost_url: str, nodes: list[FakeNode]
) -> None:
    node = start_node(nodes, own_vhost_url, "threads")
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with ControlClient(BrokerSettings.from_url(own_vhost_url)) as c:
                for _ in range(3):
                    results.append(c.call("ping", destination=[node.nodename], timeout=5))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert results == [{node.nodename: {"ok": "pong"}}] * 9


@pytest.mark.celery
def test_a_real_celery_worker_answers_call_and_honours_cast(
    broker_url: str, celery_peer: harness.CeleryPeer
) -> None:
    with ControlClient(BrokerSettings.from_url(broker_url)) as c:
        node = celery_peer.nodename
        assert c.call("ping", destination=[node], timeout=5) == {node: {"ok": "pong"}}
        task_id = harness.unique("cast-revoked")
        c.cast("revoke", {"task_id": task_id}, destination=[node])
        harness.wait_until(
            lambda: task_id in c.call("revoked", destination=[node])[node],
            timeout=10,
            message="the cast revoke to reach the worker",
        )
        stats = c.call("stats", destination=[node])[node]
        assert {"total", "broker", "pool", "pid", "prefetch_count", "rusage"} <= set(stats)
