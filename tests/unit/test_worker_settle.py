"""Settling a delivery (once, on its own channel) and the pool's typed reports."""

from __future__ import annotations

import pickle
from collections import deque
from typing import Any, cast

import pytest

import tests.peers.amqptool_tasks  # noqa: F401  # registers peer.*
from amqptool.codec.envelope import Envelope
from amqptool.codec.serialization import loads
from amqptool.codec.tasks import TaskMessage
from worker import registry
from worker.pool.base import Died, Done, Event, Publish, Report, Skipped, Started
from worker.pool.execute import Outcome
from worker.runtime.acks import AckTracker
from worker.runtime.pipeline.reports import Reports
from worker.runtime.request import Request
from worker.runtime.settle import Settle


class RecordingLink:
    """The broker link as settling sees it, recording what it is asked to send."""

    def __init__(self) -> None:
        self.generation = 1
        self.acks = AckTracker()
        self.rejected: list[tuple[int, bool]] = []
        self.published: list[Envelope] = []

    def reject(self, tag: int, *, requeue: bool) -> None:
        self.rejected.append((tag, requeue))

    def publish(self, env: Envelope) -> None:
        self.published.append(env)


class RecordingEvents:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any] | None]] = []

    def task(self, event_type: str, uuid: str, fields: dict[str, Any] | None = None) -> None:
        self.sent.append((event_type, uuid, fields))


def request(tag: int, *, generation: int = 1, reply_to: str | None = "replies") -> Request:
    msg = TaskMessage(task="peer.add", args=[1, 2], reply_to=reply_to)
    return Request(
        tag, msg, registry["peer.add"], delivery_tag=tag, generation=generation, queue="q"
    )


def acked(link: RecordingLink) -> list[tuple[int, bool]]:
    return list(link.acks.flush())


def test_a_delivery_is_settled_once_whatever_asks_first() -> None:
    link, events = RecordingLink(), RecordingEvents()
    settle = Settle(link, events)
    for tag in (1, 2):
        link.acks.delivered(tag)
    first, second = request(1), request(2)
    settle.ack(first)
    settle.ack(first)
    assert settle.reject(first, requeue=True) is False
    assert settle.reject(second, requeue=False) is True
    settle.ack(second)
    settle.return_to_queue(second)
    assert acked(link) == [(1, False)]
    assert link.rejected == [(2, False)]


def test_a_delivery_from_an_old_connection_is_never_settled_on_the_new_one() -> None:
    link, events = RecordingLink(), RecordingEvents()
    settle = Settle(link, events)
    old = request(1, generation=1)
    link.generation = 2  # reconnected: tag 1 now names another delivery, or none
    settle.ack(old)
    settle.return_to_queue(old)
    assert acked(link) == [] and link.rejected == []
    assert not old.acknowledged


def test_revoke_acks_reports_revoked_to_the_client_and_sends_the_event() -> None:
    link, events = RecordingLink(), RecordingEvents()
    link.acks.delivered(1)
    req = request(1)
    Settle(link, events).revoke(req, "expired")
    assert acked(link) == [(1, False)]
    (result,) = link.published
    body = loads(result.body, result.properties.content_type)
    assert body["status"] == "REVOKED"
    assert body["result"]["exc_type"] == "TaskRevokedError"
    assert events.sent == [
        ("task-revoked", req.id, {"terminated": False, "signum": None, "expired": True})
    ]


def test_every_report_survives_the_pipe_from_a_prefork_child() -> None:
    env = Envelope(body=b"{}", routing_key="q")
    reports: list[Report] = [
        Started(1, 42),
        Skipped(2, "unstarted"),
        Publish(3, env),
        Event(3, "task-custom", {"uuid": "x"}),
        Done(3, Outcome(3, "SUCCESS")),
        Died(0, -9),
    ]
    assert pickle.loads(pickle.dumps(reports)) == reports


def test_a_report_of_an_unknown_kind_is_an_error_not_dropped() -> None:
    nothing = cast(Any, None)  # no part of the pipeline is reached for this report
    reports = Reports(
        nothing,
        {},
        nothing,
        nothing,
        nothing,
        nothing,
        started=lambda r, p: None,
        rerun=lambda r: None,
    )
    with pytest.raises(AssertionError):
        reports.drain(deque([cast(Report, ("done", 1, None))]))
