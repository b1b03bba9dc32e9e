"""A real Celery 5.7 client (``rpc://`` backend) calls our worker and gets what it expects."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from amqptool.codec.envelope import Envelope, Properties
from amqptool.codec.serialization import json_dumps
from amqptool.codec.times import utcnow
from tests.harness import unique, wait_until
from tests.peers import amqptool_tasks
from tests.worker_support import (
    Collector,
    celery_client_for,
    connect,
    in_process_worker,
    publish_task,
    stub,
)
from worker import Worker

pytestmark = pytest.mark.celery


@pytest.fixture(scope="module")
def worker(broker_url: str) -> Iterator[Worker]:
    with in_process_worker(broker_url, concurrency=4, events=True) as w:
        yield w


@pytest.fixture(scope="module")
def app(broker_url: str, worker: Worker) -> Iterator[Any]:
    with celery_client_for(broker_url, worker.config.queues[0], "client") as client:
        yield client


@pytest.fixture(scope="module")
def peer(app: Any) -> Any:
    """Client-side stubs of our tasks: Celery only needs their names."""

    class Tasks:
        add = app.task(name="peer.add")(stub)
        mul = app.task(name="peer.mul")(stub)
        echo = app.task(name="peer.echo")(stub)
        fail = app.task(name="peer.fail")(stub)
        noop = app.task(name="peer.noop", ignore_result=True)(stub)
        flaky = app.task(name="peer.flaky")(stub)
        collect = app.task(name="extra.collect")(stub)
        unserializable = app.task(name="extra.unserializable")(stub)

    return Tasks


def test_add_delay_get_returns_4(peer: Any) -> None:
    assert peer.add.delay(2, 2).get(timeout=10) == 4


def test_a_task_raising_valueerror_makes_get_raise_valueerror(peer: Any) -> None:
    with pytest.raises(ValueError, match="nope"):
        peer.fail.delay("nope").get(timeout=10)


def test_kwargs_reach_the_task(peer: Any) -> None:
    result = peer.echo.apply_async((1,), {"a": 2, "b": [3]})
    assert result.get(timeout=10) == {"args": [1], "kwargs": {"a": 2, "b": [3]}}


def test_link_callback_gets_the_result_and_link_error_the_failed_id(peer: Any) -> None:
    tag = unique("link")
    peer.add.apply_async((2, 2), link=peer.collect.s(tag)).get(timeout=10)
    wait_until(lambda: (4, tag) in amqptool_tasks.COLLECTED, message="the link callback")
    failed = peer.fail.apply_async(("x",), link_error=peer.collect.s(tag + "-err"))
    with pytest.raises(ValueError):
        failed.get(timeout=10)
    # extra.collect takes *args, so (as in a Celery worker) it is called here in the
    # request form: (request, exc, traceback, *its own args).
    wait_until(
        lambda: any(
            len(c) == 4 and c[3] == tag + "-err" and c[0].id == failed.id and c[1].args == ("x",)
            for c in amqptool_tasks.COLLECTED
        ),
        message="errback",
    )


def test_a_chain_runs_step_by_step_and_the_client_gets_the_last_result(peer: Any) -> None:
    from celery import chain

    assert chain(peer.add.s(1, 1), peer.add.s(10), peer.mul.s(3)).apply_async().get(10) == 36


def test_ignore_result_sends_no_result(peer: Any, broker_url: str) -> None:
    with Collector(broker_url, bind=("celeryev", "task.#")) as events:
        result = peer.noop.delay()
        wait_until(
            lambda: any(
                e["type"] == "task-succeeded" and e["uuid"] == result.id for e in events.events()
            ),
            message="noop to finish",
        )
    assert result.state == "PENDING"


def test_a_protocol_v1_message_is_executed_and_its_result_delivered(
    broker_url: str, worker: Worker
) -> None:
    with Collector(broker_url) as replies:
        task_id = unique("v1")
        body = {"task": "peer.add", "id": task_id, "args": [3, 4], "kwargs": {}, "retries": 0}
        props = Properties(
            content_type="application/json",
            content_encoding="utf-8",
            correlation_id=task_id,
            reply_to=replies.name,
            delivery_mode=2,
        )
        env = Envelope(json_dumps(body).encode(), props, routing_key=worker.config.queues[0])
        with connect(broker_url) as conn:
            conn.channel().publish(env)
        got = replies.wait_result(task_id, "SUCCESS")
        assert got["result"] == 7


def test_started_and_custom_states_arrive_in_order(broker_url: str, worker: Worker) -> None:
    with Collector(broker_url) as replies:
        msg = publish_task(
            broker_url, worker.config.queues[0], "extra.progress", 2, reply_to=replies.name
        )
        replies.wait_result(msg.id, "SUCCESS")
        states = [(r["status"], r["result"]) for r in replies.results(msg.id)]
    assert states[0][0] == "STARTED" and states[0][1]["hostname"] == worker.nodename
    assert states[1:] == [
        ("PROGRESS", {"done": 1, "total": 2}),
        ("PROGRESS", {"done": 2, "total": 2}),
        ("SUCCESS", "done"),
    ]


def test_self_retry_republishes_until_it_succeeds(peer: Any) -> None:
    assert peer.flaky.delay(2).get(timeout=15) == 2


def test_a_countdown_task_is_held_then_run(peer: Any, app: Any, worker: Worker) -> None:
    result = peer.add.apply_async((20, 22), countdown=1.5)
    inspect = app.control.inspect(destination=[worker.nodename], timeout=2)
    scheduled = wait_until(lambda: (inspect.scheduled() or {}).get(worker.nodename))
    assert scheduled[0]["request"]["id"] == result.id and scheduled[0]["priority"] == 6
    assert result.get(timeout=10) == 42


def test_an_expired_task_is_revoked_not_run(broker_url: str, worker: Worker) -> None:
    with Collector(broker_url) as replies:
        msg = publish_task(
            broker_url,
            worker.config.queues[0],
            "peer.add",
            1,
            1,
            reply_to=replies.name,
            expires=utcnow() - timedelta(seconds=1),
        )
        got = replies.wait_result(msg.id)
    assert got["status"] == "REVOKED"
    assert got["result"] == {
        "exc_type": "TaskRevokedError",
        "exc_message": ["expired"],
        "exc_module": "celery.exceptions",
    }


def test_a_task_revoked_while_held_for_its_eta_is_revoked_when_due(peer: Any, app: Any) -> None:
    from celery.exceptions import TaskRevokedError

    result = peer.add.apply_async((1, 2), countdown=1)
    app.control.revoke(result.id)
    with pytest.raises(TaskRevokedError):
        result.get(timeout=10)


def test_an_exception_that_cannot_be_pickled_still_reaches_the_client(peer: Any) -> None:
    with pytest.raises(Exception) as err:
        peer.unserializable.delay().get(timeout=10)
    assert type(err.value).__name__ == "Unpicklable"
    assert "object object at" in str(err.value)
