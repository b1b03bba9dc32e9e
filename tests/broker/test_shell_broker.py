"""Every shell command against the real broker, in-process, with camqadm's outputs."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator

import pytest

from amqptool.shell.core.render import EMPTY_QUEUE
from tests.harness import unique, wait_until
from tests.shell_support import LiveShell, live_shell


@pytest.fixture
def sh(broker_url: str) -> Iterator[LiveShell]:
    with live_shell(broker_url) as live:
        yield live


@pytest.fixture
def q(sh: LiveShell) -> Iterator[str]:
    name = unique("shq")
    assert sh.ok(f"queue.declare {name}") == f"ok. queue:{name} messages:0 consumers:0.\n"
    yield name
    sh.run(f"queue.delete {name}")


def got(out: str) -> dict[str, object]:
    """The dict a basic.get printed (camqadm's pretty-printed view)."""
    value = ast.literal_eval(out)
    assert isinstance(value, dict)
    return value


def test_the_seed_walkthrough_prints_camqadm_outputs(sh: LiveShell) -> None:
    ex, queue = unique("testexchange"), unique("testqueue")
    assert sh.ok(f"exchange.declare {ex} direct") == "ok.\n"
    assert sh.ok(f"queue.declare {queue}") == f"ok. queue:{queue} messages:0 consumers:0.\n"
    assert sh.ok(f"queue.bind {queue} {ex} testkey") == "ok.\n"
    assert sh.ok(f'basic.publish "This is a message!" {ex} testkey') == "ok.\n"
    message = got(sh.ok(f"basic.get {queue}"))
    assert message == {
        "body": "This is a message!",
        "delivery_info": {
            "delivery_tag": 1,
            "exchange": ex,
            "message_count": 0,
            "redelivered": False,
            "routing_key": "testkey",
        },
        "properties": {"content_type": "text/plain", "content_encoding": "utf-8"},
    }
    assert sh.ok("basic.ack 1") == "ok.\n"
    assert sh.ok(f"queue.delete {queue}") == "ok. 0 messages deleted.\n"
    assert sh.ok(f"exchange.delete {ex}") == "ok.\n"
    assert all(step.err == "" for step in sh.steps)


def test_exchange_declare_flags_and_delete_if_unused(sh: LiveShell, q: str) -> None:
    ex = unique("shx")
    assert sh.ok(f"exchange.declare {ex} topic no yes no no") == "ok.\n"
    assert sh.ok(f"exchange.declare {ex} topic yes") == "ok.\n"  # passive: it exists
    step = sh.fail(f"exchange.declare {ex} topic no no")  # not durable this time
    assert "406 PRECONDITION_FAILED - inequivalent arg 'durable'" in step.err
    sh.ok(f"queue.bind {q} {ex} '#'")
    step = sh.fail(f"exchange.delete {ex} yes")
    assert "406 PRECONDITION_FAILED" in step.err
    assert sh.ok(f"exchange.delete {ex}") == "ok.\n"
    assert "404 NOT_FOUND" in sh.fail(f"exchange.declare {ex} topic passive=yes").err


def test_internal_exchanges_and_alternate_exchange(sh: LiveShell, q: str) -> None:
    ex, ae = unique("shx"), unique("shae")
    sh.ok(f"exchange.declare {ae} fanout internal=yes")
    sh.ok(f"queue.bind {q} {ae}")
    sh.ok(f"exchange.declare {ex} direct alternate-exchange={ae}")
    step = sh.run(f"basic.publish 'to the ae' {ex} nobody-here yes")
    assert step.outcome.ok and step.err == ""  # routed through the alternate exchange
    assert got(sh.ok(f"basic.get {q} yes"))["body"] == "to the ae"
    assert "403 ACCESS_REFUSED" in sh.fail(f"basic.publish direct {ae} ''").err
    sh.ok(f"exchange.delete {ex}")
    sh.ok(f"exchange.delete {ae}")


def test_exchange_bind_and_unbind_route_between_exchanges(sh: LiveShell, q: str) -> None:
    src, dst = unique("shsrc"), unique("shdst")
    sh.ok(f"exchange.declare {src} topic")
    sh.ok(f"exchange.declare {dst} direct")
    sh.ok(f"queue.bind {q} {dst} k")
    assert sh.ok(f"exchange.bind {dst} {src} k") == "ok.\n"
    sh.ok(f"basic.publish hop {src} k mandatory=yes")
    assert got(sh.ok(f"basic.get {q} yes"))["body"] == "hop"
    assert sh.ok(f"exchange.unbind {dst} {src} k") == "ok.\n"
    step = sh.fail(f"basic.publish hop {src} k yes")
    assert "312 NO_ROUTE" in step.err
    sh.ok(f"exchange.delete {src}")
    sh.ok(f"exchange.delete {dst}")


def test_queue_declare_passive_counts_and_x_arguments_typed(sh: LiveShell) -> None:
    name, dlx, dlq = unique("shttl"), unique("shdlx"), unique("shdlq")
    sh.ok(f"exchange.declare {dlx} fanout")
    sh.ok(f"queue.declare {dlq}")
    sh.ok(f"queue.bind {dlq} {dlx}")
    out = sh.ok(
        f"queue.declare {name} x-message-ttl=0 x-dead-letter-exchange={dlx} x-max-length=10 "
        f"x-max-priority=5 x-expires=60000"
    )
    assert out == f"ok. queue:{name} messages:0 consumers:0.\n"
    # the broker took the integers as integers: the expired message was dead-lettered
    sh.ok(f"basic.publish expires '' {name}")
    wait_until(lambda: "messages:1" in sh.ok(f"queue.declare {dlq} yes"), message="dead letter")
    out = sh.ok(f"basic.get {dlq} yes")
    assert out.startswith("{'body': 'expires',") and "'x-death': [{'count': 1," in out
    step = sh.fail(f"queue.declare {name} x-message-ttl=1")
    assert "406 PRECONDITION_FAILED - inequivalent arg" in step.err
    for line in (f"queue.delete {name}", f"queue.delete {dlq}", f"exchange.delete {dlx}"):
        sh.ok(line)


def test_quorum_queues_and_server_named_queues(sh: LiveShell) -> None:
    name = unique("shquorum")
    assert sh.ok(f"queue.declare {name} no yes no no x-queue-type=quorum").startswith("ok.")
    assert "inequivalent arg 'x-queue-type'" in sh.fail(f"queue.declare {name} no yes").err
    sh.ok(f"queue.delete {name}")
    out = sh.ok("queue.declare '' exclusive=yes")
    assert out.startswith("ok. queue:amq.gen-")


def test_queue_purge_and_delete_count_messages(sh: LiveShell, q: str) -> None:
    for n in range(3):
        sh.ok(f"basic.publish m{n} '' {q}")
    assert sh.ok(f"queue.declare {q} yes") == f"ok. queue:{q} messages:3 consumers:0.\n"
    assert sh.ok(f"queue.purge {q}") == "ok. 3 messages deleted.\n"
    sh.ok(f"basic.publish again '' {q}")
    assert "406 PRECONDITION_FAILED" in sh.fail(f"queue.delete {q} no yes").err
    assert sh.ok(f"queue.delete {q}") == "ok. 1 messages deleted.\n"


def test_queue_bind_and_unbind_with_header_arguments(sh: LiveShell, q: str) -> None:
    sh.ok(f"queue.bind {q} amq.headers '' x-match=all arg.format=pdf")
    sh.ok("basic.publish doc amq.headers '' yes headers.format=pdf")
    assert got(sh.ok(f"basic.get {q} yes"))["body"] == "doc"
    assert "312 NO_ROUTE" in sh.fail("basic.publish doc amq.headers '' yes headers.format=txt").err
    assert sh.ok(f"queue.unbind {q} amq.headers '' x-match=all arg.format=pdf") == "ok.\n"
    assert "312 NO_ROUTE" in sh.fail("basic.publish doc amq.headers '' yes headers.format=pdf").err


def test_publish_sets_properties_and_headers_and_get_decodes_json(sh: LiveShell, q: str) -> None:
    sh.ok(
        f'basic.publish \'{{"n": 1, "s": "x"}}\' \'\' {q} content_type=application/json '
        "delivery_mode=2 priority=3 correlation_id=c-1 reply_to=replies expiration=60000 "
        "message_id=m-1 type=demo timestamp=1700000000 app_id=shell headers.trace=t-1 "
        "headers.n:int=7"
    )
    message = got(sh.ok(f"basic.get {q} yes"))
    assert message["body"] == {"n": 1, "s": "x"}
    assert message["properties"] == {
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "delivery_mode": 2,
        "priority": 3,
        "correlation_id": "c-1",
        "reply_to": "replies",
        "expiration": "60000",
        "message_id": "m-1",
        "timestamp": 1700000000,
        "type": "demo",
        "app_id": "shell",
        "headers": {"trace": "t-1", "n": 7},
    }


def test_unroutable_mandatory_is_an_error_and_immediate_only_warns(sh: LiveShell) -> None:
    step = sh.fail("basic.publish lost amq.direct nobody-bound yes")
    assert step.outcome.exit_code == 1
    assert step.err == (
        "error: basic.publish: 312 NO_ROUTE - message unroutable: no queue is bound to "
        "exchange 'amq.direct' with routing key 'nobody-bound'\n"
    )
    step = sh.run("basic.publish lost amq.direct nobody-bound no yes")
    assert step.outcome.ok and step.out == "ok.\n"
    assert "warning: RabbitMQ does not implement 'immediate'" in step.err
    assert "warning: the message was not routed to any queue" in step.err


def test_a_message_the_broker_refuses_is_an_error(sh: LiveShell) -> None:
    name = unique("shfull")
    sh.ok(f"queue.declare {name} x-max-length=1 x-overflow=reject-publish")
    sh.ok(f"basic.publish one '' {name}")
    step = sh.fail(f"basic.publish two '' {name}")
    assert step.err.startswith(
        f"error: basic.publish: the broker refused the message (exchange '', routing key "
        f"'{name}') (a full queue with x-overflow=reject-publish refuses messages)"
    )
    assert sh.ok(f"queue.delete {name}") == "ok. 1 messages deleted.\n"


@pytest.mark.celery
def test_get_shows_a_celery_task_as_name_id_args_kwargs(sh: LiveShell, broker_url: str) -> None:
    from celery import Celery

    q = unique("shtasks")
    sh.ok(f"queue.declare {q} durable=yes")  # as Celery declares its queues
    app = Celery("shelltest", broker=broker_url)
    try:
        result = app.send_task("peer.add", args=(2, 3), kwargs={"z": 1}, queue=q)
    finally:
        app.close()
    wait_until(lambda: "messages:1" in sh.ok(f"queue.declare {q} yes"), message="task message")
    message = got(sh.ok(f"basic.get {q} yes"))
    assert message["body"] == {
        "task": "peer.add",
        "id": result.id,
        "args": [2, 3],
        "kwargs": {"z": 1},
    }
    assert message["properties"]["content_type"] == "application/json"  # type: ignore[index]
    sh.ok(f"queue.delete {q}")
    sh.ok(f"exchange.delete {q}")  # Celery declared an exchange named after the queue


def test_get_on_an_empty_queue_and_binary_bodies(sh: LiveShell, q: str) -> None:
    assert sh.ok(f"basic.get {q}") == EMPTY_QUEUE + "\n"
    sh.ok(f"basic.publish 'caf\\xe9' '' {q} content_type=application/octet-stream")
    assert got(sh.ok(f"basic.get {q} yes"))["body"] == "caf\\xe9"


def test_ack_nack_reject_recover_settle_messages(sh: LiveShell, q: str) -> None:
    for n in range(2):
        sh.ok(f"basic.publish m{n} '' {q}")
    first = got(sh.ok(f"basic.get {q}"))
    assert first["delivery_info"]["delivery_tag"] == 1  # type: ignore[index]
    assert sh.ok("basic.nack 1") == "ok.\n"  # requeue=yes by default
    again = got(sh.ok(f"basic.get {q}"))
    assert again["body"] == "m1" or again["delivery_info"]["redelivered"]  # type: ignore[index]
    tag = again["delivery_info"]["delivery_tag"]  # type: ignore[index]
    assert sh.ok(f"basic.reject {tag} no") == "ok.\n"  # dropped
    assert sh.ok(f"queue.declare {q} yes").startswith(f"ok. queue:{q} messages:1 ")
    held = got(sh.ok(f"basic.get {q}"))
    assert sh.ok("basic.recover") == "ok.\n"
    back = got(sh.ok(f"basic.get {q}"))
    assert back["body"] == held["body"] and back["delivery_info"]["redelivered"] is True  # type: ignore[index]
    tag = back["delivery_info"]["delivery_tag"]  # type: ignore[index]
    assert sh.ok(f"basic.ack {tag}") == "ok.\n"
    assert sh.ok(f"queue.declare {q} yes") == f"ok. queue:{q} messages:0 consumers:0.\n"
    assert sh.runner.unacked == set()


def test_nack_multiple_settles_every_earlier_tag(sh: LiveShell, q: str) -> None:
    for n in range(3):
        sh.ok(f"basic.publish m{n} '' {q}")
    for _ in range(3):
        sh.ok(f"basic.get {q}")
    assert sh.runner.unacked == {1, 2, 3}
    assert sh.ok("basic.nack 2 no yes") == "ok.\n"  # drop 1 and 2
    assert sh.runner.unacked == {3}
    sh.ok("basic.ack 3")
    assert sh.ok(f"queue.declare {q} yes").startswith(f"ok. queue:{q} messages:0 ")


def test_qos_limits_a_consume_and_is_kept(sh: LiveShell, q: str) -> None:
    assert sh.ok("basic.qos 1") == "ok.\n"
    assert sh.runner.qos_state[False] == 1
    for n in range(2):
        sh.ok(f"basic.publish m{n} '' {q}")
    out = sh.ok(f"basic.consume {q} 2 2 manual")
    assert out.endswith("ok. 2 messages received, left unacknowledged (tags 1, 2).\n")
    assert sh.ok("basic.ack 2 yes") == "ok.\n"
    assert sh.runner.qos_state[False] == 1


def test_consume_prints_each_message_and_stops_at_count(sh: LiveShell, q: str) -> None:
    for n in range(3):
        sh.ok(f"basic.publish m{n} '' {q}")
    out = sh.ok(f"basic.consume {q} 2")
    assert out.count("'body': ") == 2 and "'body': 'm0'" in out and "'body': 'm1'" in out
    assert out.endswith("ok. 2 messages received and acknowledged.\n")
    assert sh.ok(f"queue.declare {q} yes").startswith(f"ok. queue:{q} messages:1 ")


def test_consume_peek_puts_messages_back_and_times_out_when_idle(sh: LiveShell, q: str) -> None:
    sh.ok(f"basic.publish peeked '' {q}")
    out = sh.ok(f"basic.consume {q} 5 0.3 peek")
    assert "'body': 'peeked'" in out
    assert out.endswith("ok. 1 message received and requeued.\n")
    assert sh.ok(f"queue.declare {q} yes").startswith(f"ok. queue:{q} messages:1 ")
    assert sh.ok(f"basic.consume {q} 1 1 no_ack").endswith("acknowledged.\n")
    assert sh.ok(f"basic.consume {q} 1 0.1") == "ok. 0 messages received and acknowledged.\n"


def test_json_mode_prints_one_document_per_command(broker_url: str) -> None:
    name = unique("shjson")
    with live_shell(broker_url, json_mode=True) as sh:
        doc = json.loads(sh.ok(f"queue.declare {name}"))
        assert doc == {
            "command": "queue.declare",
            "line": f"queue.declare {name}",
            "ok": True,
            "result": {"queue": name, "messages": 0, "consumers": 0},
        }
        sh.ok(f"basic.publish '[1, 2]' '' {name} content_type=application/json")
        sh.ok(f"basic.publish raw '' {name}")
        doc = json.loads(sh.ok(f"basic.consume {name} 2 1"))
        assert [m["body"] for m in doc["result"]["messages"]] == [[1, 2], "raw"]
        assert [m["body_kind"] for m in doc["result"]["messages"]] == ["json", "text"]
        step = sh.fail(f"queue.declare {name}-missing yes")
        doc = json.loads(step.out)
        assert doc["ok"] is False
        assert doc["error"]["reply_code"] == 404 and doc["error"]["exit_code"] == 1
        assert step.err.startswith("error: queue.declare: 404 NOT_FOUND")
        assert json.loads(sh.ok(f"queue.delete {name}"))["result"] == {"messages_deleted": 0}
