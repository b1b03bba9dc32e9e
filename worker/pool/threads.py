"""The ``threads`` and ``solo`` pools: task code on threads of this process.

Jobs wait in one queue; each thread takes the next, asks ``precheck`` (revoked? expired?) just
before starting it, and reports through ``notify`` (see :mod:`worker.pool.base` for the
reports). Time limits are raised in the task's thread (:mod:`worker.policy.time_limits`).
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import threading
from collections.abc import Mapping
from typing import Any

from amqptool.codec.envelope import Envelope
from amqptool.codec.results import FAILURE
from worker.policy.time_limits import async_raise
from worker.pool.base import Done, Event, Notify, Precheck, Publish, Report, Skipped, Started
from worker.pool.execute import Job, Outcome, execute
from worker.pool.result_writer import defer_here, writer
from worker.task.define import Task

__all__ = ["ThreadPool"]

log = logging.getLogger("worker.pool")


class _ThreadSink:
    __slots__ = ("notify", "seq")

    def __init__(self, seq: int, notify: Notify) -> None:
        self.seq = seq
        self.notify = notify

    def publish(self, env: Envelope) -> None:
        self.notify([Publish(self.seq, env)])

    def event(self, event_type: str, fields: dict[str, Any]) -> None:
        self.notify([Event(self.seq, event_type, fields)])


class ThreadPool:
    """``concurrency`` threads taking jobs from one queue (``solo`` is one thread).

    Up to ``lookahead`` extra jobs (None: no bound) wait in the queue, so a thread finds its
    next job without a round trip to the broker thread: that round trip per task would cost
    more than a trivial task itself. Waiting jobs are still *reserved*: they are acked only
    when a thread starts them (the ``started`` report), ``precheck`` (revoked? expired?) runs
    just before that, and :meth:`take_unstarted` gives them back on shutdown.

    Time limits are raised in the running task's thread (:meth:`raise_in_job`; see
    :mod:`worker.policy.time_limits` for what that can and cannot stop); a thread cannot be killed.
    """

    handles_soft_limits = False

    def __init__(
        self,
        tasks: Mapping[str, Task],
        concurrency: int = 1,
        *,
        name: str = "threads",
        lookahead: int | None = None,
    ) -> None:
        self.name = name
        self.implementation = f"worker.pools:ThreadPool({name})"
        self.concurrency = max(1, concurrency)
        self.tasks = tasks
        self.lookahead = lookahead
        self.limit = self.concurrency + lookahead if lookahead is not None else 1 << 30
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._started = 0
        self._in_flight = 0
        self._held = False
        self._running: dict[int, int] = {}  # seq -> ident of the thread running it
        # Jobs run to the end whose Done waits for their results to be stored: they hold no
        # thread, so they do not count against ``limit`` (the writer's queue bounds them).
        self._storing: set[int] = set()
        self._targeted: set[int] = set()  # seqs an asynchronous exception was sent to
        self._lock = threading.Lock()

    def start(self, notify: Notify, precheck: Precheck | None = None) -> None:
        self._notify = notify
        self._precheck = precheck
        self._start_threads(self.concurrency)

    def _start_threads(self, n: int) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]
        for _ in range(n):
            self._started += 1
            t = threading.Thread(
                target=self._loop, name=f"{self.name}-{self._started}", daemon=True
            )
            t.start()
            self._threads.append(t)

    def _resize(self, n: int, delta: int) -> None:
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        if self.name == "solo":
            raise ValueError("the solo pool has exactly one slot: use -P threads or prefork")
        if self.concurrency + delta < 1:
            raise ValueError(f"cannot shrink the pool below one slot (it has {self.concurrency})")
        self.concurrency += delta
        if self.lookahead is not None:
            self.limit = self.concurrency + self.lookahead

    def grow(self, n: int) -> None:
        """Start ``n`` more threads."""
        self._resize(n, n)
        self._start_threads(n)

    def shrink(self, n: int) -> None:
        """``n`` threads exit, each when it takes the stop marker queued now (after the jobs
        queued before it)."""
        self._resize(n, -n)
        for _ in range(n):
            self._queue.put(None)

    def _loop(self) -> None:
        """Take jobs until the stop marker. Reports go out in as few ``notify`` calls as
        possible: a thread that finishes a job and finds the next one already queued sends
        ``Done(previous)`` with ``Started(next)`` (one wake-up of the broker thread, not two);
        it sends what it has before it blocks for a job, so nothing waits behind an idle thread.
        """
        queue_get = self._queue.get
        notify = self._notify
        tasks = self.tasks
        precheck = self._precheck
        pid = os.getpid()
        reports: list[Report] = []
        defer_here()  # results go through the writer; Done waits until they are stored
        after_stores = writer().after
        while True:
            try:
                job = queue_get(False)
            except queue.Empty:
                if reports:
                    notify(reports)
                    reports = []
                job = queue_get()
            if job is None:
                if reports:
                    notify(reports)
                return
            if self._held:  # shutting down: a job that has not started goes back to its queue
                reports.append(Skipped(job.seq, "unstarted"))
                continue
            if precheck is not None:
                reason = precheck(job)
                if reason is not None:
                    reports.append(Skipped(job.seq, reason))
                    continue
            reports.append(Started(job.seq, pid))
            notify(reports)
            try:
                outcome = self._run(job, tasks, notify)
            except BaseException:  # execute() handles task errors; this is a bug of ours
                # (or a time-limit exception that landed just after the task returned)
                log.exception("pool thread: executing job %s failed", job.seq)
                outcome = Outcome(job.seq, FAILURE)
            done: list[Report] = [Done(job.seq, outcome)]
            self._storing.add(job.seq)
            # reported by the writer once its results are stored; else with the next Started
            reports = [] if after_stores(functools.partial(notify, done)) else done

    def _run(self, job: Job, tasks: Mapping[str, Task], notify: Notify) -> Outcome:
        seq = job.seq
        ident = threading.get_ident()
        self._running[seq] = ident
        try:
            return execute(job, tasks, _ThreadSink(seq, notify))
        finally:
            with self._lock:
                del self._running[seq]
                if seq in self._targeted:  # cancel one still pending: the task is over
                    self._targeted.discard(seq)
                    async_raise(ident, None)

    def raise_in_job(self, seq: int, exc_type: type[BaseException]) -> bool:
        """Raise ``exc_type`` in the thread running job ``seq`` (False when it is not running)."""
        with self._lock:
            ident = self._running.get(seq)
            if ident is None:
                return False
            self._targeted.add(seq)
            return async_raise(ident, exc_type)

    def kill_job(self, seq: int, signum: int) -> bool:
        return False  # a thread cannot be killed

    def can_accept(self) -> bool:
        return self._in_flight - len(self._storing) < self.limit

    def apply(self, job: Job) -> int | None:
        self._in_flight += 1
        self._queue.put(job)
        return None

    def flush(self) -> None:
        """Nothing to write: :meth:`apply` hands each job to the threads at once."""

    def job_done(self, seq: int) -> None:
        self._in_flight -= 1
        self._storing.discard(seq)

    def child_died(self, slot: int, exitcode: int | None) -> list[int]:
        return []

    def rebalance(self, now: float) -> tuple[list[int], float | None]:
        return [], None  # one shared queue: no job waits behind a particular thread

    def take_back_waiting(self) -> list[int]:
        return []  # waiting jobs are checked (revoked? expired?) just before they start

    def hold(self) -> None:
        """Start no more jobs: threads report each waiting job ``Skipped(seq, "unstarted")``.

        Only sets a flag, so a signal handler may call it: a warm shutdown stops new starts at
        once, not when the broker thread next wakes up.
        """
        self._held = True

    def take_unstarted(self) -> list[Job]:
        """Jobs still waiting in the queue (removed from it)."""
        out: list[Job] = []
        markers = 0
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                markers += 1
            else:
                out.append(job)
        for _ in range(markers):  # keep stop markers (shutdown, pool_shrink) for the threads
            self._queue.put(None)
        self._in_flight -= len(out)
        return out

    def processes(self) -> list[int]:
        return [os.getpid()]

    def stop(self, timeout: float = 10.0) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join(timeout)
        self._threads = []
        writer().wait_idle(timeout)  # results queued by the threads are stored

    def terminate(self) -> None:
        # Threads cannot be killed; they are daemon threads and die with the process.
        for _ in self._threads:
            self._queue.put(None)
        self._threads = []
