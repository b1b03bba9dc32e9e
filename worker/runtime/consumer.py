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
(see :mod:`worker.runtime.pipeline.intake`). Pool reports are handled by
:mod:`worker.runtime.pipeline.reports`, control requests by :mod:`worker.runtime.mailbox`.
Connection loss: everything not yet acked is dropped from memory (the broker redelivers it), running
tasks go on, and the link reconnects with backoff.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from amqptool.codec.envelope import Envelope
from amqptool.codec.events import LamportClock
from amqptool.codec.results import STARTED
from amqptool.codec.tasks import TaskMessage
from amqptool.codec.times import utcnow
from amqptool.errors import AmqpToolError, BrokerError, ConnectionFailedError
from worker.config import WorkerConfig
from worker.control import registry as control
from worker.policy.eta import is_expired
from worker.policy.queues import QueueSpec
from worker.policy.worker_state import WorkerState
from worker.pool import pool_stats
from worker.pool.base import Pool, Report, SkipReason
from worker.pool.execute import Job
from worker.pool.results import store_for
from worker.runtime.events import EventDispatcher
from worker.runtime.link import BrokerLink, MailboxInUse
from worker.runtime.mailbox import Mailbox
from worker.runtime.mingle import mingle
from worker.runtime.pipeline.eta_stage import EtaStage
from worker.runtime.pipeline.intake import Intake
from worker.runtime.pipeline.rate_gate import RateLimitGate
from worker.runtime.pipeline.redelivery import RedeliveryGuard
from worker.runtime.pipeline.reports import Reports
from worker.runtime.pipeline.watch import Watch
from worker.runtime.request import Request
from worker.runtime.revoked_keeper import RevokedKeeper
from worker.runtime.settle import Settle
from worker.runtime.timer import Timer
from worker.task.define import Task

__all__ = ["Consumer"]

log = logging.getLogger("worker.consumer")
MAX_POOL_SIZE = 256  # pool_grow from any peer must not ask for a million threads

MAX_BLOCK = 1.0
SETTLE_TIMEOUT = 10.0  # longest wait at shutdown for the broker to confirm the last results


