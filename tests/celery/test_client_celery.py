"""Our client drives a real Celery 5.7 worker (the ``celery_peer`` fixture) end to end."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from amqptool.client import Client, signature
from amqptool.codec.times import utcnow
from tests.harness import CeleryPeer

pytestmark = pytest.mark.celery

WAIT = 30  # generous: two shared cores


@pytest.fixture
def client(celery_peer: CeleryPeer) -> Iterator[Client]:
    with Client(url=celery_peer.broker_url) as c:
        yield c


def test_add_returns_4(client: Client, celery_peer: CeleryPeer) -> None:
    r = client.send_task("peer.add", (2, 2), queue=celery_peer.queue)
    assert r.get(timeout=WAIT) == 4
    assert r.state == "SUCCESS" and r.successful() and r.date_done is not None


def test_a_task_raising_value_error_makes_get_raise_value_error(
    client: Client, celery_peer: CeleryPeer
) -> None:
    r = client.send_task("peer.fail", ("boom",), queue=celery_peer.queue)
    with pytest.raises(ValueError, match="boom"):
        r.get(timeout=WAIT)
    assert r.failed() and r.traceback is not None and "ValueError: boom" in r.traceback
    returned = r.get(timeout=WAIT, propagate=False)
    assert isinstance(returned, ValueError) and returned.args == ("boom",)
    assert isinstance(r.result, ValueError)


def test_kwargs_reach_the_task(client: Client, celery_peer: CeleryPeer) -> None:
    r = client.send_task("peer.echo", (1, "a"), {"k": [1, 2], "n": None}, queue=celery_peer.queue)
    assert r.get(timeout=WAIT) == {"args": [1, "a"], "kwargs": {"k": [1, 2], "n": None}}


def test_countdown_is_honoured(client: Client, celery_peer: CeleryPeer) -> None:
    sent_at = utcnow()
    r = client.send_task("peer.add", (1, 1), queue=celery_peer.queue, countdown=1.0)
    assert r.get(timeout=WAIT) == 2
    assert r.date_done is not None
    from amqptool.codec.times import parse_iso

    assert (parse_iso(r.date_done) - sent_at).total_seconds() >= 0.95


def test_expires_in_the_past_comes_back_revoked(client: Client, celery_peer: CeleryPeer) -> None:
    r = client.send_task("peer.add", (1, 1), queue=celery_peer.queue, expires=-1)
    with pytest.raises(Exception, match="expired") as err:
        r.get(timeout=WAIT)
    assert type(err.value).__name__ == "TaskRevokedError"
    assert r.state == "REVOKED" and r.ready() and not r.successful()


def test_link_callback_runs_with_the_result_prepended(
    client: Client, celery_peer: CeleryPeer
) -> None:
    callback_id = f"cb-{time.monotonic_ns()}"
    link = signature("peer.add", (10,), options={"task_id": callback_id, "reply_to": client.oid})
    r = client.send_task("peer.add", (2, 2), queue=celery_peer.queue, link=link)
    assert r.get(timeout=WAIT) == 4
    assert client.AsyncResult(callback_id).get(timeout=WAIT) == 14


def test_link_error_is_sent_with_the_failed_task_id(
    client: Client, celery_peer: CeleryPeer
) -> None:
    # peer.fail takes one argument, so Celery publishes the errback with the failed id prepended
    # (two-argument errbacks are called in-process instead and send no result).
    errback_id = f"eb-{time.monotonic_ns()}"
    link_error = signature("peer.fail", options={"task_id": errback_id, "reply_to": client.oid})
    r = client.send_task("peer.fail", ("boom",), queue=celery_peer.queue, link_error=link_error)
    with pytest.raises(ValueError, match="boom"):
        r.get(timeout=WAIT)
    with pytest.raises(ValueError) as err:
        client.AsyncResult(errback_id).get(timeout=WAIT)
    assert err.value.args == (r.id,)


def test_group_joins_in_call_order(client: Client, celery_peer: CeleryPeer) -> None:
    g = client.group(
        [
            ("peer.mul", (2, 3)),
            signature("peer.add", (1, 1)),
            ("peer.echo", (), {"x": 1}),
            ("peer.add", (5, 5)),
        ],
        queue=celery_peer.queue,
    )
    assert g.join(timeout=WAIT) == [6, 2, {"args": [], "kwargs": {"x": 1}}, 10]
    assert g.completed_count() == 4 and g.successful()


def test_group_join_reraises_the_first_failure(client: Client, celery_peer: CeleryPeer) -> None:
    g = client.group(
        [("peer.add", (1, 1)), ("peer.fail", ("first",)), ("peer.fail", ("second",))],
        queue=celery_peer.queue,
    )
    with pytest.raises(ValueError, match="first"):
        g.join(timeout=WAIT)
    values = g.join(timeout=WAIT, propagate=False)
    assert values[0] == 2 and [str(v) for v in values[1:]] == ["first", "second"]


def test_get_with_a_short_timeout_on_a_sleeping_task_raises_timeout_error(
    client: Client, celery_peer: CeleryPeer
) -> None:
    r = client.send_task("peer.sleep", (3.0,), queue=celery_peer.queue)
    with pytest.raises(TimeoutError):
        r.get(timeout=0.5)
    assert not r.ready()  # it gave up before the task had finished
    assert r.get(timeout=WAIT) == 3.0  # leaves the peer idle for the next test


def test_a_flaky_task_retried_by_the_worker_gives_its_final_result(
    client: Client, celery_peer: CeleryPeer
) -> None:
    r = client.send_task("peer.flaky", (), {"fail_times": 2}, queue=celery_peer.queue)
    assert r.get(timeout=WAIT) == 2


def test_compressed_bodies_and_shadow_names_are_understood_by_celery(
    client: Client, celery_peer: CeleryPeer
) -> None:
    r = client.send_task(
        "peer.add", (20, 22), queue=celery_peer.queue, compression="zlib", shadow="alias"
    )
    assert r.get(timeout=WAIT) == 42


def test_a_dead_first_url_still_reaches_the_celery_worker(celery_peer: CeleryPeer) -> None:
    with Client(url=f"amqp://guest:guest@127.0.0.1:1//;{celery_peer.broker_url}") as c:
        assert c.send_task("peer.add", (3, 4), queue=celery_peer.queue).get(timeout=WAIT) == 7
