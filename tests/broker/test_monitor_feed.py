"""The monitor's event feed on the real broker, watching a real Celery 5.7 worker and ours.

Each worker is started *after* the feed listens, so its ``worker-online`` is seen; it is sent
tasks by a real Celery client; stopping it must show ``worker-offline``. The feed's own queue is
declared exactly like Celery's and is gone once the feed stops (no litter).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from amqptool.codec.envelope import Envelope, Properties
from amqptool.codec.events import encode_event, make_event
from amqptool.monitor.core.state import MonitorState
from amqptool.monitor.feed import EventFeed, FeedBatch, FeedStatus
from amqptool.settings import BrokerSettings
from amqptool.transport import Connection
from tests import harness

OUR_TASKS = "tests.peers.amqptool_tasks"


@dataclass
class Recorder:
    """Runs an EventFeed on its own thread and keeps everything it hands over."""

    events: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[FeedStatus] = field(default_factory=list)
    malformed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_batch(self, batch: FeedBatch) -> None:
        with self.lock:
            self.events.extend(batch.events)
            self.malformed += batch.malformed

    def on_status(self, status: FeedStatus) -> None:
        with self.lock:
            self.statuses.append(status)

    def find(self, pred: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if pred(e)]

    def wait_for(
        self, pred: Callable[[dict[str, Any]], bool], what: str, timeout: float = 20.0
    ) -> dict[str, Any]:
        found = harness.wait_until(lambda: self.find(pred), timeout=timeout, message=what)
        return found[0]

    def states(self) -> list[str]:
        with self.lock:
            return [s.state for s in self.statuses]


@contextmanager
def running_feed(url: str, **kw: Any) -> Iterator[tuple[EventFeed, Recorder]]:
    rec = Recorder()
    feed = EventFeed(BrokerSettings.from_url(url), rec.on_batch, rec.on_status, **kw)
    thread = threading.Thread(target=feed.run, name="test-feed", daemon=True)
    thread.start()
    try:
        harness.wait_until(lambda: feed.status.connected, timeout=10, message="feed connected")
        yield feed, rec
    finally:
        feed.stop()
        thread.join(10)
        assert not thread.is_alive(), "the feed did not stop"


def vhost_of(url: str) -> str:
    return BrokerSettings.from_url(url).primary.vhost


def queue_rows(vhost: str) -> dict[str, list[str]]:
    out = harness.rabbitmqctl(
        "list_queues", "-p", vhost, "name", "durable", "auto_delete", "exclusive", "arguments"
    )
    rows = [line.split("\t") for line in out.splitlines()[1:] if line.strip()]
    return {row[0]: row[1:] for row in rows}


def publish(url: str, *envelopes: Envelope) -> None:
    with Connection(BrokerSettings.from_url(url)) as conn:
        channel = conn.channel()
        for env in envelopes:
            channel.publish(env)


def send_tasks(url: str, queue: str) -> tuple[str, str]:
    """A real Celery 5.7 client sends peer.add and peer.fail; returns their task ids."""
    from celery import Celery

    app = Celery("monitor-test-client", broker=url)
    try:
        with app.connection_for_write() as conn:  # closed here: no socket left behind
            ok = app.send_task("peer.add", (1, 2), queue=queue, connection=conn)
            bad = app.send_task("peer.fail", ("monitor says boom",), queue=queue, connection=conn)
        return ok.id, bad.id
    finally:
        app.close()


# --------------------------------------------------------------------------- the queue itself


def test_the_event_queue_is_declared_like_celerys_and_leaves_no_litter(broker_url: str) -> None:
    vhost = vhost_of(broker_url)
    with running_feed(broker_url, ask_heartbeat=False) as (feed, _rec):
        name = feed.queue
        assert name is not None and name.startswith("celeryev.")
        durable, auto_delete, exclusive, arguments = queue_rows(vhost)[name]
        assert (durable, auto_delete, exclusive) == ("false", "true", "true")
        assert '"x-message-ttl",5000' in arguments and '"x-expires",60000' in arguments
        exchanges = harness.rabbitmqctl("list_exchanges", "-p", vhost, "name", "type", "durable")
        assert "celeryev\ttopic\ttrue" in exchanges.splitlines()
        bindings = harness.rabbitmqctl(
            "list_bindings", "-p", vhost, "source_name", "destination_name", "routing_key"
        )
        assert f"celeryev\t{name}\t#" in bindings.splitlines()
    assert name not in queue_rows(vhost)


def test_malformed_bodies_are_counted_and_the_feed_goes_on(broker_url: str) -> None:
    good = make_event("worker-heartbeat", hostname="fake@host", clock=1, freq=2.0)
    with running_feed(broker_url, ask_heartbeat=False) as (_feed, rec):
        json_props = Properties(content_type="application/json", content_encoding="utf-8")
        publish(
            broker_url,
            Envelope(b"{not json", json_props, exchange="celeryev", routing_key="worker.x"),
            Envelope(b"42", json_props, exchange="celeryev", routing_key="worker.x"),
            Envelope(
                b"\x80\x81",
                Properties(content_type="application/x-python-serialize"),
                exchange="celeryev",
                routing_key="worker.x",
            ),
            encode_event(good),
        )
        event = rec.wait_for(lambda e: e.get("hostname") == "fake@host", "the good event")
        assert "local_received" in event
        harness.wait_until(lambda: rec.malformed == 3, timeout=5, message="3 malformed counted")


def test_a_refused_heartbeat_cast_does_not_stop_the_feed(fresh_vhost_url: str) -> None:
    # celery.pidbox declared with other flags: the cast is refused (406), events still flow
    with Connection(BrokerSettings.from_url(fresh_vhost_url)) as conn:
        conn.channel().exchange_declare("celery.pidbox", "topic", durable=True)
    with running_feed(fresh_vhost_url) as (feed, rec):
        publish(fresh_vhost_url, encode_event(make_event("worker-online", hostname="x@h", clock=1)))
        rec.wait_for(lambda e: e.get("hostname") == "x@h", "an event despite the refused cast")
        assert feed.connects == 1 and "disconnected" not in rec.states()


def test_the_feed_reconnects_after_the_broker_drops_it_and_reports_it(broker_url: str) -> None:
    vhost = vhost_of(broker_url)
    with running_feed(broker_url, ask_heartbeat=False, retry_interval=0.2) as (feed, rec):
        first_queue = feed.queue
        closed = close_connection_named(feed.name)
        assert closed == 1
        harness.wait_until(
            lambda: "disconnected" in rec.states() and feed.status.connected and feed.connects == 2,
            timeout=20,
            message="disconnected, then connected again",
        )
        assert feed.queue != first_queue
        publish(
            broker_url, encode_event(make_event("worker-heartbeat", hostname="back@h", clock=1))
        )
        rec.wait_for(lambda e: e.get("hostname") == "back@h", "an event after the reconnect")
        assert first_queue not in queue_rows(vhost)  # the old exclusive queue went with it


def close_connection_named(name: str) -> int:
    out = harness.rabbitmqctl("list_connections", "pid", "client_properties")
    pids = [line.split("\t")[0] for line in out.splitlines()[1:] if f'"{name}"' in line]
    for pid in pids:
        harness.rabbitmqctl("close_connection", pid, "test: broker went away")
    return len(pids)


# --------------------------------------------------------------------------- real workers


def assert_sees_a_whole_worker_life(
    rec: Recorder, node: str, ok_id: str, bad_id: str, stop: Callable[[], None], sw: str
) -> None:
    online = rec.wait_for(
        lambda e: e["type"] == "worker-online" and e.get("hostname") == node, "worker-online"
    )
    assert online["sw_ident"] == sw and online["freq"] > 0
    rec.wait_for(
        lambda e: e["type"] == "worker-heartbeat" and e.get("hostname") == node, "heartbeat"
    )
    succeeded = rec.wait_for(
        lambda e: e["type"] == "task-succeeded" and e.get("uuid") == ok_id, "task-succeeded"
    )
    assert succeeded["result"] == "3"
    failed = rec.wait_for(
        lambda e: e["type"] == "task-failed" and e.get("uuid") == bad_id, "task-failed"
    )
    assert "monitor says boom" in failed["exception"]
    for kind in ("task-received", "task-started"):
        assert rec.find(lambda e, k=kind: e["type"] == k and e.get("uuid") == ok_id), kind

    # Folded into the monitor's state: what the screen would show.
    state = MonitorState()
    state.apply_many(list(rec.events), online["local_received"])
    assert state.tasks[ok_id].state == "SUCCESS"
    assert (state.tasks[ok_id].name, state.tasks[ok_id].args) == ("peer.add", "(1, 2)")
    assert state.tasks[bad_id].state == "FAILURE"
    assert state.workers[node].sw_ident == sw

    stop()
    offline = rec.wait_for(
        lambda e: e["type"] == "worker-offline" and e.get("hostname") == node, "worker-offline"
    )
    state.apply(offline, offline["local_received"])
    assert not state.workers[node].is_online(offline["local_received"])


@pytest.mark.celery
@pytest.mark.slow
def test_the_feed_shows_a_real_celery_worker_online_tasks_and_offline(broker_url: str) -> None:
    with running_feed(broker_url) as (_feed, rec):
        peer = harness.CeleryPeer(broker_url).start()
        try:
            ok_id, bad_id = send_tasks(broker_url, peer.queue)
            assert_sees_a_whole_worker_life(
                rec, peer.nodename, ok_id, bad_id, peer.stop, sw="py-celery"
            )
        finally:
            peer.stop()


@pytest.mark.celery
def test_the_heartbeat_cast_makes_a_running_celery_worker_answer_at_once(
    broker_url: str, celery_peer: harness.CeleryPeer
) -> None:
    # A heartbeat forced by the `heartbeat` control command carries freq 5 (docs/protocol.md §3.4).
    with running_feed(broker_url) as (_feed, rec):
        forced = rec.wait_for(
            lambda e: (
                e["type"] == "worker-heartbeat"
                and e.get("hostname") == celery_peer.nodename
                and e.get("freq") == 5
            ),
            "the forced heartbeat",
            timeout=5,
        )
        assert forced["sw_ver"].startswith("5.7")


@pytest.mark.celery
def test_the_feed_shows_our_worker_online_tasks_and_offline(broker_url: str) -> None:
    from worker import Worker

    queue = harness.unique("ourq")
    with running_feed(broker_url) as (_feed, rec):
        ours = Worker(
            OUR_TASKS,
            settings=broker_url,
            queues=[queue],
            nodename=f"{harness.unique('ours')}@localhost",
            pool="threads",
            concurrency=2,
            events=True,
        ).start()
        stopped = False

        def stop() -> None:
            nonlocal stopped
            ours.stop()
            assert ours.join(30)
            stopped = True

        try:
            ok_id, bad_id = send_tasks(broker_url, queue)
            assert_sees_a_whole_worker_life(
                rec, ours.nodename, ok_id, bad_id, stop, sw="py-amqptool"
            )
        finally:
            if not stopped:
                ours.stop()
                ours.join(30)