class Consumer:
    """The worker's broker-side runtime (also the
    :class:`~worker.control.registry.ControlTarget`)."""

    def __init__(self, config: WorkerConfig, tasks: Mapping[str, Task], pool: Pool) -> None:
        self.config = config
        self.nodename = config.nodename
        self.tasks = tasks
        self.pool = pool
        self.link = BrokerLink(config)
        self.clock = LamportClock()
        self.state = WorkerState()
        self.events = EventDispatcher(
            self.nodename,
            self.clock,
            self.link.publish,  # the link object stays (it reconnects inside)
            task_events=config.task_events,
            freq=config.heartbeat_interval,
        )
        self.settle = Settle(
            self.link,
            self.events,
            stores_results=config.stores_results,
            result_store=lambda: store_for(config.result_backend, config.result_expires),
        )
        self.timer = Timer()
        self.ready: deque[Request] = deque()
        self.active: dict[int, Request] = {}
        self.eta = EtaStage(
            self.timer,
            self.link,
            release=self._eta_due,
            on_count=self._eta_count,
            ack=self.settle.ack,
            threshold=config.eta_park_threshold,
        )
        self.gate = RateLimitGate(self.state, tasks, self.timer, self._gate_release)
        self.gate.disabled = config.disable_rate_limits
        self.watch = Watch(
            pool,
            self.timer,
            self.active,
            self.settle,
            task_limits=self.state.time_limits,
            defaults=(config.time_limit, config.soft_time_limit),
        )
        self.keeper = (
            RevokedKeeper(config.statedb, self.state.revoked, self.clock, self.timer)
            if config.statedb
            else None
        )
        self.panel = control.Panel(self, control.disabled_commands(config.disable_control))
        self.mailbox = Mailbox(
            self.nodename,
            self.clock,
            self.panel,
            self.link.reply,
            key=config.settings.control_key,
        )
        self._seq = itertools.count(1)
        self.redelivery = RedeliveryGuard(self.link, self.active, self.settle, admit=self.accept)
        self.intake = Intake(
            self.link,
            tasks,
            self.state,
            self.events,
            self.settle,
            accept=config.accept,
            next_seq=self.next_seq,
            hold=self.redelivery.hold,
            admit=self.accept,
        )
        self.reports = Reports(
            pool,
            self.active,
            self.watch,
            self.events,
            self.settle,
            self.redelivery,
            started=self.started,
            rerun=self._rerun,
        )
        self.outbox: deque[Report] = deque()
        self._wake_pending = False
        self.started_at = time.monotonic()
        self.warm = False  # plain flags: signal handlers set them (no locks in handlers)
        self.cold = False
        self.ready_event = threading.Event()
        self.on_ready: Callable[[], None] | None = None
        self.consuming = False
        self._held_bump = 0
        self.prefetch_base = config.prefetch  # concurrency x multiplier; follows pool_grow/shrink

    # ------------------------------------------------------------------ thread-safe API

    def notify(self, items: list[Report]) -> None:
        """Called by pool threads: queue reports and wake the broker thread (once per batch)."""
        self.outbox.extend(items)
        if not self._wake_pending:
            self._wake_pending = True
            self.link.wake()

    def _bind_pool(self, conn: Any) -> None:
        """prefork reads its pipes in the connection's I/O loop (this thread) into the outbox."""
        if (bind := getattr(self.pool, "bind_loop", None)) is not None:
            bind(conn, self.outbox)

    def request_shutdown(self, reason: str = "", *, cold: bool = False, wake: bool = True) -> None:
        """Warm (finish running tasks) or cold shutdown. ``wake=False`` from signal handlers."""
        if reason:
            log.info("%s shutdown requested: %s", "Cold" if cold else "Warm", reason)
        if cold:
            self.cold = True
        self.warm = True
        # From here on no waiting task starts, even before the broker thread wakes up (a signal
        # does not wake it): pool threads and children give theirs back.
        self.pool.hold()
        if wake:
            self.link.wake()

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> None:
        """Run until shut down (blocking, on the calling thread, which becomes the broker's)."""
        self.started_at = time.monotonic()
        self.pool.start(self.notify, self._precheck)
        try:
            if self.config.mingle and not self.cold:
                revoked = len(self.state.revoked)
                mingle(self.config.settings, self.nodename, self.state.revoked, self.clock)
                if len(self.state.revoked) != revoked:
                    self.revoked_changed()
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
        # Before the first connection nothing runs, so any shutdown request ends the retries (a
        # worker that cannot reach its broker still stops on SIGTERM); after it, only a cold one
        # does (a warm shutdown waits to report its running tasks).
        def should_stop() -> bool:
            return self.warm if initial else self.cold

        while True:
            try:
                self.link.connect(
                    self.intake.on_message,
                    self.mailbox.on_message,
                    consume=not self.warm,
                    should_stop=should_stop,
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
            self.consuming = not self.warm
            break
        self._bind_pool(self.link.conn)
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
            if self.warm and not self.consuming and not self.active and not self.outbox:
                break

    def _iterate(self) -> None:
        if self.warm and self.consuming:
            self._stop_consuming()
        now = time.monotonic()
        taken, recheck = self.pool.rebalance(now)  # jobs behind a long one: run them elsewhere
        self.reports.taken_back(taken)
        waits = (MAX_BLOCK, self.timer.next_delay(now), recheck)
        delay = min(d for d in waits if d is not None)
        if self.outbox or (self.ready and self.pool.can_accept()):
            delay = 0.0
        self.link.process(delay)
        self._wake_pending = False
        self.reports.drain(self.outbox)
        self.link.flush_acks(write_now=not self.active)  # before more work (BrokerLink doc)
        if self.warm and self.consuming:  # a signal came while we waited: start nothing more
            self._stop_consuming()
        self._dispatch()
        if self.timer.run_due(time.monotonic()):
            self._dispatch()
        self.link.flush_acks()
        self.events.flush()
        self.link.check_channels(self.mailbox.on_message)

    def _stop_consuming(self) -> None:
        """Warm shutdown, step 1: no new deliveries; give back what has not started."""
        self.consuming = False
        self.link.cancel_consumers()
        self._give_back()
        log.info("Warm shutdown: waiting for %d running task(s)", self.executing)

    def _give_back(self) -> None:
        requests = list(self.ready) + self.eta.clear() + self.gate.clear()
        self.ready.clear()
        for job in self.pool.take_unstarted():
            req = self.active.pop(job.seq, None)
            if req is not None:
                requests.append(req)
        for req in requests:
            self.settle.return_to_queue(req)

    def _connection_lost(self, exc: AmqpToolError) -> None:
        log.error("Connection to broker lost: %s; reconnecting", exc)
        # Nothing unacked survives the connection: the broker redelivers it.
        self.consuming = False
        self.ready.clear()
        self.gate.clear()
        self.eta.clear()
        self.redelivery.clear()
        for job in self.pool.take_unstarted():
            self.active.pop(job.seq, None)
        self.events.discard()
        self._bind_pool(None)
        self.link.close()
        self._connect(initial=False)
        self.events.worker("worker-online", active=self.executing, processed=self.processed)

    def _finish(self) -> None:
        cold = self.cold
        if self.keeper is not None:
            self.keeper.close()
        try:
            if self.link.conn is not None and self.link.conn.is_open:
                if not cold:
                    self.link.flush_acks()
                self.events.flush()
                self.events.worker("worker-offline", active=0, processed=self.processed)
                self.link.flush()
                self.link.settle(SETTLE_TIMEOUT, acks=not cold)
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

    def accept(self, req: Request, env: Envelope | None = None) -> None:
        """A decoded, known task: received → revoked/expired check → ETA hold or park → rate
        gate. ``env`` (the delivery) is what gets parked on the broker for a far-off ETA."""
        if self.revoked_or_expired(req):
            return
        if req.message.eta is not None and self.eta.admit(req, env):
            return
        self.gate.admit(req)

    def _eta_due(self, req: Request) -> None:
        if req.generation == self.link.generation and not self.revoked_or_expired(req):
            self.gate.admit(req)

    def _eta_count(self, delta: int) -> None:
        self._held_bump += delta
        if self.link.prefetch and self.link.task_ch is not None and self.consuming:
            self.link.set_prefetch(self.prefetch_base + max(self._held_bump, 0))

    def _gate_release(self, req: Request) -> None:
        self.ready.append(req)

    def _rerun(self, req: Request) -> None:
        """Never started (child died, job taken back): run it elsewhere first, or give it back."""
        if self.consuming and req.generation == self.link.generation:
            self.ready.appendleft(req)
        else:
            self.settle.return_to_queue(req)

    def revoked_or_expired(self, req: Request) -> bool:
        reason = self._unwanted(req.message)
        if reason is not None:
            self.settle.revoke(req, reason)
            return True
        return False

    def _unwanted(self, msg: TaskMessage) -> Literal["revoked", "expired"] | None:
        """ "revoked" (by id or stamped header), "expired", or None: it may run."""
        if self.state.revoked.is_revoked(msg.id, msg.stamped_headers, msg.stamps):
            return "revoked"
        if msg.expires is not None and is_expired(msg.expires, utcnow()):  # no clock read
            return "expired"
        return None

    def _dispatch(self) -> None:
        ready, pool, active = self.ready, self.pool, self.active
        while ready and pool.can_accept():
            req = ready.popleft()
            if req.generation != self.link.generation or self.revoked_or_expired(req):
                continue
            job = Job(
                req.seq,
                req.message,
                req.queue,
                req.delivery_info(),
                self.nodename,
                self.watch.dispatched(req),
                backend=self.config.result_backend,
                result_expires=self.config.result_expires,
            )
            active[req.seq] = req
            pid = pool.apply(job)
            if pid is not None:
                self.started(req, pid)
        pool.flush()

    def _precheck(self, job: Job) -> SkipReason | None:
        """Pool threads ask this just before starting a job (reads only; GIL-atomic)."""
        return self._unwanted(job.message)

    def started(self, req: Request, pid: int) -> None:
        req.time_start = time.time()
        req.worker_pid = pid
        self.watch.started(req)
        if not req.task.acks_late:
            self.settle.ack(req)
        self.events.task("task-started", req.message.id)
        if req.task.track_started:
            self.settle.report_state(req, STARTED, {"pid": pid, "hostname": self.nodename})

    # ------------------------------------------------------------------ heartbeats

    def _schedule_heartbeat(self) -> None:
        def beat() -> None:
            self.events.refresh()
            self.events.worker("worker-heartbeat", active=self.executing, processed=self.processed)
            self._schedule_heartbeat()

        self.timer.call_at(time.monotonic() + self.config.heartbeat_interval, beat)

    @property
    def executing(self) -> int:
        """Tasks running now (not those queued in the pool, waiting for a slot)."""
        return sum(1 for r in self.active.values() if r.started)

    @property
    def processed(self) -> int:
        return sum(self.state.total.values())

    # ------------------------------------------------------------------ ControlTarget

    def request_infos(self, which: str, *, safe: bool = False) -> list[dict[str, Any]]:
        if which == "active":
            reqs = [r for r in self.active.values() if r.started]
        else:
            waiting = [r for r in self.active.values() if not r.started]
            reqs = list(self.ready) + waiting + self.gate.waiting()
        return [r.info(self.nodename, safe=safe) for r in reqs]

    def scheduled_infos(self, *, safe: bool = False) -> list[dict[str, Any]]:
        return self.eta.items(self.nodename, safe=safe)

    def queue_infos(self) -> list[dict[str, Any]]:
        return self.link.queue_infos()

    def pool_stats(self) -> dict[str, Any]:
        limits = (self.config.soft_time_limit, self.config.time_limit)
        return pool_stats(self.pool, self.config.max_tasks_per_child, limits)

    def broker_stats(self) -> dict[str, Any]:
        return self.link.broker_stats()

    def prefetch_count(self) -> int:
        return self.link.prefetch

    def rate_limit_changed(self, task_name: str) -> None:
        self.gate.changed(task_name)

    def revoked_changed(self) -> None:
        if self.keeper is not None:
            self.keeper.changed()
        self.reports.taken_back(self.pool.take_back_waiting())  # checked again before they start

    def terminate(self, task_ids: Sequence[str], signum: int) -> list[str]:
        return self.watch.terminate_ids(task_ids, signum)

    def terminate_stamped(
        self, headers: Mapping[str, list[Any]], signum: int
    ) -> dict[str, set[Any]]:
        return self.watch.terminate_stamped(headers, signum)

    def add_queue(self, spec: QueueSpec) -> bool:
        return self.link.add_queue(spec, consume=self.consuming)

    def cancel_queue(self, name: str) -> bool:
        return self.link.cancel_queue(name)

    def resize_pool(self, delta: int) -> None:
        """``pool_grow``/``pool_shrink``: resize, then prefetch = slots x multiplier (+ ETA holds),
        as Celery does; an unlimited prefetch (multiplier 0) stays unlimited."""
        if delta > 0:
            if self.pool.concurrency + delta > MAX_POOL_SIZE:
                raise ValueError(
                    f"pool_grow would make {self.pool.concurrency + delta} slots; "
                    f"the most a remote command may ask for is {MAX_POOL_SIZE}"
                )
            self.pool.grow(delta)
        elif delta < 0:
            self.pool.shrink(-delta)
        if self.prefetch_base:
            self.prefetch_base = self.pool.concurrency * self.config.prefetch_multiplier
            self.link.set_prefetch(self.prefetch_base + max(self._held_bump, 0))
