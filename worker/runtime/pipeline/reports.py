"""Pipeline's last stage: what the pool reports, turned into results, events, acks (broker thread).

Reports arrive through :meth:`Consumer.notify` (see :mod:`worker.pool.threads` for their shapes) and
are drained once per loop iteration, in order:

- ``started``: ack now unless ``acks_late``; ``task-started``; STARTED with ``track_started``;
- ``publish`` / ``event``: a running task's ``update_state``, ``retry`` or ``send_event``;
- ``done``: follow-ups (callbacks, chain, errbacks), then the result, events, and the ack
  (``acks_late``) or the reject (the task raised ``Reject``);
- ``skipped``: revoked/expired just before it started, or given back unstarted (shutdown);
- ``died``: a prefork child exited: its started task fails with ``WorkerLostError`` (or is
  requeued with ``reject_on_worker_lost``), its unstarted ones run elsewhere.

A task the broker thread stopped itself (hard time limit, ``terminate``:
:mod:`worker.runtime.pipeline.watch`) was announced then; what the pool says about it afterwards is
dropped.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from amqptool.codec.results import FAILURE
from worker.pool.execute import REJECTED, Outcome
from worker.runtime.request import Request
from worker.task.exceptions import WorkerLostError

if TYPE_CHECKING:
    from worker.runtime.consumer import Consumer

__all__ = ["Reports"]

log = logging.getLogger("worker.consumer")


class Reports:
    def __init__(self, consumer: Consumer) -> None:
        self.c = consumer

    def drain(self) -> None:
        c = self.c
        outbox = c.outbox
        active = c.active
        while outbox:
            kind, key, payload = outbox.popleft()
            if kind == "done":
                self._done(key, payload)
            elif kind == "started":
                req = active.get(key)
                if req is not None:
                    c.started(req, payload)
            elif kind == "publish":
                c.link.publish(payload)
            elif kind == "event":
                event_type, fields = payload
                c.events.task(event_type, str(fields.pop("uuid", "")), fields)
            elif kind == "skipped":
                self._skipped(key, payload)
            elif kind == "died":
                self._child_died(key, payload)

    def _done(self, seq: int, outcome: Outcome) -> None:
        c = self.c
        c.pool.job_done(seq)
        req = c.active.pop(seq, None)
        if req is None:
            return
        if c.watch.settled(seq):  # settled: announced by the watch already
            c.redelivery.finished(req, run_again=False)
            return
        for env in outcome.followups:
            c.link.publish(env)
        if outcome.result is not None:
            c.link.publish(outcome.result)
        task_id = req.message.id
        for event_type, fields in outcome.events:
            c.events.task(event_type, task_id, fields)
        if outcome.state == REJECTED:
            if not req.acknowledged and req.generation == c.link.generation:
                req.acknowledged = True
                c.link.reject(req.delivery_tag, requeue=outcome.requeue)
            c.redelivery.finished(req, run_again=outcome.requeue)
            return
        c.ack(req)
        c.redelivery.finished(req, run_again=False)

    def _skipped(self, seq: int, reason: str) -> None:
        c = self.c
        c.pool.job_done(seq)
        req = c.active.pop(seq, None)
        if req is None:
            return
        if reason == "unstarted":
            c.return_to_queue(req)
        else:
            c.revoke(req, reason)
        c.redelivery.finished(req, run_again=reason == "unstarted")

    def _child_died(self, slot: int, exitcode: int | None) -> None:
        c = self.c
        held = c.pool.child_died(slot, exitcode)
        for seq in reversed(held):
            req = c.active.get(seq)
            if req is None:
                continue
            if req.started:
                self._lost(req, exitcode)
                continue
            del c.active[seq]  # never started: it can run on another child
            if c.consuming and req.generation == c.link.generation:
                c.ready.appendleft(req)
            else:
                c.return_to_queue(req)

    def _lost(self, req: Request, exitcode: int | None) -> None:
        c = self.c
        del c.active[req.seq]
        if c.watch.settled(req.seq):  # killed on purpose (time limit, terminate): announced
            c.redelivery.finished(req, run_again=False)
            return
        msg = req.message
        why = f"Worker exited prematurely: exitcode {exitcode}."
        if exitcode is not None and exitcode < 0:
            why = f"Worker exited prematurely: signal {-exitcode}."
        own = req.generation == c.link.generation and not req.acknowledged
        if req.task.reject_on_worker_lost and own:
            log.error("Task %s[%s]: %s Requeued.", msg.task, msg.id, why)
            req.acknowledged = True
            c.link.reject(req.delivery_tag, requeue=True)
            c.events.task("task-rejected", msg.id, {"requeue": True})
            return
        if req.task.reject_on_worker_lost and c.redelivery.held.get(msg.id):
            log.error("Task %s[%s]: %s Its redelivered copy runs.", msg.task, msg.id, why)
            c.redelivery.finished(req, run_again=True)
            return
        log.error("Task %s[%s] failed: WorkerLostError(%r)", msg.task, msg.id, why)
        if (msg.reply_to or c.config.stores_results) and not (
            msg.ignore_result or req.task.ignore_result
        ):
            c.publish_state(
                msg.reply_to or "",
                msg.correlation_id or msg.id,
                msg.id,
                FAILURE,
                WorkerLostError(why),
            )
        c.events.task("task-failed", msg.id, {"exception": f"WorkerLostError({why!r})"})
        c.ack(req)
        c.redelivery.finished(req, run_again=False)
