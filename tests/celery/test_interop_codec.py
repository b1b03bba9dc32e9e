"""Messages we encode are understood by the real Celery 5.7 / kombu (test-only peer)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from amqptool.codec import events, results, tasks
from amqptool.codec.times import utcnow

pytestmark = pytest.mark.celery


def test_celery_request_reads_our_v2_task_message(broker_url: str, unique_name: str) -> None:
    from celery import Celery
    from celery.worker.request import Request
    from kombu import Connection as KombuConnection
    from kombu import Queue

    from amqptool.settings import BrokerSettings
    from amqptool.transport import Connection

    eta = utcnow() + timedelta(seconds=30)
    msg = tasks.TaskMessage(
        task="proto_app.add",
        args=[2, 3],
        kwargs={"z": 1},
        eta=eta,
        time_limit=2.5,
        soft_time_limit=1.5,
        reply_to="rq",
    )
    with Connection(BrokerSettings.from_url(broker_url, environ={})).connect() as conn:
        ch = conn.channel()
        ch.queue_declare(unique_name, auto_delete=True)
        ch.publish(tasks.encode_task(msg, routing_key=unique_name, compression="zlib"))

    app = Celery("interop", broker=broker_url)

    @app.task(name="proto_app.add")
    def add(x: int, y: int, z: int = 0) -> int:
        return x + y + z

    with KombuConnection(broker_url) as kconn:
        queue = Queue(unique_name, no_declare=True)
        simple = kconn.SimpleQueue(queue)
        message = simple.get(timeout=5)
        req = Request(message, app=app)
        assert req.id == msg.id and req.name == "proto_app.add"
        assert req.args == [2, 3] and req.kwargs == {"z": 1}
        assert req.eta is not None and abs(req.eta.timestamp() - eta.timestamp()) < 0.01
        assert req.time_limits == [2.5, 1.5]
        assert req.reply_to == "rq"
        message.ack()
        simple.close()


def test_celery_backend_rebuilds_our_exception() -> None:
    from celery import Celery

    app = Celery("interop", backend="rpc://")
    encoded = results.encode_exception(ValueError("bad value"))
    exc = app.backend.exception_to_python(encoded)
    assert isinstance(exc, ValueError) and exc.args == ("bad value",)
    revoked = app.backend.exception_to_python(
        results.encode_exception(_celery_named("TaskRevokedError")("expired"))
    )
    assert type(revoked).__name__ == "TaskRevokedError"


def _celery_named(name: str) -> type[Exception]:
    cls = type(name, (Exception,), {"__module__": "worker.exceptions"})
    return cls


def test_celery_events_state_accepts_our_events() -> None:
    from celery.events.state import State

    clock = events.LamportClock()
    state = State()
    fields = events.worker_event_fields(freq=2.0, active=0, processed=0, sw_ver="0.1.0")
    for ev in (
        events.make_event("worker-online", hostname="w1@h", clock=clock.forward(), **fields),
        events.make_event(
            "task-received",
            hostname="w1@h",
            clock=clock.forward(),
            uuid="u1",
            name="t.add",
            args="(1,)",
            kwargs="{}",
            retries=0,
            eta=None,
            expires=None,
            root_id="u1",
            parent_id=None,
        ),
        events.make_event("task-started", hostname="w1@h", clock=clock.forward(), uuid="u1"),
        events.make_event(
            "task-succeeded",
            hostname="w1@h",
            clock=clock.forward(),
            uuid="u1",
            result="2",
            runtime=0.01,
        ),
    ):
        state.event(dict(ev, local_received=ev["timestamp"]))
    assert state.workers["w1@h"].alive
    assert state.tasks["u1"].state == "SUCCESS" and state.tasks["u1"].name == "t.add"
