"""Execution pools: where task code runs (never on the thread that owns the broker connection).

A pool takes :class:`~worker.pool.execute.Job` objects from the broker thread (:meth:`Pool.apply`,
only while :meth:`Pool.can_accept`) and reports back through ``notify(items)``, a thread-safe
callable given to :meth:`Pool.start`. Items are tuples, in order per job:

``("started", seq, pid)``
    the job began (unless ``apply`` returned the pid, which means "started now");
``("skipped", seq, reason)``
    the job was not run: ``precheck`` said ``"revoked"``/``"expired"`` just before it started;
``("publish", seq, Envelope)`` / ``("event", seq, (type, fields))``
    a running task's ``update_state``/``retry``/``send_event``;
``("done", seq, Outcome)``
    the job finished;
``("died", slot, exitcode)``
    a prefork child exited; the broker thread calls :meth:`Pool.child_died`, which returns
    the jobs that child still had (started ones are lost, the others can run elsewhere).

Bookkeeping (which slots are busy) belongs to the broker thread: it calls :meth:`Pool.job_done`
for every finished job. Pools: ``threads`` (N threads), ``solo`` (one thread) and ``prefork``
(:mod:`worker.pool.prefork`).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from amqptool.codec.envelope import Envelope
from amqptool.codec.results import FAILURE
from worker.policy.time_limits import async_raise
from worker.pool.execute import Job, Outcome, execute
from worker.task.define import Task

__all__ = ["POOLS", "Notify", "Pool", "ThreadPool", "create_pool", "pool_stats"]

log = logging.getLogger("worker.pool")

Notify = Callable[[list[tuple[Any, ...]]], None]
Precheck = Callable[[Job], str | None]


class Pool(Protocol):
    name: str
    implementation: str
    concurrency: int
    handles_soft_limits: bool  # True: the pool raises SoftTimeLimitExceeded by itself

    def start(self, notify: Notify, precheck: Precheck | None = None) -> None: ...

    def can_accept(self) -> bool: ...

    def apply(self, job: Job) -> int | None: ...

    def job_done(self, seq: int) -> None: ...

    def child_died(self, slot: int, exitcode: int | None) -> list[int]: ...

    def take_unstarted(self) -> list[Job]: ...

    def hold(self) -> None: ...

    def kill_job(self, seq: int, signum: int) -> bool: ...

    def raise_in_job(self, seq: int, exc_type: type[BaseException]) -> bool: ...

    def grow(self, n: int) -> None: ...

    def shrink(self, n: int) -> None: ...

    def processes(self) -> list[int]: ...

    def stop(self, timeout: float = 10.0) -> None: ...

    def terminate(self) -> None: ...


class _ThreadSink:
    __slots__ = ("notify", "seq")

    def __init__(self, seq: int, notify: Notify) -> None:
        self.seq = seq
        self.notify = notify

    def publish(self, env: Envelope) -> None:
        self.notify([("publish", self.seq, env)])

    def event(self, event_type: str, fields: dict[str, Any]) -> None:
        self.notify([("event", self.seq, (event_type, fields))])


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
        get = self._queue.get
        notify = self._notify
        tasks = self.tasks
        precheck = self._precheck
        pid = os.getpid()
        while True:
            job = get()
            if job is None:
                return
            if self._held:  # shutting down: a job that has not started goes back to its queue
                notify([("skipped", job.seq, "unstarted")])
                continue
            if precheck is not None:
                reason = precheck(job)
                if reason is not None:
                    notify([("skipped", job.seq, reason)])
                    continue
            notify([("started", job.seq, pid)])
            try:
                outcome = self._run(job, tasks, notify)
            except BaseException:  # execute() handles task errors; this is a bug of ours
                # (or a time-limit exception that landed just after the task returned)
                log.exception("pool thread: executing job %s failed", job.seq)
                outcome = Outcome(job.seq, FAILURE)
            notify([("done", job.seq, outcome)])

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
        return self._in_flight < self.limit

    def apply(self, job: Job) -> int | None:
        self._in_flight += 1
        self._queue.put(job)
        return None

    def job_done(self, seq: int) -> None:
        self._in_flight -= 1

    def child_died(self, slot: int, exitcode: int | None) -> list[int]:
        return []

    def hold(self) -> None:
        """Start no more jobs: threads report each waiting job ``("skipped", seq, "unstarted")``.

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

    def terminate(self) -> None:
        # Threads cannot be killed; they are daemon threads and die with the process.
        for _ in self._threads:
            self._queue.put(None)
        self._threads = []


POOLS = ("prefork", "threads", "solo")


def create_pool(
    name: str,
    tasks: Mapping[str, Task],
    concurrency: int,
    *,
    lookahead: int | None = None,
    max_tasks_per_child: int | None = None,
) -> Pool:
    """A pool by name; ``lookahead`` bounds the jobs queued beyond the running ones;
    ``max_tasks_per_child`` replaces a prefork child after that many tasks."""
    if name == "threads":
        return ThreadPool(tasks, concurrency, name="threads", lookahead=lookahead)
    if name == "solo":
        return ThreadPool(tasks, 1, name="solo", lookahead=lookahead)
    if name == "prefork":
        from worker.pool.prefork import PreforkPool

        # one job queued per child beyond the running one
        return PreforkPool(tasks, concurrency, max_tasks_per_child=max_tasks_per_child)
    raise ValueError(f"unknown pool {name!r} (choose from {', '.join(POOLS)})")


def pool_stats(
    pool: Pool, max_tasks_per_child: int | None, limits: tuple[float | None, float | None]
) -> dict[str, Any]:
    """``stats``' ``pool`` object, with Celery's fields (``writes`` for prefork, as Celery's)."""
    stats: dict[str, Any] = {
        "implementation": pool.implementation,
        "max-concurrency": pool.concurrency,
        "processes": pool.processes(),
        "max-tasks-per-child": max_tasks_per_child or "N/A",
        "put-guarded-by-semaphore": False,
        "timeouts": [limits[0] or 0, limits[1] or 0],
    }
    writes = getattr(pool, "writes", None)  # prefork only
    if writes is not None:
        stats["writes"] = writes()
    return stats
