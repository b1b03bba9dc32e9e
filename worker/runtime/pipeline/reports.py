"""Pipeline's last stage: what the pool reports, turned into results, events, acks (broker thread).

Reports arrive through :meth:`Consumer.notify` (their types are in :mod:`worker.pool.base`) and
are drained once per loop iteration, in order, each kind handled (``match`` + ``assert_never``:
a new kind of report does not type-check until it is handled here):

- ``Started``: ack now unless ``acks_late``; ``task-started``; STARTED with ``track_started``;
- ``Publish`` / ``Event``: a running task's ``update_state``, ``retry`` or ``send_event``;
- ``Done``: follow-ups (callbacks, chain, errbacks), then the result, events, and the ack
  (``acks_late``) or the reject (the task raised ``Reject``);
- ``Skipped``: revoked/expired just before it started, or given back unstarted (shutdown);
- ``Died``: a prefork child exited: its started task fails with ``WorkerLostError`` (or is
  requeued with ``reject_on_worker_lost``), its unstarted ones run elsewhere.

A task the broker thread stopped itself (hard time limit, ``terminate``:
:mod:`worker.runtime.pipeline.watch`) was announced then; what the pool says about it afterwards is
dropped.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import assert_never

from amqptool.codec.results import FAILURE
from worker.pool.base import (
    Died,
    Done,
    Event,
    Pool,
    Publish,
    Report,
    Skipped,
    SkipReason,
    Started,
)
from worker.pool.execute import REJECTED, Outcome
from worker.runtime.events import EventDispatcher
from worker.runtime.pipeline.redelivery import RedeliveryGuard
from worker.runtime.pipeline.watch import Watch
from worker.runtime.request import Request
from worker.runtime.settle import Settle
from worker.task.exceptions import WorkerLostError

__all__ = ["Reports"]

log = logging.getLogger("worker.consumer")


class Reports:
    """The pool's reports, settled on the broker thread.

    ``started(req, pid)`` is the consumer's "a job began" step; ``rerun(req)`` takes a job a dead
    child never started (run it elsewhere, or give it back).
    """

    def __init__(
        self,
        pool: Pool,
        active: dict[int, Request],
        watch: Watch,
        events: EventDispatcher,
        settle: Settle,
        redelivery: RedeliveryGuard,
        *,
        started: Callable[[Request, int], None],
        rerun: Callable[[Request], None],
    ) -> None:
        self.pool = pool
        self.active = active
        self.watch = watch
        self.events = events
        self.settle = settle
        self.redelivery = redelivery
        self.started = started
        self.rerun = rerun

    def drain(self, outbox: deque[Report]) -> None:
        active = self.active
        while outbox:
            report = outbox.popleft()
            match report:
                case Done(seq, outcome):
                    self._done(seq, outcome)
                case Started(seq, pid):
                    req = active.get(seq)
                    if req is not None:
                        self.started(req, pid)
                case Publish(_, envelope):
                    self.settle.publish(envelope)
                case Event(_, event_type, fields):
                    self.events.task(event_type, str(fields.pop("uuid", "")), fields)
                case Skipped(seq, reason):
                    self._skipped(seq, reason)
                case Died(slot, exitcode):
                    self._child_died(slot, exitcode)
                case _:
                    assert_never(report)

    def _done(self, seq: int, outcome: Outcome) -> None:
        self.pool.job_done(seq)
        req = self.active.pop(seq, None)
        if req is None:
            return
        if self.watch.settled(seq):  # settled: announced by the watch already
            self.redelivery.finished(req, run_again=False)
            return
        for env in outcome.followups:
            self.settle.publish(env)
        if outcome.result is not None:
            self.settle.publish(outcome.result)
        task_id = req.message.id
        for event_type, fields in outcome.events:
            self.events.task(event_type, task_id, fields)
        if outcome.state == REJECTED:
            self.settle.reject(req, requeue=outcome.requeue)
            self.redelivery.finished(req, run_again=outcome.requeue)
            return
        self.settle.ack_when_published(req)
        self.redelivery.finished(req, run_again=False)

    def _skipped(self, seq: int, reason: SkipReason) -> None:
        self.pool.job_done(seq)
        req = self.active.pop(seq, None)
        if req is None:
            return
        if reason == "unstarted":
            self.settle.return_to_queue(req)
        else:
            self.settle.revoke(req, reason)
        self.redelivery.finished(req, run_again=reason == "unstarted")

    def _child_died(self, slot: int, exitcode: int | None) -> None:
        held = self.pool.child_died(slot, exitcode)
        for seq in reversed(held):
            req = self.active.get(seq)
            if req is None:
                continue
            if req.started:
                self._lost(req, exitcode)
                continue
            del self.active[seq]  # never started: it can run on another child
            self.rerun(req)

    def taken_back(self, seqs: list[int]) -> None:
        """Jobs the pool took back unstarted (from behind a long task, or for a revoke): they
        run first, elsewhere, or go back to the broker (``rerun``)."""
        for seq in reversed(seqs):
            req = self.active.pop(seq, None)
            if req is not None:
                self.rerun(req)

    def _lost(self, req: Request, exitcode: int | None) -> None:
        del self.active[req.seq]
        if self.watch.settled(req.seq):  # killed on purpose (time limit, terminate): announced
            self.redelivery.finished(req, run_again=False)
            return
        msg = req.message
        why = f"Worker exited prematurely: exitcode {exitcode}."
        if exitcode is not None and exitcode < 0:
            why = f"Worker exited prematurely: signal {-exitcode}."
        if req.task.reject_on_worker_lost and self.settle.reject(req, requeue=True):
            log.error("Task %s[%s]: %s Requeued.", msg.task, msg.id, why)
            self.events.task("task-rejected", msg.id, {"requeue": True})
            return
        if req.task.reject_on_worker_lost and self.redelivery.held.get(msg.id):
            log.error("Task %s[%s]: %s Its redelivered copy runs.", msg.task, msg.id, why)
            self.redelivery.finished(req, run_again=True)
            return
        log.error("Task %s[%s] failed: WorkerLostError(%r)", msg.task, msg.id, why)
        self.settle.report_state(req, FAILURE, WorkerLostError(why))
        self.events.task("task-failed", msg.id, {"exception": f"WorkerLostError({why!r})"})
        self.settle.ack(req)
        self.redelivery.finished(req, run_again=False)
