"""The task client against the real broker, with this test playing the worker.

What a worker sees (the exact message, the declared topology) is read back with basic.get; the
results are published by hand in the rpc:// format, so routing, custom states, several results
outstanding and threads are checked without depending on any worker's timing.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from amqptool.client import Client
from amqptool.codec import results, tasks
from amqptool.codec.envelope import Envelope
from amqptool.errors import ChannelClosedError, ConnectionFailedError, TaskTimeoutError
from amqptool.settings import BrokerSettings
from amqptool.transport import Channel, Connection
from tests import harness
from tests.vectors import PLAIN_ADD

DEAD = "amqp://guest:guest@127.0.0.1:1//"


@pytest.fixture
def client(broker_url: str) -> Iterator[Client]:
    with Client(url=broker_url) as c:
        yield c


@pytest.fixture
def channel(broker_url: str) -> Iterator[Channel]:
    with Connection(BrokerSettings.from_url(broker_url, environ={})).connect() as conn:
        yield conn.channel()


def take(ch: Channel, queue: str) -> Envelope:
    env = harness.wait_until(lambda: ch.get(queue, no_ack=True), timeout=10, message=queue)
    assert isinstance(env, Envelope)
    return env


def reply(ch: Channel, to: str, task_id: str, status: str, result: Any = None, **kw: Any) -> None:
    body = results.result_body(task_id, status, result, **kw)
    ch.publish(results.encode_result(body, reply_to=to, correlation_id=task_id))


def cleanup(ch: Channel, *queues: str) -> None:
    for q in queues:
        ch.queue_delete(q)
        ch.exchange_delete(q)


def test_published_add_has_exactly_celerys_header_keys_and_properties(
    client: Client, channel: Channel, unique_name: str
) -> None:
    sent = client.send_task("proto_app.add", (2, 3), queue=unique_name)
    env = take(channel, unique_name)
    cleanup(channel, unique_name)
    assert (env.exchange, env.routing_key) == ("", unique_name)
    assert set(env.headers) == set(PLAIN_ADD["headers"])
    props = env.properties.as_dict()
    props.pop("headers")
    assert set(props) == set(PLAIN_ADD["properties"])
    same = ("lang", "task", "eta", "expires", "retries", "timelimit", "argsrepr", "kwargsrepr")
    assert {k: env.headers[k] for k in same} == {k: PLAIN_ADD["headers"][k] for k in same}
    assert env.headers["id"] == env.headers["root_id"] == sent.id
    assert props["correlation_id"] == sent.id and props["reply_to"] == client.oid
    assert {k: props[k] for k in ("priority", "delivery_mode", "content_type")} == {
        "priority": 0,
        "delivery_mode": 2,
        "content_type": "application/json",
    }
    assert tasks.decode_task(env).args == [2, 3]
    assert env.body == (
        b'[[2, 3], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]'
    )


def test_task_queue_and_result_queue_are_declared_as_celery_declares_them(
    client: Client, channel: Channel, unique_name: str
) -> None:
    client.send_task("t.noop", queue=unique_name)
    # Redeclaring with Celery's exact flags succeeds; any other flags would be refused (406).
    channel.exchange_declare(unique_name, "direct", durable=True)
    channel.queue_declare(unique_name, durable=True)
    channel.queue_declare(
        client.oid, durable=True, auto_delete=True, arguments={"x-expires": 86400000}
    )
    with pytest.raises(ChannelClosedError) as err:
        channel.queue_declare(client.oid, durable=True, auto_delete=True)
    assert err.value.reply_code == 406
    ch = channel.connection.channel()
    assert ch.queue_declare(unique_name, passive=True).message_count == 1
    cleanup(ch, unique_name)


def test_several_outstanding_results_are_routed_by_task_id_in_any_order(
    client: Client, channel: Channel, unique_name: str
) -> None:
    sent = [client.send_task("t.add", (i, i), queue=unique_name) for i in range(3)]
    for r in reversed(sent):
        reply(channel, client.oid, r.id, "SUCCESS", int(r.id[:4], 16))
    assert [r.get(timeout=10) for r in sent] == [int(r.id[:4], 16) for r in sent]
    assert all(r.successful() and r.ready() for r in sent)
    cleanup(channel, unique_name)


def test_custom_states_update_state_and_info_until_the_result(
    client: Client, channel: Channel, unique_name: str
) -> None:
    r = client.send_task("t.progress", queue=unique_name)
    assert r.state == "PENDING" and not r.ready()
    reply(channel, client.oid, r.id, "STARTED", {"pid": 1, "hostname": "w@h"})
    harness.wait_until(lambda: r.state == "STARTED", message="STARTED")
    reply(channel, client.oid, r.id, "PROGRESS", {"done": 1, "total": 2})
    harness.wait_until(lambda: r.state == "PROGRESS", message="PROGRESS")
    assert r.info == {"done": 1, "total": 2} and not r.ready()
    reply(channel, client.oid, r.id, "SUCCESS", "ok")
    reply(channel, client.oid, r.id, "PROGRESS", {"late": True})  # never hides the result
    assert r.get(timeout=10) == "ok"
    assert r.state == "SUCCESS" and r.date_done is not None
    cleanup(channel, unique_name)


def test_failure_reraises_its_type_or_returns_it_without_propagate(
    client: Client, channel: Channel, unique_name: str
) -> None:
    r = client.send_task("t.fail", queue=unique_name)
    exc = {"exc_type": "MyError", "exc_message": ["bad", 7], "exc_module": "no.such.module"}
    reply(channel, client.oid, r.id, "FAILURE", exc, traceback="Traceback...\nMyError: bad\n")
    with pytest.raises(Exception, match="bad") as err:
        r.get(timeout=10)
    assert type(err.value).__name__ == "MyError" and err.value.args == ("bad", 7)
    returned = r.get(timeout=1, propagate=False)
    assert type(returned).__name__ == "MyError"
    assert r.failed() and r.traceback is not None and "MyError" in r.traceback
    cleanup(channel, unique_name)


def test_get_past_its_timeout_raises_a_timeout_error_naming_the_task(
    client: Client, channel: Channel, unique_name: str
) -> None:
    r = client.send_task("t.never", queue=unique_name)
    with pytest.raises(TimeoutError) as err:
        r.get(timeout=0.3)
    assert isinstance(err.value, TaskTimeoutError) and r.id in str(err.value)
    cleanup(channel, unique_name)


def test_ignore_result_get_returns_none_at_once(client: Client, channel: Channel) -> None:
    q = harness.unique("clientq")
    r = client.send_task("t.noop", queue=q, ignore_result=True)
    assert r.get(timeout=0) is None and r.state == "PENDING"
    assert take(channel, q).headers["ignore_result"] is True
    cleanup(channel, q)


def test_group_members_carry_the_group_id_and_index_and_join_in_call_order(
    client: Client, channel: Channel, unique_name: str
) -> None:
    g = client.group([("t.add", (1, 1)), ("t.add", (2, 2), {}, {"priority": 3})], queue=unique_name)
    got = [take(channel, unique_name) for _ in range(2)]
    assert [e.headers["group"] for e in got] == [g.id, g.id]
    assert [e.headers["group_index"] for e in got] == [0, 1]
    assert got[1].properties.priority == 3
    reply(channel, client.oid, g.results[1].id, "SUCCESS", 4)
    reply(channel, client.oid, g.results[0].id, "SUCCESS", 2)
    assert g.join(timeout=10) == [2, 4] and g.completed_count() == 2 and g.ready()
    cleanup(channel, unique_name)


def test_threads_share_one_client_sending_and_waiting_at_once(
    client: Client, channel: Channel, unique_name: str
) -> None:
    """A fake worker answers every task; 4 threads send and wait concurrently."""
    stop = threading.Event()

    def worker() -> None:
        with Connection(channel.connection.settings).connect() as conn:
            ch = conn.channel()
            while not stop.is_set():
                env = ch.get(unique_name, no_ack=True)
                if env is None:
                    conn.sleep(0.01)
                    continue
                msg = tasks.decode_task(env)
                assert msg.reply_to is not None
                reply(ch, msg.reply_to, msg.id, "SUCCESS", sum(msg.args))

    got: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def caller(n: int) -> None:
        try:
            got[n] = [
                client.send_task("t.add", (n, i), queue=unique_name).get(10) for i in range(5)
            ]
        except BaseException as exc:
            errors.append(exc)

    client.send_task("t.warmup", queue=unique_name, ignore_result=True)  # declares the queue
    feeder = threading.Thread(target=worker)
    feeder.start()
    callers = [threading.Thread(target=caller, args=(n,)) for n in range(4)]
    try:
        for t in callers:
            t.start()
        for t in callers:
            t.join(30)
    finally:
        stop.set()
        feeder.join(10)
    assert errors == []
    assert got == {n: [n + i for i in range(5)] for n in range(4)}
    cleanup(channel, unique_name)


def test_a_dead_first_url_fails_over_and_still_publishes(
    broker_url: str, channel: Channel, unique_name: str
) -> None:
    with Client(url=f"{DEAD};{broker_url}") as c:
        r = c.send_task("t.add", (1, 2), queue=unique_name)
    assert take(channel, unique_name).headers["id"] == r.id
    cleanup(channel, unique_name)


def test_only_dead_urls_raise_connection_failed_after_the_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="amqptool.client")
    with Client(url=DEAD) as c, pytest.raises(ConnectionFailedError) as err:
        c.send_task("t.add", (1, 2))
    assert err.value.exit_code == 70 and "gave up after 4 tries" in str(err.value)
    assert len([r for r in caplog.records if "retrying" in r.getMessage()]) == 3
    with Client(url=DEAD) as c, pytest.raises(ConnectionFailedError, match="after 1 try"):
        c.send_task("t.add", (1, 2), retry=False)


@pytest.mark.slow
def test_a_connection_closed_by_the_broker_is_reopened_and_the_task_republished(
    fresh_vhost_url: str,
) -> None:
    vhost = fresh_vhost_url.rsplit("/", 1)[1]
    q = harness.unique("clientq")
    with Client(url=fresh_vhost_url) as c:
        c.send_task("t.one", queue=q)
        rows = harness.rabbitmqctl("list_connections", "pid", "vhost").splitlines()
        pids = [line.split("\t")[0] for line in rows if line.endswith("\t" + vhost)]
        assert len(pids) == 1
        subprocess.run(
            ["rabbitmqctl", "-q", "close_connection", pids[0], "test: drop the client"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        c.send_task("t.two", queue=q)
    with Connection(BrokerSettings.from_url(fresh_vhost_url, environ={})).connect() as conn:
        ch = conn.channel()
        names = [take(ch, q).headers["task"] for _ in range(2)]
    assert names == ["t.one", "t.two"]


def test_msgpack_and_compression_are_put_on_the_wire_as_kombu_names_them(
    client: Client, channel: Channel, unique_name: str
) -> None:
    client.send_task(
        "t.add", (1, "x"), {"k": 2}, queue=unique_name, serializer="msgpack", compression="bzip2"
    )
    env = take(channel, unique_name)
    assert env.properties.content_type == "application/x-msgpack"
    assert env.headers["compression"] == "application/x-bz2"
    msg = tasks.decode_task(env, accept={"application/x-msgpack"})
    assert (msg.args, msg.kwargs) == ([1, "x"], {"k": 2})
    cleanup(channel, unique_name)


def test_a_forked_child_gets_its_own_connection_and_result_queue(
    client: Client, channel: Channel, unique_name: str
) -> None:
    client.send_task("t.parent", queue=unique_name)
    pid = os.fork()
    if pid == 0:  # the child: must not touch the parent's socket
        code = 1
        try:
            client.send_task("t.child", queue=unique_name)
            client.close()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    client.send_task("t.parent-again", queue=unique_name)  # the parent's connection still works
    got = [take(channel, unique_name) for _ in range(3)]
    assert [e.headers["task"] for e in got] == ["t.parent", "t.child", "t.parent-again"]
    replies = [e.properties.reply_to for e in got]
    assert replies[0] == replies[2] == client.oid != replies[1]
    cleanup(channel, unique_name)
