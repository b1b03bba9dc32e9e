"""The rule for a redelivered copy of a task still running here (pure logic, a stand-in
consumer): held while the first run lasts, then acked (its outcome stands) or run once."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from amqptool.codec.tasks import TaskMessage
from worker.runtime.link import BrokerLink
from worker.runtime.pipeline.redelivery import RedeliveryGuard
from worker.runtime.request import Request
from worker.runtime.settle import Settle
from worker.task.define import Task

NOOP = cast(Task, SimpleNamespace(name="guard.unit_noop", acks_late=True))  # only carried


class StandIn:
    def __init__(self) -> None:
        self.active: dict[int, Request] = {}
        self.link = SimpleNamespace(generation=2)
        self.accepted: list[Request] = []
        self.acked: list[Request] = []

    def accept(self, req: Request, env: Any = None) -> None:
        self.accepted.append(req)

    def ack(self, req: Request) -> None:
        self.acked.append(req)


def _req(seq: int, task_id: str, generation: int, *, redelivered: bool) -> Request:
    msg = TaskMessage(task="guard.unit_noop", id=task_id)
    return Request(
        seq,
        msg,
        NOOP,
        delivery_tag=seq,
        generation=generation,
        queue="q",
        redelivered=redelivered,
    )


def _guard() -> tuple[RedeliveryGuard, StandIn]:
    c = StandIn()
    guard = RedeliveryGuard(cast(BrokerLink, c.link), c.active, cast(Settle, c), admit=c.accept)
    return guard, c


def test_a_copy_is_held_only_while_an_earlier_delivery_of_the_same_task_runs() -> None:
    guard, c = _guard()
    first = _req(1, "t1", 1, redelivered=False)
    c.active[1] = first
    assert not guard.hold(_req(2, "t1", 2, redelivered=False))  # not a redelivery
    assert not guard.hold(_req(3, "other", 2, redelivered=True))  # another task
    same_generation = _req(4, "t1", 1, redelivered=True)
    assert not guard.hold(same_generation)  # a second message on the same channel: its own run
    copy = _req(5, "t1", 2, redelivered=True)
    assert guard.hold(copy) and guard.held == {"t1": [copy]}


def test_when_the_first_run_ends_its_outcome_stands_and_the_copy_is_acked() -> None:
    guard, c = _guard()
    c.active[1] = first = _req(1, "t1", 1, redelivered=False)
    copy = _req(2, "t1", 2, redelivered=True)
    assert guard.hold(copy)
    guard.finished(first, run_again=False)
    assert c.acked == [copy] and c.accepted == [] and guard.held == {}


def test_a_first_run_that_asks_to_run_again_runs_one_held_copy() -> None:
    guard, c = _guard()
    c.active[1] = first = _req(1, "t1", 1, redelivered=False)
    copies = [_req(2, "t1", 2, redelivered=True), _req(3, "t1", 2, redelivered=True)]
    assert all(guard.hold(copy) for copy in copies)
    guard.finished(first, run_again=True)
    assert c.accepted == [copies[0]] and c.acked == [copies[1]]


def test_copies_of_a_lost_channel_are_left_to_the_broker() -> None:
    guard, c = _guard()
    c.active[1] = first = _req(1, "t1", 1, redelivered=False)
    assert guard.hold(_req(2, "t1", 2, redelivered=True))
    c.link.generation = 3  # that channel went too: the broker has the copy back
    guard.finished(first, run_again=False)
    assert c.acked == [] and c.accepted == []
    assert guard.hold(_req(4, "t1", 3, redelivered=True))
    guard.clear()
    assert guard.held == {}
