"""The broker thread: receive → decode → revoked/expired → ETA hold → rate gate → pool → ack.

Everything in this module runs on the one thread that owns the pika connection. Pool threads
and processes reach it only through :meth:`Consumer.notify` (a deque plus one
``call_soon_threadsafe`` wake-up per batch). Each loop iteration:

1. ``process_events`` (blocks until a delivery, a wake-up or the next timer; AMQP heartbeats
   are answered here, so they keep flowing while tasks run for minutes);
2. drain the pool's reports (started / done / died, state updates, retries);
3. hand ready requests to free pool slots;
4. run due timers (ETA releases, worker heartbeat);
5. flush batched acks and task events.

Bad input never kills the loop: it is logged in one line and rejected without requeue
(see :mod:`worker.intake`). Connection loss: everything not yet acked is dropped from memory
(the broker redelivers it), running tasks go on, and the link reconnects with backoff.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from amqptool.codec.control import decode_request, encode_reply
from amqptool.codec.envelope import Envelope
from amqptool.codec.events import LamportClock
from amqptool.codec.results import FAILURE, REVOKED, STARTED, encode_result, result_body
from amqptool.codec.times import utcnow
from amqptool.errors import AmqpToolError, BrokerError, ConnectionFailedError
from worker import control
from worker.broker import BrokerLink, MailboxInUse
from worker.config import WorkerConfig
from worker.events import EventDispatcher
from worker.exceptions import WorkerLostError
from worker.execute import REJECTED, Job, Outcome
from worker.intake import Intake
from worker.pools import Pool
from worker.ratelimit import RateLimitGate
from worker.request import Request
from worker.schedule import EtaHolder, Timer
from worker.state import WorkerState
from worker.tasks import Task

__all__ = ["Consumer"]

log = logging.getLogger("worker.consumer")

MAX_BLOCK = 1.0


class Consumer:
    """The worker's broker-side runtime (also the :class:`~worker.control.ControlTarget`)."""

    def __init__(self, config: WorkerConfig, tasks: Mapping[str, Task], pool: Pool) -> None:
        self.config = config
        self.nodename = config.nodename
        self.tasks = tasks
        self.pool = pool
        self.link = BrokerLink(config)
        self.clock = LamportClock()
        self.mailbox_clock = LamportClock()
        self.state = WorkerState()
        self.events = EventDispatcher(
            self.nodename,
            self.clock,
            self._publish,
            task_events=config.task_events,
            freq=config.heartbeat_interval,
        )
        self.timer = Timer()
        self.eta: EtaHolder[Request] = EtaHolder(self.timer, self._eta_due, self._eta_count)
        self.gate = RateLimitGate(self.state, self._gate_release)
        self.panel = control.Panel(self)
        self.intake = Intake(self)
        self.ready: deque[Request] = deque()
        self.active: dict[int, Request] = {}
        self._seq = itertools.count(1)
        self._outbox: deque[tuple[Any, ...]] = deque()
        self._wake_pending = False
        self.started_at = time.monotonic()
        self.warm = False  # plain flags: signal handlers set them (no locks in handlers)
        self.cold = False
        self.ready_event = threading.Event()
        self.on_ready: Callable[[], None] | None = None
        self._consuming = False
        self._held_bump = 0

    # ------------------------------------------------------------------ thread-safe API

    def notify(self, items: list[tuple[Any, ...]]) -> None:
        """Called by pool threads: queue reports and wake the broker thread (once per batch)."""
        self._outbox.extend(items)
        if not self._wake_pending:
            self._wake_pending = True
            self.link.wake()

    def request_shutdown(self, reason: str = "", *, cold: bool = False, wake: bool = True) -> None:
        """Warm (finish running tasks) or cold shutdown. ``wake=False`` from signal handlers."""
        if reason:
            log.info("%s shutdown requested: %s", "Cold" if cold else "Warm", reason)
        if cold:
            self.cold = True
        self.warm = True
        if wake:
            self.link.wake()

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> None:
        """Run until shut down (blocking, on the calling thread, which becomes the broker's)."""
        self.pool.start(self.notify, self._precheck)
        try:
            self._connect(initial=True)
            self.events.worker("worker-online", active=0, processed=0)
            self.ready_event.set()
            if self.on_ready is not None:
                self.on_ready()
            self._schedule_heartbeat()
            self._loop()
        finally:
            self._finish()

    def _connect(self, *, initial: bool) -> None:
        while True:
            try:
                self.link.connect(
                    self.intake.on_message,
                    self._on_control,
                    consume=not self.warm,
                    should_stop=lambda: self.cold,
                    retries=self.config.connect_retries if initial else None,
                )
            except MailboxInUse:
                if initial:
                    raise
                log.warning("pidbox queue still held by our old connection; retrying in 1s")
                self.link.close()
                deadline = time.monotonic() + 1.0
                while time.monotonic() < deadline and not self.cold:
                    time.sleep(0.05)
                if self.cold:
                    raise
                continue
            self._consuming = not self.warm
            break
        self._held_bump = 0
        log.info("Connected to %s", self.link.redacted())

    def _loop(self) -> None:
        while not self.cold:
            try:
                self._iterate()
            except (ConnectionFailedError, BrokerError) as exc:
                if self.cold:
                    break
                self._connection_lost(exc)
                continue
            if self.warm and not self._consuming and not self.active and not self._outbox:
                break

    def _iterate(self) -> None:
        if self.warm and self._consuming:
            self._stop_consuming()
        now = time.monotonic()
        delay = self.timer.next_delay(now)
        delay = MAX_BLOCK if delay is None else min(delay, MAX_BLOCK)
        if self._outbox or (self.ready and self.pool.can_accept()):
            delay = 0.0
        self.link.process(delay)
        self._drain()
        self._dispatch()
        if self.timer.run_due(time.monotonic()):
            self._dispatch()
        self.link.flush_acks()
        self.events.flush()
        self.link.check_channels(self._on_control)

    def _stop_consuming(self) -> None:
        """Warm shutdown, step 1: no new deliveries; give back what has not started."""
        log.info("Warm shutdown: waiting for %d running task(s)", len(self.active))
        self._consuming = False
        self.link.cancel_consumers()
        self._give_back()

    def _give_back(self) -> None:
        requests = list(self.ready) + self.eta.clear() + self.gate.clear()
        self.ready.clear()
        for job in self.pool.take_unstarted():
            req = self.active.pop(job.seq, None)
            if req is not None:
                requests.append(req)
        for req in requests:
            self._return_to_queue(req)

    def _connection_lost(self, exc: AmqpToolError) -> None:
        log.error("Connection to broker lost: %s; reconnecting", exc)
        # Nothing unacked survives the connection: the broker redelivers it.
        self.ready.clear()
        self.gate.clear()
        self._held_bump = 0
        self.eta.clear()
        for job in self.pool.take_unstarted():
            self.active.pop(job.seq, None)
        self.events.discard()
        self.link.close()
        self._connect(initial=False)
        self.events.worker("worker-online", active=len(self.active), processed=self.processed)

    def _finish(self) -> None:
        cold = self.cold
        try:
            if self.link.conn is not None and self.link.conn.is_open:
                if not cold:
                    self.link.flush_acks()
                self.events.flush()
                self.events.worker("worker-offline", active=0, processed=self.processed)
                self.link.flush()
        except AmqpToolError as exc:
            log.warning("could not say goodbye to the broker: %s", exc)
        finally:
            self.link.close()
            if cold:
                self.pool.terminate()
            else:
                self.pool.stop()

    # ------------------------------------------------------------------ pipeline

    def next_seq(self) -> int:
        return next(self._seq)

    def accept(self, req: Request) -> None:
        """A decoded, known task: received → revoked/expired check → ETA hold → rate gate."""
        if self.revoked_or_expired(req):
            return
        eta = req.message.eta
        if eta is not None:
            delay = (eta - utcnow()).total_seconds()
            if delay > 0:
                self.eta.hold(req, eta, delay, time.monotonic())
                return
        self.gate.admit(req)

    def _eta_due(self, req: Request) -> None:
        if req.generation == self.link.generation:
            self.gate.admit(req)

    def _eta_count(self, delta: int) -> None:
        self._held_bump += delta
        if self.link.prefetch and self.link.task_ch is not None and self._consuming:
            self.link.set_prefetch(self.config.prefetch + max(self._held_bump, 0))

    def _gate_release(self, req: Request) -> None:
        self.ready.append(req)

    def revoked_or_expired(self, req: Request) -> bool:
        msg = req.message
        if msg.id in self.state.revoked:
            self._revoke(req, "revoked")
            return True
        if msg.expires is not None and utcnow() >= msg.expires:
            self._revoke(req, "expired")
            return True
        return False

    def _revoke(self, req: Request, reason: str) -> None:
        msg = req.message
        log.info("Discarding revoked task: %s[%s] (%s)", msg.task, msg.id, reason)
        self.ack(req)
        if msg.reply_to and not (msg.ignore_result or req.task.ignore_result):
            exc = {"exc_type": "TaskRevokedError", "exc_message": [reason]}
            exc["exc_module"] = "celery.exceptions"
            self.publish_state(msg.reply_to, msg.correlation_id or msg.id, msg.id, REVOKED, exc)
        fields = {"terminated": False, "signum": None, "expired": reason == "expired"}
        self.events.task("task-revoked", msg.id, fields)

    def _dispatch(self) -> None:
        ready, pool, active = self.ready, self.pool, self.active
        while ready and pool.can_accept():
            req = ready.popleft()
            if req.generation != self.link.generation or self.revoked_or_expired(req):
                continue
            job = Job(req.seq, req.message, req.queue, req.delivery_info(), self.nodename)
            active[req.seq] = req
            pid = pool.apply(job)
            if pid is not None:
                self._started(req, pid)

    def _precheck(self, job: Job) -> str | None:
        """Pool threads ask this just before starting a job (reads only; GIL-atomic)."""
        msg = job.message
        if msg.id in self.state.revoked:
            return "revoked"
        if msg.expires is not None and utcnow() >= msg.expires:
            return "expired"
        return None

    def _started(self, req: Request, pid: int) -> None:
        req.time_start = time.time()
        req.worker_pid = pid
        if not req.task.acks_late:
            self.ack(req)
        msg = req.message
        self.events.task("task-started", msg.id)
        task = req.task
        if task.track_started and msg.reply_to and not (msg.ignore_result or task.ignore_result):
            self.publish_state(
                msg.reply_to,
                msg.correlation_id or msg.id,
                msg.id,
                STARTED,
                {"pid": pid, "hostname": self.nodename},
            )

    def ack(self, req: Request) -> None:
        if not req.acknowledged and req.generation == self.link.generation:
            req.acknowledged = True
            self.link.acks.ack(req.delivery_tag)

    # ------------------------------------------------------------------ pool reports

    def _drain(self) -> None:
        self._wake_pending = False
        outbox = self._outbox
        active = self.active
        while outbox:
            kind, key, payload = outbox.popleft()
            if kind == "done":
                self._done(key, payload)
            elif kind == "started":
                req = active.get(key)
                if req is not None:
                    self._started(req, payload)
            elif kind == "publish":
                self._publish(payload)
            elif kind == "event":
                event_type, fields = payload
                self.events.task(event_type, str(fields.pop("uuid", "")), fields)
            elif kind == "skipped":
                self._skipped(key, payload)
            elif kind == "died":
                self._child_died(key, payload)

    def _done(self, seq: int, outcome: Outcome) -> None:
        self.pool.job_done(seq)
        req = self.active.pop(seq, None)
        if req is None:
            return
        for env in outcome.followups:
            self._publish(env)
        if outcome.result is not None:
            self._publish(outcome.result)
        task_id = req.message.id
        for event_type, fields in outcome.events:
            self.events.task(event_type, task_id, fields)
        if outcome.state == REJECTED:
            if not req.acknowledged and req.generation == self.link.generation:
                req.acknowledged = True
                self.link.reject(req.delivery_tag, requeue=outcome.requeue)
            return
        self.ack(req)

    def _skipped(self, seq: int, reason: str) -> None:
        self.pool.job_done(seq)
        req = self.active.pop(seq, None)
        if req is None:
            return
        if reason == "unstarted":
            self._return_to_queue(req)
        else:
            self._revoke(req, reason)

    def _return_to_queue(self, req: Request) -> None:
        if req.generation == self.link.generation and not req.acknowledged:
            req.acknowledged = True
            self.link.reject(req.delivery_tag, requeue=True)

    def _child_died(self, slot: int, exitcode: int | None) -> None:
        held = self.pool.child_died(slot, exitcode)
        for seq in reversed(held):
            req = self.active.get(seq)
            if req is None:
                continue
            if req.started:
                self._lost(seq, exitcode)
                continue
            del self.active[seq]  # never started: it can run on another child
            if self._consuming and req.generation == self.link.generation:
                self.ready.appendleft(req)
            else:
                self._return_to_queue(req)

    def _lost(self, seq: int, exitcode: int | None) -> None:
        req = self.active.pop(seq, None)
        if req is None:
            return
        msg = req.message
        why = f"Worker exited prematurely: exitcode {exitcode}."
        if exitcode is not None and exitcode < 0:
            why = f"Worker exited prematurely: signal {-exitcode}."
        own = req.generation == self.link.generation and not req.acknowledged
        if req.task.reject_on_worker_lost and own:
            log.error("Task %s[%s]: %s Requeued.", msg.task, msg.id, why)
            req.acknowledged = True
            self.link.reject(req.delivery_tag, requeue=True)
            self.events.task("task-rejected", msg.id, {"requeue": True})
            return
        log.error("Task %s[%s] failed: WorkerLostError(%r)", msg.task, msg.id, why)
        if msg.reply_to and not (msg.ignore_result or req.task.ignore_result):
            self.publish_state(
                msg.reply_to, msg.correlation_id or msg.id, msg.id, FAILURE, WorkerLostError(why)
            )
        self.events.task("task-failed", msg.id, {"exception": f"WorkerLostError({why!r})"})
        self.ack(req)

    # ------------------------------------------------------------------ publishing

    def _publish(self, env: Envelope) -> None:
        self.link.publish(env)

    def publish_state(
        self, reply_to: str, correlation_id: str, task_id: str, status: str, value: Any
    ) -> None:
        body = result_body(task_id, status, value)
        self._publish(encode_result(body, reply_to=reply_to, correlation_id=correlation_id))

    def _schedule_heartbeat(self) -> None:
        def beat() -> None:
            self.events.refresh()
            self.events.worker(
                "worker-heartbeat", active=len(self.active), processed=self.processed
            )
            self._schedule_heartbeat()

        self.timer.call_at(time.monotonic() + self.config.heartbeat_interval, beat)

    @property
    def processed(self) -> int:
        return sum(self.state.total.values())

    # ------------------------------------------------------------------ remote control

    def _on_control(self, env: Envelope) -> None:
        try:
            self.mailbox_clock.adjust(env.headers.get("clock"))
            req = decode_request(env)
        except AmqpToolError as exc:
            log.warning("Ignored an unreadable control message: %s", exc)
            return
        self.clock.forward()
        if not req.matches(self.nodename):
            return
        reply = control.dispatch(self.panel, req.method, req.arguments)
        if reply is control.NO_REPLY or not req.wants_reply or req.reply_to is None:
            return
        assert req.ticket is not None
        clock = self.mailbox_clock.forward()
        try:
            out = encode_reply(
                self.nodename, reply, ticket=req.ticket, clock=clock, reply_to=req.reply_to
            )
        except AmqpToolError as exc:
            out = encode_reply(
                self.nodename,
                {"error": f"reply not serializable: {exc}"},
                ticket=req.ticket,
                clock=clock,
                reply_to=req.reply_to,
            )
        try:
            self.link.reply(out)
        except BrokerError as exc:
            log.warning("could not reply to %s: %s", req.method, exc)

    # ------------------------------------------------------------------ ControlTarget

    def request_infos(self, which: str, *, safe: bool = False) -> list[dict[str, Any]]:
        if which == "active":
            reqs = [r for r in self.active.values() if r.started]
        else:
            waiting = [r for r in self.active.values() if not r.started]
            reqs = list(self.ready) + waiting + self.gate.waiting()
        return [r.info(self.nodename, safe=safe) for r in reqs]

    def scheduled_infos(self, *, safe: bool = False) -> list[dict[str, Any]]:
        return [
            {"eta": eta.isoformat(), "priority": 6, "request": r.info(self.nodename, safe=safe)}
            for r, eta in self.eta.held()
        ]

    def queue_infos(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name in self.config.queues:
            out.append(
                {
                    "name": name,
                    "exchange": {
                        "name": name,
                        "type": "direct",
                        "arguments": None,
                        "durable": True,
                        "passive": False,
                        "auto_delete": False,
                        "delivery_mode": None,
                        "no_declare": False,
                    },
                    "routing_key": name,
                    "queue_arguments": None,
                    "binding_arguments": None,
                    "consumer_arguments": None,
                    "durable": True,
                    "exclusive": False,
                    "auto_delete": False,
                    "no_ack": False,
                    "alias": None,
                    "bindings": [],
                    "no_declare": None,
                    "expires": None,
                    "message_ttl": None,
                    "max_length": None,
                    "max_length_bytes": None,
                    "max_priority": None,
                }
            )
        return out

    def pool_stats(self) -> dict[str, Any]:
        return {
            "implementation": self.pool.implementation,
            "max-concurrency": self.pool.concurrency,
            "processes": self.pool.processes(),
            "max-tasks-per-child": "N/A",
            "put-guarded-by-semaphore": False,
            "timeouts": [0, 0],
        }

    def broker_stats(self) -> dict[str, Any]:
        return self.link.broker_stats()

    def prefetch_count(self) -> int:
        return self.link.prefetch

    def rate_limit_changed(self, task_name: str) -> None:
        self.gate.changed(task_name)
