"""A Celery app's rpc:// results, routed through the job's sink, are the messages Celery sends.

The same ``store_result`` call is made twice on a real Celery ``RPCBackend``: once as Celery
does it (kombu publishes to the broker; the message is read back raw) and once inside
``results_through(sink)`` (the envelope our broker thread would publish). Bodies and properties
must be the same, for json, pickle and msgpack results; only ``date_done`` (a clock reading)
may differ.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from amqptool.codec.envelope import Envelope
from amqptool.settings import BrokerSettings
from amqptool.transport import Connection
from tests.harness import unique, wait_until
from tests.worker_support import close_celery
from worker.pool.celery_trace import results_through, route_rpc

pytestmark = pytest.mark.celery


ACCEPT = {"application/json", "application/x-python-serialize", "application/x-msgpack"}


class Capture:
    def __init__(self) -> None:
        self.published: list[Envelope] = []

    def publish(self, env: Envelope) -> None:
        self.published.append(env)

    def event(self, event_type: str, fields: dict[str, Any]) -> None:
        raise AssertionError("no events expected")


@pytest.fixture(
    params=[("json", False), ("json", True), ("pickle", False), ("msgpack", False)],
    ids=["json", "json-persistent", "pickle", "msgpack"],
)
def app(request: pytest.FixtureRequest, broker_url: str) -> Iterator[Any]:
    from celery import Celery

    serializer, persistent = request.param
    celery_app = Celery(unique("rpcroute"), broker=broker_url, backend="rpc://")
    celery_app.conf.result_persistent = persistent
    celery_app.conf.result_serializer = serializer
    try:
        yield celery_app
    finally:
        close_celery(celery_app)


def celerys_message(url: str, queue: str) -> Envelope:
    with Connection(BrokerSettings.from_url(url)) as conn:
        ch = conn.channel()
        got: list[Envelope] = []

        def fetch() -> bool:
            env = ch.get(queue, no_ack=True)
            if env is not None:
                got.append(env)
            return bool(got)

        wait_until(fetch, 10, message="Celery's rpc message")
        return got[0]


def decoded(env: Envelope) -> Any:
    from kombu.serialization import loads

    props = env.properties
    return loads(env.body, props.content_type, props.content_encoding, accept=ACCEPT)  # type: ignore[no-untyped-call]  # kombu


@pytest.mark.parametrize(
    ("state", "result"),
    [
        ("PROGRESS", {"done": 3, "of": 10}),
        ("STARTED", {"pid": 12, "hostname": "w@h"}),
        ("SUCCESS", [1, "two", None]),
        ("FAILURE", KeyError("nope")),
    ],
)
def test_the_routed_message_is_celerys(app: Any, broker_url: str, state: str, result: Any) -> None:
    from celery.app.task import Context

    backend = app.backend
    assert route_rpc(backend) is True
    with Connection(BrokerSettings.from_url(broker_url)) as conn:
        queue = unique("rpcroute-q")
        conn.channel().queue_declare(queue, auto_delete=False)
    try:
        task_id, correlation = unique("tid"), unique("corr")
        request = Context(reply_to=queue, correlation_id=correlation, id=task_id)
        backend.store_result(task_id, result, state, "tb" if state == "FAILURE" else None, request)
        theirs = celerys_message(broker_url, queue)
        sink = Capture()
        with results_through(sink):
            backend.store_result(
                task_id, result, state, "tb" if state == "FAILURE" else None, request
            )
    finally:
        with Connection(BrokerSettings.from_url(broker_url)) as conn:
            conn.channel().queue_delete(queue)
    (ours,) = sink.published
    assert (ours.exchange, ours.routing_key) == ("", queue)
    assert ours.properties.as_dict() == theirs.properties.as_dict()
    assert ours.properties.correlation_id == correlation
    assert ours.properties.delivery_mode == (2 if app.conf.result_persistent else 1)
    assert (
        ours.properties.content_type
        == {
            "json": "application/json",
            "pickle": "application/x-python-serialize",
            "msgpack": "application/x-msgpack",
        }[app.conf.result_serializer]
    )
    mine, celerys = decoded(ours), decoded(theirs)
    if state == "FAILURE" and app.conf.result_serializer == "pickle":  # exception objects
        mine["result"] = repr(mine["result"])
        celerys["result"] = repr(celerys["result"])
    if state in ("SUCCESS", "FAILURE"):  # a clock reading each
        assert mine.pop("date_done") and celerys.pop("date_done")
    else:
        assert ours.body == theirs.body
    assert mine == celerys
    assert mine["task_id"] == task_id and mine["status"] == state


def test_no_reply_to_sends_nothing(app: Any) -> None:
    from celery.app.task import Context

    backend = app.backend
    route_rpc(backend)
    sink = Capture()
    with results_through(sink):
        backend.store_result("t1", 1, "SUCCESS", None, Context(reply_to=None, id="t1"))
    assert sink.published == []


def test_a_backend_with_its_own_store_result_is_left_alone(broker_url: str) -> None:
    from celery import Celery
    from celery.backends.rpc import RPCBackend

    calls: list[str] = []

    class Mine(RPCBackend):  # type: ignore[misc]  # Celery's classes are untyped
        def store_result(self, task_id: str, *args: Any, **kwargs: Any) -> Any:
            calls.append(task_id)

    celery_app = Celery(unique("rpcroute"), broker=broker_url)
    try:
        backend = Mine(app=celery_app)
        assert route_rpc(backend) is False
        sink = Capture()
        with results_through(sink):
            backend.store_result("t2", 1, "SUCCESS")
        assert calls == ["t2"] and sink.published == []
        redis_like = celery_app.backend  # the disabled backend: not rpc://
        assert route_rpc(redis_like) is False
    finally:
        close_celery(celery_app)
